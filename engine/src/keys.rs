//! The keys room: where each (key, column)'s newest record is. The in-memory index holds
//! the active blob's and unsealed blobs' records (every record, in memory mode); the sealed
//! set answers for sealed blobs through their sorted indexes and the key locator. The room
//! also keeps the live-key and live-byte counts. Its locks are the index (rank `Index`) and
//! the sealed set (rank `Sealed`); see the lock-order table in `engine`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::error::{Error, Result};
use crate::format::index_file::IndexEntry;
use crate::format::record::FLAG_TOMBSTONE;
use crate::index::{Candidates, Entry, KeyIndex, Loc};
use crate::key::Key;
use crate::lock_order::{Rank, Ranked};
use crate::sealed::{BuiltLocator, SealedBlob, SealedSet};

/// Tries before a lookup that keeps racing sealed-set changes gives up (`Contended`).
const RACE_RETRIES: usize = 64;
/// Tries made at once before the rest yield the CPU to the thread changing the set.
const RACE_SPINS: usize = 4;

/// The keys room.
pub(crate) struct Keys {
    /// Whether sealed blobs answer from sorted indexes (else every key is in memory).
    sorted: bool,
    index: Ranked<RwLock<KeyIndex>>,
    sealed: Ranked<RwLock<SealedSet>>,
    /// The sealed set's change counter (see [`Keys::stable`]).
    generation: Arc<AtomicU64>,
    /// Live (key, column) pairs: kept up to date by every write and remove.
    live_keys: AtomicI64,
    /// Bytes of records holding live values (memory mode only; sorted mode counts them
    /// from the sorted indexes).
    live_bytes: AtomicU64,
}

/// A key's tag in the in-memory index (its hash there), found by
/// [`Keys::find_unsealed`] and used to point the key at its new record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tag(u64);

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

impl Keys {
    pub fn new(sorted: bool, index: KeyIndex, sealed: SealedSet, live: (i64, u64)) -> Keys {
        Keys {
            sorted,
            generation: sealed.generation_counter(),
            index: Ranked::rw(Rank::Index, index),
            sealed: Ranked::rw(Rank::Sealed, sealed),
            live_keys: AtomicI64::new(live.0),
            live_bytes: AtomicU64::new(live.1),
        }
    }

    #[inline]
    pub fn sorted(&self) -> bool {
        self.sorted
    }

    /// Changes whenever the sealed set does.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Runs `look` until it completes without the sealed set changing under it, so its
    /// answer comes from one consistent view. A lookup that missed in memory and then
    /// searched the sealed set after a seal or a defragmentation changed it could otherwise
    /// miss the newest record (a defragmentation copies it into memory, then retires the
    /// sealed blob it came from) and answer with an older value, or one since removed.
    /// Gives up with `Contended` rather than answer from a view that may be stale.
    pub fn stable<T>(&self, mut look: impl FnMut() -> Result<T>) -> Result<T> {
        for attempt in 0..RACE_RETRIES {
            let generation = self.generation();
            let found = look()?;
            if generation == self.generation() {
                return Ok(found);
            }
            if attempt >= RACE_SPINS {
                std::thread::yield_now();
            }
        }
        Err(Error::Contended)
    }

    /// Starts loading the index slots where `keys` would be found, under one read lock:
    /// a batch of requests asks this before serving them one by one, so that their probes'
    /// cache misses overlap instead of each stalling in turn.
    pub fn prefetch<'k>(&self, keys: impl Iterator<Item = &'k Key>) {
        let index = self.index.read();
        for key in keys {
            index.prefetch(index.tag(key));
        }
    }

    /// In-memory candidates of (key, column), not yet confirmed.
    #[inline]
    pub fn candidates(&self, key: &Key, column: u16) -> Candidates {
        let index = self.index.read();
        index.candidates(index.tag(key), column)
    }

    /// In-memory candidates of every column of `key`, not yet confirmed.
    pub fn key_candidates(&self, key: &Key) -> Candidates {
        let index = self.index.read();
        index.key_candidates(index.tag(key))
    }

    /// The in-memory entry of (key, column): the candidate `is_key` confirms. Comes with
    /// the key's tag, for [`point`](Self::point).
    #[inline]
    pub fn find_unsealed(
        &self,
        key: &Key,
        column: u16,
        is_key: impl FnMut(Loc) -> Result<bool>,
    ) -> Result<(Tag, Option<Entry>)> {
        let index = self.index.read();
        let tag = index.tag(key);
        Ok((Tag(tag), index.find(tag, column, is_key)?))
    }

    /// Whether the in-memory index lists the value at `loc` as (key, column)'s.
    pub fn lists_value(&self, key: &Key, column: u16, loc: Loc) -> bool {
        self.candidates(key, column)
            .iter()
            .any(|e| e.loc == loc && !e.tombstone)
    }

    /// Every in-memory value's location.
    pub fn locations(&self) -> Vec<Loc> {
        self.index.read().locations()
    }

    /// Points (key, column) at a new record `e` that replaces `old`. In memory mode a
    /// tombstone just drops the key; in sorted mode it is kept, to hide values in sealed
    /// blobs.
    #[inline]
    pub fn point(&self, Tag(tag): Tag, e: Entry, old: Option<Loc>) -> Result<()> {
        let mut index = self.index.write();
        if e.tombstone && !self.sorted {
            index.remove(tag, e.column, |l| Ok(Some(l) == old))?;
        } else {
            index.upsert(tag, e.column, e, |l| Ok(Some(l) == old))?;
        }
        Ok(())
    }

    /// Counts a record appended over `had_value` (whether the (key, column) had one), and
    /// over `old` (the in-memory entry it replaced, for live bytes in memory mode).
    #[inline]
    pub fn count(&self, e: Entry, had_value: bool, old: Option<Entry>) {
        if !self.sorted {
            if !e.tombstone {
                self.live_bytes
                    .fetch_add(u64::from(e.loc.len), Ordering::Relaxed);
            }
            if let Some(o) = old.filter(|o| !o.tombstone) {
                self.live_bytes
                    .fetch_sub(u64::from(o.loc.len), Ordering::Relaxed);
            }
        }
        let change = i64::from(!e.tombstone) - i64::from(had_value);
        self.live_keys.fetch_add(change, Ordering::Relaxed);
    }

    /// Live (key, column) pairs.
    pub fn live_keys(&self) -> u64 {
        self.live_keys.load(Ordering::Relaxed).max(0) as u64
    }

    /// Live bytes counted as records are appended (memory mode).
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes.load(Ordering::Relaxed)
    }

    /// Heap bytes of the in-memory index and the sealed set's indexes.
    pub fn heap_bytes(&self) -> u64 {
        let in_memory = self.index.read().heap_bytes() as u64;
        in_memory + self.sealed.read().heap_bytes() as u64
    }

    /// The newest entry of (key, column) in sealed blobs (none in memory mode).
    #[inline]
    pub fn find_sealed(&self, key: &Key, column: u16) -> Result<Option<Entry>> {
        if !self.sorted {
            return Ok(None);
        }
        let hit = self.sealed.read().find(key, column, u32::MAX)?;
        Ok(hit.map(|(blob, e)| sealed_entry(blob, &e)))
    }

    /// [`find_sealed`](Self::find_sealed), unless a sealed blob may hold the key *and* the
    /// in-memory index has a candidate for it: then `None`, not looked up (the newest record
    /// is almost always the in-memory one, and the look would read a sorted-index page).
    /// A key no sealed blob holds costs a key locator probe, as before; no index probe.
    pub fn find_sealed_unless_in_memory(
        &self,
        key: &Key,
        column: u16,
    ) -> Result<Option<Option<Entry>>> {
        if !self.sorted || !self.sealed.read().may_hold(key) {
            return Ok(Some(None));
        }
        if !self.candidates(key, column).is_empty() {
            return Ok(None);
        }
        self.find_sealed(key, column).map(Some)
    }

    /// The newest sealed entry of every column of `key` (none in memory mode).
    pub fn sealed_key_entries(&self, key: &Key) -> Result<Vec<Entry>> {
        if !self.sorted {
            return Ok(Vec::new());
        }
        let hits = self.sealed.read().key_entries(key, u32::MAX)?;
        Ok(hits.iter().map(|(b, e)| sealed_entry(*b, e)).collect())
    }

    /// Runs `f` over the sealed set, read-locked.
    pub fn with_sealed<T>(&self, f: impl FnOnce(&SealedSet) -> T) -> T {
        f(&self.sealed.read())
    }

    pub fn sealed_blob(&self, id: u32) -> Option<Arc<SealedBlob>> {
        self.sealed.read().blob(id)
    }

    pub fn sealed_blobs(&self) -> Vec<Arc<SealedBlob>> {
        self.sealed.read().blobs()
    }

    /// Garbage bytes of every blob in the sealed set: its own, and what newer blobs
    /// superseded in it.
    pub fn sealed_garbage(&self) -> HashMap<u32, u64> {
        let set = self.sealed.read();
        let blobs = set.blobs();
        let mut dead: HashMap<u32, u64> = blobs
            .iter()
            .map(|b| (b.id, b.header().self_dead_bytes))
            .collect();
        for b in &blobs {
            for s in b.superseded() {
                if let Some(d) = dead.get_mut(&s.blob) {
                    *d += s.bytes;
                }
            }
        }
        dead
    }

    /// A sealed blob's sorted index answers for its keys from now: it joins the set, then
    /// its keys leave memory. Readers that miss in memory find them in the set, which
    /// already has them.
    pub fn install_sealed(&self, blob: SealedBlob, newest: &[IndexEntry]) {
        let id = blob.id;
        self.sealed.write().add(blob, newest.iter().map(|e| &e.key));
        self.index.write().remove_blob(id);
    }

    /// Forgets a retired blob's sorted index.
    pub fn retire_sealed(&self, id: u32) {
        self.sealed.write().remove(id);
    }

    /// Whether the key locator is missing or should be rebuilt.
    pub fn locator_needs_rebuild(&self) -> bool {
        self.sorted && self.sealed.read().locator_needs_rebuild()
    }

    pub fn install_locator(&self, built: BuiltLocator) {
        self.sealed.write().install_locator(built);
    }
}
