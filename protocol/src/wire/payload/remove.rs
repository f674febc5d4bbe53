//! REMOVE request payload; the reply payload is empty.

use bytes::{BufMut, BytesMut};

use super::write::Durability;
use crate::wire::cursor::Reader;
use crate::wire::error::WireError;

/// Bytes of an encoded [`RemoveRequest`].
pub const REMOVE_REQUEST_LEN: usize = 8;

/// REMOVE flag bit 0: remove only `column`, not the whole key.
pub const REMOVE_ONE_COLUMN: u8 = 1;

/// Remove the header's key: every column of it, or one. Layout (8 bytes): durability u8,
/// flags u8 (bit 0 [`REMOVE_ONE_COLUMN`]), column u16 (0 unless the flag is set),
/// reserved u32 (0). All-zero flags and column are the whole-key remove that the payload
/// meant before columns (when bytes 1..8 were reserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RemoveRequest {
    pub durability: Durability,
    /// `None`: every column of the key; `Some(c)`: column `c` only.
    pub column: Option<u16>,
}

impl RemoveRequest {
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(self.durability.as_u8());
        match self.column {
            None => dst.put_slice(&[0; 3]),
            Some(c) => {
                dst.put_u8(REMOVE_ONE_COLUMN);
                dst.put_u16_le(c);
            }
        }
        dst.put_u32_le(0);
    }

    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "REMOVE request");
        let durability = Durability::from_u8(r.u8()?)?;
        let flags = r.u8()?;
        let column = r.u16()?;
        r.reserved(4, "REMOVE reserved")?;
        r.finish()?;
        let column = match flags {
            REMOVE_ONE_COLUMN => Some(column),
            0 if column == 0 => None,
            0 => {
                return Err(WireError::InvalidValue {
                    what: "REMOVE column without the ONE_COLUMN flag",
                    value: column.into(),
                })
            }
            other => {
                return Err(WireError::InvalidValue {
                    what: "REMOVE flags",
                    value: other.into(),
                })
            }
        };
        Ok(RemoveRequest { durability, column })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(req: RemoveRequest) -> BytesMut {
        let mut buf = BytesMut::new();
        req.encode(&mut buf);
        buf
    }

    #[test]
    fn unknown_durability_and_short_payload_are_rejected() {
        let mut buf = encoded(RemoveRequest {
            durability: Durability::Sync,
            column: None,
        });
        assert_eq!(buf.len(), REMOVE_REQUEST_LEN);
        assert_eq!(&buf[..], &[3, 0, 0, 0, 0, 0, 0, 0], "the pre-column layout");
        assert_eq!(
            RemoveRequest::decode(&buf),
            Ok(RemoveRequest {
                durability: Durability::Sync,
                column: None
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

    #[test]
    fn one_column_sets_the_flag_and_every_column_zero_is_distinct() -> Result<(), WireError> {
        let thumb = RemoveRequest {
            durability: Durability::Batch,
            column: Some(2),
        };
        let buf = encoded(thumb);
        assert_eq!(&buf[..], &[2, 1, 2, 0, 0, 0, 0, 0]);
        assert_eq!(RemoveRequest::decode(&buf)?, thumb);
        let zero = RemoveRequest {
            column: Some(0),
            ..thumb
        };
        assert_eq!(&encoded(zero)[..], &[2, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(RemoveRequest::decode(&encoded(zero))?, zero);
        Ok(())
    }

    #[test]
    fn unknown_flags_a_stray_column_and_reserved_bytes_are_rejected() {
        for (bytes, what) in [
            ([0, 2, 0, 0, 0, 0, 0, 0], "REMOVE flags"),
            ([0, 3, 1, 0, 0, 0, 0, 0], "REMOVE flags"),
            (
                [0, 0, 5, 0, 0, 0, 0, 0],
                "REMOVE column without the ONE_COLUMN flag",
            ),
            ([0, 1, 5, 0, 0, 0, 0, 9], "REMOVE reserved"),
        ] {
            assert!(
                matches!(RemoveRequest::decode(&bytes), Err(WireError::InvalidValue { what: w, .. }) if w == what),
                "{bytes:?}"
            );
        }
        assert!(matches!(
            RemoveRequest::decode(&[0; 9]),
            Err(WireError::TrailingBytes { .. })
        ));
    }
}
