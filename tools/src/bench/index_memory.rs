//! The `index-memory` workload (ringblob only): how much resident memory reopening a store
//! costs per key when every key lives in a sealed blob.
//!
//! 1. Load (untimed): `count` keys spread over `--blobs` (default 128) sealed blobs, the
//!    active blob left empty, closed ([`super::sealed_load`]).
//! 2. Reopen in a fresh child process ([`super::reopen`]), reading `VmRSS` and `RssAnon`
//!    right before and right after `Engine::open`.
//!
//! `index_bytes_per_key` is the VmRSS the open added divided by `count`: everything the open
//! keeps (in sorted mode bloom filters, page fences and the global key filter; in memory mode
//! the hash table of every key) plus whatever else it left resident (allocator slack, thread
//! stacks, code paged in). `stats_index_bytes_per_key` is the engine's own count of its index
//! heap, `Engine::stats().index_bytes / count`.

use std::path::Path;

use anyhow::{bail, Result};
use ringblob_engine::Key;

use super::data::ValuePool;
use super::disk;
use super::reopen;
use super::report::Row;
use super::sealed_load;
use super::workload::Params;

/// Runs the workload in the empty directory `dir`; one row.
pub fn row(dir: &Path, p: &Params, keys: &[Key], values: &ValuePool) -> Result<Row> {
    let loaded = sealed_load::load(dir, p, keys, values)?;
    tracing::info!(index = p.index.name(), "reopening in a fresh process");
    let probe = reopen::probe(dir, &sealed_load::config(p))?;
    if probe.keys != p.count {
        bail!(
            "the reopened store holds {} keys, {} were loaded",
            probe.keys,
            p.count
        );
    }
    let per_key = |bytes: u64| bytes as f64 / p.count as f64;
    let bytes_on_disk = disk::size_of_dir(dir)?;
    Ok(Row {
        engine: "ringblob".into(),
        workload: p.workload.name().into(),
        ops: probe.keys,
        seconds: probe.open_seconds,
        ops_per_sec: if probe.open_seconds > 0.0 {
            probe.keys as f64 / probe.open_seconds
        } else {
            0.0
        },
        mb_per_sec: 0.0,
        peak_rss_bytes: probe.rss_after_bytes,
        bytes_on_disk,
        value_size: Some(p.value_size),
        io: Some(p.io.name().to_string()),
        index: Some(p.index.name().to_string()),
        keys: Some(probe.keys),
        count: Some(p.count),
        blobs: Some(loaded.sealed_blobs),
        open_seconds: Some(probe.open_seconds),
        load_seconds: Some(loaded.seconds),
        index_bytes_per_key: Some(per_key(probe.rss_delta())),
        stats_index_bytes_per_key: Some(per_key(probe.index_bytes)),
        anon_bytes_per_key: Some(per_key(probe.anon_delta())),
        rss_before_open_bytes: Some(probe.rss_before_bytes),
        rss_after_open_bytes: Some(probe.rss_after_bytes),
        ..Row::default()
    })
}
