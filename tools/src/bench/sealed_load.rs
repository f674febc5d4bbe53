//! A store whose keys all live in sealed blobs, for the index-memory and sealed-gets
//! workloads: `count` keys (value `i` for key `i`, durability none, no compression) spread
//! evenly over `blobs` blobs by rotating on the record count, the last one sealed with
//! `rotate`, so the active blob is empty, then closed (which writes every sorted index).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use ringblob_engine::config::MAX_BLOB_SIZE;
use ringblob_engine::{Config, Durability, Engine, Key, WriteOptions};

use super::data::ValuePool;
use super::workload::Params;

/// What loading produced.
#[derive(Debug, Clone, Copy)]
pub struct Loaded {
    /// Sealed blobs (every blob but the empty active one).
    pub sealed_blobs: u64,
    /// Seconds for the writes, the rotation and the close.
    pub seconds: f64,
}

/// Records per blob so that `count` keys fill `blobs` blobs (the last one may be short).
pub fn records_per_blob(count: u64, blobs: u32) -> u64 {
    count.div_ceil(u64::from(blobs.max(1))).max(1)
}

/// The engine settings of both the load and the reopen: rotation by record count only (the
/// size limit at its maximum), no background defragmentation, `--io` and `--index`.
pub fn config(p: &Params) -> Config {
    Config {
        max_blob_records: records_per_blob(p.count, p.blobs),
        max_blob_size: MAX_BLOB_SIZE,
        defrag_interval: None,
        io: p.io,
        index: p.index,
        ..Config::default()
    }
}

/// Loads `keys` into the empty directory `dir` and closes the engine.
pub fn load(dir: &Path, p: &Params, keys: &[Key], values: &ValuePool) -> Result<Loaded> {
    let start = Instant::now();
    let engine = Engine::open(dir, config(p))
        .with_context(|| format!("opening ringblob in {}", dir.display()))?;
    let opts = WriteOptions {
        compress: Some(false),
        durability: Some(Durability::None),
        ..WriteOptions::default()
    };
    for (i, key) in (0u64..).zip(keys) {
        engine
            .write(key, values.value(i), opts)
            .with_context(|| format!("writing key #{i}"))?;
    }
    engine.rotate().context("sealing the last blob")?;
    let blobs = engine.stats().blobs;
    engine.close().context("closing after the load")?;
    let loaded = Loaded {
        sealed_blobs: blobs.saturating_sub(1),
        seconds: start.elapsed().as_secs_f64(),
    };
    tracing::info!(
        keys = keys.len(),
        sealed_blobs = loaded.sealed_blobs,
        seconds = loaded.seconds,
        "loaded"
    );
    if loaded.sealed_blobs != u64::from(p.blobs) {
        tracing::warn!(
            wanted = p.blobs,
            got = loaded.sealed_blobs,
            "the keys did not divide into the requested number of blobs"
        );
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_per_blob_fills_the_requested_blobs() {
        assert_eq!(records_per_blob(1_000_000, 100), 10_000);
        assert_eq!(records_per_blob(1_000_000, 1), 1_000_000);
        // 7,813 × 127 < 1,000,000 ≤ 7,813 × 128: 128 blobs, the last one short.
        assert_eq!(records_per_blob(1_000_000, 128), 7_813);
        assert_eq!(records_per_blob(5, 10), 1);
    }
}
