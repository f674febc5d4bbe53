//! The engine: the public API over its rooms.
//!
//! # Rooms
//!
//! The shared state ([`Inner`]) is three rooms with private state, each behind its own
//! locks, plus what never changes after open (device, config, what opening found damaged):
//!
//! - **log** (`log.rs`): blob files, the active blob with its write buffer and key journal,
//!   rotation, syncing (group commit, the synced watermark) and the poison;
//! - **keys** (`keys.rs`): the in-memory index, the sealed set (sorted indexes, key
//!   locator) and the live-key counts;
//! - **upkeep** (`upkeep.rs`): turns for sealing and defragmentation, the seal queue, the
//!   defragmentation status and the threads' stop signal.
//!
//! Work that spans rooms is written on `Inner` in the file named after it: appending
//! (`writer.rs`), sealing (`sealing.rs`, `sorting.rs`), defragmentation (`defrag.rs`),
//! lookups and reads (`lookup.rs`, `reader.rs`), iteration (`iter.rs`).
//!
//! # Lock order
//!
//! A thread takes these locks only in increasing rank (`lock_order::Rank`); debug builds
//! check every acquisition and panic on a violation, naming both locks.
//!
//! | rank | lock | room | held while |
//! |-----:|------|------|------------|
//! | 1 | defragmentation turn | upkeep | a whole defragmentation run |
//! | 2 | seal turn | upkeep | a blob is sealed (index file, sorted index) or the key locator built |
//! | 3 | writer (active blob) | log | a record is decided and appended; rotation; flushing the buffer |
//! | 4 | seal queue | upkeep | a queued blob id is pushed or popped |
//! | 5 | in-memory index | keys | a lookup or an update of the index |
//! | 6 | sealed set | keys | a sorted-index lookup; a blob joins or leaves the set |
//! | 7 | blob map | log | a blob is looked up, created or retired |
//! | 8 | leaves: poison reason, defragmentation status | log, upkeep | nothing else is taken under them |
//!
//! Locks private to one type are leaves too, taken with nothing of theirs held across
//! calls out: group commit's state (released before it syncs), the watermark's state,
//! known damage, the in-memory devices' files (tests), and the stop signal's mutex (waited
//! on with nothing else held). Syncs (`fdatasync`) run under no engine lock but the seal and defragmentation
//! turns.

use std::path::Path;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{Config, Durability, Range, WriteOptions};
use crate::error::{Error, Result};
use crate::format::frames::{RecordEncoder, RecordSpec};
use crate::format::record::{RecordHeader, FLAG_TOMBSTONE};
use crate::io::{open_device, Device, DirLock};
use crate::key::Key;
use crate::keys::Keys;
use crate::log::{Active, Log};
use crate::upkeep::{DefragStatus, Upkeep};

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
    /// Records appended since open: writes, removes, and defragmentation's copies.
    pub records_written: u64,
    pub syncs: u64,
    /// Why writes are refused, if they are.
    pub poisoned: Option<String>,
    /// Sealed blobs' garbage: what a defragmentation would free now.
    pub reclaimable_bytes: u64,
    /// Free space on the data directory's file system (`None` where it cannot be told).
    pub disk_free_bytes: Option<u64>,
    /// Reads that failed a checksum since open.
    pub checksum_failures: u64,
    /// The background scrub (`scrub_interval`).
    pub scrub: crate::ScrubStatus,
    /// Known damaged records (never served) per blob id.
    pub damaged_by_blob: std::collections::BTreeMap<u32, u64>,
    /// Writes refused because the disk was full (`DiskFull`) since open.
    pub writes_refused_disk_full: u64,
    pub defrag: DefragStatus,
    /// Damage found when the engine opened (see `damage`).
    pub damage: crate::damage::DamageReport,
    /// Damaged records known now: found at open, or by reads that failed their checks.
    pub damaged_records_known: u64,
    /// The small records kept in memory (`record_cache_bytes`).
    pub record_cache: crate::RecordCacheFigures,
}

/// Shared state; the [`Engine`] handle and the background threads hold it. Each room keeps
/// its state private behind its own locks (see the lock-order table above); what spans
/// rooms (appending, sealing, defragmenting, reading) is written on `Inner` in the files
/// named after those jobs.
pub(crate) struct Inner {
    pub device: Arc<dyn Device>,
    pub config: Config,
    pub log: Log,
    pub keys: Keys,
    pub upkeep: Upkeep,
    /// What opening found damaged.
    pub damage: crate::damage::DamageReport,
    /// Damaged records known so far (see `damage::KnownDamage`).
    pub known_damage: crate::damage::KnownDamage,
    /// Free space for new values (`space.rs`).
    pub space: crate::space::Space,
    /// The background scrub's status (`scrub.rs`).
    pub scrubbing: crate::scrub::Scrubbing,
    _lock: Box<dyn DirLock>,
}

impl Inner {
    /// Whether sealed blobs answer from sorted index files.
    pub fn sorted(&self) -> bool {
        self.keys.sorted()
    }

    /// Runs a defragmentation and records its outcome in the status.
    pub fn run_defrag(&self, opts: crate::DefragOptions) -> Result<crate::DefragReport> {
        let result = self.defrag(opts);
        self.upkeep.record_defrag(&result);
        result
    }
}

/// The blob engine. `Send + Sync`: share it with an `Arc` across threads.
pub struct Engine {
    inner: Arc<Inner>,
    flusher: Option<JoinHandle<()>>,
    defragger: Option<JoinHandle<()>>,
    scrubber: Option<JoinHandle<()>>,
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
        let active = Active::new(rec.active.clone(), rec.active_records).with_journal(rec.journal);
        let log = Log::open(device.clone(), &config, rec.blobs, active);
        let keys = Keys::new(
            config.index == crate::config::IndexMode::Sorted,
            rec.index,
            rec.sealed,
            (rec.live_keys, rec.live_bytes),
        );
        let known_damage = crate::damage::KnownDamage::default();
        for loc in &rec.damage.found {
            let _ = known_damage.note(*loc);
        }
        let config_reserve = config.reserve_bytes;
        let inner = Arc::new(Inner {
            device,
            config,
            log,
            keys,
            upkeep: Upkeep::new(),
            known_damage,
            damage: rec.damage,
            space: crate::space::Space::new(config_reserve),
            scrubbing: crate::scrub::Scrubbing::default(),
            _lock: lock,
        });
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
        let scrubber = match inner.config.scrub_interval {
            Some(every) => {
                let weak = Arc::downgrade(&inner);
                let rate = inner.config.scrub_bytes_per_sec;
                let t = std::thread::Builder::new()
                    .name("ringblob-scrub".into())
                    .spawn(move || crate::scrub::scrub_loop(weak, every, rate))
                    .map_err(|e| Error::io("spawn scrubber", "thread", e))?;
                Some(t)
            }
            None => None,
        };
        Ok(Engine {
            inner,
            flusher: Some(flusher),
            defragger,
            scrubber,
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
        self.inner.log.check_writable()?;
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
        self.inner.log.wait_durable(target, window)
    }

    /// Reads `range` of the value under `key` (column 0).
    pub fn read(&self, key: &Key, range: Range) -> Result<Vec<u8>> {
        self.inner.read_value(key, 0, range)
    }

    /// Reads `range` of `column` of `key`.
    pub fn read_column(&self, key: &Key, column: u16, range: Range) -> Result<Vec<u8>> {
        self.inner.read_value(key, column, range)
    }

    /// Reads `range` of `column` of `key`, with the version read (its timestamp) and the
    /// whole value's length.
    pub fn read_stamped(&self, key: &Key, column: u16, range: Range) -> Result<crate::Stamped> {
        self.inner.read_stamped(key, column, range)
    }

    /// The whole value of (key, column), read into `buffer` and left in its record there
    /// when its frames are stored as they are (no copy; `buffer`'s memory reused when large
    /// enough), else built in a buffer of its own: the value is `read.buffer[read.at]`.
    /// `None` (nothing read) when the record is over 256 KiB or the value over `max` bytes.
    pub fn read_whole_in(
        &self,
        key: &Key,
        column: u16,
        buffer: Vec<u8>,
        max: u64,
    ) -> Result<Option<crate::WholeRead>> {
        self.inner.read_whole_in(key, column, buffer, max)
    }

    /// [`read_stamped`](Self::read_stamped), the bytes read into `out` (cleared first; its
    /// memory is reused when large enough).
    pub fn read_stamped_into(
        &self,
        key: &Key,
        column: u16,
        range: Range,
        out: Vec<u8>,
    ) -> Result<crate::Stamped> {
        self.inner.read_stamped_into(key, column, range, out)
    }

    /// Starts loading the in-memory index slots of `keys` into the CPU's cache, for reads
    /// or writes of them that follow soon (a hint: nothing changes, nothing is waited for).
    pub fn prefetch<'k>(&self, keys: impl Iterator<Item = &'k Key>) {
        self.inner.keys.prefetch(keys);
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

    /// The version (`timestamp_ns`) of the remove whose tombstone is the newest record of
    /// (`key`, `column`), if it is one: what a store remembers of a remove in its own data,
    /// until defragmentation drops the tombstone.
    pub fn tombstone_at(&self, key: &Key, column: u16) -> Result<Option<u64>> {
        self.inner.tombstone_at(key, column)
    }

    /// Whether the newest record of (`key`, `column`) is known to be damaged (a read or the
    /// scrub found it failing its checks): it is never served, and any copy replaces it.
    pub fn known_damaged(&self, key: &Key, column: u16) -> bool {
        if self.inner.known_damage.is_empty() {
            return false;
        }
        matches!(self.inner.find_newest(key, column), Ok(Some(e))
            if !e.tombstone && self.inner.known_damage.contains(e.loc))
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
        self.inner.log.check_writable()?;
        self.inner.log.sync_all()
    }

    /// Whether writes that do not say are compressed.
    pub fn default_compress(&self) -> bool {
        self.inner.config.compress
    }

    /// Whether calls in no-wait mode (`io::nowait`) can serve what is in memory: with
    /// `pread` IO, and with memory maps (read with `RWF_NOWAIT` in that mode); io_uring
    /// refuses every read in that mode.
    pub fn serves_without_waiting(&self) -> bool {
        use crate::config::IoKind;
        matches!(self.inner.config.io, IoKind::Pread | IoKind::Mmap)
    }

    /// The durability of writes that do not name one.
    pub fn default_durability(&self) -> Durability {
        self.inner.config.durability
    }

    /// Scrubs now: re-reads every sealed record and checks its checksums, unthrottled.
    /// Damaged records are known from then on (never served, not listed, healed by a copy).
    pub fn scrub(&self) -> Result<crate::ScrubStatus> {
        self.inner.scrub_pass(0)?;
        Ok(self.inner.scrubbing.status())
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
        self.inner.log.check_writable()?;
        self.inner.rotate_now()
    }

    /// Current figures.
    pub fn stats(&self) -> Stats {
        let i = &self.inner;
        let (bytes_on_disk, blobs) = i.log.disk_figures();
        let (active_blob, buffered) = i.log.active_figures();
        let total = bytes_on_disk + buffered;
        let usage = i.blob_usage();
        let live = if i.sorted() {
            usage.iter().map(|u| u.live_bytes).sum()
        } else {
            i.keys.live_bytes()
        };
        let headers = blobs * crate::format::blob_header::BLOB_HEADER_LEN as u64;
        Stats {
            keys: i.keys.live_keys(),
            blobs,
            active_blob,
            bytes_on_disk: total,
            live_bytes: live,
            garbage_bytes: total.saturating_sub(live + headers),
            index_bytes: i.keys.heap_bytes(),
            records_written: i.log.records_written(),
            syncs: i.log.syncs(),
            poisoned: i.log.poison_reason(),
            reclaimable_bytes: usage.iter().map(|u| u.reclaimable_bytes).sum(),
            disk_free_bytes: self.inner.device.free_space().ok().flatten(),
            writes_refused_disk_full: i.space.refused(),
            defrag: i.upkeep.defrag_status(),
            damage: i.damage.clone(),
            damaged_records_known: i.known_damage.len() as u64,
            checksum_failures: i.known_damage.failures(),
            scrub: i.scrubbing.status(),
            record_cache: i.log.cache_figures(),
            damaged_by_blob: i.known_damage.by_blob(),
        }
    }

    /// Flushes, syncs and writes the active blob's index checkpoint, so the next open need
    /// not scan. Dropping the engine does the same, but cannot report errors.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        self.inner.upkeep.stop();
        if let Some(t) = self.flusher.take() {
            let _ = t.join();
        }
        if let Some(t) = self.defragger.take() {
            let _ = t.join();
        }
        if let Some(t) = self.scrubber.take() {
            let _ = t.join();
        }
        if self.inner.log.is_poisoned() {
            return self.inner.log.check_writable();
        }
        self.inner
            .log
            .flush_and_sync()
            .map_err(|e| Error::Poisoned(e.to_string()))?;
        self.inner.log.sync_watermark();
        self.inner.seal_pending();
        let id = self.inner.log.writer().id();
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

/// Defragments on a schedule; errors are logged and kept in the status.
fn defrag_loop(inner: Weak<Inner>, every: std::time::Duration) {
    loop {
        let Some(i) = inner.upgrade() else { return };
        if !i.upkeep.wait_or_stop(every) {
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

/// The maintenance thread: flushes the write buffer every `flush_interval`, seals blobs
/// rotated out, and rebuilds the sealed blobs' key locator when it needs it.
fn flusher_loop(inner: Weak<Inner>) {
    loop {
        let Some(i) = inner.upgrade() else { return };
        if !i.upkeep.tick(i.config.flush_interval) {
            return;
        }
        if !i.log.is_poisoned() {
            {
                let mut a = i.log.writer();
                let _ = i.log.flush(&mut a);
            }
            i.seal_pending();
            i.refresh_locator_or_warn();
        }
    }
}
