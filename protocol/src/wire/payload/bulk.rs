//! BULK_READ request and reply-item payloads.

use bytes::{BufMut, Bytes, BytesMut};

use crate::wire::cursor::{check_limit, Reader};
use crate::wire::error::WireError;
use crate::wire::limits::{KEY_LEN, MAX_BULK_KEYS, MAX_MESSAGE_LEN, MAX_VALUE_IN_FRAME};
use crate::wire::status::Status;
use crate::wire::KeyId;

/// Bytes before the keys of a BULK_READ request.
pub const BULK_REQUEST_FIXED_LEN: usize = 8;
/// Bytes before the data of a BULK_READ reply item.
pub const BULK_ITEM_FIXED_LEN: usize = KEY_LEN + 8;

/// Read the whole value of `column` for each key. Layout: count u32 (1..=MAX_BULK_KEYS),
/// column u16, reserved u16, keys [32] × count.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BulkReadRequest {
    pub column: u16,
    pub keys: Vec<KeyId>,
}

impl BulkReadRequest {
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        let count = check_count(self.keys.len())?;
        dst.put_u32_le(count);
        dst.put_u16_le(self.column);
        dst.put_u16_le(0);
        for key in &self.keys {
            dst.put_slice(key);
        }
        Ok(())
    }

    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "BULK_READ request");
        let count = r.u32()?;
        let count = check_count(usize::try_from(count).unwrap_or(usize::MAX))?;
        let column = r.u16()?;
        r.reserved(2, "BULK_READ reserved")?;
        let mut keys = Vec::with_capacity(count as usize);
        for _ in 0..count {
            keys.push(r.key()?);
        }
        r.finish()?;
        Ok(BulkReadRequest { column, keys })
    }
}

fn check_count(count: usize) -> Result<u32, WireError> {
    check_limit("bulk key count", count, MAX_BULK_KEYS)?;
    if count == 0 {
        return Err(WireError::InvalidValue {
            what: "bulk key count",
            value: 0,
        });
    }
    u32::try_from(count).map_err(|_| WireError::InvalidValue {
        what: "bulk key count",
        value: count as u64,
    })
}

/// One BULK_READ reply part: the outcome for one requested key. Layout: key [32],
/// status u32, len u32, data. With status OK `data` is the value (at most
/// `MAX_VALUE_IN_FRAME`; a larger value is reported as TOO_LARGE); otherwise it is a UTF-8
/// message of at most `MAX_MESSAGE_LEN` bytes (possibly empty).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BulkItem {
    pub key: KeyId,
    pub status: Status,
    pub data: Bytes,
}

impl BulkItem {
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        check_limit(
            item_what(self.status),
            self.data.len(),
            item_max(self.status),
        )?;
        dst.put_slice(&self.key);
        dst.put_u32_le(self.status.as_u32());
        dst.put_u32_le(self.data.len() as u32);
        dst.put_slice(&self.data);
        Ok(())
    }

    /// Decodes an item; `data` is a zero-copy slice of `payload`.
    pub fn decode(payload: &Bytes) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "BULK_READ reply item");
        let key = r.key()?;
        let status = Status::from_u32(r.u32()?);
        let len = r.len_u32(item_max(status))?;
        let data = payload.slice_ref(r.slice(len)?);
        r.finish()?;
        Ok(BulkItem { key, status, data })
    }
}

fn item_max(status: Status) -> usize {
    if status.is_ok() {
        MAX_VALUE_IN_FRAME
    } else {
        MAX_MESSAGE_LEN
    }
}

fn item_what(status: Status) -> &'static str {
    if status.is_ok() {
        "bulk item value"
    } else {
        "bulk item message"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_over_limit_zero_or_past_the_payload_is_rejected() {
        let mut buf = BytesMut::new();
        buf.put_u32_le(MAX_BULK_KEYS as u32 + 1);
        buf.put_u32_le(0);
        assert_eq!(
            BulkReadRequest::decode(&buf),
            Err(WireError::LimitExceeded {
                what: "bulk key count",
                len: 1025,
                max: 1024
            })
        );
        let zero = BulkReadRequest {
            column: 0,
            keys: vec![],
        };
        assert!(zero.encode(&mut BytesMut::new()).is_err());
        let mut two = BytesMut::new();
        two.put_u32_le(2);
        two.put_u32_le(0);
        two.put_slice(&[1; 32]);
        assert!(matches!(
            BulkReadRequest::decode(&two),
            Err(WireError::Truncated { .. })
        ));
    }

    #[test]
    fn error_items_carry_short_messages_only() {
        let item = BulkItem {
            key: [1; 32],
            status: Status::NotFound,
            data: vec![b'x'; 5000].into(),
        };
        assert!(matches!(
            item.encode(&mut BytesMut::new()),
            Err(WireError::LimitExceeded { .. })
        ));
        let mut buf = BytesMut::new();
        buf.put_slice(&[1; 32]);
        buf.put_u32_le(1);
        buf.put_u32_le(5000);
        let err = BulkItem::decode(&buf.freeze());
        assert!(
            matches!(err, Err(WireError::LimitExceeded { .. })),
            "{err:?}"
        );
    }
}
