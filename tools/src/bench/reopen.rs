//! The resident memory an `Engine::open` adds, measured in a fresh process: the hidden
//! `ringblob-bench reopen-probe` subcommand opens a data directory and prints its RSS before
//! and after the open as one JSON line; [`probe`] starts it and reads that line. A fresh
//! process, so nothing the loading process allocated (keys, values, freed heap the
//! allocator keeps) is counted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ringblob_engine::{Config, Engine, IndexMode, IoKind};
use serde::{Deserialize, Serialize};

use super::child::own_executable;
use super::rss;

/// Flags of `ringblob-bench reopen-probe`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// The data directory to open.
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long, default_value = "sorted")]
    pub index: IndexMode,
    #[arg(long, default_value = "pread")]
    pub io: IoKind,
    /// Records per blob (only matters for writes, which the probe does not do).
    #[arg(long)]
    pub max_blob_records: Option<u64>,
}

/// What the probe measured.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Probe {
    /// `VmRSS` right before and right after `Engine::open`.
    pub rss_before_bytes: u64,
    pub rss_after_bytes: u64,
    /// `RssAnon` (VmRSS without file-backed pages such as the code) at the same moments.
    pub anon_before_bytes: u64,
    pub anon_after_bytes: u64,
    /// Wall time of `Engine::open`.
    pub open_seconds: f64,
    /// From `Engine::stats()` after the open.
    pub keys: u64,
    pub blobs: u64,
    pub index_bytes: u64,
}

impl Probe {
    /// VmRSS added by the open (0 if it shrank).
    pub fn rss_delta(&self) -> u64 {
        self.rss_after_bytes.saturating_sub(self.rss_before_bytes)
    }

    /// RssAnon added by the open (0 if it shrank).
    pub fn anon_delta(&self) -> u64 {
        self.anon_after_bytes.saturating_sub(self.anon_before_bytes)
    }
}

/// The probe side: open, measure, close, print one JSON line.
pub fn run_probe(args: &ProbeArgs) -> Result<()> {
    let defaults = Config::default();
    let config = Config {
        io: args.io,
        index: args.index,
        defrag_interval: None,
        max_blob_records: args.max_blob_records.unwrap_or(defaults.max_blob_records),
        ..defaults
    };
    let probe = measure_open(&args.dir, config)?;
    println!("{}", serde_json::to_string(&probe)?);
    Ok(())
}

/// Opens `dir` in this process, reading the resident memory around `Engine::open`, then
/// closes it. Meaningful only in a process that has done nothing else yet.
pub fn measure_open(dir: &Path, config: Config) -> Result<Probe> {
    let rss_before_bytes = rss::current_bytes();
    let anon_before_bytes = rss::anon_bytes();
    let start = Instant::now();
    let engine = Engine::open(dir, config)
        .with_context(|| format!("opening ringblob in {}", dir.display()))?;
    let open_seconds = start.elapsed().as_secs_f64();
    let rss_after_bytes = rss::current_bytes();
    let anon_after_bytes = rss::anon_bytes();
    let stats = engine.stats();
    engine.close().context("closing after the probe")?;
    Ok(Probe {
        rss_before_bytes,
        rss_after_bytes,
        anon_before_bytes,
        anon_after_bytes,
        open_seconds,
        keys: stats.keys,
        blobs: stats.blobs,
        index_bytes: stats.index_bytes,
    })
}

/// The parent side: runs the probe on `dir` in a child process and parses its line.
pub fn probe(dir: &Path, config: &Config) -> Result<Probe> {
    let exe = own_executable()?;
    let out = Command::new(exe)
        .arg("reopen-probe")
        .arg("--dir")
        .arg(dir)
        .args(["--index", config.index.name(), "--io", config.io.name()])
        .args(["--max-blob-records", &config.max_blob_records.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("starting the reopen probe")?;
    if !out.status.success() {
        bail!(
            "the reopen probe failed ({}); see the log above",
            out.status
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("the reopen probe printed no result: {stdout:?}"))?;
    serde_json::from_str(line).with_context(|| format!("parsing the probe's line {line:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::data::{self, ValuePool};
    use crate::bench::sealed_load;
    use crate::bench::workload::{Params, Workload};
    use ringblob_engine::Durability;
    use std::time::Duration;

    #[test]
    fn reopening_sealed_blobs_finds_every_key_and_counts_the_index() -> Result<()> {
        let mut index_bytes = Vec::new();
        for index in [IndexMode::Sorted, IndexMode::Memory] {
            let dir = tempfile::tempdir()?;
            let p = Params {
                workload: Workload::IndexMemory,
                count: 20_000,
                value_size: 32,
                threads: 1,
                durability: Durability::None,
                io: IoKind::Pread,
                index,
                record_cache_mb: None,
                blobs: 20,
                duration: Duration::from_secs(1),
            };
            let keys = data::keys(p.count);
            let loaded = sealed_load::load(dir.path(), &p, &keys, &ValuePool::new(32))?;
            assert_eq!(loaded.sealed_blobs, 20);
            let probe = measure_open(dir.path(), sealed_load::config(&p))?;
            assert_eq!(probe.keys, p.count, "{index:?}");
            assert_eq!(probe.blobs, 21, "20 sealed blobs and the empty active one");
            assert!(probe.rss_after_bytes > 0 && probe.anon_after_bytes > 0);
            index_bytes.push(probe.index_bytes);
        }
        // Every key in memory costs more than filters and fences.
        assert!(
            index_bytes[0] > 0 && index_bytes[1] > index_bytes[0],
            "{index_bytes:?}"
        );
        Ok(())
    }
}
