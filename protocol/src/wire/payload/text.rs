//! UTF-8 text payloads: error messages, and the JSON documents of STAT and ROUTE_LIST.

use bytes::{BufMut, BytesMut};

use crate::wire::cursor::check_limit;
use crate::wire::error::WireError;
use crate::wire::limits::{MAX_MESSAGE_LEN, MAX_PAYLOAD_LEN};

/// The longest prefix of `msg` that fits `max` bytes without splitting a character.
pub fn truncate_utf8(msg: &str, max: usize) -> &str {
    if msg.len() <= max {
        return msg;
    }
    let mut end = max;
    while !msg.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    msg.get(..end).unwrap_or_default()
}

/// Appends an error message, cut to [`MAX_MESSAGE_LEN`] bytes on a character boundary
/// (an error reply must never fail to encode).
pub fn encode_message(msg: &str, dst: &mut BytesMut) {
    dst.put_slice(truncate_utf8(msg, MAX_MESSAGE_LEN).as_bytes());
}

/// Decodes an error message: UTF-8, at most [`MAX_MESSAGE_LEN`] bytes.
pub fn decode_message(payload: &[u8]) -> Result<String, WireError> {
    decode_text(payload, "error message", MAX_MESSAGE_LEN)
}

/// Appends a JSON document (STAT, ROUTE_LIST replies); the codec checks only its size.
pub fn encode_json(json: &str, dst: &mut BytesMut) -> Result<(), WireError> {
    check_limit("JSON reply", json.len(), MAX_PAYLOAD_LEN)?;
    dst.put_slice(json.as_bytes());
    Ok(())
}

/// Decodes a JSON document as text; parsing it is the caller's business.
pub fn decode_json(payload: &[u8]) -> Result<String, WireError> {
    decode_text(payload, "JSON reply", MAX_PAYLOAD_LEN)
}

fn decode_text(payload: &[u8], what: &'static str, max: usize) -> Result<String, WireError> {
    check_limit(what, payload.len(), max)?;
    std::str::from_utf8(payload)
        .map(str::to_owned)
        .map_err(|_| WireError::InvalidUtf8 { what })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() -> Result<(), WireError> {
        let msg = "é".repeat(MAX_MESSAGE_LEN); // 2 bytes each
        let mut buf = BytesMut::new();
        encode_message(&msg, &mut buf);
        assert_eq!(buf.len(), MAX_MESSAGE_LEN);
        assert_eq!(decode_message(&buf)?, "é".repeat(MAX_MESSAGE_LEN / 2));
        assert_eq!(truncate_utf8("aé", 2), "a");
        Ok(())
    }

    #[test]
    fn bad_utf8_and_oversized_messages_are_rejected() {
        assert_eq!(
            decode_message(&[0xff, 0xfe]),
            Err(WireError::InvalidUtf8 {
                what: "error message"
            })
        );
        let long = vec![b'a'; MAX_MESSAGE_LEN + 1];
        assert!(matches!(
            decode_message(&long),
            Err(WireError::LimitExceeded { .. })
        ));
    }
}
