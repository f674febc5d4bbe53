//! A whole value read without copying it out of its record: a small record (one `pread`)
//! is read into a buffer the caller hands over, its checks made as for any read, and when
//! its frames are stored as they are — one after another, uncompressed, none kept from an
//! older record — the value is the run of the buffer they occupy, handed back in place. A
//! server sending whole values (the node's HTTP gateway) so skips a copy of every value
//! and, reusing its buffers, their allocation. Other small records are read as
//! [`read_stamped`](Inner::read_stamped) reads them, into a buffer of their own; larger
//! records, and values over the caller's bound, are not read (the caller reads them another
//! way).

use std::ops::Range as Span;

use super::{stamped, walk_frames, WHOLE_READ_MAX};
use crate::config::Range;
use crate::engine::Inner;
use crate::error::Result;
use crate::format::frame_walk::InRecord;
use crate::index::{Entry, Loc};
use crate::key::Key;

/// A whole value: `buffer[at]`, with the version it came from.
#[derive(Debug)]
pub struct WholeRead {
    /// Holds the value (and, when it was read in place, its record's header and frame
    /// table before it).
    pub buffer: Vec<u8>,
    pub at: Span<usize>,
    pub timestamp_ns: u64,
    /// CRC-32 of the whole value (its record header's).
    pub value_crc: u32,
}

impl WholeRead {
    /// The value's bytes.
    pub fn value(&self) -> &[u8] {
        self.buffer.get(self.at.clone()).unwrap_or(&[])
    }

    /// A value read whole into a buffer of its own.
    pub fn from_stamped(s: super::Stamped) -> WholeRead {
        WholeRead {
            at: 0..s.data.len(),
            buffer: s.data,
            timestamp_ns: s.timestamp_ns,
            value_crc: s.value_crc,
        }
    }
}

/// What a whole read found: the value, or a record it does not read (see
/// [`Inner::read_whole_in`]).
enum Whole {
    Read(WholeRead),
    Skipped,
}

impl Inner {
    /// The whole value of (key, column), read into `buffer` when it can stay there (its
    /// memory reused when large enough; see the module's docs). `None` when its record is
    /// more than one `pread` reads (256 KiB) or the value longer than `max` bytes: nothing
    /// was read then (the record may even be another key's that shares the index tag), and
    /// the caller reads it another way.
    pub fn read_whole_in(
        &self,
        key: &Key,
        column: u16,
        buffer: Vec<u8>,
        max: u64,
    ) -> Result<Option<WholeRead>> {
        let mut buffer = buffer;
        let result = self.read_retrying(key, column, || {
            self.newest_with(key, column, |e| self.whole_entry(key, e, &mut buffer, max))
        });
        result.map(|whole| match whole {
            Whole::Read(w) => Some(w),
            Whole::Skipped => None,
        })
    }

    /// `None` if the record holds another key; `Some(None)` for a tombstone of this key.
    fn whole_entry(
        &self,
        key: &Key,
        e: Entry,
        buffer: &mut Vec<u8>,
        max: u64,
    ) -> Result<Option<Option<Whole>>> {
        if e.tombstone {
            return Ok((self.key_at(e.loc)? == *key).then_some(None));
        }
        if e.loc.len > WHOLE_READ_MAX {
            return Ok(Some(Some(Whole::Skipped)));
        }
        Ok(self.whole_small(key, e.loc, buffer, max)?.map(Some))
    }

    /// One `pread` of the record into `buffer`; the value left there if its frames lie in
    /// it one after another, else built apart.
    fn whole_small(
        &self,
        key: &Key,
        loc: Loc,
        buffer: &mut Vec<u8>,
        max: u64,
    ) -> Result<Option<Whole>> {
        let Some((rec, h, table)) = self.small_record(key, loc, buffer)? else {
            return Ok(None);
        };
        if h.value_len > max {
            return Ok(Some(Whole::Skipped));
        }
        let range = Range::all().resolve(h.value_len)?;
        let mut read_kept = |at: u64, len: u32, buf: &mut Vec<u8>| {
            self.log.read_bytes(loc.blob, at, len as usize, buf)
        };
        let mut src = InRecord::new(rec, &h);
        src.kept = Some(&mut read_kept);
        let mut gathered = Gathered {
            record: rec,
            run: None,
            apart: None,
        };
        walk_frames(loc, (&h, &table), range, &mut src, &mut |part| {
            gathered.add(part, range.1 as usize);
            Ok(())
        })?;
        let (timestamp_ns, value_crc) = (h.timestamp_ns, h.value_crc);
        Ok(Some(Whole::Read(match (gathered.apart, gathered.run) {
            (Some(data), _) => WholeRead::from_stamped(stamped(data, &h)),
            (None, run) => WholeRead {
                buffer: std::mem::take(buffer),
                at: run.unwrap_or(0..0),
                timestamp_ns,
                value_crc,
            },
        })))
    }
}

/// Where a value's parts went: a run of the record read (each part starting where the one
/// before ended), or, from the first part that does not (decompressed, or kept from an
/// older record), copies in a buffer of their own.
struct Gathered<'r> {
    record: &'r [u8],
    /// The value's place in the record, while every part lies there in order.
    run: Option<Span<usize>>,
    /// The value built apart.
    apart: Option<Vec<u8>>,
}

impl Gathered<'_> {
    /// Takes `part` (of a value of `len` bytes), placed by its address only.
    fn add(&mut self, part: &[u8], len: usize) {
        if part.is_empty() {
            return;
        }
        if let Some(data) = &mut self.apart {
            data.extend_from_slice(part);
            return;
        }
        match (&mut self.run, offset_in(self.record, part)) {
            (None, Some(start)) => self.run = Some(start..start + part.len()),
            (Some(run), Some(start)) if start == run.end => run.end += part.len(),
            (run, _) => {
                let mut data = Vec::with_capacity(len);
                if let Some(r) = run.take() {
                    data.extend_from_slice(self.record.get(r).unwrap_or(&[]));
                }
                data.extend_from_slice(part);
                self.apart = Some(data);
            }
        }
    }
}

/// Where `part` starts in `record`, if it lies wholly within it (by address: no byte is
/// read).
fn offset_in(record: &[u8], part: &[u8]) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(record.as_ptr() as usize)?;
    (start.checked_add(part.len())? <= record.len()).then_some(start)
}
