//! [`RingId`]: a position on the 2^256 ring, written as 64 lowercase hex digits in text.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::RingError;
use crate::wire::KeyId;

/// Bytes in a ring ID (the same as a key ID).
pub const RING_ID_LEN: usize = 32;
const _: () = assert!(RING_ID_LEN == crate::wire::KEY_LEN);

/// Hex digits in the text form of a ring ID.
const HEX_LEN: usize = 2 * RING_ID_LEN;

/// A position on the ring of 2^256 positions: an unsigned 256-bit number stored big-endian,
/// so the derived byte-wise order is numeric order. Keys ([`KeyId`]) live on the same ring.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RingId(pub [u8; RING_ID_LEN]);

impl RingId {
    /// Position 0.
    pub const MIN: RingId = RingId([0; RING_ID_LEN]);
    /// Position 2^256 − 1.
    pub const MAX: RingId = RingId([0xff; RING_ID_LEN]);

    /// The 32 bytes, big-endian.
    pub fn as_bytes(&self) -> &[u8; RING_ID_LEN] {
        &self.0
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }

    /// Parses exactly 64 lowercase hex digits (the one text form; upper case is refused so
    /// every ID has a single spelling).
    pub fn from_hex(text: &str) -> Result<RingId, RingError> {
        let bad = || RingError::BadHex {
            text: text.chars().take(80).collect(),
        };
        if text.len() != HEX_LEN {
            return Err(bad());
        }
        let mut out = [0u8; RING_ID_LEN];
        for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            let (hi, lo) = match pair {
                [hi, lo] => (nibble(*hi), nibble(*lo)),
                _ => (None, None),
            };
            match (hi, lo) {
                (Some(hi), Some(lo)) => *byte = (hi << 4) | lo,
                _ => return Err(bad()),
            }
        }
        Ok(RingId(out))
    }
}

/// The value of one lowercase hex digit.
fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl From<KeyId> for RingId {
    fn from(key: KeyId) -> RingId {
        RingId(key)
    }
}

impl From<RingId> for KeyId {
    fn from(id: RingId) -> KeyId {
        id.0
    }
}

impl fmt::Display for RingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for RingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RingId({self})")
    }
}

impl FromStr for RingId {
    type Err = RingError;

    fn from_str(text: &str) -> Result<RingId, RingError> {
        RingId::from_hex(text)
    }
}

impl Serialize for RingId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RingId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RingId, D::Error> {
        let text = String::deserialize(deserializer)?;
        RingId::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counting() -> RingId {
        let mut bytes = [0u8; RING_ID_LEN];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        RingId(bytes)
    }

    #[test]
    fn hex_is_lowercase_big_endian() {
        assert_eq!(
            counting().to_hex(),
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        );
        assert_eq!(RingId::MAX.to_hex(), "f".repeat(64));
    }

    #[test]
    fn hex_round_trips() {
        let id = counting();
        assert_eq!(RingId::from_hex(&id.to_hex()), Ok(id));
        assert_eq!(id.to_hex().parse::<RingId>(), Ok(id));
    }

    #[test]
    fn bad_hex_is_refused() {
        let good = counting().to_hex();
        let upper = good.to_uppercase();
        let short = &good[..62];
        let long = format!("{good}00");
        let junk = format!("{}zz", &good[..62]);
        for text in [upper.as_str(), short, long.as_str(), junk.as_str(), ""] {
            assert!(
                matches!(RingId::from_hex(text), Err(RingError::BadHex { .. })),
                "{text:?} was accepted"
            );
        }
        // Non-ASCII text of the right byte length must not be split inside a character.
        let wide = "é".repeat(32);
        assert_eq!(wide.len(), 64);
        assert!(RingId::from_hex(&wide).is_err());
    }

    #[test]
    fn order_is_numeric() {
        let mut low = RingId::MAX;
        low.0[0] = 0xfe;
        let mut high = RingId::MIN;
        high.0[0] = 0xff;
        assert!(low < high);
        assert!(RingId::MIN < RingId::MAX);
    }

    #[test]
    fn serde_uses_the_hex_string() -> Result<(), serde_json::Error> {
        let id = counting();
        let json = serde_json::to_string(&id)?;
        assert_eq!(json, format!("\"{}\"", id.to_hex()));
        assert_eq!(serde_json::from_str::<RingId>(&json)?, id);
        assert!(serde_json::from_str::<RingId>("\"00\"").is_err());
        assert!(serde_json::from_str::<RingId>("17").is_err());
        Ok(())
    }
}
