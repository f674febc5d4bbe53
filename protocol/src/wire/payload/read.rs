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
}

impl ReadRequest {
    /// The whole value of `column`.
    pub fn whole(column: u16) -> Self {
        ReadRequest {
            offset: 0,
            size: READ_TO_END,
            column,
        }
    }

    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u64_le(self.offset);
        dst.put_u64_le(self.size);
        dst.put_u16_le(self.column);
        dst.put_u16_le(0);
        dst.put_u32_le(0);
    }

    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "READ request");
        let offset = r.u64()?;
        let size = r.u64()?;
        let column = r.u16()?;
        r.reserved(2, "READ flags")?;
        r.reserved(4, "READ reserved")?;
        r.finish()?;
        Ok(ReadRequest {
            offset,
            size,
            column,
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
        buf[18] = 1;
        assert_eq!(
            ReadRequest::decode(&buf),
            Err(WireError::InvalidValue {
                what: "READ flags",
                value: 1
            })
        );
    }
}
