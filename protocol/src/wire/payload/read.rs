//! READ request payload. The reply is the raw value bytes, split into parts of at most
//! `MAX_REPLY_PART` bytes (see `reply::encode_read_reply`).

use bytes::{BufMut, BytesMut};

use crate::wire::cursor::Reader;
use crate::wire::error::WireError;

/// Bytes of an encoded [`ReadRequest`].
pub const READ_REQUEST_LEN: usize = 24;
/// `size` meaning "to the end of the value".
pub const READ_TO_END: u64 = u64::MAX;

/// A byte range of one column of the header's key. Layout (24 bytes): offset u64,
/// size u64, column u16, flags u16 (0), reserved u32 (0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReadRequest {
    /// First byte to return.
    pub offset: u64,
    /// Bytes to return; [`READ_TO_END`] for the rest of the value. A range reaching past
    /// the end is cut at the end; one starting past the end is `RANGE_OUT_OF_BOUNDS`.
    pub size: u64,
    pub column: u16,
    /// `IF_VERSION`: read only the record written at this timestamp (a value's version, as
    /// `LOOKUP` reports it); any other version, or none, is `CHANGED`.
    pub if_version: Option<u64>,
}

/// `READ` flag bit 0: an `if_version` follows the fixed fields.
pub const READ_FLAG_IF_VERSION: u16 = 1;

impl ReadRequest {
    /// The whole value of `column`.
    pub fn whole(column: u16) -> Self {
        ReadRequest {
            offset: 0,
            size: READ_TO_END,
            column,
            if_version: None,
        }
    }

    /// `size` bytes (`READ_TO_END`: to the end) from `offset` of `column`.
    pub fn range(column: u16, offset: u64, size: u64) -> Self {
        ReadRequest {
            offset,
            size,
            column,
            if_version: None,
        }
    }

    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u64_le(self.offset);
        dst.put_u64_le(self.size);
        dst.put_u16_le(self.column);
        let flags = if self.if_version.is_some() {
            READ_FLAG_IF_VERSION
        } else {
            0
        };
        dst.put_u16_le(flags);
        dst.put_u32_le(0);
        if let Some(v) = self.if_version {
            dst.put_u64_le(v);
        }
    }

    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "READ request");
        let offset = r.u64()?;
        let size = r.u64()?;
        let column = r.u16()?;
        let flags = r.u16()?;
        if flags & !READ_FLAG_IF_VERSION != 0 {
            return Err(WireError::InvalidValue {
                what: "READ flags",
                value: u64::from(flags),
            });
        }
        r.reserved(4, "READ reserved")?;
        let if_version = if flags & READ_FLAG_IF_VERSION != 0 {
            Some(r.u64()?)
        } else {
            None
        };
        r.finish()?;
        Ok(ReadRequest {
            offset,
            size,
            column,
            if_version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_long_and_flagged_payloads_are_rejected() {
        let mut buf = BytesMut::new();
        ReadRequest::whole(3).encode(&mut buf);
        assert_eq!(buf.len(), READ_REQUEST_LEN);
        assert_eq!(ReadRequest::decode(&buf), Ok(ReadRequest::whole(3)));
        let short = buf.get(..20).unwrap_or_default();
        assert!(matches!(
            ReadRequest::decode(short),
            Err(WireError::Truncated { .. })
        ));
        let mut long = buf.clone();
        long.put_u8(0);
        assert!(matches!(
            ReadRequest::decode(&long),
            Err(WireError::TrailingBytes { .. })
        ));
        buf[18] = 2;
        assert_eq!(
            ReadRequest::decode(&buf),
            Err(WireError::InvalidValue {
                what: "READ flags",
                value: 2
            })
        );
        // IF_VERSION without its 8 bytes is truncated; with them it round-trips.
        buf[18] = 1;
        assert!(matches!(
            ReadRequest::decode(&buf),
            Err(WireError::Truncated { .. })
        ));
        let pinned = ReadRequest {
            if_version: Some(0x0102_0304_0506_0708),
            ..ReadRequest::range(2, 5, 9)
        };
        let mut buf = BytesMut::new();
        pinned.encode(&mut buf);
        assert_eq!(buf.len(), READ_REQUEST_LEN + 8);
        assert_eq!(buf[18], 1);
        assert_eq!(buf[24..], [8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(ReadRequest::decode(&buf), Ok(pinned));
    }
}
