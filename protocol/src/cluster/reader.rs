//! Bounded reading of little-endian fields, shared by every decoder of the module: each
//! read checks what is left first and fails with [`ClusterError::Truncated`], and counts
//! are checked against what the remaining bytes could hold before anything is allocated.

use bytes::{Buf, BufMut};

use super::ClusterError;
use crate::ring::{RingId, RING_ID_LEN};

/// Most bytes in a node name or an address.
pub const MAX_TEXT_LEN: u8 = u8::MAX;

/// Fails unless `buf` holds at least `need` more bytes.
pub(crate) fn need<B: Buf>(buf: &B, need: usize, what: &'static str) -> Result<(), ClusterError> {
    let have = buf.remaining();
    if have < need {
        return Err(ClusterError::Truncated {
            what,
            need: as_u64(need),
            have: as_u64(have),
        });
    }
    Ok(())
}

pub(crate) fn u8_of<B: Buf>(buf: &mut B, what: &'static str) -> Result<u8, ClusterError> {
    need(buf, 1, what)?;
    Ok(buf.get_u8())
}

pub(crate) fn u16_of<B: Buf>(buf: &mut B, what: &'static str) -> Result<u16, ClusterError> {
    need(buf, 2, what)?;
    Ok(buf.get_u16_le())
}

pub(crate) fn u32_of<B: Buf>(buf: &mut B, what: &'static str) -> Result<u32, ClusterError> {
    need(buf, 4, what)?;
    Ok(buf.get_u32_le())
}

pub(crate) fn u64_of<B: Buf>(buf: &mut B, what: &'static str) -> Result<u64, ClusterError> {
    need(buf, 8, what)?;
    Ok(buf.get_u64_le())
}

pub(crate) fn id_of<B: Buf>(buf: &mut B, what: &'static str) -> Result<RingId, ClusterError> {
    need(buf, RING_ID_LEN, what)?;
    let mut id = RingId::MIN;
    buf.copy_to_slice(&mut id.0);
    Ok(id)
}

/// A bool stored as one byte, 0 or 1.
pub(crate) fn bool_of<B: Buf>(buf: &mut B, what: &'static str) -> Result<bool, ClusterError> {
    match u8_of(buf, what)? {
        0 => Ok(false),
        1 => Ok(true),
        got => Err(ClusterError::BadTag { what, got }),
    }
}

/// A text field: length u8 (1..=255), then that many bytes of UTF-8.
pub(crate) fn text_of<B: Buf>(buf: &mut B, what: &'static str) -> Result<String, ClusterError> {
    let len = usize::from(u8_of(buf, what)?);
    let bad = ClusterError::BadText {
        what,
        max: MAX_TEXT_LEN,
    };
    if len == 0 {
        return Err(bad);
    }
    need(buf, len, what)?;
    let mut bytes = vec![0u8; len];
    buf.copy_to_slice(&mut bytes);
    String::from_utf8(bytes).map_err(|_| bad)
}

/// A count (u32) of items each at least `min_item_len` bytes, checked against `max` and
/// against what the rest of `buf` could hold.
pub(crate) fn count_of<B: Buf>(
    buf: &mut B,
    max: u32,
    min_item_len: usize,
    what: &'static str,
) -> Result<usize, ClusterError> {
    let count = u32_of(buf, what)?;
    if count > max {
        return Err(ClusterError::TooMany {
            what,
            count: u64::from(count),
            max: u64::from(max),
        });
    }
    let count = usize::try_from(count).map_err(|_| ClusterError::TooMany {
        what,
        count: u64::from(count),
        max: u64::from(max),
    })?;
    need(buf, count.saturating_mul(min_item_len), what)?;
    Ok(count)
}

/// Fails unless `buf` (which may be a size-limited buffer from foca) has room for `need`
/// more bytes: writing past a limit would panic inside `bytes`.
pub(crate) fn room<B: BufMut>(
    buf: &B,
    need: usize,
    what: &'static str,
) -> Result<(), ClusterError> {
    let room = buf.remaining_mut();
    if room < need {
        return Err(ClusterError::TooLarge {
            what,
            len: as_u64(need),
            max: as_u64(room),
        });
    }
    Ok(())
}

/// Writes a text field; fails if `text` is empty or longer than [`MAX_TEXT_LEN`].
pub(crate) fn put_text<B: BufMut>(
    buf: &mut B,
    text: &str,
    what: &'static str,
) -> Result<(), ClusterError> {
    let len =
        u8::try_from(text.len())
            .ok()
            .filter(|len| *len > 0)
            .ok_or(ClusterError::BadText {
                what,
                max: MAX_TEXT_LEN,
            })?;
    room(buf, 1 + text.len(), what)?;
    buf.put_u8(len);
    buf.put_slice(text.as_bytes());
    Ok(())
}

/// Writes a count as u32; fails over `max`.
pub(crate) fn put_count<B: BufMut>(
    buf: &mut B,
    count: usize,
    max: u32,
    what: &'static str,
) -> Result<(), ClusterError> {
    let value = u32::try_from(count)
        .ok()
        .filter(|c| *c <= max)
        .ok_or(ClusterError::TooMany {
            what,
            count: as_u64(count),
            max: u64::from(max),
        })?;
    room(buf, 4, what)?;
    buf.put_u32_le(value);
    Ok(())
}

/// Fails if bytes are left after a complete item.
pub(crate) fn finish<B: Buf>(buf: &B, what: &'static str) -> Result<(), ClusterError> {
    match buf.remaining() {
        0 => Ok(()),
        extra => Err(ClusterError::TrailingBytes {
            what,
            extra: as_u64(extra),
        }),
    }
}

pub(crate) fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
