//! ITERATE request and reply-part payloads.

use bytes::{BufMut, BytesMut};

use super::meta::{ValueMeta, META_LEN};
use crate::wire::cursor::{check_limit, Reader};
use crate::wire::error::WireError;
use crate::wire::limits::{KEY_LEN, MAX_ITERATE_LIMIT, MAX_REPLY_PART};
use crate::wire::KeyId;

/// Bytes of an encoded [`IterateRequest`].
pub const ITERATE_REQUEST_LEN: usize = 104;
/// Bytes of one entry in a reply part: key + [`ValueMeta`].
pub const ITERATE_ENTRY_LEN: usize = KEY_LEN + META_LEN;
/// Bytes of the trailer that ends the last part.
pub const ITERATE_TRAILER_LEN: usize = 36;
/// Most entries one reply part can hold within [`MAX_REPLY_PART`].
pub const MAX_ENTRIES_PER_PART: usize =
    (MAX_REPLY_PART - 4 - ITERATE_TRAILER_LEN) / ITERATE_ENTRY_LEN;

/// A place in listing order: entries come by key (unsigned byte order), then by column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct IterPosition {
    pub key: KeyId,
    pub column: u16,
}

/// List the values (one entry per live column) of keys in `from..=to`, after `after` if
/// given. Layout (104 bytes): from [32], to [32], after key [32] (zero when absent),
/// has_after u8, reserved u8, after column u16 (zero when absent), limit u32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IterateRequest {
    pub from: KeyId,
    /// Inclusive. If `from > to` the range is empty.
    pub to: KeyId,
    /// Resume: only entries strictly after this (key, column); column 0 still lists the
    /// key's other columns.
    pub after: Option<IterPosition>,
    /// Most entries to return; 0 means `DEFAULT_ITERATE_LIMIT`; at most
    /// [`MAX_ITERATE_LIMIT`].
    pub limit: u32,
}

impl IterateRequest {
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        check_limit(
            "iterate limit",
            self.limit as usize,
            MAX_ITERATE_LIMIT as usize,
        )?;
        dst.put_slice(&self.from);
        dst.put_slice(&self.to);
        let after = self.after.unwrap_or_default();
        dst.put_slice(&after.key);
        dst.put_u8(u8::from(self.after.is_some()));
        dst.put_u8(0);
        dst.put_u16_le(after.column);
        dst.put_u32_le(self.limit);
        Ok(())
    }

    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "ITERATE request");
        let from = r.key()?;
        let to = r.key()?;
        let after_key = r.key()?;
        let has_after = r.u8()?;
        r.reserved(1, "ITERATE reserved")?;
        let after = IterPosition {
            key: after_key,
            column: r.u16()?,
        };
        let limit = r.u32()?;
        r.finish()?;
        check_limit("iterate limit", limit as usize, MAX_ITERATE_LIMIT as usize)?;
        let after = match has_after {
            0 if after == IterPosition::default() => None,
            0 => {
                return Err(WireError::InvalidValue {
                    what: "ITERATE after key or column without has_after",
                    value: 0,
                })
            }
            1 => Some(after),
            v => {
                return Err(WireError::InvalidValue {
                    what: "ITERATE has_after",
                    value: v.into(),
                })
            }
        };
        Ok(IterateRequest {
            from,
            to,
            after,
            limit,
        })
    }
}

/// One listed value: a key and one of its columns (`meta.column`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IterEntry {
    pub key: KeyId,
    pub meta: ValueMeta,
}

impl IterEntry {
    /// Where this entry comes in listing order.
    pub fn position(&self) -> IterPosition {
        IterPosition {
            key: self.key,
            column: self.meta.column,
        }
    }
}

/// How an iteration ended; carried by the last reply part only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IterateEnd {
    /// Every entry of the range was listed.
    Done,
    /// The limit was reached; send the same request with `after` = this for more.
    ResumeAfter(IterPosition),
}

/// One ITERATE reply frame. Layout: count u32, entries (key [32] + meta [48]) × count; the
/// last part (MORE clear) then ends with has_more u8, reserved u8, resume column u16,
/// resume key [32] (column and key zero when has_more is 0). Parts with MORE set have no
/// trailer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IteratePart {
    pub entries: Vec<IterEntry>,
    /// `Some` exactly on the last part.
    pub end: Option<IterateEnd>,
    /// Last part only (trailer flag bit 0 `MOVING`, version 3): keys of the range may still
    /// be on their way to the answering node from a range's previous owner.
    pub moving: bool,
}

/// Trailer flag: keys of the range may still be arriving (a hand-over).
pub const ITERATE_MOVING: u8 = 1;

impl IteratePart {
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        check_limit(
            "iterate part entries",
            self.entries.len(),
            MAX_ENTRIES_PER_PART,
        )?;
        dst.put_u32_le(self.entries.len() as u32);
        for e in &self.entries {
            dst.put_slice(&e.key);
            e.meta.encode(dst);
        }
        match self.end {
            None => {}
            Some(IterateEnd::Done) => {
                dst.put_slice(&[0, u8::from(self.moving)]);
                dst.put_slice(&[0; ITERATE_TRAILER_LEN - 2]);
            }
            Some(IterateEnd::ResumeAfter(at)) => {
                dst.put_slice(&[1, u8::from(self.moving)]);
                dst.put_u16_le(at.column);
                dst.put_slice(&at.key);
            }
        }
        Ok(())
    }

    /// Decodes a part; `last` is whether its frame had MORE clear.
    pub fn decode(payload: &[u8], last: bool) -> Result<Self, WireError> {
        check_limit("ITERATE reply part", payload.len(), MAX_REPLY_PART)?;
        let mut r = Reader::new(payload, "ITERATE reply part");
        let count = r.len_u32(MAX_ENTRIES_PER_PART)?;
        let need = count.saturating_mul(ITERATE_ENTRY_LEN);
        if need > r.remaining() {
            let have = r.remaining();
            return Err(WireError::Truncated {
                what: "ITERATE reply entries",
                need,
                have,
            });
        }
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            entries.push(IterEntry {
                key: r.key()?,
                meta: ValueMeta::read(&mut r)?,
            });
        }
        let (end, moving) = if last {
            let (end, moving) = read_trailer(&mut r)?;
            (Some(end), moving)
        } else {
            (None, false)
        };
        r.finish()?;
        Ok(IteratePart {
            entries,
            end,
            moving,
        })
    }
}

fn read_trailer(r: &mut Reader<'_>) -> Result<(IterateEnd, bool), WireError> {
    let has_more = r.u8()?;
    let flags = r.u8()?;
    if flags & !ITERATE_MOVING != 0 {
        return Err(WireError::InvalidValue {
            what: "ITERATE trailer flags",
            value: flags.into(),
        });
    }
    let moving = flags & ITERATE_MOVING != 0;
    let column = r.u16()?;
    let at = IterPosition {
        key: r.key()?,
        column,
    };
    match has_more {
        0 if at == IterPosition::default() => Ok((IterateEnd::Done, moving)),
        1 => Ok((IterateEnd::ResumeAfter(at), moving)),
        v => Err(WireError::InvalidValue {
            what: "ITERATE trailer has_more",
            value: v.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trailer_says_when_keys_may_still_be_arriving() -> Result<(), WireError> {
        for (end, moving) in [
            (IterateEnd::Done, true),
            (IterateEnd::Done, false),
            (
                IterateEnd::ResumeAfter(IterPosition {
                    key: [9; 32],
                    column: 1,
                }),
                true,
            ),
        ] {
            let part = IteratePart {
                entries: vec![],
                end: Some(end),
                moving,
            };
            let mut buf = BytesMut::new();
            part.encode(&mut buf)?;
            assert_eq!(buf[5], u8::from(moving), "trailer byte 1");
            assert_eq!(IteratePart::decode(&buf, true)?, part);
        }
        let mut bad = BytesMut::new();
        IteratePart {
            entries: vec![],
            end: Some(IterateEnd::Done),
            moving: false,
        }
        .encode(&mut bad)?;
        bad[5] = 2;
        assert!(
            IteratePart::decode(&bad, true).is_err(),
            "unknown trailer flag"
        );
        Ok(())
    }

    #[test]
    fn request_limit_and_flags_are_checked() {
        let req = IterateRequest {
            from: [0; 32],
            to: [0xff; 32],
            after: None,
            limit: 0,
        };
        let mut buf = BytesMut::new();
        assert_eq!(req.encode(&mut buf), Ok(()));
        assert_eq!(buf.len(), ITERATE_REQUEST_LEN);
        let mut over = buf.clone();
        over[100..104].copy_from_slice(&(MAX_ITERATE_LIMIT + 1).to_le_bytes());
        assert!(matches!(
            IterateRequest::decode(&over),
            Err(WireError::LimitExceeded { .. })
        ));
        let mut after_without_flag = buf.clone();
        after_without_flag[64] = 1;
        assert!(IterateRequest::decode(&after_without_flag).is_err());
        let mut column_without_flag = buf.clone();
        column_without_flag[98] = 1;
        assert!(IterateRequest::decode(&column_without_flag).is_err());
        let mut reserved = buf.clone();
        reserved[97] = 1;
        assert!(IterateRequest::decode(&reserved).is_err());
        buf[96] = 2;
        assert!(IterateRequest::decode(&buf).is_err());
    }

    #[test]
    fn after_column_sits_at_98_and_resume_column_at_trailer_2() -> Result<(), WireError> {
        let at = IterPosition {
            key: [9; 32],
            column: 0x0102,
        };
        let req = IterateRequest {
            from: [0; 32],
            to: [0xff; 32],
            after: Some(at),
            limit: 7,
        };
        let mut buf = BytesMut::new();
        req.encode(&mut buf)?;
        assert_eq!(&buf[96..100], &[1, 0, 0x02, 0x01]);
        assert_eq!(IterateRequest::decode(&buf)?, req);
        let part = IteratePart {
            entries: vec![],
            end: Some(IterateEnd::ResumeAfter(at)),
            moving: false,
        };
        let mut buf = BytesMut::new();
        part.encode(&mut buf)?;
        assert_eq!(&buf[4..8], &[1, 0, 0x02, 0x01]);
        assert_eq!(IteratePart::decode(&buf, true)?, part);
        buf[6] = 0;
        buf[7] = 0;
        buf[4] = 0;
        assert!(
            IteratePart::decode(&buf, true).is_err(),
            "a resume key without has_more"
        );
        Ok(())
    }

    #[test]
    fn count_beyond_payload_or_limit_is_rejected_before_allocating() {
        let mut buf = BytesMut::new();
        buf.put_u32_le(3);
        buf.put_slice(&[0; ITERATE_ENTRY_LEN]);
        let err = IteratePart::decode(&buf, false);
        assert!(matches!(err, Err(WireError::Truncated { .. })), "{err:?}");
        let mut huge = BytesMut::new();
        huge.put_u32_le(u32::MAX);
        let err = IteratePart::decode(&huge, false);
        assert!(
            matches!(err, Err(WireError::LimitExceeded { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn only_the_last_part_has_a_trailer() -> Result<(), WireError> {
        let part = IteratePart {
            entries: vec![],
            end: Some(IterateEnd::ResumeAfter(IterPosition {
                key: [7; 32],
                column: 3,
            })),
            moving: false,
        };
        let mut buf = BytesMut::new();
        part.encode(&mut buf)?;
        assert_eq!(buf.len(), 4 + ITERATE_TRAILER_LEN);
        assert_eq!(IteratePart::decode(&buf, true)?, part);
        assert!(matches!(
            IteratePart::decode(&buf, false),
            Err(WireError::TrailingBytes { .. })
        ));
        assert!(matches!(
            IteratePart::decode(&buf[..4], true),
            Err(WireError::Truncated { .. })
        ));
        Ok(())
    }
}
