//! The hashes unispace hashing places by (`docs/ATTRIBUTES.md` §3): which dimension of the
//! fallback space a property name falls in, which region of a dimension a value falls in,
//! and where within its region an object's index entry sits. Each is SHA-256 of a domain
//! tag and the input, read as a big-endian integer from its first 8 bytes, so another
//! client computes the same positions from the document alone.

use ringblob_backends::names::AttrValue;
use sha2::{Digest, Sha256};

/// Domain tag of a property name's dimension hash.
pub const DIM_TAG: &[u8] = b"ringblob/attr/dim\0";
/// Domain tag of a value's region hash.
pub const VALUE_TAG: &[u8] = b"ringblob/attr/value\0";
/// Domain tag of an entry's position within its region.
pub const ENTRY_TAG: &[u8] = b"ringblob/attr/entry\0";

/// The two hashes of the paper (§3): `h(name)` picks a property's dimension, `h(value)` its
/// coordinate. Swappable so tests can use the paper's example values.
pub trait AttrHasher: Send + Sync {
    /// The hash of a property name (taken modulo the number of dimensions).
    fn name_hash(&self, name: &str) -> u64;
    /// The hash of a value (taken modulo the regions of its dimension).
    fn value_hash(&self, value: &AttrValue) -> u64;
}

/// The hashes ringblob places by.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sha256Hasher;

impl AttrHasher for Sha256Hasher {
    fn name_hash(&self, name: &str) -> u64 {
        tagged_u64(DIM_TAG, &[name.as_bytes()])
    }

    fn value_hash(&self, value: &AttrValue) -> u64 {
        let (kind, bytes) = value.typed_bytes();
        tagged_u64(VALUE_TAG, &[&[kind], &bytes])
    }
}

/// The first 8 bytes, big-endian, of SHA-256(`tag` ‖ parts…).
pub fn tagged_u64(tag: &[u8], parts: &[&[u8]]) -> u64 {
    let digest = tagged(tag, parts);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// SHA-256(`tag` ‖ parts…).
pub fn tagged(tag: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(tag);
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// SHA-256 of the entry tag, the namespace (u32 length, little-endian, then its bytes), the
/// overlay number (u16, little-endian) and the name: where an entry sits in its region
/// (first 8 bytes) and the rest of its key (bytes 8..32).
pub fn entry_digest(namespace: &str, overlay: u16, name: &[u8]) -> [u8; 32] {
    let len = (namespace.len() as u32).to_le_bytes();
    tagged(
        ENTRY_TAG,
        &[&len, namespace.as_bytes(), &overlay.to_le_bytes(), name],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_hashes() {
        // Checked with Python: int.from_bytes(hashlib.sha256(b"ringblob/attr/dim\0camera")
        // .digest()[:8], "big"), and likewise for the value b"\x01x100" and integer 2024
        // (b"\x02" + (2024).to_bytes(8, "little")).
        let h = Sha256Hasher;
        assert_eq!(h.name_hash("camera"), GOLDEN_CAMERA);
        assert_eq!(h.value_hash(&AttrValue::Str("x100".into())), GOLDEN_X100);
        assert_eq!(h.value_hash(&AttrValue::Int(2024)), GOLDEN_2024);
    }

    const GOLDEN_CAMERA: u64 = 0xf8f1_8858_b416_f863;
    const GOLDEN_X100: u64 = 0xcb80_f81f_cbe3_176e;
    const GOLDEN_2024: u64 = 0x0c73_730c_a169_1675;
}
