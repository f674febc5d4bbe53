//! The one walk over a record's frames, shared by every reader: the engine's reads (whole
//! records in memory, large records in bounded groups from the file, patches whose kept
//! frames live in earlier records), defragmentation's copy of a patch, recovery's check of
//! a record, and `blob-inspect`. Each frame's stored bytes are checked against its CRC
//! before anything else sees them; [`read_range`] also decompresses them and checks the
//! whole value's CRC when the whole value is read.

use crc32fast::Hasher;

use super::crc32;
use super::record::{FrameEntry, FrameTable, RecordHeader};
use crate::error::{Error, Result};

/// Receives a frame's index, table entry and checked stored bytes.
pub type VisitFrame<'v> = dyn FnMut(u32, FrameEntry, &[u8]) -> Result<()> + 'v;

/// Reads `len` stored bytes of a kept frame at file offset `at` into the buffer.
pub type ReadKept<'v> = dyn FnMut(u64, u32, &mut Vec<u8>) -> Result<()> + 'v;

/// Where a record's stored frames come from.
pub trait FrameSource {
    /// Largest span of the record's own frames asked for at once (a frame larger than it
    /// is asked for alone).
    fn group_limit(&self) -> u64;

    /// `len` stored bytes at `from` of the record's own frame area (relative to its start).
    fn own(&mut self, from: u64, len: u64) -> Result<&[u8]>;

    /// The stored bytes of frame `e`, which a patch keeps from an earlier record (at file
    /// offset `at`, `e.stored_len` bytes); `None` to pass such frames by (they are checked
    /// with their own record).
    fn kept(&mut self, e: FrameEntry, at: u64) -> Result<Option<&[u8]>>;
}

/// Where a record's stored frames live, for error reports.
#[derive(Debug, Clone, Copy)]
pub struct RecordPlace {
    pub blob: u32,
    pub offset: u64,
}

/// One record's frames, ready to walk.
#[derive(Clone, Copy)]
pub struct Frames<'a> {
    pub h: &'a RecordHeader,
    pub table: &'a FrameTable,
    pub place: RecordPlace,
}

impl Frames<'_> {
    /// Walks frames `first..=last` in order, giving `visit` each frame's index, table entry
    /// and stored bytes once they passed their CRC. Frames of the record's own are asked of
    /// `src` a group at a time.
    pub fn walk(
        &self,
        (first, last): (u32, u32),
        src: &mut dyn FrameSource,
        visit: &mut VisitFrame<'_>,
    ) -> Result<()> {
        let mut i = first;
        while i <= last {
            let e = self.frame(i)?;
            if let Some(at) = e.at {
                if let Some(bytes) = src.kept(e, at)? {
                    visit(i, e, self.checked(e, bytes, 0)?)?;
                }
                i += 1;
                continue;
            }
            let end = self.group_end(i, last, src.group_limit());
            let from = e.stored_offset;
            let last_e = self.frame(end)?;
            let to = last_e.stored_offset + u64::from(last_e.stored_len);
            let bytes = src.own(from, to - from)?;
            for j in i..=end {
                let f = self.frame(j)?;
                visit(j, f, self.checked(f, bytes, from)?)?;
            }
            i = end + 1;
        }
        Ok(())
    }

    /// Walks every frame (see [`walk`](Self::walk)).
    pub fn walk_all(&self, src: &mut dyn FrameSource, visit: &mut VisitFrame<'_>) -> Result<()> {
        match self.table.frames.len() {
            0 => Ok(()),
            n => self.walk((0, n as u32 - 1), src, visit),
        }
    }

    /// The last frame of the group of own frames that starts at `i`: own frames follow each
    /// other in the frame area while their span stays within `limit`.
    fn group_end(&self, i: u32, last: u32, limit: u64) -> u32 {
        let frames = &self.table.frames;
        let start = frames[i as usize].stored_offset;
        let mut j = i;
        while j < last {
            let Some(next) = frames.get(j as usize + 1).filter(|f| f.at.is_none()) else {
                break;
            };
            if next.stored_offset + u64::from(next.stored_len) - start > limit {
                break;
            }
            j += 1;
        }
        j
    }

    fn frame(&self, i: u32) -> Result<FrameEntry> {
        self.table
            .frames
            .get(i as usize)
            .copied()
            .ok_or_else(|| Error::Corrupt {
                what: "frame table",
                file: format!("blob {}", self.place.blob),
                offset: self.place.offset,
                reason: format!("no frame {i}"),
            })
    }

    /// Frame `e`'s stored bytes in `area` (which starts at frame-area offset `base`),
    /// checked against its CRC.
    fn checked<'b>(&self, e: FrameEntry, area: &'b [u8], base: u64) -> Result<&'b [u8]> {
        let from = if e.at.is_some() {
            0
        } else {
            (e.stored_offset - base) as usize
        };
        let to = from + e.stored_len as usize;
        let file_offset = e.file_offset(self.h, self.place.offset);
        let bytes = area.get(from..to).ok_or(Error::Truncated {
            what: "frame data",
            offset: file_offset,
            need: to as u64,
            have: area.len() as u64,
        })?;
        let got = crc32(bytes);
        if got != e.crc {
            return Err(Error::ChecksumMismatch {
                what: "frame data",
                blob: self.place.blob,
                offset: file_offset,
                expected: e.crc,
                got,
            });
        }
        Ok(bytes)
    }
}

/// Turns checked stored frames into logical bytes; keeps its buffer between frames.
#[derive(Default)]
pub struct FrameDecoder {
    plain: Vec<u8>,
    snappy: Option<snap::raw::Decoder>,
}

impl FrameDecoder {
    /// The logical bytes of frame `i` (entry `e`, stored bytes `stored`).
    pub fn logical<'b>(
        &'b mut self,
        f: &Frames<'_>,
        (i, e): (u32, FrameEntry),
        stored: &'b [u8],
    ) -> Result<&'b [u8]> {
        if !e.compressed {
            return Ok(stored);
        }
        let logical_len = f.h.frame_logical_len(i) as usize;
        let bad = |reason: String| Error::Corrupt {
            what: "compressed frame",
            file: format!("blob {}", f.place.blob),
            offset: f.place.offset,
            reason,
        };
        let n = snap::raw::decompress_len(stored).map_err(|e| bad(e.to_string()))?;
        if n != logical_len {
            return Err(bad(format!(
                "decompresses to {n} bytes, expected {logical_len}"
            )));
        }
        self.plain.resize(logical_len, 0);
        self.snappy
            .get_or_insert_with(snap::raw::Decoder::new)
            .decompress(stored, &mut self.plain)
            .map_err(|e| bad(e.to_string()))?;
        Ok(&self.plain)
    }
}

/// Frames `first..=last` that hold logical bytes `offset..offset+len` (`len > 0`).
pub fn frames_for_range(h: &RecordHeader, offset: u64, len: u64) -> (u32, u32) {
    let fl = u64::from(h.frame_len);
    ((offset / fl) as u32, ((offset + len - 1) / fl) as u32)
}

/// Gives `sink` the logical bytes `offset..offset+len` of the record, frame by frame, each
/// frame checked before it is decoded. A read of the whole value also checks the CRC of
/// the logical value — end to end, past decompression — once the last bytes were given.
pub fn read_range(
    f: &Frames<'_>,
    (offset, len): (u64, u64),
    src: &mut dyn FrameSource,
    decoder: &mut FrameDecoder,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let whole = offset == 0 && len == f.h.value_len;
    // One raw frame is the whole value: its CRC, checked over the same bytes, must be the
    // value CRC, with no second pass over the data.
    let single_raw = f.table.frames.len() == 1 && !f.table.frames[0].compressed;
    let mut value = (whole && !single_raw).then(Hasher::new);
    if len > 0 {
        let fl = u64::from(f.h.frame_len);
        let mut each = |i: u32, e: FrameEntry, stored: &[u8]| {
            let logical = decoder.logical(f, (i, e), stored)?;
            let frame_start = u64::from(i) * fl;
            let from = offset.saturating_sub(frame_start) as usize;
            let to = ((offset + len - frame_start) as usize).min(logical.len());
            let part = logical.get(from..to).unwrap_or(&[]);
            // Hashing the bytes again costs less than combining frame CRCs: `crc32fast`'s
            // combine is a GF(2) matrix product per frame.
            if let Some(v) = value.as_mut() {
                v.update(part);
            }
            sink(part)
        };
        f.walk(frames_for_range(f.h, offset, len), src, &mut each)?;
    }
    let got = match value {
        Some(v) => v.finalize(),
        None if whole => f.table.frames[0].crc,
        None => return Ok(()),
    };
    if got != f.h.value_crc {
        return Err(Error::ChecksumMismatch {
            what: "value",
            blob: f.place.blob,
            offset: f.place.offset,
            expected: f.h.value_crc,
            got,
        });
    }
    Ok(())
}

/// A record held whole in memory (`rec` from its header on); kept frames are passed by,
/// or read with `kept` when given.
pub struct InRecord<'a> {
    pub rec: &'a [u8],
    pub h: &'a RecordHeader,
    /// Reads a kept frame's stored bytes into the buffer.
    pub kept: Option<&'a mut ReadKept<'a>>,
    pub buf: Vec<u8>,
}

impl<'a> InRecord<'a> {
    pub fn new(rec: &'a [u8], h: &'a RecordHeader) -> Self {
        InRecord {
            rec,
            h,
            kept: None,
            buf: Vec::new(),
        }
    }
}

impl FrameSource for InRecord<'_> {
    fn group_limit(&self) -> u64 {
        u64::MAX
    }

    fn own(&mut self, from: u64, len: u64) -> Result<&[u8]> {
        let area = super::record::RECORD_HEADER_LEN as u64 + self.h.table_len() as u64;
        let start = area + from;
        let bytes = usize::try_from(start)
            .ok()
            .zip(usize::try_from(start + len).ok())
            .and_then(|(a, b)| self.rec.get(a..b));
        bytes.ok_or(Error::Truncated {
            what: "frame data",
            offset: start,
            need: start + len,
            have: self.rec.len() as u64,
        })
    }

    fn kept(&mut self, e: FrameEntry, at: u64) -> Result<Option<&[u8]>> {
        match self.kept.as_mut() {
            None => Ok(None),
            Some(read) => {
                read(at, e.stored_len, &mut self.buf)?;
                Ok(Some(&self.buf))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::frames::{RecordEncoder, RecordSpec};
    use crate::format::record::RECORD_HEADER_LEN;
    use crate::key::Key;

    fn value(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i / 3 % 241) as u8).collect()
    }

    fn encode(v: &[u8], compress: bool) -> Result<(Vec<u8>, RecordHeader, FrameTable)> {
        let spec = RecordSpec {
            key: Key([9; 32]),
            column: 0,
            flags: 0,
            timestamp_ns: 1,
            frame_len: 1000,
            compress,
        };
        let mut rec = Vec::new();
        let h = RecordEncoder::new().encode(spec, v, &mut rec)?;
        let table = FrameTable::decode(&h, &rec[RECORD_HEADER_LEN..], 0, 0)?;
        Ok((rec, h, table))
    }

    /// Own frames from memory, asked for in groups of at most `limit` bytes; records the
    /// groups asked for.
    struct Grouped<'a> {
        inner: InRecord<'a>,
        limit: u64,
        asked: Vec<(u64, u64)>,
    }

    impl FrameSource for Grouped<'_> {
        fn group_limit(&self) -> u64 {
            self.limit
        }
        fn own(&mut self, from: u64, len: u64) -> Result<&[u8]> {
            self.asked.push((from, len));
            self.inner.own(from, len)
        }
        fn kept(&mut self, e: FrameEntry, at: u64) -> Result<Option<&[u8]>> {
            self.inner.kept(e, at)
        }
    }

    /// The bytes read, and the groups of own frames asked for.
    type ReadBack = (Vec<u8>, Vec<(u64, u64)>);

    fn read(
        rec: &[u8],
        h: &RecordHeader,
        table: &FrameTable,
        range: (u64, u64),
        limit: u64,
    ) -> Result<ReadBack> {
        let f = Frames {
            h,
            table,
            place: RecordPlace { blob: 0, offset: 0 },
        };
        let mut src = Grouped {
            inner: InRecord::new(rec, h),
            limit,
            asked: Vec::new(),
        };
        let mut out = Vec::new();
        read_range(
            &f,
            range,
            &mut src,
            &mut FrameDecoder::default(),
            &mut |b| {
                out.extend_from_slice(b);
                Ok(())
            },
        )?;
        Ok((out, src.asked))
    }

    #[test]
    fn every_range_reads_back_in_any_grouping() -> Result<()> {
        let v = value(4500);
        for compress in [false, true] {
            let (rec, h, table) = encode(&v, compress)?;
            for limit in [1, 1500, u64::MAX] {
                for (off, len) in [(0, 4500), (0, 1), (999, 2), (1000, 1000), (4499, 1), (0, 0)] {
                    let (got, _) = read(&rec, &h, &table, (off, len), limit)?;
                    assert_eq!(got, &v[off as usize..(off + len) as usize]);
                }
            }
        }
        Ok(())
    }

    #[test]
    fn groups_hold_whole_frames_within_the_limit() -> Result<()> {
        let (rec, h, table) = encode(&value(4500), false)?;
        // Five raw frames of 1000, 1000, 1000, 1000, 500 bytes.
        let (_, asked) = read(&rec, &h, &table, (0, 4500), 2000)?;
        assert_eq!(asked, vec![(0, 2000), (2000, 2000), (4000, 500)]);
        // A frame larger than the limit is asked for alone.
        let (_, asked) = read(&rec, &h, &table, (0, 4500), 10)?;
        assert_eq!(asked.len(), 5);
        let (_, asked) = read(&rec, &h, &table, (0, 4500), u64::MAX)?;
        assert_eq!(asked, vec![(0, 4500)]);
        Ok(())
    }

    #[test]
    fn damage_is_caught_per_frame_and_for_the_whole_value() -> Result<()> {
        let (mut rec, h, table) = encode(&value(4500), false)?;
        let last = rec.len() - 1;
        rec[last] ^= 1;
        // The damaged frame is not read by a range that ends before it.
        assert!(read(&rec, &h, &table, (0, 4000), u64::MAX).is_ok());
        let err = read(&rec, &h, &table, (4000, 500), u64::MAX).err();
        assert!(matches!(
            err,
            Some(Error::ChecksumMismatch {
                what: "frame data",
                ..
            })
        ));
        rec[last] ^= 1;
        let mut wrong = h;
        wrong.value_crc ^= 1;
        let err = read(&rec, &wrong, &table, (0, 4500), u64::MAX).err();
        assert!(matches!(
            err,
            Some(Error::ChecksumMismatch { what: "value", .. })
        ));
        // A range read cannot judge the value CRC.
        assert!(read(&rec, &wrong, &table, (0, 4499), u64::MAX).is_ok());
        Ok(())
    }

    #[test]
    fn an_empty_value_still_has_its_crc_checked() -> Result<()> {
        let (rec, h, table) = encode(&[], false)?;
        assert!(read(&rec, &h, &table, (0, 0), u64::MAX)?.0.is_empty());
        let mut wrong = h;
        wrong.value_crc = 7;
        assert!(read(&rec, &wrong, &table, (0, 0), u64::MAX).is_err());
        Ok(())
    }

    #[test]
    fn a_short_area_is_truncation_not_a_panic() -> Result<()> {
        let (rec, h, table) = encode(&value(4500), true)?;
        let cut = &rec[..rec.len() - 10];
        let err = read(cut, &h, &table, (0, 4500), u64::MAX).err();
        assert!(matches!(err, Some(Error::Truncated { .. })));
        Ok(())
    }
}
