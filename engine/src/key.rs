//! Keys: 32-byte IDs, as on the ring.

use std::fmt;

use sha2::{Digest, Sha256};

/// Length of a key in bytes.
pub const KEY_LEN: usize = 32;

/// A 32-byte key ID. Keys are opaque to the engine; clients usually derive them from names
/// with [`Key::from_name`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Key(pub [u8; KEY_LEN]);

impl Key {
    /// Derives a key from a namespace and a name:
    /// `SHA-256(u32_le(len(namespace)) || namespace || name)`.
    /// The length prefix keeps `("ab", "c")` and `("a", "bc")` apart.
    pub fn from_name(namespace: &[u8], name: &[u8]) -> Key {
        let mut h = Sha256::new();
        h.update((namespace.len() as u32).to_le_bytes());
        h.update(namespace);
        h.update(name);
        Key(h.finalize().into())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(KEY_LEN * 2);
        for b in self.0 {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Option<Key> {
        let bytes = s.as_bytes();
        if bytes.len() != KEY_LEN * 2 {
            return None;
        }
        let mut out = [0u8; KEY_LEN];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(Key(out))
    }

    /// The first 8 bytes as a little-endian integer: what the in-memory index stores.
    pub fn prefix(&self) -> u64 {
        let mut p = [0u8; 8];
        p.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(p)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.to_hex())
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_name_matches_documented_vectors() {
        // Vectors from docs/FORMAT.md, computed independently with Python's hashlib.
        assert_eq!(
            Key::from_name(b"", b"hello").to_hex(),
            "44c0a0d0ddc9808a27834e778f82623f9c8970726bc935014f376cc1c7823673"
        );
        assert_eq!(
            Key::from_name(b"photos", b"cat.jpg").to_hex(),
            "44c74d5d41d27b0ec083321fec673f4d05ec95bd356e6dcc8da1e650ed93ea05"
        );
    }

    #[test]
    fn namespace_length_prefix_separates_names() {
        assert_ne!(Key::from_name(b"ab", b"c"), Key::from_name(b"a", b"bc"));
    }

    #[test]
    fn hex_round_trip_and_rejects_bad_input() {
        let k = Key::from_name(b"ns", b"photo.jpg");
        assert_eq!(Key::from_hex(&k.to_hex()), Some(k));
        assert_eq!(Key::from_hex("zz"), None);
        assert_eq!(Key::from_hex(&"g".repeat(64)), None);
    }
}
