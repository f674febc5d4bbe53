//! Bounds-checked little-endian reading of payload fields. Every read returns
//! [`WireError::Truncated`] instead of panicking, and [`Reader::finish`] rejects trailing
//! bytes, so a payload decodes only if its length is exactly right.

use super::error::WireError;
use super::limits::KEY_LEN;
use super::KeyId;

/// Reads fields front to back from a payload.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Starts at the payload's first byte; `what` names the payload in errors.
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let truncated = WireError::Truncated {
            what: self.what,
            need: n,
            have: self.remaining(),
        };
        let end = self.pos.checked_add(n).ok_or(truncated.clone())?;
        let out = self.buf.get(self.pos..end).ok_or(truncated)?;
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    pub(crate) fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn key(&mut self) -> Result<KeyId, WireError> {
        self.array::<KEY_LEN>()
    }

    /// Reads `n` reserved bytes, which must all be zero; `field` names them in errors.
    pub(crate) fn reserved(&mut self, n: usize, field: &'static str) -> Result<(), WireError> {
        let bytes = self.take(n)?;
        match bytes.iter().position(|&b| b != 0) {
            None => Ok(()),
            Some(_) => Err(WireError::InvalidValue {
                what: field,
                value: first_u64(bytes),
            }),
        }
    }

    /// The next `n` bytes (callers holding the payload as `Bytes` turn this into a
    /// zero-copy `Bytes` with `slice_ref`).
    pub(crate) fn slice(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        self.take(n)
    }

    /// A `u32` length prefix, checked against `max` (as `LimitExceeded`) and against the
    /// bytes left (as `Truncated`) before anything is sliced.
    pub(crate) fn len_u32(&mut self, max: usize) -> Result<usize, WireError> {
        let len = self.u32()?;
        checked_len(u64::from(len), max, self.what)
    }

    /// A `u16` length prefix, checked against `max`.
    pub(crate) fn len_u16(&mut self, max: usize) -> Result<usize, WireError> {
        let len = self.u16()?;
        checked_len(u64::from(len), max, self.what)
    }

    /// The next `n` bytes as UTF-8 text.
    pub(crate) fn utf8(&mut self, n: usize) -> Result<String, WireError> {
        let what = self.what;
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| WireError::InvalidUtf8 { what })
    }

    /// Succeeds only if every byte was read.
    pub(crate) fn finish(self) -> Result<(), WireError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(WireError::TrailingBytes {
                what: self.what,
                extra,
            }),
        }
    }
}

fn checked_len(len: u64, max: usize, what: &'static str) -> Result<usize, WireError> {
    let max_u64 = u64::try_from(max).unwrap_or(u64::MAX);
    if len > max_u64 {
        return Err(WireError::LimitExceeded {
            what,
            len,
            max: max_u64,
        });
    }
    usize::try_from(len).map_err(|_| WireError::LimitExceeded {
        what,
        len,
        max: max_u64,
    })
}

/// Up to the first eight bytes as a little-endian number, for error reports.
fn first_u64(bytes: &[u8]) -> u64 {
    let mut out = [0u8; 8];
    for (dst, src) in out.iter_mut().zip(bytes) {
        *dst = *src;
    }
    u64::from_le_bytes(out)
}

/// Checks a length the encoder is about to write against its limit.
pub(crate) fn check_limit(what: &'static str, len: usize, max: usize) -> Result<(), WireError> {
    if len > max {
        return Err(WireError::LimitExceeded {
            what,
            len: u64::try_from(len).unwrap_or(u64::MAX),
            max: u64::try_from(max).unwrap_or(u64::MAX),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_fields_and_rejects_truncation() -> Result<(), WireError> {
        let buf = [1, 2, 0, 3, 0, 0, 0, 9];
        let mut r = Reader::new(&buf, "test");
        assert_eq!(r.u8()?, 1);
        assert_eq!(r.u16()?, 2);
        assert_eq!(r.u32()?, 3);
        let err = r.u16();
        assert_eq!(
            err,
            Err(WireError::Truncated {
                what: "test",
                need: 2,
                have: 1
            })
        );
        assert_eq!(r.remaining(), 1, "a failed read consumes nothing");
        assert_eq!(
            r.finish(),
            Err(WireError::TrailingBytes {
                what: "test",
                extra: 1
            })
        );
        Ok(())
    }

    #[test]
    fn length_prefix_over_limit_or_past_end_is_rejected() {
        let buf = [10, 0, 0, 0, 1, 2];
        let mut r = Reader::new(&buf, "data");
        assert_eq!(
            r.len_u32(4),
            Err(WireError::LimitExceeded {
                what: "data",
                len: 10,
                max: 4
            })
        );
        let mut r = Reader::new(&buf, "data");
        let n = r.len_u32(100);
        assert_eq!(n, Ok(10));
        assert_eq!(
            r.slice(10),
            Err(WireError::Truncated {
                what: "data",
                need: 10,
                have: 2
            })
        );
    }

    #[test]
    fn reserved_bytes_must_be_zero() {
        let buf = [0, 0, 7];
        assert_eq!(Reader::new(&buf, "p").reserved(2, "r"), Ok(()));
        assert_eq!(
            Reader::new(&buf, "p").reserved(3, "r"),
            Err(WireError::InvalidValue {
                what: "r",
                value: 0x07_0000
            })
        );
    }
}
