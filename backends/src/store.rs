//! `Store`: the small set of primitives a storage backend implements, and [`StoreBackend`],
//! which builds every [`Backend`] operation (appends, writes at an offset, streaming uploads,
//! paged iteration) from a `Store`.

use std::io::Read;

use ringblob_engine::format::record::MAX_VALUE_LEN;
use ringblob_engine::{Durability, Key, Range, Stamped, WholeRead, WriteAt, WriteOptions};

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::key_locks::KeyLocks;
use crate::meta::{BackendStats, DefragSummary, IterPage, IterRequest, Meta, MAX_ITER_LIMIT};
use crate::remove_log::{Removal, RemoveLog};
use crate::staging::Staging;

/// Exactly `len` bytes of `source`, read whole (an upload being committed); a source that
/// ends early is an error.
pub fn read_exactly(source: &mut dyn std::io::Read, len: u64) -> Result<Vec<u8>> {
    let mut value = Vec::with_capacity(len as usize);
    source
        .take(len)
        .read_to_end(&mut value)
        .map_err(|e| Error::io("read", "upload", e))?;
    if value.len() as u64 != len {
        let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        return Err(Error::io("read", "upload", eof));
    }
    Ok(value)
}

/// A whole value read as a stamped range of at most `max` bytes: `None` if it was longer.
pub fn whole_within(s: Stamped, max: u64) -> Option<WholeRead> {
    (s.value_len <= max && s.data.len() as u64 == s.value_len).then(|| WholeRead::from_stamped(s))
}

/// Reads a range and the version it came from with a lookup on either side: equal
/// timestamps mean no write landed in between (two records with one timestamp are copies of
/// one write). A read that keeps racing writes is `Busy`.
pub fn stamped_by_lookups(
    key: &Key,
    column: u16,
    range: Range,
    read: impl Fn(Range) -> Result<Vec<u8>>,
    lookup: impl Fn() -> Result<Meta>,
) -> Result<Stamped> {
    for _ in 0..4 {
        let before = lookup()?;
        let data = read(range)?;
        let after = lookup()?;
        if before.timestamp_ns == after.timestamp_ns {
            return Ok(Stamped {
                data,
                timestamp_ns: after.timestamp_ns,
                value_len: after.size,
                value_crc: after.checksum,
            });
        }
    }
    Err(Error::Busy(format!(
        "column {column} of {key} kept changing while it was read"
    )))
}

/// The primitives a storage backend provides. Values live in columns of keys (column 0 is
/// "the value").
pub trait Store: Send + Sync {
    fn kind(&self) -> &'static str;
    fn put(&self, key: &Key, column: u16, value: &[u8], opts: WriteOptions) -> Result<()>;
    /// Stores exactly `len` bytes read from `source`. By default read whole, then `put`;
    /// a store that can write as it reads overrides it.
    fn put_from(
        &self,
        key: &Key,
        column: u16,
        len: u64,
        source: &mut dyn std::io::Read,
        opts: WriteOptions,
    ) -> Result<()> {
        let value = read_exactly(source, len)?;
        self.put(key, column, &value, opts)
    }
    /// Writes `bytes` into the column's value at `at` (an absent value is empty; a value
    /// shorter than the write grows, with zeros up to it); returns the new length. By
    /// default the whole value is read, changed and put back (the caller holds the key's
    /// lock); a store that can write only the changed part overrides it.
    fn write_into(
        &self,
        key: &Key,
        column: u16,
        at: WriteAt,
        bytes: &[u8],
        opts: WriteOptions,
    ) -> Result<u64> {
        let mut v = match self.get(key, column, Range::all()) {
            Ok(v) => v,
            Err(Error::NotFound(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
        let offset = match at {
            WriteAt::End => v.len() as u64,
            WriteAt::Offset(o) => o,
        };
        let end = offset.saturating_add(bytes.len() as u64);
        check_size(end)?;
        if (v.len() as u64) < end {
            v.resize(end as usize, 0);
        }
        v[offset as usize..end as usize].copy_from_slice(bytes);
        self.put(key, column, &v, opts)?;
        Ok(v.len() as u64)
    }
    fn get(&self, key: &Key, column: u16, range: Range) -> Result<Vec<u8>>;
    /// `range` of a column's value with the version it was read from. By default the
    /// value's meta is read before and after the bytes (a read racing a write is retried);
    /// a store that reads both at once overrides it.
    fn get_stamped(&self, key: &Key, column: u16, range: Range) -> Result<Stamped> {
        stamped_by_lookups(
            key,
            column,
            range,
            |r| self.get(key, column, r),
            || self.meta(key, column),
        )
    }
    /// [`get_stamped`](Self::get_stamped) with the bytes in `out` where the store can
    /// build them there (by default `out` is let go).
    fn get_stamped_into(
        &self,
        key: &Key,
        column: u16,
        range: Range,
        out: Vec<u8>,
    ) -> Result<Stamped> {
        drop(out);
        self.get_stamped(key, column, range)
    }
    /// The whole value of (key, column) if at most `max` bytes, left in `buffer` where the
    /// store can read it there without a copy (`ringblob_engine::WholeRead`; `None`: not
    /// read here); by default read as a stamped range and `buffer` let go.
    fn get_whole_in(
        &self,
        key: &Key,
        column: u16,
        buffer: Vec<u8>,
        max: u64,
    ) -> Result<Option<WholeRead>> {
        drop(buffer);
        let s = self.get_stamped(key, column, Range::new(0, max))?;
        Ok(whole_within(s, max))
    }
    /// Whether [`get_whole_in`](Self::get_whole_in) reads a value in place (its record read
    /// whole into the buffer given, no copy) rather than as a range.
    fn whole_in_place(&self) -> bool {
        false
    }
    /// A hint that `keys` are about to be read or written (see [`Backend::prefetch`]).
    fn prefetch(&self, _keys: &[Key]) {}
    fn meta(&self, key: &Key, column: u16) -> Result<Meta>;
    /// Whether the stored record of (key, column) is known to be damaged (never served; a
    /// copy from another group replaces it). Stores that keep no such knowledge: never.
    fn known_damaged(&self, _key: &Key, _column: u16) -> bool {
        false
    }
    /// The version of the remove the store's own newest record of (key, column) is (a
    /// tombstone), if it keeps one. Stores without tombstones: none.
    fn tombstone_at(&self, _key: &Key, _column: u16) -> Option<u64> {
        None
    }
    /// Removes one column; a column with no value is `NotFound`. `opts.timestamp_ns`, if
    /// set, stamps the tombstone (where the store keeps one).
    fn delete(&self, key: &Key, column: u16, opts: WriteOptions) -> Result<()>;
    /// Every live value (every column) of keys in `from..=to`, in any order.
    fn scan(&self, from: &Key, to: &Key) -> Result<Vec<Meta>>;
    fn stats(&self) -> Result<BackendStats>;
    fn sync(&self) -> Result<()>;
    fn blocking(&self) -> bool {
        true
    }
    /// See [`Backend::serves_without_waiting`].
    fn serves_without_waiting(&self) -> bool {
        false
    }
    fn default_durability(&self) -> Durability;
    /// Reclaims garbage; backends that keep none say `Unsupported`.
    fn defrag(&self) -> Result<DefragSummary> {
        Err(Error::Unsupported(format!(
            "the {} backend has nothing to defragment",
            self.kind()
        )))
    }
    /// Every live column of `key`, ascending. By default from a scan of that one key.
    fn columns(&self, key: &Key) -> Result<Vec<Meta>> {
        let mut all = self.scan(key, key)?;
        all.sort_unstable_by_key(|m| m.column);
        all.dedup_by_key(|m| m.column);
        Ok(all)
    }
    /// Removes every column of `key`; `NotFound` if it has none. By default one column at
    /// a time (a column removed meanwhile by someone else counts as removed).
    fn delete_all(&self, key: &Key, opts: WriteOptions) -> Result<()> {
        let mut removed = false;
        for m in self.columns(key)? {
            match self.delete(key, m.column, opts) {
                Ok(()) | Err(Error::NotFound(_)) => removed = true,
                Err(e) => return Err(e),
            }
        }
        if removed {
            Ok(())
        } else {
            Err(Error::NotFound(*key))
        }
    }
}

/// A [`Backend`] made of a [`Store`], per-key locks, an upload staging area and a remove
/// log. Every change of a key happens under its lock, so a conditional copy's check (against
/// the stored record and the remove log) holds until it is written.
pub struct StoreBackend<S> {
    store: S,
    locks: KeyLocks,
    staging: Staging,
    removes: RemoveLog,
}

impl<S: Store> StoreBackend<S> {
    pub fn new(store: S, staging: Staging, removes: RemoveLog) -> Self {
        StoreBackend {
            store,
            locks: KeyLocks::default(),
            staging,
            removes,
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// The remove log (retention is set from the backend configuration).
    pub fn remove_log(&self) -> &RemoveLog {
        &self.removes
    }

    /// `NotNewer` if `opts` is a conditional copy no newer than a remembered remove of
    /// (key, column). Key lock held.
    fn check_removed(&self, key: &Key, column: u16, opts: &WriteOptions) -> Result<()> {
        let write_ns = opts.timestamp_ns.filter(|_| opts.only_if_newer);
        Error::unless_newer(self.removes.removed_at(key, column), write_ns)
    }

    /// `NotNewer` if `opts` is conditional and the stored record of (key, column), or a
    /// remembered remove of it, is at least as new. For writes into a value (append, write at
    /// an offset), which the stores apply without a condition of their own. Key lock held.
    fn check_newer_than_stored(&self, key: &Key, column: u16, opts: &WriteOptions) -> Result<()> {
        let Some(write_ns) = opts.timestamp_ns.filter(|_| opts.only_if_newer) else {
            return Ok(());
        };
        self.check_removed(key, column, opts)?;
        let stored = match self.store.meta(key, column) {
            Ok(m) => Some(m.timestamp_ns),
            Err(Error::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        Error::unless_newer(stored, Some(write_ns))
    }

    /// `TooLarge` if a write at `offset` would leave more than [`MAX_GAP_FILL`] bytes of
    /// zeros between the value's end and itself: a small request must not make the store
    /// write (and allocate) a gigabyte. Key lock held.
    fn check_gap(&self, key: &Key, column: u16, offset: u64) -> Result<()> {
        let size = match self.store.meta(key, column) {
            Ok(m) => m.size,
            Err(Error::NotFound(_)) => 0,
            Err(e) => return Err(e),
        };
        let gap = offset.saturating_sub(size);
        if gap > MAX_GAP_FILL {
            return Err(Error::TooLarge {
                what: "gap of zeros before a write at an offset",
                got: gap,
                limit: MAX_GAP_FILL,
            });
        }
        Ok(())
    }

    /// A remove of every column of `key` at `opts.timestamp_ns`, made elsewhere or versioned
    /// by a coordinator: each column whose record is older is removed at that time, newer
    /// ones stay, and the key is remembered as removed whole (so a copy of a column it does
    /// not hold yet, older than the remove, is refused when it comes). `NotFound` when the
    /// key had no column, `NotNewer` when every column was newer. Key lock held.
    fn remove_all_copy(&self, key: &Key, opts: WriteOptions) -> Result<()> {
        let removed_ns = opts.timestamp_ns.unwrap_or_else(crate::mem::now_ns);
        let columns: Vec<u16> = self.store.columns(key)?.iter().map(|m| m.column).collect();
        // Remembered before any column is removed; made durable by the columns' own removes.
        self.removes.record(Removal::of_key(*key, removed_ns))?;
        if columns.is_empty() {
            self.remember_removed(key, [], removed_ns, &opts)?;
            return Err(Error::NotFound(*key));
        }
        let mut newer = None;
        let mut removed = false;
        for column in columns {
            match self.remove_copy(key, column, opts) {
                Ok(()) | Err(Error::NotFound(_)) => removed = true,
                Err(e @ Error::NotNewer { .. }) => newer = Some(e),
                Err(e) => return Err(e),
            }
        }
        match newer {
            Some(e) if !removed => {
                // No column's remove synced the log: the whole-key remove still counts.
                self.remember_removed(key, [], removed_ns, &opts)?;
                Err(e)
            }
            _ => Ok(()),
        }
    }

    /// Remembers removes of `columns` of `key` at `timestamp_ns`, durably if the remove
    /// is durable. Called before the remove itself, so a crash between the two never leaves
    /// a remove that is not remembered (a store without tombstones would forget it); a
    /// remove that then fails is remembered anyway, which only refuses older copies.
    fn remember_removed(
        &self,
        key: &Key,
        columns: impl IntoIterator<Item = u16>,
        timestamp_ns: u64,
        opts: &WriteOptions,
    ) -> Result<()> {
        for column in columns {
            self.removes
                .record(Removal::of_column(*key, column, timestamp_ns))?;
        }
        let durability = opts.durability.unwrap_or(self.store.default_durability());
        if durability != Durability::None {
            self.removes.sync()?;
        }
        Ok(())
    }

    /// A remove made elsewhere at `opts.timestamp_ns` (repair): applied only if the stored
    /// record is older, and remembered either way unless the stored record is newer.
    fn remove_copy(&self, key: &Key, column: u16, opts: WriteOptions) -> Result<()> {
        let removed_ns = opts.timestamp_ns.unwrap_or_else(crate::mem::now_ns);
        let stored = match self.store.meta(key, column) {
            Ok(m) => Some(m.timestamp_ns),
            Err(Error::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        Error::unless_newer(stored, Some(removed_ns))?;
        let plain = WriteOptions {
            timestamp_ns: Some(removed_ns),
            only_if_newer: false,
            ..opts
        };
        self.remember_removed(key, [column], removed_ns, &opts)?;
        self.store.delete(key, column, plain)
    }
}

/// Most zero bytes a write at an offset may leave between a value's end and itself.
pub const MAX_GAP_FILL: u64 = 16 << 20;

fn check_size(end: u64) -> Result<()> {
    if end > MAX_VALUE_LEN {
        return Err(Error::TooLarge {
            what: "value size",
            got: end,
            limit: MAX_VALUE_LEN,
        });
    }
    Ok(())
}

impl<S: Store> Backend for StoreBackend<S> {
    fn kind(&self) -> &'static str {
        self.store.kind()
    }

    fn write_column(
        &self,
        key: &Key,
        column: u16,
        value: &[u8],
        opts: WriteOptions,
    ) -> Result<u64> {
        check_size(value.len() as u64)?;
        let _g = self.locks.lock(key)?;
        self.check_removed(key, column, &opts)?;
        self.store.put(key, column, value, opts)?;
        Ok(value.len() as u64)
    }

    fn append_column(
        &self,
        key: &Key,
        column: u16,
        bytes: &[u8],
        opts: WriteOptions,
    ) -> Result<u64> {
        let _g = self.locks.lock(key)?;
        self.check_newer_than_stored(key, column, &opts)?;
        self.store
            .write_into(key, column, WriteAt::End, bytes, opts)
    }

    fn write_at_column(
        &self,
        key: &Key,
        column: u16,
        offset: u64,
        bytes: &[u8],
        opts: WriteOptions,
    ) -> Result<u64> {
        check_size(offset.saturating_add(bytes.len() as u64))?;
        let _g = self.locks.lock(key)?;
        self.check_newer_than_stored(key, column, &opts)?;
        self.check_gap(key, column, offset)?;
        self.store
            .write_into(key, column, WriteAt::Offset(offset), bytes, opts)
    }

    fn prepare_column(&self, key: &Key, column: u16, reserved: u64) -> Result<()> {
        check_size(reserved)?;
        self.staging.prepare(key, column, reserved)
    }

    fn write_part_column(&self, key: &Key, column: u16, offset: u64, bytes: &[u8]) -> Result<()> {
        self.staging.write_part(key, column, offset, bytes)
    }

    fn commit_column(
        &self,
        key: &Key,
        column: u16,
        final_size: u64,
        opts: WriteOptions,
    ) -> Result<u64> {
        let _g = self.locks.lock(key)?;
        let mut staged = self.staging.reader(key, column, final_size)?;
        let stored = self.check_removed(key, column, &opts).and_then(|()| {
            self.store
                .put_from(key, column, final_size, &mut staged, opts)
        });
        match stored {
            Ok(()) => self.staging.finish(key, column).map(|()| final_size),
            // A copy older than the stored record settles the upload too.
            Err(e @ Error::NotNewer { .. }) => {
                self.staging.finish(key, column)?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    fn read_column(&self, key: &Key, column: u16, range: Range) -> Result<Vec<u8>> {
        self.store.get(key, column, range)
    }

    fn read_column_stamped(&self, key: &Key, column: u16, range: Range) -> Result<Stamped> {
        self.store.get_stamped(key, column, range)
    }

    fn read_column_stamped_into(
        &self,
        key: &Key,
        column: u16,
        range: Range,
        out: Vec<u8>,
    ) -> Result<Stamped> {
        self.store.get_stamped_into(key, column, range, out)
    }

    fn read_column_whole_in(
        &self,
        key: &Key,
        column: u16,
        buffer: Vec<u8>,
        max: u64,
    ) -> Result<Option<WholeRead>> {
        self.store.get_whole_in(key, column, buffer, max)
    }

    fn reads_whole_in_place(&self) -> bool {
        self.store.whole_in_place()
    }

    fn prefetch(&self, keys: &[Key]) {
        self.store.prefetch(keys);
    }

    fn lookup_column(&self, key: &Key, column: u16) -> Result<Meta> {
        self.store.meta(key, column)
    }

    fn known_damaged(&self, key: &Key, column: u16) -> bool {
        self.store.known_damaged(key, column)
    }

    fn tombstone_at(&self, key: &Key, column: u16) -> Option<u64> {
        self.store.tombstone_at(key, column)
    }

    /// A column with no value is still remembered as removed (and `NotFound` returned): in a
    /// cluster its value may be on its way (hand-over), and must not land after the remove.
    fn remove_column(&self, key: &Key, column: u16, opts: WriteOptions) -> Result<()> {
        let _g = self.locks.lock(key)?;
        if opts.only_if_newer {
            return self.remove_copy(key, column, opts);
        }
        self.remember_removed(key, [column], crate::mem::now_ns(), &opts)?;
        self.store.delete(key, column, opts)
    }

    /// The key is remembered as removed whole, also when it has no column (then
    /// `NotFound` is returned): in a cluster its columns may be on their way (hand-over), and
    /// none of them must land after the remove.
    fn remove(&self, key: &Key, opts: WriteOptions) -> Result<()> {
        let _g = self.locks.lock(key)?;
        if opts.only_if_newer {
            return self.remove_all_copy(key, opts);
        }
        let now = crate::mem::now_ns();
        let columns: Vec<u16> = self.store.columns(key)?.iter().map(|m| m.column).collect();
        self.removes.record(Removal::of_key(*key, now))?;
        self.remember_removed(key, columns, now, &opts)?;
        self.store.delete_all(key, opts)
    }

    fn drop_copy(&self, key: &Key, column: u16, timestamp_ns: u64) -> Result<bool> {
        let _g = self.locks.lock(key)?;
        match self.store.meta(key, column) {
            Ok(m) if m.timestamp_ns == timestamp_ns => {}
            Ok(_) | Err(Error::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e),
        }
        let hide = WriteOptions {
            timestamp_ns: Some(timestamp_ns.saturating_sub(1)),
            only_if_newer: false,
            durability: Some(Durability::None),
            ..WriteOptions::default()
        };
        self.store.delete(key, column, hide)?;
        Ok(true)
    }

    fn removes_in(&self, from: &Key, to: &Key) -> Result<Vec<Removal>> {
        Ok(self.removes.in_span(from, to))
    }

    fn columns(&self, key: &Key) -> Result<Vec<Meta>> {
        self.store.columns(key)
    }

    fn iterate(&self, req: &IterRequest) -> Result<IterPage> {
        let limit = req.limit.clamp(1, MAX_ITER_LIMIT);
        let mut all = self.store.scan(&req.from, &req.to)?;
        if let Some(after) = req.after {
            all.retain(|m| m.position() > after);
        }
        all.sort_unstable_by_key(Meta::position);
        // A value moved during the scan (e.g. a blob sealed meanwhile) may be seen twice.
        all.dedup_by_key(|m| m.position());
        let more = all.len() > limit;
        all.truncate(limit);
        let next_after = if more {
            all.last().map(Meta::position)
        } else {
            None
        };
        Ok(IterPage {
            entries: all,
            next_after,
        })
    }

    fn stats(&self) -> Result<BackendStats> {
        let mut s = self.store.stats()?;
        s.uploads_in_progress = self.staging.count()?;
        s.removes_remembered = self.removes.len() as u64;
        Ok(s)
    }

    fn sync(&self) -> Result<()> {
        self.store.sync()?;
        self.removes.sync()
    }

    fn reclaim_uploads(&self, max_age: std::time::Duration) -> Result<u64> {
        self.staging.reclaim(max_age)
    }

    fn drop_uploads(&self, of: &dyn Fn(&Key) -> bool) -> Result<u64> {
        self.staging.drop_where(of)
    }

    fn blocking(&self) -> bool {
        self.store.blocking()
    }

    fn serves_without_waiting(&self) -> bool {
        self.store.serves_without_waiting()
    }

    fn default_durability(&self) -> Durability {
        self.store.default_durability()
    }

    fn defrag(&self) -> Result<DefragSummary> {
        self.store.defrag()
    }
}
