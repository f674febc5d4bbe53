//! Writes into a value: append, and write at an offset (growing the value with zeros if
//! needed). When the value's newest record is in the active blob, the new record is a
//! **patch** (`docs/FORMAT.md` §6.7): it stores only the frames the write changes and keeps
//! the others where they already are, so appending to a large value writes the appended
//! bytes, the frame they start in, and the frame table — not the value. Otherwise (the value
//! is in a sealed blob, or the write changes every frame) the whole new value is written once,
//! in the active blob, where the next writes can patch it.
//!
//! The new record is built without the writer lock and appended only if the value's newest
//! record is still the one it was built from (and, for a patch, the active blob is still
//! the one that record is in); otherwise it is built again.

use crate::config::{Range, WriteOptions};
use crate::engine::{now_ns, Engine, Inner};
use crate::error::{Error, Result};
use crate::format::crc_algebra;
use crate::format::frames::{KeptFrame, RecordEncoder, RecordSpec};
use crate::format::record::{
    FrameTable, RecordHeader, FRAME_COMPRESSED_BIT, MAX_VALUE_LEN, RECORD_HEADER_LEN,
};
use crate::index::Loc;
use crate::key::Key;

/// Times a write into a value is built again after racing another write of the value.
const ATTEMPTS: usize = 8;

/// Where a write into a value starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteAt {
    /// At the value's end (an append; an absent value is empty).
    End,
    /// At this byte offset; the value grows (with zeros up to it) if it is shorter.
    Offset(u64),
}

/// A record built for a write into a value.
struct Planned {
    record: Vec<u8>,
    value_len: u64,
    /// For a patch, the blob it must be appended to (the one its kept frames are in).
    patch_of: Option<u32>,
}

/// The value a write starts from: where its newest record is, and that record's header.
type Base = Option<(Loc, RecordHeader)>;

impl Engine {
    /// Appends `data` to the value of (key, column) (an absent value is empty); returns the
    /// value's new length.
    pub fn append_column(
        &self,
        key: &Key,
        column: u16,
        data: &[u8],
        opts: WriteOptions,
    ) -> Result<u64> {
        self.write_into(key, column, WriteAt::End, data, opts)
    }

    /// Writes `data` at `offset` inside the value of (key, column), growing it (with zeros
    /// up to `offset`) if it is shorter; returns the value's new length.
    pub fn write_at_column(
        &self,
        key: &Key,
        column: u16,
        offset: u64,
        data: &[u8],
        opts: WriteOptions,
    ) -> Result<u64> {
        self.write_into(key, column, WriteAt::Offset(offset), data, opts)
    }

    /// Builds the new record from the value's newest one and appends it if that is still the
    /// newest; otherwise builds it again.
    pub fn write_into(
        &self,
        key: &Key,
        column: u16,
        at: WriteAt,
        data: &[u8],
        opts: WriteOptions,
    ) -> Result<u64> {
        let c = &self.inner().config;
        let spec = RecordSpec {
            key: *key,
            column,
            flags: 0,
            timestamp_ns: opts.timestamp_ns.unwrap_or_else(now_ns),
            frame_len: c.frame_len,
            compress: opts.compress.unwrap_or(c.compress),
        };
        for _ in 0..ATTEMPTS {
            self.inner().log.check_writable()?;
            let base = self.inner().locate(key, column)?;
            let planned = match self.inner().plan(base, at, data, spec) {
                Err(Error::BlobRetired(_) | Error::Contended) => continue,
                other => other?,
            };
            let expected = base.map(|(loc, _)| loc);
            let place = (expected, planned.patch_of);
            let appended = self
                .inner()
                .append_planned(key, column, &planned.record, place)?;
            if let Some(pos) = appended {
                self.wait(pos, opts.durability.unwrap_or(c.durability))?;
                return Ok(planned.value_len);
            }
        }
        Err(Error::Contended)
    }
}

impl Inner {
    /// The record for writing `data` at `at` into the value `base`: a patch when it can be
    /// one, else the whole new value.
    fn plan(&self, base: Base, at: WriteAt, data: &[u8], spec: RecordSpec) -> Result<Planned> {
        let base_len = base.map_or(0, |(_, h)| h.value_len);
        let offset = match at {
            WriteAt::End => base_len,
            WriteAt::Offset(o) => o,
        };
        let end = offset.saturating_add(data.len() as u64);
        if end > MAX_VALUE_LEN {
            return Err(Error::TooLarge {
                what: "value length",
                got: end,
                limit: MAX_VALUE_LEN,
            });
        }
        let value_len = base_len.max(end);
        if let Some((loc, h)) = base {
            if let Some(record) = self.plan_patch(loc, &h, (offset, data), value_len, spec)? {
                return Ok(Planned {
                    record,
                    value_len,
                    patch_of: Some(loc.blob),
                });
            }
        }
        let mut value = match base {
            Some((loc, _)) => self
                .read_record(&spec.key, loc, Range::all())?
                .ok_or(Error::Contended)?,
            None => Vec::new(),
        };
        value.resize(value_len as usize, 0);
        value[offset as usize..end as usize].copy_from_slice(data);
        let mut record = Vec::new();
        RecordEncoder::new().encode(spec, &value, &mut record)?;
        Ok(Planned {
            record,
            value_len,
            patch_of: None,
        })
    }

    /// A patch of the record at `loc` (header `h`) writing `data` at `offset`, if the record
    /// is in the active blob and the patch keeps at least a frame's worth of its bytes.
    fn plan_patch(
        &self,
        loc: Loc,
        h: &RecordHeader,
        (offset, data): (u64, &[u8]),
        value_len: u64,
        spec: RecordSpec,
    ) -> Result<Option<Vec<u8>>> {
        if loc.blob != self.log.writer().id() {
            return Ok(None);
        }
        let fl = u64::from(h.frame_len);
        let Some((first, last)) = changed_frames(h.value_len, value_len, offset, data.len(), fl)
        else {
            return Ok(None);
        };
        let frame_count = value_len.div_ceil(fl);
        // The frames kept are whole frames of the old value (before the change, or after it
        // when the value does not grow): a patch is worth it if they hold a frame or more.
        let changed_len = ((last + 1) * fl).min(value_len) - first * fl;
        if value_len - changed_len < fl {
            return Ok(None);
        }
        let table = self.frame_table(loc, h)?;
        let kept: Vec<Option<KeptFrame>> = (0..frame_count)
            .map(|i| {
                let e = table
                    .frames
                    .get(i as usize)
                    .filter(|_| i < first || i > last)?;
                let compressed = if e.compressed {
                    FRAME_COMPRESSED_BIT
                } else {
                    0
                };
                Some(KeptFrame {
                    word: e.stored_len | compressed,
                    crc: e.crc,
                    at: e.file_offset(h, u64::from(loc.offset)),
                })
            })
            .collect();
        // The changed frames, before and after the write.
        let span_start = first * fl;
        let old_end = ((last + 1) * fl).min(h.value_len);
        let mut old = match old_end.checked_sub(span_start) {
            Some(n) if n > 0 => self
                .read_record(&spec.key, loc, Range::new(span_start, n))?
                .ok_or(Error::Contended)?,
            _ => Vec::new(),
        };
        old.resize(changed_len as usize, 0);
        let mut new = old.clone();
        let from = (offset - span_start) as usize;
        new[from..from + data.len()].copy_from_slice(data);
        let value_crc =
            crc_algebra::patched(h.value_crc, h.value_len, value_len, span_start, &old, &new);
        let spec = RecordSpec {
            frame_len: h.frame_len,
            ..spec
        };
        let mut record = Vec::new();
        RecordEncoder::new().encode_patch(
            spec,
            (value_len, value_crc),
            &kept,
            (first as u32, &new),
            &mut record,
        )?;
        Ok(Some(record))
    }

    /// The decoded frame table of the record at `loc`.
    fn frame_table(&self, loc: Loc, h: &RecordHeader) -> Result<FrameTable> {
        let mut buf = Vec::new();
        let offset = u64::from(loc.offset);
        self.log.read_bytes(
            loc.blob,
            offset + RECORD_HEADER_LEN as u64,
            h.table_len(),
            &mut buf,
        )?;
        FrameTable::decode(h, &buf, loc.blob, offset)
    }
}

/// The frames `first..=last` a write of `len` bytes at `offset` changes in a value growing
/// from `old_len` to `new_len` bytes (frames of `fl` bytes): those it overlaps, and, when the
/// value grows, every frame from the one the old value ends in. `None` if nothing changes.
fn changed_frames(
    old_len: u64,
    new_len: u64,
    offset: u64,
    len: usize,
    fl: u64,
) -> Option<(u64, u64)> {
    let (start, end) = if new_len > old_len {
        (offset.min(old_len), new_len)
    } else {
        (offset, offset + len as u64)
    };
    (end > start).then(|| (start / fl, (end - 1) / fl))
}

#[cfg(test)]
mod tests {
    use super::changed_frames;

    #[test]
    fn changed_frames_cover_the_write_and_the_growth() {
        let fl = 4096;
        // Inside one frame, inside the value.
        assert_eq!(changed_frames(10_000, 10_000, 5000, 10, fl), Some((1, 1)));
        // Across a frame boundary.
        assert_eq!(changed_frames(10_000, 10_000, 4090, 10, fl), Some((0, 1)));
        // An append to a value ending mid-frame rewrites that frame.
        assert_eq!(changed_frames(5000, 5010, 5000, 10, fl), Some((1, 1)));
        // An append to a frame-aligned value starts a new frame.
        assert_eq!(changed_frames(8192, 8200, 8192, 8, fl), Some((2, 2)));
        // A write past the end: the zeros between count as changed.
        assert_eq!(changed_frames(5000, 20_000, 19_990, 10, fl), Some((1, 4)));
        // Nothing written, nothing grown.
        assert_eq!(changed_frames(5000, 5000, 100, 0, fl), None);
    }
}
