//! LOOKUP request payload; the reply is a [`ValueMeta`](super::ValueMeta).

use bytes::{BufMut, BytesMut};

use crate::wire::cursor::Reader;
use crate::wire::error::WireError;

/// Bytes of an encoded [`LookupRequest`] of a column other than 0.
pub const LOOKUP_COLUMN_LEN: usize = 8;

/// Describe one column of the header's key. Layout: empty for column 0 (the form nodes
/// spoke before columns), else 8 bytes: column u16 (≠ 0), flags u16 (0), reserved u32 (0) —
/// the same 8 bytes that end a READ request. Column 0 has only the empty form, so every
/// request has one encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LookupRequest {
    pub column: u16,
}

impl LookupRequest {
    pub fn encode(&self, dst: &mut BytesMut) {
        if self.column != 0 {
            dst.put_u16_le(self.column);
            dst.put_u16_le(0);
            dst.put_u32_le(0);
        }
    }

    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        if payload.is_empty() {
            return Ok(LookupRequest { column: 0 });
        }
        let mut r = Reader::new(payload, "LOOKUP request");
        let column = r.u16()?;
        r.reserved(2, "LOOKUP flags")?;
        r.reserved(4, "LOOKUP reserved")?;
        r.finish()?;
        if column == 0 {
            return Err(WireError::InvalidValue {
                what: "LOOKUP column 0 in the 8-byte form (send an empty payload)",
                value: 0,
            });
        }
        Ok(LookupRequest { column })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(column: u16) -> BytesMut {
        let mut buf = BytesMut::new();
        LookupRequest { column }.encode(&mut buf);
        buf
    }

    #[test]
    fn column_zero_is_the_empty_payload_and_others_take_eight_bytes() {
        assert!(encoded(0).is_empty());
        assert_eq!(LookupRequest::decode(&[]), Ok(LookupRequest { column: 0 }));
        let two = encoded(2);
        assert_eq!(&two[..], &[2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(LookupRequest::decode(&two), Ok(LookupRequest { column: 2 }));
        assert_eq!(
            LookupRequest::decode(&encoded(u16::MAX)),
            Ok(LookupRequest { column: u16::MAX })
        );
    }

    #[test]
    fn bad_sizes_flags_reserved_and_a_second_spelling_of_column_zero_are_rejected() {
        let two = encoded(2);
        for len in 1..LOOKUP_COLUMN_LEN {
            assert!(
                matches!(
                    LookupRequest::decode(&two[..len]),
                    Err(WireError::Truncated { .. })
                ),
                "{len} bytes"
            );
        }
        let mut long = two.clone();
        long.put_u8(0);
        assert!(matches!(
            LookupRequest::decode(&long),
            Err(WireError::TrailingBytes { .. })
        ));
        for (at, what) in [
            (2, "LOOKUP flags"),
            (4, "LOOKUP reserved"),
            (7, "LOOKUP reserved"),
        ] {
            let mut bad = two.clone();
            bad[at] = 1;
            assert!(
                matches!(LookupRequest::decode(&bad), Err(WireError::InvalidValue { what: w, .. }) if w == what),
                "byte {at}"
            );
        }
        assert!(matches!(
            LookupRequest::decode(&[0; 8]),
            Err(WireError::InvalidValue { .. })
        ));
    }
}
