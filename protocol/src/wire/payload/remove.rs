//! REMOVE request payload; the reply payload is empty.

use bytes::{BufMut, BytesMut};

use super::write::Durability;
use crate::wire::cursor::Reader;
use crate::wire::error::WireError;

/// Bytes of an encoded [`RemoveRequest`] (16 with [`REMOVE_IF_NEWER`]).
pub const REMOVE_REQUEST_LEN: usize = 8;

/// REMOVE flag bit 0: remove only `column`, not the whole key.
pub const REMOVE_ONE_COLUMN: u8 = 1;
/// REMOVE flag bit 1 (with `ONE_COLUMN` only): a copy of a remove made elsewhere; an 8-byte
/// `timestamp_ns` follows. Applied only if the stored record is older (`NOT_NEWER`
/// otherwise), and remembered by the node even if the column had no value.
pub const REMOVE_IF_NEWER: u8 = 2;

/// Remove the header's key: every column of it, or one. Layout (8 bytes): durability u8,
/// flags u8 (bit 0 [`REMOVE_ONE_COLUMN`], bit 1 [`REMOVE_IF_NEWER`]), column u16 (0 unless
/// `ONE_COLUMN`), reserved u32 (0); with `IF_NEWER`, timestamp_ns u64. All-zero flags and
/// column are the whole-key remove that the payload meant before columns (when bytes 1..8
/// were reserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RemoveRequest {
    pub durability: Durability,
    /// `None`: every column of the key; `Some(c)`: column `c` only.
    pub column: Option<u16>,
    /// `IF_NEWER`: the time the remove was made at its source (one column only).
    pub if_newer: Option<u64>,
}

impl RemoveRequest {
    /// A whole-key `IF_NEWER` remove has no encoding: refused, never sent as a plain remove.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        if self.if_newer.is_some() && self.column.is_none() {
            return Err(WireError::InvalidValue {
                what: "REMOVE IF_NEWER of a whole key (name one column)",
                value: 0,
            });
        }
        dst.put_u8(self.durability.as_u8());
        let if_newer = self.if_newer;
        match self.column {
            None => dst.put_slice(&[0; 3]),
            Some(c) => {
                let copy = if if_newer.is_some() {
                    REMOVE_IF_NEWER
                } else {
                    0
                };
                dst.put_u8(REMOVE_ONE_COLUMN | copy);
                dst.put_u16_le(c);
            }
        }
        dst.put_u32_le(0);
        if let Some(ts) = if_newer {
            dst.put_u64_le(ts);
        }
        Ok(())
    }

    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "REMOVE request");
        let durability = Durability::from_u8(r.u8()?)?;
        let flags = r.u8()?;
        let column = r.u16()?;
        r.reserved(4, "REMOVE reserved")?;
        let if_newer = if flags == REMOVE_ONE_COLUMN | REMOVE_IF_NEWER {
            Some(r.u64()?)
        } else {
            None
        };
        r.finish()?;
        let column = match flags {
            REMOVE_ONE_COLUMN => Some(column),
            f if f == REMOVE_ONE_COLUMN | REMOVE_IF_NEWER => Some(column),
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
        Ok(RemoveRequest {
            durability,
            column,
            if_newer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_newer_adds_a_timestamp_and_needs_one_column() {
        let req = RemoveRequest {
            durability: Durability::Default,
            column: Some(4),
            if_newer: Some(0x0102_0304_0506_0708),
        };
        let buf = encoded(req);
        assert_eq!(buf.len(), REMOVE_REQUEST_LEN + 8);
        assert_eq!(buf[1], REMOVE_ONE_COLUMN | REMOVE_IF_NEWER);
        assert_eq!(&buf[8..], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(RemoveRequest::decode(&buf), Ok(req));
        assert!(
            RemoveRequest::decode(&buf[..8]).is_err(),
            "timestamp missing"
        );
        let mut whole_key = buf.clone();
        whole_key[1] = REMOVE_IF_NEWER;
        whole_key[2] = 0;
        assert!(
            RemoveRequest::decode(&whole_key).is_err(),
            "IF_NEWER without ONE_COLUMN"
        );
    }

    fn encoded(req: RemoveRequest) -> BytesMut {
        let mut buf = BytesMut::new();
        assert!(req.encode(&mut buf).is_ok());
        buf
    }

    #[test]
    fn a_whole_key_if_newer_remove_is_refused() {
        let req = RemoveRequest {
            durability: Durability::Default,
            column: None,
            if_newer: Some(5),
        };
        let mut buf = BytesMut::new();
        assert!(req.encode(&mut buf).is_err());
        assert!(buf.is_empty());
    }

    #[test]
    fn unknown_durability_and_short_payload_are_rejected() {
        let mut buf = encoded(RemoveRequest {
            durability: Durability::Sync,
            column: None,
            if_newer: None,
        });
        assert_eq!(buf.len(), REMOVE_REQUEST_LEN);
        assert_eq!(&buf[..], &[3, 0, 0, 0, 0, 0, 0, 0], "the pre-column layout");
        assert_eq!(
            RemoveRequest::decode(&buf),
            Ok(RemoveRequest {
                durability: Durability::Sync,
                column: None,
                if_newer: None,
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
            if_newer: None,
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
            ([0, 4, 1, 0, 0, 0, 0, 0], "REMOVE flags"),
            ([0, 6, 1, 0, 0, 0, 0, 0], "REMOVE flags"),
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
