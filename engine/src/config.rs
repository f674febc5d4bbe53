//! Engine settings and per-call options.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::format::blob_header::BLOB_HEADER_LEN;
use crate::format::record::{MAX_FRAME_LEN, MIN_FRAME_LEN};

/// When a write is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// When the record is in the engine's write buffer. It reaches the page cache when the
    /// buffer fills, within `flush_interval`, or on `sync`; a crash may lose it.
    None,
    /// After an fdatasync that covers the record. Concurrent writers share one fdatasync
    /// (group commit); the leader waits `batch_window` first so more writers can join.
    #[default]
    Batch,
    /// After an fdatasync that covers the record, started at once (no batching window).
    /// It may still share an fdatasync that was already running or that another writer starts.
    Sync,
}

/// A setting's name that is none of its choices (`durability = "fast"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {got:?} ({choices})")]
pub struct UnknownChoice {
    pub what: &'static str,
    pub got: String,
    pub choices: &'static str,
}

impl UnknownChoice {
    pub fn new(what: &'static str, got: &str, choices: &'static str) -> UnknownChoice {
        UnknownChoice {
            what,
            got: got.to_string(),
            choices,
        }
    }
}

impl std::str::FromStr for Durability {
    type Err = UnknownChoice;
    fn from_str(s: &str) -> Result<Self, UnknownChoice> {
        match s {
            "none" => Ok(Durability::None),
            "batch" => Ok(Durability::Batch),
            "sync" => Ok(Durability::Sync),
            other => Err(UnknownChoice::new(
                "durability",
                other,
                "none, batch or sync",
            )),
        }
    }
}

/// How the engine issues file IO (see `io::open_device`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoKind {
    /// `pread` / `pwrite` / `fdatasync` system calls.
    #[default]
    Pread,
    /// Reads copy from a read-only memory map of each file; writes and syncs as `Pread`.
    Mmap,
    /// Reads, writes and fdatasyncs through io_uring (falls back to `Pread`, with a warning,
    /// where the kernel refuses io_uring).
    Uring,
}

impl IoKind {
    /// The name `FromStr` accepts.
    pub fn name(self) -> &'static str {
        match self {
            IoKind::Pread => "pread",
            IoKind::Mmap => "mmap",
            IoKind::Uring => "uring",
        }
    }
}

impl std::str::FromStr for IoKind {
    type Err = UnknownChoice;
    fn from_str(s: &str) -> Result<Self, UnknownChoice> {
        match s {
            "pread" => Ok(IoKind::Pread),
            "mmap" => Ok(IoKind::Mmap),
            "uring" => Ok(IoKind::Uring),
            other => Err(UnknownChoice::new("io kind", other, "pread, mmap or uring")),
        }
    }
}

/// Where the index of sealed blobs lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndexMode {
    /// Sealed blobs answer from sorted index files: the key locator (which blobs may hold a
    /// key, ~3.3 bytes per key) and the first key of every index page stay in memory, a
    /// lookup reads one 4 KiB page of the blob that holds the key (and of another for ~3 %
    /// of lookups). The active blob's keys stay in memory.
    #[default]
    Sorted,
    /// Every key in memory (about 44 bytes per key): the fastest reads.
    Memory,
}

impl IndexMode {
    /// The name `FromStr` accepts.
    pub fn name(self) -> &'static str {
        match self {
            IndexMode::Sorted => "sorted",
            IndexMode::Memory => "memory",
        }
    }
}

impl std::str::FromStr for IndexMode {
    type Err = UnknownChoice;
    fn from_str(s: &str) -> Result<Self, UnknownChoice> {
        match s {
            "sorted" => Ok(IndexMode::Sorted),
            "memory" => Ok(IndexMode::Memory),
            other => Err(UnknownChoice::new("index mode", other, "sorted or memory")),
        }
    }
}

/// Options for one write.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions {
    /// Compress with Snappy; `None` uses `Config::compress`.
    pub compress: Option<bool>,
    /// `None` uses `Config::durability`.
    pub durability: Option<Durability>,
    /// The record's timestamp; `None` stamps it with the current time. A copy of a value
    /// made elsewhere (hand-over, repair) keeps the timestamp of its original.
    pub timestamp_ns: Option<u64>,
    /// Write only if the (key, column)'s newest record — value or tombstone, where the
    /// store still knows it — is older than this write's timestamp; otherwise nothing is
    /// written and the write fails with `NotNewer`. How copies between nodes never put an
    /// older value over a newer write.
    pub only_if_newer: bool,
}

impl WriteOptions {
    pub fn durability(d: Durability) -> Self {
        WriteOptions {
            durability: Some(d),
            ..Self::default()
        }
    }

    /// A copy of a record stamped `timestamp_ns`, stored only if newer than what is there.
    pub fn copy_if_newer(timestamp_ns: u64) -> Self {
        WriteOptions {
            timestamp_ns: Some(timestamp_ns),
            only_if_newer: true,
            ..Self::default()
        }
    }

    /// The condition the write carries: its timestamp, if it must be newer.
    pub fn newer_than_stored(&self, now: impl FnOnce() -> u64) -> (u64, Option<u64>) {
        let ts = self.timestamp_ns.unwrap_or_else(now);
        (ts, self.only_if_newer.then_some(ts))
    }
}

/// A byte range of a value: `size: None` reads to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Range {
    pub offset: u64,
    pub size: Option<u64>,
}

impl Range {
    /// The whole value.
    pub fn all() -> Self {
        Range::default()
    }

    /// `size` bytes from `offset` (fewer if the value ends first).
    pub fn new(offset: u64, size: u64) -> Self {
        Range {
            offset,
            size: Some(size),
        }
    }

    /// Resolves against a value of `len` bytes: `offset > len` is an error, the end is clamped.
    pub fn resolve(&self, len: u64) -> Result<(u64, u64)> {
        if self.offset > len {
            return Err(Error::RangeOutOfBounds {
                offset: self.offset,
                len,
            });
        }
        let avail = len - self.offset;
        Ok((self.offset, self.size.map_or(avail, |s| s.min(avail))))
    }
}

/// Engine configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// A blob is sealed and a new one started once it would grow past this (bytes, ≤ 4 GiB).
    pub max_blob_size: u64,
    /// ... or once it holds this many records.
    pub max_blob_records: u64,
    /// Logical bytes per frame (power of two, 4 KiB – 16 MiB).
    pub frame_len: u32,
    /// Compress writes that do not say otherwise.
    pub compress: bool,
    /// Durability of writes that do not say otherwise.
    pub durability: Durability,
    /// Appends are gathered in a buffer of this size before one `pwrite`.
    pub write_buffer_size: usize,
    /// A background thread flushes the write buffer at least this often.
    pub flush_interval: Duration,
    /// How long a `batch` group-commit leader waits for more writers before syncing.
    pub batch_window: Duration,
    /// Sealed blobs with at least this fraction of garbage are defragmented.
    pub defrag_garbage_ratio: f64,
    /// Defragmentation copies at most this many bytes per second (0: unthrottled).
    pub defrag_bytes_per_sec: u64,
    /// Defragment automatically this often (`None`: only on demand).
    pub defrag_interval: Option<Duration>,
    /// How file IO is issued (`Engine::open` only; `open_on` takes a ready device).
    pub io: IoKind,
    /// Where sealed blobs' keys are indexed.
    pub index: IndexMode,
    /// Free bytes new values leave on the device, for removes and defragmentation: a write
    /// that would go below is refused (`DiskFull`).
    pub reserve_bytes: u64,
    /// Re-check every sealed record's checksums this often (`None`: never).
    pub scrub_interval: Option<Duration>,
    /// Scrubbing reads at most this many bytes per second (0: unthrottled).
    pub scrub_bytes_per_sec: u64,
    /// Memory for small records read recently (`record_cache`; 0: none).
    pub record_cache_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_blob_size: 256 << 20,
            max_blob_records: 4 << 20,
            frame_len: 64 << 10,
            compress: false,
            durability: Durability::Batch,
            write_buffer_size: 1 << 20,
            flush_interval: Duration::from_millis(100),
            batch_window: Duration::from_micros(50),
            defrag_garbage_ratio: 0.5,
            defrag_bytes_per_sec: 64 << 20,
            defrag_interval: Some(Duration::from_secs(600)),
            io: IoKind::Pread,
            index: IndexMode::Sorted,
            reserve_bytes: 16 << 20,
            scrub_interval: Some(Duration::from_secs(24 * 3600)),
            scrub_bytes_per_sec: 8 << 20,
            record_cache_bytes: 64 << 20,
        }
    }
}

/// Blob offsets are stored as u32 in the in-memory index.
pub const MAX_BLOB_SIZE: u64 = u32::MAX as u64;

impl Config {
    /// Checks every setting against its allowed range.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidConfig(m));
        if self.max_blob_size <= BLOB_HEADER_LEN as u64 || self.max_blob_size > MAX_BLOB_SIZE {
            return bad(format!(
                "max_blob_size {} not in 33..={MAX_BLOB_SIZE}",
                self.max_blob_size
            ));
        }
        if self.max_blob_records == 0 {
            return bad("max_blob_records must be at least 1".into());
        }
        if !self.frame_len.is_power_of_two()
            || !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&self.frame_len)
        {
            return bad(format!(
                "frame_len {} must be a power of two in 4 KiB..=16 MiB",
                self.frame_len
            ));
        }
        if self.flush_interval.is_zero() {
            return bad("flush_interval must be above zero".into());
        }
        if !(0.0..=1.0).contains(&self.defrag_garbage_ratio) {
            return bad(format!(
                "defrag_garbage_ratio {} not in 0..=1",
                self.defrag_garbage_ratio
            ));
        }
        if self.defrag_interval.is_some_and(|d| d.is_zero()) {
            return bad("defrag_interval must be above zero (or none)".into());
        }
        if self.write_buffer_size == 0 || self.write_buffer_size > 256 << 20 {
            return bad(format!(
                "write_buffer_size {} not in 1..=256 MiB",
                self.write_buffer_size
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_rules_past_the_end() {
        assert_eq!(Range::all().resolve(10).ok(), Some((0, 10)));
        assert_eq!(Range::new(4, 3).resolve(10).ok(), Some((4, 3)));
        assert_eq!(
            Range::new(8, 100).resolve(10).ok(),
            Some((8, 2)),
            "clamped to the end"
        );
        assert_eq!(
            Range::new(10, 5).resolve(10).ok(),
            Some((10, 0)),
            "at the end: empty"
        );
        assert!(matches!(
            Range::new(11, 1).resolve(10),
            Err(Error::RangeOutOfBounds {
                offset: 11,
                len: 10
            })
        ));
    }

    #[test]
    fn io_kinds_parse_by_name() {
        for kind in [IoKind::Pread, IoKind::Mmap, IoKind::Uring] {
            assert_eq!(kind.name().parse::<IoKind>(), Ok(kind));
        }
        assert_eq!(Config::default().io, IoKind::Pread);
        assert!("aio".parse::<IoKind>().is_err());
    }

    #[test]
    fn default_config_is_valid_and_bad_values_are_refused() {
        assert!(Config::default().validate().is_ok());
        let c = Config {
            frame_len: 5000,
            ..Config::default()
        };
        assert!(c.validate().is_err());
        let c = Config {
            max_blob_size: 1 << 40,
            ..Config::default()
        };
        assert!(c.validate().is_err());
        let c = Config {
            flush_interval: Duration::ZERO,
            ..Config::default()
        };
        assert!(c
            .validate()
            .is_err_and(|e| e.to_string().contains("flush_interval")));
        let c = Config {
            defrag_garbage_ratio: 1.5,
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }
}
