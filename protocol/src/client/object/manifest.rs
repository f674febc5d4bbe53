//! The two small records a chunked object is made of besides its chunks, byte for byte as
//! `docs/OBJECTS.md` specifies them: the **manifest** (column 0 of the object's own key:
//! sizes, the upload that wrote the chunks, checksums) and the **upload record** (column
//! [`UPLOAD_COLUMN`] of a key of its own: which object an upload's chunks belong to, so
//! chunks nobody references can be found and reclaimed). Both decoders are bounded and
//! check everything before trusting a length.

use bytes::{BufMut, Bytes, BytesMut};

use crate::wire::{KeyId, ObjectName};

/// A manifest's first bytes. The first byte is not ASCII and the `\r\n` catches text-mode
/// mangling, as in PNG.
pub const MANIFEST_MAGIC: [u8; 8] = *b"\x89RBOBJ\r\n";
/// An upload record's first bytes.
pub const UPLOAD_MAGIC: [u8; 8] = *b"\x89RBUPL\r\n";
/// The format version both records carry.
pub const OBJECT_FORMAT_VERSION: u16 = 1;
/// The column upload records live in (reserved: values written there by hand would be
/// taken for upload records by `reclaim`).
pub const UPLOAD_COLUMN: u16 = 0xFFFF;
/// Manifest bytes before the chunk checksums.
pub const MANIFEST_FIXED_LEN: usize = 56;
/// The most chunks one object has (with 64 MiB chunks, 64 TiB).
pub const MAX_CHUNKS: u32 = 1 << 20;
/// The longest manifest: fixed part, one checksum per chunk, trailer.
pub const MAX_MANIFEST_LEN: usize = MANIFEST_FIXED_LEN + 4 * MAX_CHUNKS as usize + 4;
/// Smallest and largest chunk sizes.
pub const MIN_CHUNK_SIZE: u64 = 4 << 10;
pub const MAX_CHUNK_SIZE: u64 = ringblob_engine::format::record::MAX_VALUE_LEN;

/// Why bytes are not a manifest or an upload record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectFormatError {
    #[error("not an object record (magic)")]
    Magic,
    #[error("object record version {0} is not supported (this client reads 1)")]
    Version(u16),
    #[error("object record truncated or with trailing bytes (length {0})")]
    Length(usize),
    #[error("object record checksum mismatch")]
    Checksum,
    #[error("object record field out of range: {0}")]
    Field(&'static str),
}

type Result<T> = std::result::Result<T, ObjectFormatError>;

/// Where an object's bytes are: `size` bytes in chunks of `chunk_size` (the last one
/// shorter), written by upload `upload_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub size: u64,
    pub chunk_size: u64,
    pub upload_id: [u8; 16],
    /// CRC-32 (ISO-HDLC, as `LOOKUP` reports a value's) of the whole object.
    pub crc32: u32,
    /// CRC-32 of each chunk, in order.
    pub chunk_crcs: Vec<u32>,
}

impl Manifest {
    /// The number of chunks an object of `size` bytes has.
    pub fn chunks_for(size: u64, chunk_size: u64) -> u64 {
        size.div_ceil(chunk_size.max(1))
    }

    /// Bytes of chunk `index`.
    pub fn chunk_len(&self, index: u32) -> u64 {
        let start = u64::from(index) * self.chunk_size;
        self.size.saturating_sub(start).min(self.chunk_size)
    }

    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(MANIFEST_FIXED_LEN + 4 * self.chunk_crcs.len() + 4);
        b.put_slice(&MANIFEST_MAGIC);
        b.put_u16_le(OBJECT_FORMAT_VERSION);
        b.put_u16_le(0);
        b.put_u32_le(self.chunk_crcs.len() as u32);
        b.put_u64_le(self.chunk_size);
        b.put_u64_le(self.size);
        b.put_slice(&self.upload_id);
        b.put_u32_le(self.crc32);
        b.put_u32_le(0);
        for c in &self.chunk_crcs {
            b.put_u32_le(*c);
        }
        let crc = crc32fast::hash(&b);
        b.put_u32_le(crc);
        b.freeze()
    }

    /// Whether `bytes` begin like a manifest (the value may still not be one).
    pub fn sniff(bytes: &[u8]) -> bool {
        bytes.starts_with(&MANIFEST_MAGIC)
    }

    pub fn decode(bytes: &[u8]) -> Result<Manifest> {
        let body = checked(bytes, &MANIFEST_MAGIC, MANIFEST_FIXED_LEN + 4)?;
        let mut r = Fields::new(body, 8);
        let head = ManifestHead::fields(&mut r)?;
        if body.len() != MANIFEST_FIXED_LEN + 4 * head.count as usize {
            return Err(ObjectFormatError::Length(bytes.len()));
        }
        let chunk_crcs = (0..head.count).map(|_| r.u32()).collect();
        Ok(Manifest {
            size: head.size,
            chunk_size: head.chunk_size,
            upload_id: head.upload_id,
            crc32: head.crc32,
            chunk_crcs,
        })
    }
}

/// A manifest's fixed part (its first [`MANIFEST_FIXED_LEN`] bytes): enough to find the
/// object's chunks, read without the rest (whose trailer checksum covers it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestHead {
    pub count: u32,
    pub chunk_size: u64,
    pub size: u64,
    pub upload_id: [u8; 16],
    pub crc32: u32,
}

impl ManifestHead {
    /// The fixed part at the start of `bytes` (at least [`MANIFEST_FIXED_LEN`] of them),
    /// its fields checked as [`Manifest::decode`] checks them.
    pub fn decode(bytes: &[u8]) -> Result<ManifestHead> {
        if !Manifest::sniff(bytes) {
            return Err(ObjectFormatError::Magic);
        }
        let fixed = bytes
            .get(..MANIFEST_FIXED_LEN)
            .ok_or(ObjectFormatError::Length(bytes.len()))?;
        ManifestHead::fields(&mut Fields::new(fixed, 8))
    }

    /// The fields after the magic.
    fn fields(r: &mut Fields<'_>) -> Result<ManifestHead> {
        let version = r.u16();
        if version != OBJECT_FORMAT_VERSION {
            return Err(ObjectFormatError::Version(version));
        }
        if r.u16() != 0 {
            return Err(ObjectFormatError::Field("flags"));
        }
        let count = r.u32();
        let chunk_size = r.u64();
        let size = r.u64();
        let upload_id = r.array::<16>();
        let crc32 = r.u32();
        if r.u32() != 0 {
            return Err(ObjectFormatError::Field("reserved"));
        }
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
            return Err(ObjectFormatError::Field("chunk_size"));
        }
        if count > MAX_CHUNKS || u64::from(count) != Manifest::chunks_for(size, chunk_size) {
            return Err(ObjectFormatError::Field("chunk_count"));
        }
        Ok(ManifestHead {
            count,
            chunk_size,
            size,
            upload_id,
            crc32,
        })
    }
}

/// What an upload wrote chunks for: kept while those chunks exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    pub upload_id: [u8; 16],
    pub chunk_size: u64,
    /// When the upload began (the uploader's clock, ns since the Unix epoch).
    pub started_ns: u64,
    /// The object's key.
    pub object: KeyId,
    /// Its namespace and name, when it was written by name.
    pub name: Option<ObjectName>,
}

/// Upload record bytes before the name.
const UPLOAD_FIXED_LEN: usize = 72;

impl UploadRecord {
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(UPLOAD_FIXED_LEN + 64);
        b.put_slice(&UPLOAD_MAGIC);
        b.put_u16_le(OBJECT_FORMAT_VERSION);
        b.put_u16_le(u16::from(self.name.is_some()));
        b.put_u32_le(0);
        b.put_slice(&self.upload_id);
        b.put_u64_le(self.chunk_size);
        b.put_u64_le(self.started_ns);
        b.put_slice(&self.object);
        if let Some(n) = &self.name {
            b.put_u16_le(n.namespace.len() as u16);
            b.put_slice(n.namespace.as_bytes());
            b.put_u16_le(n.name.len() as u16);
            b.put_slice(&n.name);
        }
        let crc = crc32fast::hash(&b);
        b.put_u32_le(crc);
        b.freeze()
    }

    pub fn decode(bytes: &[u8]) -> Result<UploadRecord> {
        let body = checked(bytes, &UPLOAD_MAGIC, UPLOAD_FIXED_LEN + 4)?;
        let mut r = Fields::new(body, 8);
        let version = r.u16();
        if version != OBJECT_FORMAT_VERSION {
            return Err(ObjectFormatError::Version(version));
        }
        let flags = r.u16();
        if flags > 1 || r.u32() != 0 {
            return Err(ObjectFormatError::Field("flags"));
        }
        let upload_id = r.array::<16>();
        let chunk_size = r.u64();
        let started_ns = r.u64();
        let object = r.array::<32>();
        let name = if flags == 1 {
            let namespace = r.text().ok_or(ObjectFormatError::Length(bytes.len()))?;
            let namespace = String::from_utf8(namespace.to_vec())
                .map_err(|_| ObjectFormatError::Field("namespace"))?;
            let name = r.text().ok_or(ObjectFormatError::Length(bytes.len()))?;
            Some(ObjectName::new(namespace, Bytes::copy_from_slice(name)))
        } else {
            None
        };
        if r.at != body.len() {
            return Err(ObjectFormatError::Length(bytes.len()));
        }
        if name.as_ref().is_some_and(|n| n.key_id() != object) {
            return Err(ObjectFormatError::Field("object"));
        }
        Ok(UploadRecord {
            upload_id,
            chunk_size,
            started_ns,
            object,
            name,
        })
    }
}

/// The bytes before the trailing CRC, once magic, length and CRC are right.
fn checked<'a>(bytes: &'a [u8], magic: &[u8; 8], min_len: usize) -> Result<&'a [u8]> {
    if !bytes.starts_with(magic) {
        return Err(ObjectFormatError::Magic);
    }
    if bytes.len() < min_len || bytes.len() > MAX_MANIFEST_LEN {
        return Err(ObjectFormatError::Length(bytes.len()));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let mut stored = [0u8; 4];
    stored.copy_from_slice(crc);
    if crc32fast::hash(body) != u32::from_le_bytes(stored) {
        return Err(ObjectFormatError::Checksum);
    }
    Ok(body)
}

/// Little-endian fields read from a body whose length was checked against everything read
/// by the fixed part; past the end reads zeros (the length check then fails).
struct Fields<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
    fn new(b: &'a [u8], at: usize) -> Self {
        Fields { b, at }
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(s) = self.b.get(self.at..self.at + N) {
            out.copy_from_slice(s);
        }
        self.at += N;
        out
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    /// A u16-length-prefixed byte string, if it is all there.
    fn text(&mut self) -> Option<&'a [u8]> {
        let len = usize::from(self.u16());
        let s = self.b.get(self.at..self.at + len)?;
        self.at += len;
        Some(s)
    }
}

/// The name of chunk `index` of upload `upload_id`: in the object's namespace, so a key
/// limited to that namespace may write and read it. It starts with a NUL byte, which no
/// name a person types does.
pub fn chunk_name(upload_id: &[u8; 16], index: u32) -> Bytes {
    Bytes::from(format!("\0rb-chunk/{}/{index}", hex(upload_id)))
}

/// The name of upload `upload_id`'s record (column [`UPLOAD_COLUMN`]).
pub fn upload_name(upload_id: &[u8; 16]) -> Bytes {
    Bytes::from(format!("\0rb-upload/{}", hex(upload_id)))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            size: 10_000,
            chunk_size: 4096,
            upload_id: [0xAB; 16],
            crc32: 0x1122_3344,
            chunk_crcs: vec![1, 2, 3],
        }
    }

    #[test]
    fn a_manifest_round_trips_byte_for_byte_as_documented() {
        let m = manifest();
        let b = m.encode();
        assert_eq!(b.len(), MANIFEST_FIXED_LEN + 12 + 4);
        assert_eq!(&b[..8], b"\x89RBOBJ\r\n");
        assert_eq!(&b[8..12], [1, 0, 0, 0]);
        assert_eq!(&b[12..16], [3, 0, 0, 0]);
        assert_eq!(&b[16..24], 4096u64.to_le_bytes());
        assert_eq!(&b[24..32], 10_000u64.to_le_bytes());
        assert_eq!(&b[48..52], 0x1122_3344u32.to_le_bytes());
        assert_eq!(&b[56..60], [1, 0, 0, 0]);
        assert_eq!(Manifest::decode(&b), Ok(m.clone()));
        assert_eq!(m.chunk_len(2), 10_000 - 8192);
        assert_eq!(m.chunk_len(3), 0);
        // The golden vector in docs/OBJECTS.md.
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        assert_eq!(
            hex,
            concat!(
                "8952424f424a0d0a",
                "0100",
                "0000",
                "03000000",
                "0010000000000000",
                "1027000000000000",
                "abababababababababababababababab",
                "44332211",
                "00000000",
                "01000000",
                "02000000",
                "03000000",
                "e9246ac3"
            )
        );
    }

    #[test]
    fn damaged_or_inconsistent_manifests_are_refused() {
        let b = manifest().encode().to_vec();
        for i in 0..b.len() {
            let mut d = b.clone();
            d[i] ^= 0x40;
            assert!(Manifest::decode(&d).is_err(), "byte {i}");
        }
        for len in 0..b.len() {
            assert!(Manifest::decode(&b[..len]).is_err(), "length {len}");
        }
        let wrong_count = Manifest {
            chunk_crcs: vec![1, 2],
            ..manifest()
        };
        assert_eq!(
            Manifest::decode(&wrong_count.encode()),
            Err(ObjectFormatError::Field("chunk_count"))
        );
        let tiny_chunks = Manifest {
            chunk_size: 1,
            size: 3,
            chunk_crcs: vec![1, 2, 3],
            ..manifest()
        };
        assert!(Manifest::decode(&tiny_chunks.encode()).is_err());
    }

    #[test]
    fn a_manifest_head_is_read_from_its_fixed_part_alone() {
        let m = manifest();
        let b = m.encode();
        let head = ManifestHead::decode(&b[..MANIFEST_FIXED_LEN]);
        let want = ManifestHead {
            count: m.chunk_crcs.len() as u32,
            chunk_size: m.chunk_size,
            size: m.size,
            upload_id: m.upload_id,
            crc32: m.crc32,
        };
        assert_eq!(head, Ok(want));
        assert_eq!(ManifestHead::decode(&b), Ok(want), "longer input: the head");
        for len in 0..MANIFEST_FIXED_LEN {
            assert!(ManifestHead::decode(&b[..len]).is_err(), "length {len}");
        }
        assert_eq!(
            ManifestHead::decode(b"plain value, not a manifest at all, of more than 56 bytes"),
            Err(ObjectFormatError::Magic)
        );
        let mut bad = b[..MANIFEST_FIXED_LEN].to_vec();
        bad[12] ^= 1; // the chunk count no longer matches size / chunk_size
        assert_eq!(
            ManifestHead::decode(&bad),
            Err(ObjectFormatError::Field("chunk_count"))
        );
    }

    #[test]
    fn upload_records_round_trip_named_or_not_and_refuse_damage() {
        let name = ObjectName::new("photos", Bytes::from_static(b"cat.jpg"));
        let named = UploadRecord {
            upload_id: [7; 16],
            chunk_size: 1 << 20,
            started_ns: 42,
            object: name.key_id(),
            name: Some(name),
        };
        let raw = UploadRecord {
            name: None,
            object: [9; 32],
            ..named.clone()
        };
        for r in [named, raw] {
            let b = r.encode().to_vec();
            assert_eq!(UploadRecord::decode(&b), Ok(r.clone()));
            for i in 0..b.len() {
                let mut d = b.clone();
                d[i] ^= 1;
                assert!(UploadRecord::decode(&d).is_err(), "byte {i}");
            }
            for len in 0..b.len() {
                assert!(UploadRecord::decode(&b[..len]).is_err(), "length {len}");
            }
        }
    }

    #[test]
    fn chunk_and_upload_names_are_distinct_and_start_with_nul() {
        let id = [0x01; 16];
        assert_eq!(
            &chunk_name(&id, 7)[..],
            b"\0rb-chunk/01010101010101010101010101010101/7"
        );
        assert_eq!(
            &upload_name(&id)[..],
            b"\0rb-upload/01010101010101010101010101010101"
        );
    }
}
