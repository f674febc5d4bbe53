//! Choosing and configuring a backend: `backend = "blob" | "fs" | "mem"` plus options.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::blob::BlobBackend;
use crate::error::{Error, Result};
use crate::fs::FsBackend;
use crate::mem::MemBackend;

/// Which backend a node serves from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    #[default]
    Blob,
    Fs,
    Mem,
}

impl std::str::FromStr for BackendKind {
    type Err = ringblob_engine::UnknownChoice;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "blob" => Ok(BackendKind::Blob),
            "fs" => Ok(BackendKind::Fs),
            "mem" => Ok(BackendKind::Mem),
            other => Err(ringblob_engine::UnknownChoice::new(
                "backend",
                other,
                "blob, fs or mem",
            )),
        }
    }
}

/// Options of the blob engine backend (`[blob]` in the node's TOML file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlobOptions {
    pub max_blob_size: u64,
    pub max_blob_records: u64,
    pub frame_len: u32,
    /// Compress writes that do not say.
    pub compress: bool,
    /// "none" | "batch" | "sync": durability of writes that do not say.
    pub durability: String,
    pub write_buffer_size: usize,
    pub flush_interval_ms: u64,
    pub batch_window_us: u64,
    /// Sealed blobs with at least this fraction of garbage are defragmented.
    pub defrag_garbage_ratio: f64,
    /// Defragmentation copy rate limit in MB/s (0: unthrottled).
    pub defrag_mb_per_sec: u64,
    /// Defragment automatically this often, in seconds (0: only on demand).
    pub defrag_interval_secs: u64,
    /// "sorted": sealed blobs answer from sorted index files (about 3 bytes of RAM per key);
    /// "memory": every key in RAM (about 44 bytes per key), the fastest reads.
    pub index: String,
    /// "pread" | "mmap" | "uring": how the engine issues file IO.
    pub io: String,
    /// MiB new values leave free on the disk for removes and defragmentation; a write that
    /// would go below is refused `NO_SPACE`.
    pub reserve_mb: u64,
    /// Re-check every sealed record's checksums this often, in seconds (0: never).
    pub scrub_interval_secs: u64,
    /// Scrubbing reads at most this many MB/s (0: unthrottled).
    pub scrub_mb_per_sec: u64,
    /// MiB of memory for small records (up to 4 KiB) read recently, so hot keys are served
    /// without a system call (0: none).
    pub record_cache_mb: u64,
}

impl Default for BlobOptions {
    fn default() -> Self {
        let c = ringblob_engine::Config::default();
        BlobOptions {
            max_blob_size: c.max_blob_size,
            max_blob_records: c.max_blob_records,
            frame_len: c.frame_len,
            compress: c.compress,
            durability: "batch".into(),
            write_buffer_size: c.write_buffer_size,
            flush_interval_ms: c.flush_interval.as_millis() as u64,
            batch_window_us: c.batch_window.as_micros() as u64,
            defrag_garbage_ratio: c.defrag_garbage_ratio,
            defrag_mb_per_sec: c.defrag_bytes_per_sec >> 20,
            defrag_interval_secs: c.defrag_interval.map_or(0, |d| d.as_secs()),
            index: c.index.name().into(),
            io: c.io.name().into(),
            reserve_mb: c.reserve_bytes >> 20,
            scrub_interval_secs: c.scrub_interval.map_or(0, |d| d.as_secs()),
            scrub_mb_per_sec: c.scrub_bytes_per_sec >> 20,
            record_cache_mb: c.record_cache_bytes >> 20,
        }
    }
}

impl BlobOptions {
    /// The engine configuration these options describe.
    pub fn engine_config(&self) -> Result<ringblob_engine::Config> {
        let durability = self
            .durability
            .parse()
            .map_err(|e: ringblob_engine::UnknownChoice| Error::InvalidConfig(e.to_string()))?;
        let index = self
            .index
            .parse()
            .map_err(|e: ringblob_engine::UnknownChoice| Error::InvalidConfig(e.to_string()))?;
        let io = self
            .io
            .parse()
            .map_err(|e: ringblob_engine::UnknownChoice| Error::InvalidConfig(e.to_string()))?;
        let c = ringblob_engine::Config {
            max_blob_size: self.max_blob_size,
            max_blob_records: self.max_blob_records,
            frame_len: self.frame_len,
            compress: self.compress,
            durability,
            write_buffer_size: self.write_buffer_size,
            flush_interval: std::time::Duration::from_millis(self.flush_interval_ms),
            batch_window: std::time::Duration::from_micros(self.batch_window_us),
            defrag_garbage_ratio: self.defrag_garbage_ratio,
            defrag_bytes_per_sec: self.defrag_mb_per_sec << 20,
            defrag_interval: (self.defrag_interval_secs > 0)
                .then(|| std::time::Duration::from_secs(self.defrag_interval_secs)),
            index,
            io,
            reserve_bytes: self.reserve_mb << 20,
            scrub_interval: (self.scrub_interval_secs > 0)
                .then(|| std::time::Duration::from_secs(self.scrub_interval_secs)),
            scrub_bytes_per_sec: self.scrub_mb_per_sec << 20,
            record_cache_bytes: self.record_cache_mb.saturating_mul(1 << 20),
        };
        c.validate()?;
        Ok(c)
    }
}

/// Backend choice and options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackendConfig {
    pub backend: BackendKind,
    pub blob: BlobOptions,
    /// How long removes are remembered for conditional copies and repair, in seconds.
    pub remove_retention_secs: u64,
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            backend: BackendKind::default(),
            blob: BlobOptions::default(),
            remove_retention_secs: crate::remove_log::DEFAULT_REMOVE_RETENTION.as_secs(),
        }
    }
}

/// Opens the configured backend over `data_dir`.
pub fn open_backend(config: &BackendConfig, data_dir: &Path) -> Result<Arc<dyn Backend>> {
    let retention = std::time::Duration::from_secs(config.remove_retention_secs);
    Ok(match config.backend {
        BackendKind::Blob => {
            let engine = config.blob.engine_config()?;
            Arc::new(BlobBackend::open_with_retention(
                data_dir, engine, retention,
            )?)
        }
        BackendKind::Fs => Arc::new(FsBackend::open_with_retention(data_dir, retention)?),
        BackendKind::Mem => {
            let b = MemBackend::open_memory();
            b.remove_log().set_retention(retention);
            Arc::new(b)
        }
    })
}
