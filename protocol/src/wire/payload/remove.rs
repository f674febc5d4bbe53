//! REMOVE request payload; the reply payload is empty.

use bytes::{BufMut, BytesMut};

use super::write::Durability;
use crate::wire::cursor::Reader;
use crate::wire::error::WireError;

/// Bytes of an encoded [`RemoveRequest`].
pub const REMOVE_REQUEST_LEN: usize = 8;

/// Remove the header's key (every column). Layout (8 bytes): durability u8,
/// reserved u8×7 (0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RemoveRequest {
    pub durability: Durability,
}

impl RemoveRequest {
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(self.durability.as_u8());
        dst.put_slice(&[0; 7]);
    }

    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "REMOVE request");
        let durability = Durability::from_u8(r.u8()?)?;
        r.reserved(7, "REMOVE reserved")?;
        r.finish()?;
        Ok(RemoveRequest { durability })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_durability_and_short_payload_are_rejected() {
        let mut buf = BytesMut::new();
        RemoveRequest {
            durability: Durability::Sync,
        }
        .encode(&mut buf);
        assert_eq!(buf.len(), REMOVE_REQUEST_LEN);
        assert_eq!(
            RemoveRequest::decode(&buf),
            Ok(RemoveRequest {
                durability: Durability::Sync
            })
        );
        buf[0] = 4;
        assert_eq!(
            RemoveRequest::decode(&buf),
            Err(WireError::InvalidValue {
                what: "durability",
                value: 4
            })
        );
        assert!(matches!(
            RemoveRequest::decode(&[]),
            Err(WireError::Truncated { .. })
        ));
    }
}
