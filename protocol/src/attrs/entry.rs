//! The index entry (`docs/ATTRIBUTES.md` §5): what unispace hashing places on the ring for
//! each object and overlay, in the reserved column [`ENTRY_COLUMN`] of its own key. Byte for
//! byte (little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `89 52 42 41 54 58 0D 0A` (`\x89RBATX\r\n`) |
//! | 2 | version (1) |
//! | 2 | overlay (0 the fallback, `i + 1` declared overlay `i`) |
//! | 4 | reserved (0) |
//! | 8 | the space's fingerprint when the entry was placed |
//! | 2 + n | namespace (UTF-8, ≤ 255 bytes) |
//! | 2 + n | name (bytes, ≤ 4096) |
//! | … | the object's attributes (the section of `docs/OBJECTS.md` §10) |
//! | 4 | CRC-32 (ISO-HDLC) of every byte before it |

use ringblob_backends::names::attrs::AttrError;
use ringblob_backends::names::record::{MAX_NAMESPACE_LEN, MAX_NAME_LEN};
use ringblob_backends::names::Attrs;

/// The reserved column index entries live in.
pub const ENTRY_COLUMN: u16 = 0xFFFD;
/// An entry's first bytes.
pub const ENTRY_MAGIC: [u8; 8] = *b"\x89RBATX\r\n";
/// The format version.
pub const ENTRY_VERSION: u16 = 1;
/// The longest entry (namespace, name and 32 attributes of 256-byte values fit).
pub const MAX_ENTRY_LEN: usize = 16 << 10;

/// Why bytes are not an index entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("not an index entry (magic, length, version or reserved bytes)")]
    Format,
    #[error("index entry checksum mismatch")]
    Checksum,
    #[error("index entry attributes: {0}")]
    Attrs(#[from] AttrError),
}

/// An object's index entry in one overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub overlay: u16,
    pub space: u64,
    pub namespace: String,
    pub name: Vec<u8>,
    pub attrs: Attrs,
}

impl Entry {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.name.len());
        out.extend_from_slice(&ENTRY_MAGIC);
        out.extend_from_slice(&ENTRY_VERSION.to_le_bytes());
        out.extend_from_slice(&self.overlay.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.space.to_le_bytes());
        for field in [self.namespace.as_bytes(), &self.name] {
            out.extend_from_slice(&(field.len() as u16).to_le_bytes());
            out.extend_from_slice(field);
        }
        self.attrs.encode_into(&mut out);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Entry, EntryError> {
        if bytes.len() < 34 || bytes.len() > MAX_ENTRY_LEN || bytes[..8] != ENTRY_MAGIC {
            return Err(EntryError::Format);
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32fast::hash(body).to_le_bytes() != crc {
            return Err(EntryError::Checksum);
        }
        let u16_at = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
        if u16_at(8) != ENTRY_VERSION || body[12..16] != [0; 4] {
            return Err(EntryError::Format);
        }
        let overlay = u16_at(10);
        let mut space = [0u8; 8];
        space.copy_from_slice(&body[16..24]);
        let mut rest = &body[24..];
        let mut field = |max: usize| -> Result<Vec<u8>, EntryError> {
            if rest.len() < 2 {
                return Err(EntryError::Format);
            }
            let n = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
            if n > max || rest.len() < 2 + n {
                return Err(EntryError::Format);
            }
            let out = rest[2..2 + n].to_vec();
            rest = &rest[2 + n..];
            Ok(out)
        };
        let namespace =
            String::from_utf8(field(MAX_NAMESPACE_LEN)?).map_err(|_| EntryError::Format)?;
        let name = field(MAX_NAME_LEN)?;
        let (attrs, after) = Attrs::decode_from(rest)?;
        if !after.is_empty() {
            return Err(EntryError::Format);
        }
        Ok(Entry {
            overlay,
            space: u64::from_le_bytes(space),
            namespace,
            name,
            attrs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn golden_vector() -> TestResult {
        let e = Entry {
            overlay: 1,
            space: 0x0102_0304_0506_0708,
            namespace: "ph".into(),
            name: b"a".to_vec(),
            attrs: Attrs::parse_pairs(&["y=1"])?,
        };
        let bytes = e.encode();
        let mut want: Vec<u8> = [
            &b"\x89RBATX\r\n"[..],
            &[1, 0, 1, 0, 0, 0, 0, 0],
            &[8, 7, 6, 5, 4, 3, 2, 1],
            &[2, 0],
            b"ph",
            &[1, 0],
            b"a",
            &[1, 0, 1, 0],
            b"y",
            &[2, 1, 0, 0, 0, 0, 0, 0, 0],
        ]
        .concat();
        let crc = crc32fast::hash(&want);
        want.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(bytes, want);
        assert_eq!(Entry::decode(&bytes)?, e);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(Entry::decode(&bad).is_err(), "byte {i}");
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Entry::decode(&bytes);
        }
    }
}
