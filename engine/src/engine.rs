//! The engine: the public API over blobs, the key index, the writer and group commit.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::blob::Blob;
use crate::commit::GroupCommit;
use crate::config::{Config, Durability, Range, WriteOptions};
use crate::error::{Error, Result};
use crate::format::frames::{RecordEncoder, RecordSpec};
use crate::format::record::{RecordHeader, FLAG_TOMBSTONE};
use crate::index::KeyIndex;
use crate::io::{open_device, Device, DirLock};
use crate::key::Key;
use crate::sealed::SealedSet;
use crate::writer::Active;

/// What `lookup` and iteration report about a live value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub key: Key,
    pub column: u16,
    /// Logical value size in bytes.
    pub size: u64,
    /// Bytes the record takes on disk (header, frame table, stored frames).
    pub stored_size: u64,
    pub timestamp_ns: u64,
    pub flags: u16,
    /// CRC-32 of the whole logical value.
    pub checksum: u32,
    /// Blob id and offset of the record.
    pub blob: u32,
    pub offset: u64,
}

impl Meta {
    pub(crate) fn from_header(h: &RecordHeader, blob: u32, offset: u64) -> Self {
        Meta {
            key: h.key,
            column: h.column,
            size: h.value_len,
            stored_size: h.record_len(),
            timestamp_ns: h.timestamp_ns,
            flags: h.flags,
            checksum: h.value_crc,
            blob,
            offset,
        }
    }
}

/// Engine-wide figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub keys: u64,
    pub blobs: u64,
    pub active_blob: u32,
    pub bytes_on_disk: u64,
    /// Bytes of the records that hold live values.
    pub live_bytes: u64,
    /// Superseded values, tombstones and damaged regions: what defragmentation would reclaim.
    pub garbage_bytes: u64,
    /// Heap bytes of the in-memory key index.
    pub index_bytes: u64,
    pub records_written: u64,
    pub syncs: u64,
    /// Why writes are refused, if they are.
    pub poisoned: Option<String>,
    /// Sealed blobs' garbage: what a defragmentation would free now.
    pub reclaimable_bytes: u64,
    pub defrag: DefragStatus,
    /// Damage found when the engine opened (see `damage`).
    pub damage: crate::damage::DamageReport,
    /// Damaged records known now: found at open, or by reads that failed their checks.
    pub damaged_records_known: u64,
}

/// Defragmentation's state, for stats.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DefragStatus {
    pub running: bool,
    pub runs: u64,
    pub blobs_rewritten: u64,
    pub bytes_reclaimed: u64,
    pub last: Option<crate::defrag::DefragReport>,
    pub last_error: Option<String>,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub live_bytes: AtomicU64,
    pub records_written: AtomicU64,
    pub syncs: AtomicU64,
}

/// Shared state; the [`Engine`] handle and the flusher thread hold it.
pub(crate) struct Inner {
    pub device: Arc<dyn Device>,
    pub config: Config,
    pub blobs: RwLock<BTreeMap<u32, Arc<Blob>>>,
    pub index: RwLock<KeyIndex>,
    /// Sealed blobs answering from sorted indexes (sorted mode; empty in memory mode).
    pub sealed: RwLock<SealedSet>,
    /// The sealed set's change counter (see `lookup`).
    pub sealed_gen: Arc<AtomicU64>,
    /// Live (key, column) pairs: kept up to date by every write and remove.
    pub live_keys: std::sync::atomic::AtomicI64,
    /// Held while a blob is sealed or the global filter rebuilt: one at a time.
    pub seal_lock: Mutex<()>,
    pub active: Mutex<Active>,
    pub commit: GroupCommit,
    pub counters: Counters,
    poison: Mutex<Option<String>>,
    poisoned: AtomicBool,
    /// Blobs rotated out whose sync and index file are still to do (newest first).
    pub seal_queue: Mutex<Vec<u32>>,
    /// Held while a defragmentation runs (one at a time).
    pub defrag_lock: Mutex<()>,
    pub defrag_status: Mutex<DefragStatus>,
    /// What opening found damaged.
    pub damage: crate::damage::DamageReport,
    /// Damaged records known so far (see `damage::KnownDamage`).
    pub known_damage: crate::damage::KnownDamage,
    /// The furthest log position known synced, kept on disk for recovery.
    pub watermark: crate::watermark::Watermark,
    stop: (Mutex<bool>, Condvar),
    _lock: Box<dyn DirLock>,
}

impl Inner {
    /// Refuses writes from now on. A failed write or fdatasync leaves the file in a state we
    /// cannot know: after a failed fsync Linux may drop the dirty pages and clear the error,
    /// so a retry could "succeed" over lost data. Only a reopen, which rescans the tail from
    /// what is really on disk, makes writing safe again.
    pub fn poison(&self, why: String) {
        tracing::error!(reason = %why, "engine poisoned: refusing writes until reopened");
        let mut p = self.poison.lock();
        if p.is_none() {
            *p = Some(why);
        }
        self.poisoned.store(true, Ordering::SeqCst);
    }

    pub fn check_writable(&self) -> Result<()> {
        if self.poisoned.load(Ordering::SeqCst) {
            let why = self.poison.lock().clone().unwrap_or_default();
            return Err(Error::Poisoned(why));
        }
        Ok(())
    }

    fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::SeqCst)
    }

    /// Runs a defragmentation and records its outcome in the status.
    pub fn run_defrag(&self, opts: crate::DefragOptions) -> Result<crate::DefragReport> {
        let result = self.defrag(opts);
        let mut st = self.defrag_status.lock();
        match &result {
            Ok(r) => {
                st.runs += 1;
                st.blobs_rewritten += r.blobs_rewritten.len() as u64;
                st.bytes_reclaimed += r.bytes_reclaimed;
                st.last = Some(r.clone());
                st.last_error = None;
            }
            Err(Error::Busy) => {}
            Err(e) => st.last_error = Some(e.to_string()),
        }
        result
    }

    /// Wakes the maintenance thread (a blob to seal).
    pub fn wake_maintenance(&self) {
        self.stop.1.notify_all();
    }
}

/// The blob engine. `Send + Sync`: share it with an `Arc` across threads.
pub struct Engine {
    inner: Arc<Inner>,
    flusher: Option<JoinHandle<()>>,
    defragger: Option<JoinHandle<()>>,
}

/// Largest encode buffer a writer thread keeps between writes.
const ENCODE_BUF_KEEP: usize = 8 << 20;

thread_local! {
    static ENCODER: std::cell::RefCell<(RecordEncoder, Vec<u8>)> =
        std::cell::RefCell::new((RecordEncoder::new(), Vec::new()));
}

pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl Engine {
    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Opens (creating if needed) the data directory `dir`.
    pub fn open(dir: impl AsRef<Path>, config: Config) -> Result<Engine> {
        let path = dir.as_ref();
        let device = open_device(path, config.io)
            .map_err(|e| Error::io("create dir", path.display().to_string(), e))?;
        Self::open_on(device, config)
    }

    /// Opens an engine on any [`Device`] (tests use in-memory and fault-injecting ones).
    pub fn open_on(device: Arc<dyn Device>, config: Config) -> Result<Engine> {
        config.validate()?;
        let lock = device.lock().map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock => Error::Locked {
                path: device.describe(),
            },
            _ => Error::io("lock", device.describe(), e),
        })?;
        let rec = crate::recovery::recover(device.as_ref(), &config)?;
        // What survived in the active blob is made durable now, so the watermark can say so.
        rec.active
            .file
            .sync_data()
            .map_err(|e| Error::io("fdatasync", crate::blob::blob_name(rec.active.id), e))?;
        let watermark = crate::watermark::Watermark::open(
            device.as_ref(),
            (rec.active.id, rec.active.flushed()),
        );
        let active = Active::new(rec.active.clone(), rec.active_records).with_journal(rec.journal);
        let synced = (rec.active.id, rec.active.flushed());
        let inner = Arc::new(Inner {
            device,
            config,
            blobs: RwLock::new(rec.blobs),
            index: RwLock::new(rec.index),
            sealed_gen: rec.sealed.generation_counter(),
            sealed: RwLock::new(rec.sealed),
            seal_lock: Mutex::new(()),
            live_keys: std::sync::atomic::AtomicI64::new(rec.live_keys),
            active: Mutex::new(active),
            commit: GroupCommit::default(),
            counters: Counters::default(),
            poison: Mutex::new(None),
            poisoned: AtomicBool::new(false),
            seal_queue: Mutex::new(Vec::new()),
            defrag_lock: Mutex::new(()),
            defrag_status: Mutex::new(DefragStatus::default()),
            known_damage: crate::damage::KnownDamage::default(),
            watermark,
            damage: rec.damage,
            stop: (Mutex::new(false), Condvar::new()),
            _lock: lock,
        });
        inner
            .counters
            .live_bytes
            .store(rec.live_bytes, Ordering::Relaxed);
        inner.commit.mark_synced(synced);
        for loc in &inner.damage.found {
            inner.known_damage.note(*loc);
        }
        let weak = Arc::downgrade(&inner);
        let flusher = std::thread::Builder::new()
            .name("ringblob-flush".into())
            .spawn(move || flusher_loop(weak))
            .map_err(|e| Error::io("spawn flusher", "thread", e))?;
        let defragger = match inner.config.defrag_interval {
            Some(every) => {
                let weak = Arc::downgrade(&inner);
                let t = std::thread::Builder::new()
                    .name("ringblob-defrag".into())
                    .spawn(move || defrag_loop(weak, every))
                    .map_err(|e| Error::io("spawn defragmenter", "thread", e))?;
                Some(t)
            }
            None => None,
        };
        Ok(Engine {
            inner,
            flusher: Some(flusher),
            defragger,
        })
    }

    /// Stores `value` under `key` (column 0), replacing any earlier value.
    pub fn write(&self, key: &Key, value: &[u8], opts: WriteOptions) -> Result<()> {
        self.write_column(key, 0, value, opts)
    }

    /// Stores `value` in `column` of `key`, replacing that column's earlier value.
    pub fn write_column(
        &self,
        key: &Key,
        column: u16,
        value: &[u8],
        opts: WriteOptions,
    ) -> Result<()> {
        let c = &self.inner.config;
        let (timestamp_ns, if_newer) = opts.newer_than_stored(now_ns);
        let spec = RecordSpec {
            key: *key,
            column,
            flags: 0,
            timestamp_ns,
            frame_len: c.frame_len,
            compress: opts.compress.unwrap_or(c.compress),
        };
        let target = self.append(spec, value, if_newer)?;
        self.wait(target, opts.durability.unwrap_or(c.durability))
    }

    /// Removes `key`: every column of it. A key with no live column is `Error::NotFound`.
    pub fn remove(&self, key: &Key) -> Result<()> {
        self.remove_with(key, self.inner.config.durability)
    }

    /// Removes every column of `key` with the given durability.
    pub fn remove_with(&self, key: &Key, durability: Durability) -> Result<()> {
        let columns: Vec<u16> = self
            .inner
            .find_key(key)?
            .iter()
            .filter(|e| !e.tombstone)
            .map(|e| e.column)
            .collect();
        let mut target = None;
        for column in columns {
            match self.append(self.tombstone(key, column, now_ns()), &[], None) {
                Ok(t) => target = Some(t),
                // Removed meanwhile by someone else: fine, it is gone.
                Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let target = target.ok_or(Error::NotFound(*key))?;
        self.wait(target, durability)
    }

    /// Removes one column of `key`. A column with no live value is `Error::NotFound`.
    pub fn remove_column(&self, key: &Key, column: u16, durability: Durability) -> Result<()> {
        self.remove_column_at(key, column, now_ns(), durability)
    }

    /// Removes one column of `key` with a tombstone stamped `timestamp_ns`: a copy of a
    /// remove made elsewhere keeps its original time, so a value written after it there is
    /// not mistaken for an older one here.
    pub fn remove_column_at(
        &self,
        key: &Key,
        column: u16,
        timestamp_ns: u64,
        durability: Durability,
    ) -> Result<()> {
        let target = self.append(self.tombstone(key, column, timestamp_ns), &[], None)?;
        self.wait(target, durability)
    }

    fn tombstone(&self, key: &Key, column: u16, timestamp_ns: u64) -> RecordSpec {
        RecordSpec {
            key: *key,
            column,
            flags: FLAG_TOMBSTONE,
            timestamp_ns,
            frame_len: self.inner.config.frame_len,
            compress: false,
        }
    }

    /// Encodes and appends one record; returns the log position that makes it durable.
    fn append(
        &self,
        spec: RecordSpec,
        value: &[u8],
        if_newer: Option<u64>,
    ) -> Result<crate::commit::LogPos> {
        self.inner.check_writable()?;
        ENCODER.with(|cell| {
            let mut guard = cell.borrow_mut();
            let (encoder, buf) = &mut *guard;
            buf.clear();
            encoder.encode(spec, value, buf)?;
            let tombstone = spec.flags & FLAG_TOMBSTONE != 0;
            let appended =
                self.inner
                    .append_record(&spec.key, spec.column, buf, tombstone, if_newer);
            // Keep the encode buffer for small records only: one large value must not pin
            // its size in every writer thread.
            if buf.capacity() > ENCODE_BUF_KEEP {
                *buf = Vec::new();
            }
            appended
        })
    }

    /// Waits until `target` is durable as `durability` asks.
    pub(crate) fn wait(&self, target: crate::commit::LogPos, durability: Durability) -> Result<()> {
        let window = match durability {
            Durability::None => return Ok(()),
            Durability::Batch => self.inner.config.batch_window,
            Durability::Sync => std::time::Duration::ZERO,
        };
        self.inner
            .commit
            .wait_durable(target, window, || self.inner.flush_and_sync())
            .map_err(Error::from)
    }

    /// Reads `range` of the value under `key` (column 0).
    pub fn read(&self, key: &Key, range: Range) -> Result<Vec<u8>> {
        self.inner.read_value(key, 0, range)
    }

    /// Reads `range` of `column` of `key`.
    pub fn read_column(&self, key: &Key, column: u16, range: Range) -> Result<Vec<u8>> {
        self.inner.read_value(key, column, range)
    }

    /// Size, timestamp, checksum and location of the value under `key` (column 0).
    pub fn lookup(&self, key: &Key) -> Result<Meta> {
        self.lookup_column(key, 0)
    }

    /// Size, timestamp, checksum and location of `column` of `key`.
    pub fn lookup_column(&self, key: &Key, column: u16) -> Result<Meta> {
        match self.inner.locate(key, column)? {
            Some((loc, h)) => Ok(Meta::from_header(&h, loc.blob, u64::from(loc.offset))),
            None => Err(Error::NotFound(*key)),
        }
    }

    /// Every live column of `key`, ascending (empty if the key has none).
    pub fn columns(&self, key: &Key) -> Result<Vec<Meta>> {
        let mut out = Vec::new();
        for e in self.inner.find_key(key)? {
            if e.tombstone {
                continue;
            }
            match self.lookup_column(key, e.column) {
                Ok(m) => out.push(m),
                Err(Error::NotFound(_)) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(out)
    }

    /// Every live value (every column), blob by blob, in on-disk order within a blob.
    pub fn iterate(&self) -> crate::iter::Iter {
        crate::iter::Iter::new(self.inner.clone(), None)
    }

    /// Live values whose keys are in `from..=to`, blob by blob.
    pub fn iterate_range(&self, from: Key, to: Key) -> crate::iter::Iter {
        crate::iter::Iter::new(self.inner.clone(), Some((from, to)))
    }

    /// Makes every write so far durable.
    /// Concurrent callers share one fdatasync (group commit), so a node can apply a batch
    /// of writes without durability and then make them all durable with one call.
    pub fn sync(&self) -> Result<()> {
        self.inner.check_writable()?;
        let target = {
            let a = self.inner.active.lock();
            (a.blob.id, a.end())
        };
        self.inner
            .commit
            .wait_durable(target, std::time::Duration::ZERO, || {
                self.inner.flush_and_sync()
            })
            .map_err(Error::from)
    }

    /// Whether writes that do not say are compressed.
    pub fn default_compress(&self) -> bool {
        self.inner.config.compress
    }

    /// The durability of writes that do not name one.
    pub fn default_durability(&self) -> Durability {
        self.inner.config.durability
    }

    /// Defragments now with the configured threshold and rate (see [`DefragOptions`]).
    pub fn defrag(&self) -> Result<crate::DefragReport> {
        let c = &self.inner.config;
        self.defrag_with(crate::DefragOptions {
            min_garbage_ratio: c.defrag_garbage_ratio,
            max_bytes_per_sec: c.defrag_bytes_per_sec,
        })
    }

    /// Defragments now: rewrites sealed blobs at or over `opts.min_garbage_ratio` garbage.
    /// Reads and writes continue meanwhile; one defragmentation runs at a time
    /// ([`Error::Busy`] otherwise).
    pub fn defrag_with(&self, opts: crate::DefragOptions) -> Result<crate::DefragReport> {
        self.inner.run_defrag(opts)
    }

    /// Space per blob: live, garbage and reclaimable bytes.
    pub fn blob_usage(&self) -> Vec<crate::BlobUsage> {
        self.inner.blob_usage()
    }

    /// Seals the active blob now (if it holds any record) and starts a new one.
    pub fn rotate(&self) -> Result<()> {
        self.inner.check_writable()?;
        self.inner.rotate_now()
    }

    /// Current figures.
    pub fn stats(&self) -> Stats {
        let i = &self.inner;
        let (bytes_on_disk, blobs) = {
            let blobs = i.blobs.read();
            (
                blobs.values().map(|b| b.flushed()).sum::<u64>(),
                blobs.len() as u64,
            )
        };
        let (active_blob, buffered) = {
            let a = i.active.lock();
            (a.blob.id, a.buffered())
        };
        let total = bytes_on_disk + buffered;
        let usage = i.blob_usage();
        let live = if i.sorted() {
            usage.iter().map(|u| u.live_bytes).sum()
        } else {
            i.counters.live_bytes.load(Ordering::Relaxed)
        };
        let headers = blobs * crate::format::blob_header::BLOB_HEADER_LEN as u64;
        let (keys, index_bytes) = i.key_figures();
        Stats {
            keys,
            blobs,
            active_blob,
            bytes_on_disk: total,
            live_bytes: live,
            garbage_bytes: total.saturating_sub(live + headers),
            index_bytes,
            records_written: i.counters.records_written.load(Ordering::Relaxed),
            syncs: i.counters.syncs.load(Ordering::Relaxed),
            poisoned: i.poison.lock().clone(),
            reclaimable_bytes: usage.iter().map(|u| u.reclaimable_bytes).sum(),
            defrag: DefragStatus {
                running: i.defrag_lock.is_locked(),
                ..i.defrag_status.lock().clone()
            },
            damage: i.damage.clone(),
            damaged_records_known: i.known_damage.len() as u64,
        }
    }

    /// Flushes, syncs and writes the active blob's index checkpoint, so the next open need
    /// not scan. Dropping the engine does the same, but cannot report errors.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        {
            let (stopped, cond) = &self.inner.stop;
            *stopped.lock() = true;
            cond.notify_all();
        }
        if let Some(t) = self.flusher.take() {
            let _ = t.join();
        }
        if let Some(t) = self.defragger.take() {
            let _ = t.join();
        }
        if self.inner.is_poisoned() {
            return self.inner.check_writable();
        }
        self.inner
            .flush_and_sync()
            .map_err(|e| Error::Poisoned(e.to_string()))?;
        self.inner.watermark.sync();
        self.inner.seal_pending();
        let id = self.inner.active.lock().blob.id;
        match crate::checkpoint::write_index_file(&self.inner, id) {
            // Damage whose key is unknown: no checkpoint over it, so the next open scans
            // (and reports) it again.
            Err(e) if e.is_corruption() => {
                tracing::warn!(blob = id, error = %e, "no checkpoint written over damage");
                Ok(())
            }
            // The checkpoint names every record now: the key journal is not needed.
            Ok(_) => {
                crate::journal::remove(self.inner.device.as_ref(), id);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if self.flusher.is_some() {
            if let Err(e) = self.shutdown() {
                tracing::warn!(error = %e, "closing engine on drop");
            }
        }
    }
}

/// Waits `every` (or until the engine stops); false when it stopped.
fn wait_or_stop(inner: &Inner, every: std::time::Duration) -> bool {
    let (stopped, cond) = &inner.stop;
    let mut s = stopped.lock();
    let deadline = std::time::Instant::now() + every;
    while !*s {
        if cond.wait_until(&mut s, deadline).timed_out() {
            break;
        }
    }
    !*s
}

/// Defragments on a schedule; errors are logged and kept in the status.
fn defrag_loop(inner: Weak<Inner>, every: std::time::Duration) {
    loop {
        let Some(i) = inner.upgrade() else { return };
        if !wait_or_stop(&i, every) {
            return;
        }
        let opts = crate::DefragOptions {
            min_garbage_ratio: i.config.defrag_garbage_ratio,
            max_bytes_per_sec: i.config.defrag_bytes_per_sec,
        };
        if let Err(e) = i.run_defrag(opts) {
            tracing::warn!(error = %e, "scheduled defragmentation failed");
        }
    }
}

fn flusher_loop(inner: Weak<Inner>) {
    loop {
        let Some(i) = inner.upgrade() else { return };
        {
            let (stopped, cond) = &i.stop;
            let mut s = stopped.lock();
            if !*s {
                cond.wait_for(&mut s, i.config.flush_interval);
            }
            if *s {
                return;
            }
        }
        if !i.is_poisoned() {
            {
                let mut a = i.active.lock();
                let _ = i.flush_locked(&mut a);
            }
            i.seal_pending();
            if let Err(e) = i.refresh_filter() {
                tracing::warn!(error = %e, "could not build the global key filter; lookups ask every sealed blob");
            }
        }
    }
}
