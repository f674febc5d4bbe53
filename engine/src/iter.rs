//! Iteration over live values, blob by blob: the in-memory index's locations for blobs it
//! holds, sorted indexes' entries for sealed blobs; within a blob, in on-disk order. Each
//! record is yielded only if it is still the newest of its (key, column) when reached. A
//! record that was live when iteration began but has moved since (defragmentation copied it,
//! or a writer replaced it) is yielded at its new place, once: iteration never skips a value
//! that stayed live throughout.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::blob::Blob;
use crate::engine::{Inner, Meta};
use crate::error::Result;
use crate::format::record::{RecordHeader, RECORD_HEADER_LEN};
use crate::index::{Entry, Loc};
use crate::key::Key;
use crate::sealed::SealedBlob;

/// Where one blob's records come from.
enum Source {
    /// Locations the in-memory index held when iteration began.
    Memory(Vec<Loc>),
    /// A sealed blob's sorted index, read when iteration reaches it.
    Sorted(Arc<SealedBlob>),
}

/// Yields `(key, meta)` for every value that was live when iteration began and still is
/// (a key written again meanwhile shows its older or its newer value), each (key, column)
/// once. Keys may be limited to an inclusive range.
pub struct Iter {
    inner: Arc<Inner>,
    /// The blobs as they were when iteration began: a blob that defragmentation retires
    /// meanwhile stays readable through its still-open file.
    blobs: BTreeMap<u32, Arc<Blob>>,
    pending: VecDeque<Source>,
    locs: std::vec::IntoIter<Loc>,
    range: Option<(Key, Key)>,
    buf: Vec<u8>,
    /// The end of the log when iteration began: records at or past it are not in the
    /// snapshot, so iteration will not reach them by itself.
    frontier: (u32, u64),
    /// (key, column)s yielded at a place past the frontier.
    moved: HashSet<(Key, u16)>,
}

impl Iter {
    pub(crate) fn new(inner: Arc<Inner>, range: Option<(Key, Key)>) -> Self {
        // Memory first, then the sealed set: a seal in between moves keys from the first to
        // the second, so they show up in at least one (and the sealed copy wins).
        // The writer lock orders the frontier with the index: every record the index does
        // not list yet lies past it.
        let (locs, frontier) = {
            let a = inner.log.writer();
            (inner.keys.locations(), a.pos())
        };
        let sealed = inner.keys.sealed_blobs();
        let mut sources: BTreeMap<u32, Source> = BTreeMap::new();
        for b in sealed {
            sources.insert(b.id, Source::Sorted(b));
        }
        for loc in locs {
            let s = sources
                .entry(loc.blob)
                .or_insert_with(|| Source::Memory(Vec::new()));
            if let Source::Memory(v) = s {
                v.push(loc);
            }
        }
        let blobs = inner.log.blobs();
        Iter {
            inner,
            blobs,
            pending: sources.into_values().collect(),
            locs: Vec::new().into_iter(),
            range,
            buf: Vec::new(),
            frontier,
            moved: HashSet::new(),
        }
    }

    /// Loads the next blob's locations, in disk order. False when there are no more.
    fn next_blob(&mut self) -> Result<bool> {
        let Some(source) = self.pending.pop_front() else {
            return Ok(false);
        };
        let mut locs = match source {
            Source::Memory(v) => v,
            Source::Sorted(b) => match &self.range {
                Some((from, to)) => b.entries_in(from, to)?,
                None => b.entries()?,
            }
            .iter()
            .filter(|e| self.in_range(&e.key))
            .map(|e| crate::keys::sealed_entry(b.id, e))
            .filter(|e| !e.tombstone)
            .map(|e| e.loc)
            .collect(),
        };
        locs.sort_unstable();
        self.locs = locs.into_iter();
        Ok(true)
    }

    fn in_range(&self, key: &Key) -> bool {
        self.range
            .as_ref()
            .is_none_or(|(from, to)| key >= from && key <= to)
    }

    /// The record header at `offset`, through the engine, or through the snapshot's file
    /// handle when defragmentation retired the blob.
    fn read_header(&mut self, blob: u32, offset: u64) -> Result<()> {
        match self
            .inner
            .log
            .read_bytes(blob, offset, RECORD_HEADER_LEN, &mut self.buf)
        {
            Err(crate::Error::BlobRetired(id)) => {
                let b = self.blobs.get(&id).ok_or(crate::Error::BlobRetired(id))?;
                self.buf.resize(RECORD_HEADER_LEN, 0);
                b.file
                    .read_exact_at(&mut self.buf, offset)
                    .map_err(|e| crate::Error::io("read", crate::blob::blob_name(id), e))
            }
            other => other,
        }
    }

    /// Whether the record at `loc` is the newest one of the (key, column) it names: an
    /// index that lists a record under another key (damaged, yet passing its checksum) must
    /// not make iteration disagree with reads.
    fn is_live(&self, h: &RecordHeader, loc: Loc) -> Result<bool> {
        if !self.inner.sorted() {
            return Ok(self.inner.keys.lists_value(&h.key, h.column, loc));
        }
        let newest = self.inner.find_newest(&h.key, h.column)?;
        Ok(newest.is_some_and(|e| e.loc == loc && !e.tombstone))
    }

    fn after_frontier(&self, loc: Loc) -> bool {
        (loc.blob, u64::from(loc.offset)) >= self.frontier
    }

    fn item(&mut self, loc: Loc) -> Result<Option<Meta>> {
        let offset = u64::from(loc.offset);
        self.read_header(loc.blob, offset)?;
        let h = match RecordHeader::decode(&self.buf, loc.blob, offset) {
            Ok(h) => h,
            // A header that fails its checksum: the record is listed nowhere, as a known
            // damaged one (below), rather than failing every listing of its range — names,
            // hand-overs and repair digests would stop there for good.
            Err(e) if e.is_corruption() => {
                self.inner.known_damage.count_failure();
                if self.inner.known_damage.note(loc) {
                    tracing::error!(blob = loc.blob, offset, error = %e,
                        "iteration found a damaged record header; the record is listed nowhere, and a copy from another group replaces it");
                }
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        if !self.in_range(&h.key) {
            return Ok(None);
        }
        if self.is_live(&h, loc)? {
            // A record known to be damaged is listed nowhere (it is never served): a
            // group holding a good copy then sees it missing here and repair brings it.
            if self.inner.known_damage.contains(loc) {
                return Ok(None);
            }
            return Ok(Some(Meta::from_header(&h, loc.blob, offset)));
        }
        self.moved_item(h.key, h.column)
    }

    /// A record that is no longer the newest of its (key, column): the value now live, if
    /// it lies past the frontier (iteration would never reach it) and was not yielded yet.
    fn moved_item(&mut self, key: Key, column: u16) -> Result<Option<Meta>> {
        for _ in 0..MOVED_RETRIES {
            let Some(e) = self.inner.find_newest(&key, column)? else {
                return Ok(None);
            };
            if e.tombstone || !self.after_frontier(e.loc) || self.moved.contains(&(key, column)) {
                return Ok(None);
            }
            match self.newest_meta(&key, column, e) {
                Err(crate::Error::BlobRetired(_)) => continue,
                Err(err) => return Err(err),
                Ok(m) => {
                    self.moved.insert((key, column));
                    return Ok(Some(m));
                }
            }
        }
        Err(crate::Error::Contended)
    }

    fn newest_meta(&mut self, key: &Key, column: u16, e: Entry) -> Result<Meta> {
        let offset = u64::from(e.loc.offset);
        self.inner
            .log
            .read_bytes(e.loc.blob, offset, RECORD_HEADER_LEN, &mut self.buf)?;
        let h = RecordHeader::decode(&self.buf, e.loc.blob, offset)?;
        if h.key != *key || h.column != column {
            return Err(crate::Error::Corrupt {
                what: "index entry",
                file: crate::blob::blob_name(e.loc.blob),
                offset,
                reason: "the record there names another key or column".into(),
            });
        }
        Ok(Meta::from_header(&h, e.loc.blob, offset))
    }
}

/// Times a moved record is looked up again when it keeps moving (defragmented twice).
const MOVED_RETRIES: usize = 4;

impl Iterator for Iter {
    type Item = Result<Meta>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Some(loc) = self.locs.next() else {
                match self.next_blob() {
                    Ok(true) => continue,
                    Ok(false) => return None,
                    Err(e) => return Some(Err(e)),
                }
            };
            match self.item(loc) {
                Ok(Some(m)) => return Some(Ok(m)),
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
