//! Finding the newest record of a (key, column): the in-memory index first (the active blob
//! and blobs not sealed yet), then sealed blobs newest first through their sorted indexes.
//! A lookup that raced a change of the sealed set (a seal moving keys out of memory, a
//! defragmentation retiring a blob) is retried.

use std::sync::atomic::Ordering;

use crate::config::IndexMode;
use crate::engine::Inner;
use crate::error::{Error, Result};
use crate::format::index_file::IndexEntry;
use crate::format::record::{RecordHeader, FLAG_TOMBSTONE, RECORD_HEADER_LEN};
use crate::index::{Entry, Loc};
use crate::key::Key;

/// Tries before a lookup that keeps racing sealed-set changes gives up (`Contended`).
const RACE_RETRIES: usize = 64;
/// Tries made at once before the rest yield the CPU to the thread changing the set.
const RACE_SPINS: usize = 4;

/// The index entry of a sealed blob's record.
pub fn sealed_entry(blob: u32, e: &IndexEntry) -> Entry {
    Entry {
        loc: Loc {
            blob,
            offset: e.offset as u32,
            len: e.record_len,
        },
        column: e.column,
        tombstone: e.flags & FLAG_TOMBSTONE != 0,
    }
}

impl Inner {
    /// Whether sealed blobs answer from sorted index files.
    pub fn sorted(&self) -> bool {
        self.config.index == IndexMode::Sorted
    }

    /// Changes whenever the sealed set does.
    pub fn sealed_generation(&self) -> u64 {
        self.sealed_gen.load(Ordering::Acquire)
    }

    /// The key of the record at `loc` (read path: no writer lock held). The whole header
    /// is read and its checksum checked: a damaged header is damage (an error), never taken
    /// for "a record of another key" — that would let a lookup fall through to an older
    /// value, or to one a damaged tombstone removed.
    pub fn key_at(&self, loc: Loc) -> Result<Key> {
        let mut buf = Vec::with_capacity(RECORD_HEADER_LEN);
        let offset = u64::from(loc.offset);
        self.read_bytes(loc.blob, offset, RECORD_HEADER_LEN, &mut buf)?;
        Ok(RecordHeader::decode(&buf, loc.blob, offset)?.key)
    }

    /// In-memory candidates of (key, column), not yet confirmed.
    pub fn unsealed_candidates(&self, key: &Key, column: u16) -> crate::index::Candidates {
        let index = self.index.read();
        index.candidates(index.tag(key), column)
    }

    /// The newest entry of (key, column) in sealed blobs (none in memory mode).
    pub fn find_sealed(&self, key: &Key, column: u16) -> Result<Option<Entry>> {
        if !self.sorted() {
            return Ok(None);
        }
        let hit = self.sealed.read().find(key, column, u32::MAX)?;
        Ok(hit.map(|(blob, e)| sealed_entry(blob, &e)))
    }

    /// Runs `look` until it completes without the sealed set changing under it, so its
    /// answer comes from one consistent view. A lookup that missed in memory and then
    /// searched the sealed set after a seal or a defragmentation changed it could otherwise
    /// miss the newest record (a defragmentation copies it into memory, then retires the
    /// sealed blob it came from) and answer with an older value, or one since removed.
    /// Gives up with `Contended` rather than answer from a view that may be stale.
    pub fn stable<T>(&self, mut look: impl FnMut() -> Result<T>) -> Result<T> {
        for attempt in 0..RACE_RETRIES {
            let generation = self.sealed_generation();
            let found = look()?;
            if generation == self.sealed_generation() {
                return Ok(found);
            }
            if attempt >= RACE_SPINS {
                std::thread::yield_now();
            }
        }
        Err(Error::Contended)
    }

    /// The newest record of (key, column), value or tombstone.
    pub fn find_newest(&self, key: &Key, column: u16) -> Result<Option<Entry>> {
        self.stable(|| {
            for e in self.unsealed_candidates(key, column) {
                if self.key_at(e.loc)? == *key {
                    return Ok(Some(e));
                }
            }
            self.find_sealed(key, column)
        })
    }

    /// The newest record of every column of `key`, values and tombstones.
    pub fn find_key(&self, key: &Key) -> Result<Vec<Entry>> {
        self.stable(|| self.find_key_once(key))
    }

    fn find_key_once(&self, key: &Key) -> Result<Vec<Entry>> {
        let mut out: Vec<Entry> = Vec::new();
        let candidates = {
            let index = self.index.read();
            index.key_candidates(index.tag(key))
        };
        for e in candidates {
            if self.key_at(e.loc)? == *key {
                out.push(e);
            }
        }
        if self.sorted() {
            for (blob, e) in self.sealed.read().key_entries(key, u32::MAX)? {
                if !out.iter().any(|o| o.column == e.column) {
                    out.push(sealed_entry(blob, &e));
                }
            }
        }
        out.sort_by_key(|e| e.column);
        Ok(out)
    }
}
