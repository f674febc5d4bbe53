//! Value metadata: the LOOKUP reply, and the body of every ITERATE entry.

use bytes::{BufMut, BytesMut};

use crate::wire::cursor::Reader;
use crate::wire::error::WireError;

/// Bytes of an encoded [`ValueMeta`].
pub const META_LEN: usize = 48;

/// What a node reports about one stored value. Layout (48 bytes): size u64,
/// stored_size u64, timestamp_ns u64, offset u64, checksum u32, blob u32, flags u16,
/// column u16, reserved u32 (0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ValueMeta {
    /// Logical value size in bytes.
    pub size: u64,
    /// Bytes the value takes in the backend (headers and compression included).
    pub stored_size: u64,
    /// Write time, nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// Byte offset of the record inside its blob file (0 for backends without blobs).
    pub offset: u64,
    /// CRC-32 (ISO-HDLC) of the whole logical value.
    pub checksum: u32,
    /// Blob file id (0 for backends without blobs).
    pub blob: u32,
    /// Record flags as the backend stores them.
    pub flags: u16,
    /// Column the metadata describes.
    pub column: u16,
}

impl ValueMeta {
    /// Appends the 48 bytes.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u64_le(self.size);
        dst.put_u64_le(self.stored_size);
        dst.put_u64_le(self.timestamp_ns);
        dst.put_u64_le(self.offset);
        dst.put_u32_le(self.checksum);
        dst.put_u32_le(self.blob);
        dst.put_u16_le(self.flags);
        dst.put_u16_le(self.column);
        dst.put_u32_le(0);
    }

    /// Reads the next 48 bytes of `r`.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let meta = ValueMeta {
            size: r.u64()?,
            stored_size: r.u64()?,
            timestamp_ns: r.u64()?,
            offset: r.u64()?,
            checksum: r.u32()?,
            blob: r.u32()?,
            flags: r.u16()?,
            column: r.u16()?,
        };
        r.reserved(4, "value meta reserved")?;
        Ok(meta)
    }

    /// Decodes a LOOKUP reply payload (exactly 48 bytes).
    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "LOOKUP reply");
        let meta = Self::read(&mut r)?;
        r.finish()?;
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_48_bytes_and_reserved_must_be_zero() {
        let meta = ValueMeta {
            size: 1,
            column: 2,
            ..ValueMeta::default()
        };
        let mut buf = BytesMut::new();
        meta.encode(&mut buf);
        assert_eq!(buf.len(), META_LEN);
        assert_eq!(ValueMeta::decode(&buf), Ok(meta));
        assert_eq!(buf.get(42), Some(&2), "column at offset 42");
        buf[44] = 1;
        assert!(matches!(
            ValueMeta::decode(&buf),
            Err(WireError::InvalidValue { .. })
        ));
        let short = buf.get(..47).unwrap_or_default();
        assert!(matches!(
            ValueMeta::decode(short),
            Err(WireError::Truncated { .. })
        ));
    }
}
