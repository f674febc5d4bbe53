//! REMOVE request payload; the reply payload is empty.

use bytes::{BufMut, BytesMut};

use super::write::Durability;
use crate::wire::cursor::Reader;
use crate::wire::error::WireError;

/// Bytes of an encoded [`RemoveRequest`] without its optional fields (8 more for each of
/// a timestamp and a deadline).
pub const REMOVE_REQUEST_LEN: usize = 8;

/// REMOVE flag bit 0: remove only `column`, not the whole key.
pub const REMOVE_ONE_COLUMN: u8 = 1;
/// REMOVE flag bit 1: a copy of a remove made elsewhere; an 8-byte `timestamp_ns` follows.
/// Applied only to records older than it (`NOT_NEWER` when every one was newer), and
/// remembered by the node even if the column (or, without `ONE_COLUMN`, the key) had no
/// value. Without `ONE_COLUMN` (a later addition): the copy of a whole-key remove.
pub const REMOVE_IF_NEWER: u8 = 2;
/// REMOVE flag bit 2 (not with `IF_NEWER`): the remove's version, chosen once by the node
/// that accepted it from the client; an 8-byte `timestamp_ns` follows. Every column (or
/// the one named) whose stored record is older is removed at that timestamp; newer records
/// stay (the remove is superseded there). Answered OK whenever anything was removed or
/// superseded, `NOT_FOUND` when there was nothing at all.
pub const REMOVE_VERSION: u8 = 4;
/// REMOVE flag bit 3: an 8-byte `deadline_ns` (Unix time, nanoseconds) follows the
/// timestamp (or the fixed fields); a node whose clock is past it answers `TIMEOUT` and
/// removes nothing.
pub const REMOVE_DEADLINE: u8 = 8;
const REMOVE_FLAGS: u8 = REMOVE_ONE_COLUMN | REMOVE_IF_NEWER | REMOVE_VERSION | REMOVE_DEADLINE;

/// Remove the header's key: every column of it, or one. Layout (8 bytes): durability u8,
/// flags u8 ([`REMOVE_ONE_COLUMN`], [`REMOVE_IF_NEWER`], [`REMOVE_VERSION`],
/// [`REMOVE_DEADLINE`]), column u16 (0 unless `ONE_COLUMN`), reserved u32 (0); then
/// timestamp_ns u64 with `IF_NEWER` or `VERSION`, then deadline_ns u64 with `DEADLINE`.
/// All-zero flags and column are the whole-key remove that the payload meant before
/// columns (when bytes 1..8 were reserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RemoveRequest {
    pub durability: Durability,
    /// `None`: every column of the key; `Some(c)`: column `c` only.
    pub column: Option<u16>,
    /// `IF_NEWER`: the time the remove was made at its source.
    pub if_newer: Option<u64>,
    /// `VERSION`: the coordinator's timestamp for this remove (not with `if_newer`).
    pub version: Option<u64>,
    /// `DEADLINE`: not to be applied once the receiving node's clock is past this.
    pub deadline_ns: Option<u64>,
}

impl RemoveRequest {
    /// One with both `IF_NEWER` and `VERSION` has no encoding: refused.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        let flags = self.flags()?;
        dst.put_u8(self.durability.as_u8());
        dst.put_u8(flags);
        dst.put_u16_le(self.column.unwrap_or(0));
        dst.put_u32_le(0);
        if let Some(ts) = self.if_newer.or(self.version) {
            dst.put_u64_le(ts);
        }
        if let Some(deadline) = self.deadline_ns {
            dst.put_u64_le(deadline);
        }
        Ok(())
    }

    fn flags(&self) -> Result<u8, WireError> {
        if self.if_newer.is_some() && self.version.is_some() {
            return Err(WireError::InvalidValue {
                what: "REMOVE with both IF_NEWER and VERSION",
                value: 0,
            });
        }
        let bit = |on: bool, flag: u8| if on { flag } else { 0 };
        Ok(bit(self.column.is_some(), REMOVE_ONE_COLUMN)
            | bit(self.if_newer.is_some(), REMOVE_IF_NEWER)
            | bit(self.version.is_some(), REMOVE_VERSION)
            | bit(self.deadline_ns.is_some(), REMOVE_DEADLINE))
    }

    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "REMOVE request");
        let durability = Durability::from_u8(r.u8()?)?;
        let flags = r.u8()?;
        let column = r.u16()?;
        r.reserved(4, "REMOVE reserved")?;
        let bad = |what| WireError::InvalidValue {
            what,
            value: flags.into(),
        };
        if flags & !REMOVE_FLAGS != 0 {
            return Err(bad("REMOVE flags"));
        }
        let one_column = flags & REMOVE_ONE_COLUMN != 0;
        if flags & REMOVE_IF_NEWER != 0 && flags & REMOVE_VERSION != 0 {
            return Err(bad("REMOVE flags (IF_NEWER excludes VERSION)"));
        }
        if !one_column && column != 0 {
            return Err(WireError::InvalidValue {
                what: "REMOVE column without the ONE_COLUMN flag",
                value: column.into(),
            });
        }
        let timestamp = if flags & (REMOVE_IF_NEWER | REMOVE_VERSION) != 0 {
            Some(r.u64()?)
        } else {
            None
        };
        let deadline_ns = if flags & REMOVE_DEADLINE != 0 {
            Some(r.u64()?)
        } else {
            None
        };
        r.finish()?;
        Ok(RemoveRequest {
            durability,
            column: one_column.then_some(column),
            if_newer: timestamp.filter(|_| flags & REMOVE_IF_NEWER != 0),
            version: timestamp.filter(|_| flags & REMOVE_VERSION != 0),
            deadline_ns,
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
            ..RemoveRequest::default()
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
        // Without ONE_COLUMN: the copy of a whole-key remove, column 0.
        let mut whole_key = buf.clone();
        whole_key[1] = REMOVE_IF_NEWER;
        assert!(
            RemoveRequest::decode(&whole_key).is_err(),
            "a column without ONE_COLUMN"
        );
        whole_key[2] = 0;
        let whole = RemoveRequest {
            column: None,
            ..req
        };
        assert_eq!(RemoveRequest::decode(&whole_key), Ok(whole));
        assert_eq!(encoded(whole), whole_key);
        // PROTOCOL.md §7.5's example.
        let example = RemoveRequest {
            if_newer: Some(5),
            ..whole
        };
        let example_bytes = [0, 2, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(&encoded(example)[..], &example_bytes);
    }

    #[test]
    fn version_and_deadline_follow_in_order_for_a_whole_key_or_a_column() {
        for column in [None, Some(3)] {
            let req = RemoveRequest {
                durability: Durability::Batch,
                column,
                version: Some(0x11),
                deadline_ns: Some(0x22),
                ..RemoveRequest::default()
            };
            let buf = encoded(req);
            assert_eq!(buf.len(), REMOVE_REQUEST_LEN + 16);
            let one = if column.is_some() {
                REMOVE_ONE_COLUMN
            } else {
                0
            };
            assert_eq!(buf[1], one | REMOVE_VERSION | REMOVE_DEADLINE);
            assert_eq!(buf[8], 0x11);
            assert_eq!(buf[16], 0x22);
            assert_eq!(RemoveRequest::decode(&buf), Ok(req));
            assert!(
                RemoveRequest::decode(&buf[..16]).is_err(),
                "deadline missing"
            );
            let deadline_only = RemoveRequest {
                version: None,
                ..req
            };
            let buf = encoded(deadline_only);
            assert_eq!(buf.len(), REMOVE_REQUEST_LEN + 8);
            assert_eq!(RemoveRequest::decode(&buf), Ok(deadline_only));
        }
        let both = RemoveRequest {
            column: Some(1),
            if_newer: Some(1),
            version: Some(2),
            ..RemoveRequest::default()
        };
        assert!(both.encode(&mut BytesMut::new()).is_err());
    }

    fn encoded(req: RemoveRequest) -> BytesMut {
        let mut buf = BytesMut::new();
        assert!(req.encode(&mut buf).is_ok());
        buf
    }

    #[test]
    fn a_remove_with_both_if_newer_and_version_is_refused() {
        let req = RemoveRequest {
            durability: Durability::Default,
            column: None,
            if_newer: Some(5),
            version: Some(6),
            ..RemoveRequest::default()
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
            ..RemoveRequest::default()
        });
        assert_eq!(buf.len(), REMOVE_REQUEST_LEN);
        assert_eq!(&buf[..], &[3, 0, 0, 0, 0, 0, 0, 0], "the pre-column layout");
        assert_eq!(
            RemoveRequest::decode(&buf),
            Ok(RemoveRequest {
                durability: Durability::Sync,
                column: None,
                if_newer: None,
                ..RemoveRequest::default()
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
            ..RemoveRequest::default()
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
            (
                [0, 6, 0, 0, 0, 0, 0, 0],
                "REMOVE flags (IF_NEWER excludes VERSION)",
            ),
            (
                [0, 7, 1, 0, 0, 0, 0, 0],
                "REMOVE flags (IF_NEWER excludes VERSION)",
            ),
            ([0, 16, 1, 0, 0, 0, 0, 0], "REMOVE flags"),
            (
                [0, 4, 1, 0, 0, 0, 0, 0],
                "REMOVE column without the ONE_COLUMN flag",
            ),
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
