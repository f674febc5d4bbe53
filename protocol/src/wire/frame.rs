//! Framing: finding whole frames in a byte stream, and writing them.
//!
//! The reading side follows mini-redis — first [`check_frame`] on the buffered bytes, then
//! split one frame off — but, unlike it, rejects an oversized length from the header alone,
//! before a single payload byte is buffered.

use bytes::{Bytes, BytesMut};

use super::cursor::check_limit;
use super::error::WireError;
use super::header::{check_magic, Header, PAYLOAD_LEN_OFFSET};
use super::limits::{HEADER_LEN, MAX_PAYLOAD_LEN};

/// One whole frame: a header whose magic and CRC were checked, and its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub header: Header,
    pub payload: Bytes,
}

impl Frame {
    /// Appends the frame to `dst`, setting the header's payload length (and CRC) from the
    /// payload. Used to relay a frame unchanged apart from its header (e.g. hops + 1).
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        encode_frame(&self.header, dst, |buf| {
            buf.extend_from_slice(&self.payload);
            Ok(())
        })
    }
}

/// Looks at buffered bytes and says whether a whole frame is there.
///
/// `Ok(None)`: not yet (read more). `Ok(Some(n))`: the first `n` bytes are one frame.
/// `Err`: the stream is unusable ([`WireError::is_fatal`]): bad magic (checked from the
/// first byte on), bad header CRC, or a payload length over [`MAX_PAYLOAD_LEN`].
pub fn check_frame(buf: &[u8]) -> Result<Option<usize>, WireError> {
    Ok(check_header(buf)?.map(|(_, total)| total))
}

/// The length of the frame `buf` begins with, once its header is buffered and valid (magic,
/// CRC, payload length within [`MAX_PAYLOAD_LEN`]): a reader reserves room for all of it at
/// once, instead of growing its buffer by doubling (copying a large frame several times and
/// holding up to twice its size).
pub fn announced_frame_len(buf: &[u8]) -> Option<usize> {
    if buf.len() < HEADER_LEN {
        return None;
    }
    match check_header(buf) {
        Ok(Some((_, total))) => Some(total),
        Ok(None) => {
            let len = Header::decode(buf).ok()?.payload_len as usize;
            Some(HEADER_LEN + len)
        }
        Err(_) => None,
    }
}

/// [`check_frame`], also returning the decoded header.
fn check_header(buf: &[u8]) -> Result<Option<(Header, usize)>, WireError> {
    check_magic(buf)?;
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let header = Header::decode(buf)?;
    let len = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
    if len > MAX_PAYLOAD_LEN {
        return Err(WireError::FrameTooLarge {
            len: u64::from(header.payload_len),
            max: MAX_PAYLOAD_LEN as u64,
        });
    }
    let total = HEADER_LEN.saturating_add(len);
    Ok((buf.len() >= total).then_some((header, total)))
}

/// The payload length a buffered header announces, once at least the header's first
/// `PAYLOAD_LEN_OFFSET + 4` bytes are there (unchecked: use [`check_frame`] to trust it).
/// Lets a reader reserve buffer space for the rest of the frame.
pub fn peek_payload_len(buf: &[u8]) -> Option<u32> {
    let end = PAYLOAD_LEN_OFFSET.checked_add(4)?;
    let bytes: [u8; 4] = buf.get(PAYLOAD_LEN_OFFSET..end)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

/// Splits the first whole frame off `buf`, or returns `Ok(None)` (leaving `buf` untouched)
/// if it is not all there yet. Errors are those of [`check_frame`]; the header's field
/// values are not judged here (see [`Header::validate_request`] and the decoders), so a
/// node can still answer a frame it will reject.
pub fn decode_frame(buf: &mut BytesMut) -> Result<Option<Frame>, WireError> {
    let Some((header, total)) = check_header(buf)? else {
        return Ok(None);
    };
    let mut bytes = buf.split_to(total).freeze();
    let payload = bytes.split_off(HEADER_LEN);
    Ok(Some(Frame { header, payload }))
}

/// Appends one frame to `dst`: `header` (with `payload_len` set to what `body` wrote) then
/// the payload `body` appends. If `body` fails or writes more than [`MAX_PAYLOAD_LEN`]
/// bytes, `dst` is restored to its old length and the error returned.
pub fn encode_frame<F>(header: &Header, dst: &mut BytesMut, body: F) -> Result<(), WireError>
where
    F: FnOnce(&mut BytesMut) -> Result<(), WireError>,
{
    let start = dst.len();
    dst.extend_from_slice(&[0u8; HEADER_LEN]);
    let result = body(dst).and_then(|()| {
        let len = dst.len().saturating_sub(start).saturating_sub(HEADER_LEN);
        check_limit("frame payload", len, MAX_PAYLOAD_LEN)?;
        u32::try_from(len).map_err(|_| WireError::LimitExceeded {
            what: "frame payload",
            len: len as u64,
            max: MAX_PAYLOAD_LEN as u64,
        })
    });
    match result {
        Ok(payload_len) => {
            let bytes = Header {
                payload_len,
                ..*header
            }
            .to_bytes();
            if let Some(slot) = dst.get_mut(start..start.saturating_add(HEADER_LEN)) {
                slot.copy_from_slice(&bytes);
            }
            Ok(())
        }
        Err(e) => {
            dst.truncate(start);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::command::Command;
    use crate::wire::limits::MAX_FRAME_LEN;

    fn frame_bytes(payload: &[u8]) -> Result<BytesMut, WireError> {
        let header = Header::request(Command::Write, 42, [1; 32], 0);
        let mut buf = BytesMut::new();
        encode_frame(&header, &mut buf, |b| {
            b.extend_from_slice(payload);
            Ok(())
        })?;
        Ok(buf)
    }

    #[test]
    fn incomplete_frames_wait_and_whole_frames_split_off() -> Result<(), WireError> {
        let whole = frame_bytes(b"hello")?;
        for cut in 0..whole.len() {
            let part = whole.get(..cut).unwrap_or_default();
            assert_eq!(check_frame(part)?, None, "cut at {cut}");
            let mut buf = BytesMut::from(part);
            assert_eq!(decode_frame(&mut buf)?, None);
            assert_eq!(buf.len(), cut, "an incomplete frame is left in the buffer");
        }
        let mut buf = whole.clone();
        buf.extend_from_slice(b"RBW");
        let frame = decode_frame(&mut buf)?.ok_or(WireError::InvalidValue {
            what: "test: no frame",
            value: 0,
        })?;
        assert_eq!(frame.payload, Bytes::from_static(b"hello"));
        assert_eq!(frame.header.payload_len, 5);
        assert_eq!(frame.header.trans, 42);
        assert_eq!(
            buf,
            BytesMut::from(&b"RBW"[..]),
            "the next frame's start stays"
        );
        Ok(())
    }

    #[test]
    fn garbage_is_rejected_before_a_whole_header_arrives() {
        assert_eq!(
            check_frame(b"GET / HTTP/1.1"),
            Err(WireError::BadMagic { got: *b"GET " })
        );
        assert_eq!(
            check_frame(b"X"),
            Err(WireError::BadMagic {
                got: [b'X', 0, 0, 0]
            })
        );
    }

    #[test]
    fn bad_crc_is_fatal() -> Result<(), WireError> {
        let mut buf = frame_bytes(b"x")?;
        buf[70] ^= 1;
        let err = decode_frame(&mut buf).err();
        assert!(
            matches!(err, Some(WireError::HeaderChecksum { .. })),
            "{err:?}"
        );
        assert!(err.is_some_and(|e| e.is_fatal()));
        Ok(())
    }

    #[test]
    fn oversized_length_is_rejected_from_the_header_alone() {
        let mut h = Header::request(Command::Write, 1, [0; 32], 0);
        h.payload_len = u32::try_from(MAX_PAYLOAD_LEN + 1).unwrap_or(u32::MAX);
        let bytes = h.to_bytes();
        assert_eq!(
            check_frame(&bytes),
            Err(WireError::FrameTooLarge {
                len: (MAX_PAYLOAD_LEN + 1) as u64,
                max: MAX_PAYLOAD_LEN as u64
            })
        );
        h.payload_len = u32::MAX;
        assert!(matches!(
            check_frame(&h.to_bytes()),
            Err(WireError::FrameTooLarge { .. })
        ));
        h.payload_len = MAX_PAYLOAD_LEN as u32;
        assert_eq!(
            check_frame(&h.to_bytes()),
            Ok(None),
            "the largest legal frame waits"
        );
        assert_eq!(
            peek_payload_len(&h.to_bytes()),
            Some(MAX_PAYLOAD_LEN as u32)
        );
        assert_eq!(MAX_FRAME_LEN, HEADER_LEN + MAX_PAYLOAD_LEN);
    }

    #[test]
    fn encoder_refuses_an_oversized_payload_and_leaves_dst_unchanged() {
        let header = Header::request(Command::Write, 1, [0; 32], 0);
        let mut buf = BytesMut::from(&b"keep"[..]);
        let err = encode_frame(&header, &mut buf, |b| {
            b.resize(b.len() + MAX_PAYLOAD_LEN + 1, 0);
            Ok(())
        });
        assert!(
            matches!(err, Err(WireError::LimitExceeded { .. })),
            "{err:?}"
        );
        assert_eq!(buf, BytesMut::from(&b"keep"[..]));
    }

    #[test]
    fn semantic_header_errors_still_yield_the_frame() -> Result<(), WireError> {
        let mut h = Header::request(Command::Unknown(77), 9, [0; 32], 0);
        h.version = 9;
        let mut buf = BytesMut::new();
        h.encode(&mut buf);
        let frame = decode_frame(&mut buf)?;
        let header = frame.map(|f| f.header);
        assert_eq!(header.map(|h| (h.trans, h.version)), Some((9, 9)));
        assert!(buf.is_empty());
        Ok(())
    }
}
