//! The read path: index candidates, key confirmed on disk, then only the frames a range needs.
//! Reads never take the writer lock unless the record is still in the write buffer.

use crate::config::Range;
use crate::engine::Inner;
use crate::error::{Error, Result};
use crate::format::frame_walk::{
    read_range, FrameDecoder, FrameSource, Frames, InRecord, RecordPlace,
};
use crate::format::record::{FrameEntry, FrameTable, RecordHeader, RECORD_HEADER_LEN};
use crate::index::{Entry, Loc};
use crate::key::Key;

mod whole;
pub use whole::WholeRead;

/// Stored bytes read at once when a large value is read piecewise (a larger frame is read
/// alone). Below the node's 4 MiB mmap threshold (`alloc_tuning`): with 8 MiB groups a
/// streamed 4 MiB piece took a fresh mapping for its group besides the one for its bytes,
/// faulted in and zeroed page by page; with 1 MiB groups a 64 MiB object streamed to the CLI
/// at 757–804 MB/s instead of 435–480.
const LARGE_READ_GROUP: u64 = 1 << 20;

/// Bytes read from one record, and which record: its version and whole value's length (a
/// reply streamed piece by piece checks each piece came from the same record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    pub data: Vec<u8>,
    pub timestamp_ns: u64,
    pub value_len: u64,
    /// CRC-32 of the whole value of the version read (its record header's), so a whole
    /// read is described without a lookup.
    pub value_crc: u32,
}

/// Records up to this size are read with one `pread`; larger ones piecewise.
const WHOLE_READ_MAX: u32 = 256 << 10;

thread_local! {
    /// Each reader thread reuses one record buffer instead of allocating per read.
    static READ_BUF: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
    /// The buffer the next read's result is to be built in ([`Inner::read_stamped_into`]).
    static OUT_BUF: std::cell::Cell<Option<Vec<u8>>> = const { std::cell::Cell::new(None) };
}

impl Inner {
    /// The live record of (key, column): location and decoded header.
    pub fn locate(&self, key: &Key, column: u16) -> Result<Option<(Loc, RecordHeader)>> {
        again_while_retired(|| self.locate_once(key, column))
    }

    /// The version of the remove that is the newest record of (key, column), if its newest
    /// record is a tombstone (read from the tombstone's header).
    pub fn tombstone_at(&self, key: &Key, column: u16) -> Result<Option<u64>> {
        again_while_retired(|| self.tombstone_at_once(key, column))
    }

    fn tombstone_at_once(&self, key: &Key, column: u16) -> Result<Option<u64>> {
        let Some(e) = self.find_newest(key, column)? else {
            return Ok(None);
        };
        if !e.tombstone {
            return Ok(None);
        }
        Ok(Some(self.header_of(key, column, e.loc)?.timestamp_ns))
    }

    /// The header of the record of (key, column) at `loc`, checked to name them.
    fn header_of(&self, key: &Key, column: u16, loc: Loc) -> Result<RecordHeader> {
        let mut buf = Vec::new();
        let offset = u64::from(loc.offset);
        self.log
            .read_bytes(loc.blob, offset, RECORD_HEADER_LEN, &mut buf)?;
        let h = RecordHeader::decode(&buf, loc.blob, offset)?;
        check_names(&h, key, column, loc)?;
        Ok(h)
    }

    fn locate_once(&self, key: &Key, column: u16) -> Result<Option<(Loc, RecordHeader)>> {
        let Some(e) = self.find_newest(key, column)? else {
            return Ok(None);
        };
        if e.tombstone {
            return Ok(None);
        }
        Ok(Some((e.loc, self.header_of(key, column, e.loc)?)))
    }

    /// After a read of (key, column) failed its checks: remembers its newest record as
    /// damaged — once a full check of that record confirms it, since the failure may have
    /// come from another key's record sharing its index slot — so a copy from another group
    /// may replace it.
    fn note_damage(&self, key: &Key, column: u16) {
        let Ok(Some(e)) = self.find_newest(key, column) else {
            return;
        };
        let entry = crate::format::index_file::IndexEntry {
            key: *key,
            offset: u64::from(e.loc.offset),
            record_len: e.loc.len,
            flags: 0,
            column,
        };
        let damaged = match self.verify_record(e.loc.blob, &entry, &mut Vec::new()) {
            Ok(intact) => !intact,
            Err(err) => err.is_corruption(),
        };
        if damaged && self.known_damage.note(e.loc) {
            tracing::error!(key = %key, column, blob = e.loc.blob, offset = e.loc.offset, "read found a damaged record (checksum failure); it is never served, and a copy from another group replaces it");
        }
    }

    /// Reads `range` of the value under (key, column).
    pub fn read_value(&self, key: &Key, column: u16, range: Range) -> Result<Vec<u8>> {
        self.read_stamped(key, column, range).map(|s| s.data)
    }

    /// [`read_stamped`](Self::read_stamped) with the result built in `out` (cleared first)
    /// rather than in a new buffer: a caller that reads large pieces over and over keeps
    /// their memory warm instead of having each one mapped and faulted in afresh.
    pub fn read_stamped_into(
        &self,
        key: &Key,
        column: u16,
        range: Range,
        out: Vec<u8>,
    ) -> Result<Stamped> {
        OUT_BUF.with(|c| c.set(Some(out)));
        let read = self.read_stamped(key, column, range);
        OUT_BUF.with(|c| c.set(None));
        read
    }

    /// Reads `range` of the value under (key, column), with the version it read.
    pub fn read_stamped(&self, key: &Key, column: u16, range: Range) -> Result<Stamped> {
        READ_BUF.with(|cell| {
            let mut buf = cell.take();
            let result = self.read_retrying(key, column, || {
                self.read_value_with(key, column, range, &mut buf)
            });
            // Keep the buffer for this thread's next read, unless it grew large.
            if buf.capacity() <= WHOLE_READ_MAX as usize {
                cell.replace(buf);
            }
            result
        })
    }

    /// `read` of (key, column), made again (up to three times) while defragmentation moved
    /// the record between the index lookup and the read (the index already points at its
    /// new place); damage found is counted and noted for repair.
    fn read_retrying<T>(
        &self,
        key: &Key,
        column: u16,
        read: impl FnMut() -> Result<T>,
    ) -> Result<T> {
        let result = again_while_retired(read);
        if matches!(&result, Err(e) if e.is_corruption()) {
            self.known_damage.count_failure();
            self.note_damage(key, column);
        }
        result
    }

    /// In-memory candidates are confirmed by the read itself (one `pread` for a small
    /// value): a record in memory is always the newest. Otherwise the sealed blobs answer —
    /// if the sealed set did not change since before memory was asked (see
    /// [`Inner::stable`]); if it did, the newest record is looked up again from one
    /// consistent view ([`Inner::find_newest`]). The record is read only then, so a long
    /// read is never redone because a seal happened meanwhile (a retired blob is retried by
    /// the caller).
    fn read_value_with(
        &self,
        key: &Key,
        column: u16,
        range: Range,
        buf: &mut Vec<u8>,
    ) -> Result<Stamped> {
        self.newest_with(key, column, |e| self.read_entry(key, e, range, buf))
    }

    /// The newest record of (key, column) as `read` reads an entry: `None` if the record
    /// holds another key, `Some(None)` for a tombstone of this key (see
    /// [`read_value_with`](Self::read_value_with)).
    fn newest_with<T>(
        &self,
        key: &Key,
        column: u16,
        mut read: impl FnMut(Entry) -> Result<Option<Option<T>>>,
    ) -> Result<T> {
        let generation = self.keys.generation();
        for e in self.keys.candidates(key, column) {
            if let Some(v) = read(e)? {
                return v.ok_or(Error::NotFound(*key));
            }
        }
        let mut newest = self.keys.find_sealed(key, column)?;
        if generation != self.keys.generation() {
            newest = self.find_newest(key, column)?;
        }
        let Some(e) = newest else {
            return Err(Error::NotFound(*key));
        };
        read(e)?
            .ok_or_else(|| misfiled(key, e.loc))?
            .ok_or(Error::NotFound(*key))
    }

    /// `None` if the record holds another key; `Some(None)` for a tombstone of this key.
    fn read_entry(
        &self,
        key: &Key,
        e: Entry,
        range: Range,
        buf: &mut Vec<u8>,
    ) -> Result<Option<Option<Stamped>>> {
        if e.tombstone {
            return Ok((self.key_at(e.loc)? == *key).then_some(None));
        }
        let found = if e.loc.len <= WHOLE_READ_MAX {
            self.read_small(key, e.loc, range, buf)?
        } else {
            self.read_large(key, e.loc, range, buf)?
        };
        Ok(found.map(Some))
    }

    /// One `pread` of the whole record; `None` if it holds another key.
    fn read_small(
        &self,
        key: &Key,
        loc: Loc,
        range: Range,
        rec: &mut Vec<u8>,
    ) -> Result<Option<Stamped>> {
        let Some((rec, h, table)) = self.small_record(key, loc, rec)? else {
            return Ok(None);
        };
        let range = range.resolve(h.value_len)?;
        let mut read_kept = |at: u64, len: u32, buf: &mut Vec<u8>| {
            self.log.read_bytes(loc.blob, at, len as usize, buf)
        };
        let mut src = InRecord::new(rec, &h);
        src.kept = Some(&mut read_kept);
        let data = self.read_frames(loc, &h, &table, range, &mut src)?;
        Ok(Some(stamped(data, &h)))
    }

    /// The record at `loc` read whole into `buf` with its header and frame table decoded
    /// (and so checked); `None` if it holds another key.
    fn small_record<'b>(
        &self,
        key: &Key,
        loc: Loc,
        buf: &'b mut Vec<u8>,
    ) -> Result<Option<(&'b [u8], RecordHeader, FrameTable)>> {
        let offset = u64::from(loc.offset);
        let rec = self
            .log
            .read_record(loc.blob, offset, loc.len as usize, buf)?;
        let h = RecordHeader::decode(rec, loc.blob, offset)?;
        if h.key != *key {
            return Ok(None);
        }
        let table = FrameTable::decode(&h, &rec[RECORD_HEADER_LEN..], loc.blob, offset)?;
        Ok(Some((rec, h, table)))
    }

    /// Header, frame table, then only the frames the range touches, a bounded group at a
    /// time: a large value is held once (the result), not twice.
    fn read_large(
        &self,
        key: &Key,
        loc: Loc,
        range: Range,
        buf: &mut Vec<u8>,
    ) -> Result<Option<Stamped>> {
        let offset = u64::from(loc.offset);
        self.log
            .read_bytes(loc.blob, offset, RECORD_HEADER_LEN, buf)?;
        let h = RecordHeader::decode(buf, loc.blob, offset)?;
        if h.key != *key {
            return Ok(None);
        }
        let range = range.resolve(h.value_len)?;
        if range.1 == 0 {
            return Ok(Some(stamped(Vec::new(), &h)));
        }
        let table_at = offset + RECORD_HEADER_LEN as u64;
        self.log
            .read_bytes(loc.blob, table_at, h.table_len(), buf)?;
        let table = FrameTable::decode(&h, buf, loc.blob, offset)?;
        let mut src = InBlob {
            log: &self.log,
            blob: loc.blob,
            area_at: table_at + h.table_len() as u64,
            buf: &mut *buf,
        };
        let out = self.read_frames(loc, &h, &table, range, &mut src)?;
        if buf.capacity() > LARGE_READ_GROUP as usize * 2 {
            *buf = Vec::new();
        }
        Ok(Some(stamped(out, &h)))
    }

    /// The logical bytes `range` of the record at `loc`, its frames from `src`.
    fn read_frames(
        &self,
        loc: Loc,
        h: &RecordHeader,
        table: &FrameTable,
        range: (u64, u64),
        src: &mut dyn FrameSource,
    ) -> Result<Vec<u8>> {
        let mut out = match OUT_BUF.with(|c| c.take()) {
            Some(mut given) => {
                given.clear();
                given.reserve(range.1 as usize);
                given
            }
            None => Vec::with_capacity(range.1 as usize),
        };
        walk_frames(loc, (h, table), range, src, &mut |b| {
            out.extend_from_slice(b);
            Ok(())
        })?;
        Ok(out)
    }

    /// `range` of the value in the record at `loc`, if the record holds `key` (a writer
    /// patching that record reads the frames it changes this way).
    pub(crate) fn read_record(&self, key: &Key, loc: Loc, range: Range) -> Result<Option<Vec<u8>>> {
        let mut buf = Vec::new();
        let found = if loc.len <= WHOLE_READ_MAX {
            self.read_small(key, loc, range, &mut buf)?
        } else {
            self.read_large(key, loc, range, &mut buf)?
        };
        Ok(found.map(|s| s.data))
    }
}

impl Inner {
    /// Whether record `e` of blob `id` is intact and holds its key: header, frame table,
    /// every frame's CRC and the value's CRC checked. A large record is read a bounded group
    /// of frames at a time, so checking a record of any size holds at most
    /// `LARGE_READ_GROUP` bytes (`buf`); a small one is read whole.
    pub(crate) fn verify_record(
        &self,
        id: u32,
        e: &crate::format::index_file::IndexEntry,
        buf: &mut Vec<u8>,
    ) -> Result<bool> {
        if u64::from(e.record_len) <= LARGE_READ_GROUP {
            return self.read_checked(id, e, buf);
        }
        let offset = e.offset;
        self.log.read_bytes(id, offset, RECORD_HEADER_LEN, buf)?;
        let h = RecordHeader::decode(buf, id, offset)?;
        if h.key != e.key {
            return Ok(false);
        }
        let table_at = offset + RECORD_HEADER_LEN as u64;
        self.log.read_bytes(id, table_at, h.table_len(), buf)?;
        let table = FrameTable::decode(&h, buf, id, offset)?;
        let frames = Frames {
            h: &h,
            table: &table,
            place: RecordPlace { blob: id, offset },
        };
        let mut src = InBlob {
            log: &self.log,
            blob: id,
            area_at: table_at + h.table_len() as u64,
            buf,
        };
        let mut decoder = FrameDecoder::default();
        read_range(
            &frames,
            (0, h.value_len),
            &mut src,
            &mut decoder,
            &mut |_| Ok(()),
        )?;
        if buf.capacity() > LARGE_READ_GROUP as usize * 2 {
            *buf = Vec::new();
        }
        Ok(true)
    }
}

/// The logical bytes `range` of the record at `loc`, its frames from `src`, handed to
/// `sink` part by part as each is checked.
fn walk_frames(
    loc: Loc,
    (h, table): (&RecordHeader, &FrameTable),
    range: (u64, u64),
    src: &mut dyn FrameSource,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let frames = Frames {
        h,
        table,
        place: RecordPlace {
            blob: loc.blob,
            offset: u64::from(loc.offset),
        },
    };
    read_range(&frames, range, src, &mut FrameDecoder::default(), sink)
}

fn stamped(data: Vec<u8>, h: &RecordHeader) -> Stamped {
    Stamped {
        data,
        timestamp_ns: h.timestamp_ns,
        value_len: h.value_len,
        value_crc: h.value_crc,
    }
}

/// A record's frames read from its blob file (or the write buffer), a bounded group of
/// frames at a time.
struct InBlob<'a> {
    log: &'a crate::log::Log,
    blob: u32,
    /// File offset of the record's frame area.
    area_at: u64,
    buf: &'a mut Vec<u8>,
}

impl FrameSource for InBlob<'_> {
    fn group_limit(&self) -> u64 {
        LARGE_READ_GROUP
    }

    fn own(&mut self, from: u64, len: u64) -> Result<&[u8]> {
        let at = self.area_at + from;
        self.log.read_bytes(self.blob, at, len as usize, self.buf)?;
        Ok(self.buf)
    }

    fn kept(&mut self, e: FrameEntry, at: u64) -> Result<Option<&[u8]>> {
        self.log
            .read_bytes(self.blob, at, e.stored_len as usize, self.buf)?;
        Ok(Some(self.buf))
    }
}

/// A sorted index listed a record that holds another key: the index is wrong, not the key.
fn misfiled(key: &Key, loc: Loc) -> Error {
    Error::Corrupt {
        what: "sorted index",
        file: crate::blob::sorted_name(loc.blob),
        offset: u64::from(loc.offset),
        reason: format!("lists a record that does not hold key {key}"),
    }
}

/// The header must name the key and column the index filed it under.
/// `f` made again (up to three times) while it fails because defragmentation retired the
/// blob it read between the index lookup and the read (the index already points at the
/// record's new place).
fn again_while_retired<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let mut result = f();
    for _ in 0..3 {
        if !matches!(result, Err(Error::BlobRetired(_))) {
            break;
        }
        result = f();
    }
    result
}

fn check_names(h: &RecordHeader, key: &Key, column: u16, loc: Loc) -> Result<()> {
    if h.key == *key && h.column == column {
        Ok(())
    } else {
        Err(misfiled(key, loc))
    }
}
