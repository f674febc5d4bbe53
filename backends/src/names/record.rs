//! The name record: what a value written through a name stores beside it, in the reserved
//! [`NAME_COLUMN`] of its key, so that names can be listed (`docs/OBJECTS.md` §10). Byte
//! for byte (little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `89 52 42 4E 41 4D 0D 0A` (`\x89RBNAM\r\n`) |
//! | 2 | version (1) |
//! | 2 | flags (0) |
//! | 4 | reserved (0) |
//! | 8 | size: the object's size in bytes when the record was written |
//! | 2 + n | namespace (UTF-8) |
//! | 2 + n | name (bytes) |
//! | 2 + n | content type (UTF-8, may be empty) |
//! | 2 + n | entity tag (UTF-8, may be empty) |
//! | 2 | user metadata pairs |
//! | (2 + n, 2 + n) × pairs | user metadata: key (UTF-8), value (UTF-8) |
//! | (version 2 only) | attributes: the section of [`super::attrs`] |
//! | 4 | CRC-32 (ISO-HDLC) of every byte before it |
//!
//! A record without attributes is written as version 1 (byte for byte what earlier builds
//! wrote); one with attributes as version 2, which adds the attribute section.
//! The whole record is at most [`MAX_NAME_RECORD_LEN`] bytes; the decoder checks every
//! length against what is left before it allocates.

use ringblob_engine::Key;

use super::attrs::{AttrError, Attrs};

/// The reserved column name records live in.
pub const NAME_COLUMN: u16 = 0xFFFE;
/// A name record's first bytes.
pub const NAME_MAGIC: [u8; 8] = *b"\x89RBNAM\r\n";
/// The format version of a record without attributes.
pub const NAME_RECORD_VERSION: u16 = 1;
/// The format version of a record with attributes.
pub const NAME_RECORD_VERSION_ATTRS: u16 = 2;
/// The longest name record.
pub const MAX_NAME_RECORD_LEN: usize = 16 << 10;
/// The longest name (as the request envelope allows).
pub const MAX_NAME_LEN: usize = 4096;
/// The longest namespace.
pub const MAX_NAMESPACE_LEN: usize = 255;
/// Most user metadata pairs.
pub const MAX_USER_META: usize = 64;
/// Bytes of a record with empty strings and no metadata.
pub const NAME_RECORD_FIXED_LEN: usize = 8 + 2 + 2 + 4 + 8 + 2 * 4 + 2 + 4;

/// Why bytes are not a name record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameRecordError {
    #[error("not a name record (magic)")]
    Magic,
    #[error("name record version {0} is not supported (this build reads 1 and 2)")]
    Version(u16),
    #[error("name record truncated, too long or with trailing bytes")]
    Length,
    #[error("name record checksum mismatch")]
    Checksum,
    #[error("name record field {0} is not valid UTF-8")]
    Utf8(&'static str),
    #[error("name record {0} too long")]
    TooLong(&'static str),
    #[error("name record reserved field set")]
    Reserved,
    #[error("name record attributes: {0}")]
    Attrs(#[from] AttrError),
}

/// A decoded name record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameRecord {
    pub namespace: String,
    pub name: Vec<u8>,
    /// The object's size when the record was written.
    pub size: u64,
    pub content_type: String,
    /// The entity tag clients compare (quoted as HTTP sends it, or empty).
    pub etag: String,
    /// User metadata, in the order given (keys lower case by convention).
    pub user_meta: Vec<(String, String)>,
    /// The object's attributes (`docs/ATTRIBUTES.md`); a record with any is version 2.
    pub attrs: Attrs,
}

impl NameRecord {
    /// A record for `name` in `namespace` with nothing else set.
    pub fn new(namespace: impl Into<String>, name: impl Into<Vec<u8>>, size: u64) -> Self {
        NameRecord {
            namespace: namespace.into(),
            name: name.into(),
            size,
            ..NameRecord::default()
        }
    }

    /// The key the record's namespace and name derive (FORMAT.md §4).
    pub fn key(&self) -> Key {
        Key::from_name(self.namespace.as_bytes(), &self.name)
    }

    /// The encoded bytes; fails if a field is too long.
    pub fn encode(&self) -> Result<Vec<u8>, NameRecordError> {
        self.check()?;
        let mut out = Vec::with_capacity(NAME_RECORD_FIXED_LEN + self.name.len() + 64);
        out.extend_from_slice(&NAME_MAGIC);
        let version = match self.attrs.is_empty() {
            true => NAME_RECORD_VERSION,
            false => NAME_RECORD_VERSION_ATTRS,
        };
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&[0; 6]);
        out.extend_from_slice(&self.size.to_le_bytes());
        for field in [
            self.namespace.as_bytes(),
            &self.name,
            self.content_type.as_bytes(),
            self.etag.as_bytes(),
        ] {
            put_bytes(&mut out, field);
        }
        out.extend_from_slice(&(self.user_meta.len() as u16).to_le_bytes());
        for (k, v) in &self.user_meta {
            put_bytes(&mut out, k.as_bytes());
            put_bytes(&mut out, v.as_bytes());
        }
        if !self.attrs.is_empty() {
            self.attrs.encode_into(&mut out);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        if out.len() > MAX_NAME_RECORD_LEN {
            return Err(NameRecordError::TooLong("record"));
        }
        Ok(out)
    }

    fn check(&self) -> Result<(), NameRecordError> {
        if self.namespace.len() > MAX_NAMESPACE_LEN {
            return Err(NameRecordError::TooLong("namespace"));
        }
        if self.name.len() > MAX_NAME_LEN {
            return Err(NameRecordError::TooLong("name"));
        }
        if self.user_meta.len() > MAX_USER_META {
            return Err(NameRecordError::TooLong("user metadata"));
        }
        let strings = [&self.content_type, &self.etag]
            .into_iter()
            .chain(self.user_meta.iter().flat_map(|(k, v)| [k, v]));
        if strings.into_iter().any(|s| s.len() > u16::MAX as usize) {
            return Err(NameRecordError::TooLong("field"));
        }
        Ok(())
    }

    /// Decodes `bytes`, checking magic, version, checksum and every length.
    pub fn decode(bytes: &[u8]) -> Result<NameRecord, NameRecordError> {
        if bytes.len() < NAME_RECORD_FIXED_LEN || bytes.len() > MAX_NAME_RECORD_LEN {
            return Err(NameRecordError::Length);
        }
        if bytes[..8] != NAME_MAGIC {
            return Err(NameRecordError::Magic);
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32fast::hash(body).to_le_bytes() != crc {
            return Err(NameRecordError::Checksum);
        }
        let mut r = Fields { rest: &body[8..] };
        let version = r.u16()?;
        if version != NAME_RECORD_VERSION && version != NAME_RECORD_VERSION_ATTRS {
            return Err(NameRecordError::Version(version));
        }
        if r.take(6)?.iter().any(|b| *b != 0) {
            return Err(NameRecordError::Reserved);
        }
        let size = u64::from_le_bytes(r.take(8)?.try_into().map_err(|_| NameRecordError::Length)?);
        let namespace = r.string("namespace")?;
        let name = r.bytes()?.to_vec();
        let content_type = r.string("content type")?;
        let etag = r.string("entity tag")?;
        let pairs = usize::from(r.u16()?);
        if pairs > MAX_USER_META {
            return Err(NameRecordError::TooLong("user metadata"));
        }
        let mut user_meta = Vec::with_capacity(pairs);
        for _ in 0..pairs {
            user_meta.push((r.string("metadata key")?, r.string("metadata value")?));
        }
        let mut attrs = Attrs::new();
        if version == NAME_RECORD_VERSION_ATTRS {
            let (decoded, rest) = Attrs::decode_from(r.rest)?;
            if decoded.is_empty() {
                // One encoding per record: no attributes is version 1.
                return Err(NameRecordError::Length);
            }
            (attrs, r.rest) = (decoded, rest);
        }
        if !r.rest.is_empty() {
            return Err(NameRecordError::Length);
        }
        let record = NameRecord {
            namespace,
            name,
            size,
            content_type,
            etag,
            user_meta,
            attrs,
        };
        record.check()?;
        Ok(record)
    }
}

fn put_bytes(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u16).to_le_bytes());
    out.extend_from_slice(field);
}

/// A bounded reader over a record's fields.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], NameRecordError> {
        if self.rest.len() < n {
            return Err(NameRecordError::Length);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u16(&mut self) -> Result<u16, NameRecordError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn bytes(&mut self) -> Result<&'a [u8], NameRecordError> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }

    fn string(&mut self, what: &'static str) -> Result<String, NameRecordError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| NameRecordError::Utf8(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;
    use proptest::prelude::*;

    #[test]
    fn golden_vector() -> TestResult {
        let rec = NameRecord::new("photos", b"a.jpg".to_vec(), 3);
        let bytes = rec.encode()?;
        let mut want = Vec::new();
        want.extend_from_slice(b"\x89RBNAM\r\n");
        want.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(&[6, 0]);
        want.extend_from_slice(b"photos");
        want.extend_from_slice(&[5, 0]);
        want.extend_from_slice(b"a.jpg");
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        let crc = crc32fast::hash(&want);
        want.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(bytes, want);
        assert_eq!(bytes.len(), NAME_RECORD_FIXED_LEN + 11);
        assert_eq!(NameRecord::decode(&bytes)?, rec);
        Ok(())
    }

    #[test]
    fn damage_is_refused() -> TestResult {
        let rec = NameRecord {
            content_type: "image/jpeg".into(),
            user_meta: vec![("camera".into(), "x100".into())],
            ..NameRecord::new("", b"n".to_vec(), 0)
        };
        let bytes = rec.encode()?;
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(NameRecord::decode(&bad).is_err(), "byte {i}");
        }
        assert_eq!(
            NameRecord::decode(&bytes[..bytes.len() - 1]),
            Err(NameRecordError::Checksum)
        );
        let long = NameRecord::new("", vec![b'x'; MAX_NAME_LEN + 1], 0);
        assert_eq!(long.encode(), Err(NameRecordError::TooLong("name")));
        Ok(())
    }

    #[test]
    fn a_record_with_attributes_is_version_2() -> TestResult {
        let attrs = Attrs::parse_pairs(&["camera=x100", "year=2024"])?;
        let rec = NameRecord {
            attrs: attrs.clone(),
            ..NameRecord::new("photos", b"a.jpg".to_vec(), 3)
        };
        let bytes = rec.encode()?;
        assert_eq!(&bytes[8..10], &[2, 0]);
        let plain = NameRecord::new("photos", b"a.jpg".to_vec(), 3).encode()?;
        // Version 2 is version 1 plus the section, before the CRC.
        let mut section = Vec::new();
        attrs.encode_into(&mut section);
        assert_eq!(bytes.len(), plain.len() + section.len());
        assert_eq!(&bytes[10..plain.len() - 4], &plain[10..plain.len() - 4]);
        assert_eq!(NameRecord::decode(&bytes)?, rec);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x08;
            assert!(NameRecord::decode(&bad).is_err(), "byte {i}");
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn round_trips(
            ns in "[a-z0-9-]{0,20}",
            name in proptest::collection::vec(any::<u8>(), 0..200),
            size in any::<u64>(),
            ct in ".{0,20}",
            meta in proptest::collection::vec(("[a-z]{1,8}", ".{0,16}"), 0..5),
        ) {
            let rec = NameRecord { namespace: ns, name, size, content_type: ct,
                etag: "\"abc\"".into(), user_meta: meta, attrs: Attrs::new() };
            let bytes = rec.encode()?;
            prop_assert_eq!(NameRecord::decode(&bytes)?, rec);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = NameRecord::decode(&bytes);
        }
    }
}
