//! The `defrag` workload (ringblob only): online defragmentation of a store that is about
//! two thirds garbage, and what it does to point-get latency.
//!
//! 1. Prepare (untimed): `count` keys written three times each (durability none, no
//!    compression), the rounds interleaved, into 16 MiB blobs, so many sealed blobs each
//!    hold ~2/3 superseded records; `rotate()` seals the last one, then wait until every
//!    blob but the active one is sealed (index file written), which defragmentation
//!    requires.
//! 2. Idle: `threads` reader threads do uniform random point gets for [`IDLE_READS`],
//!    timing each get.
//! 3. During: the same readers run while another thread runs
//!    `defrag_with(min_garbage_ratio 0.3, unthrottled)`, until it returns.
//!
//! Every get is checked against the value of the last round. The background defragmentation
//! schedule is off (`defrag_interval: None`), so only the measured run defragments.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use ringblob_engine::{
    Config, DefragOptions, DefragReport, Durability, Engine, Key, Range, WriteOptions,
};

use super::data::{SplitMix64, ValuePool};
use super::disk;
use super::parallel::run_threads;
use super::rss;
use super::workload::Params;

/// Blob size of the prepared store: small, so there are many sealed blobs.
pub const MAX_BLOB_SIZE: u64 = 16 << 20;
/// Times each key is written (the last round is live: 1 − 1/ROUNDS of it is garbage).
pub const ROUNDS: u64 = 3;
/// The defragmentation run measured.
pub const OPTIONS: DefragOptions = DefragOptions {
    min_garbage_ratio: 0.3,
    max_bytes_per_sec: 0,
};
/// How long the readers run before defragmentation starts.
pub const IDLE_READS: Duration = Duration::from_secs(2);
/// Longest wait for the maintenance thread to seal the prepared blobs.
const SEAL_TIMEOUT: Duration = Duration::from_secs(60);
/// Gets between two looks at the stop condition.
const CHECK_EVERY: u32 = 16;

/// What the defrag workload measured.
#[derive(Debug, Clone)]
pub struct DefragMeasured {
    pub report: DefragReport,
    /// Wall-clock seconds of `defrag_with`.
    pub seconds: f64,
    pub idle: ReadLatency,
    pub during: ReadLatency,
    /// Sizes of the files in the directory after preparation and right after the defrag.
    pub bytes_on_disk_before: u64,
    pub bytes_on_disk_after: u64,
    pub base_rss: u64,
    pub peak_rss: u64,
    pub close_seconds: f64,
    pub keys: u64,
    pub index_bytes: u64,
}

/// Point-get latency of one phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadLatency {
    pub reads: u64,
    pub seconds: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

impl ReadLatency {
    /// Summarises per-get latencies (nanoseconds) collected over `seconds`.
    pub fn from_samples(mut ns: Vec<u32>, seconds: f64) -> Self {
        ns.sort_unstable();
        ReadLatency {
            reads: ns.len() as u64,
            seconds,
            p50_us: percentile(&ns, 50.0) / 1e3,
            p99_us: percentile(&ns, 99.0) / 1e3,
        }
    }
}

/// Nearest-rank percentile `p` (0–100) of sorted `v`; 0 when empty.
fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // In integer arithmetic (p in tenths of a percent), so 99 % of 1000 is rank 990 exactly.
    let tenths = (p * 10.0).round() as usize;
    let rank = (tenths * sorted.len()).div_ceil(1000);
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Runs the workload in `dir` (empty) and closes the engine.
pub fn run(dir: &Path, p: &Params, keys: &[Key], values: &ValuePool) -> Result<DefragMeasured> {
    let config = Config {
        max_blob_size: MAX_BLOB_SIZE,
        defrag_interval: None,
        io: p.io,
        index: p.index,
        ..Config::default()
    };
    let engine = Engine::open(dir, config)
        .with_context(|| format!("opening ringblob in {}", dir.display()))?;
    prepare(&engine, keys, values)?;
    let bytes_on_disk_before = disk::size_of_dir(dir)?;

    rss::reset_peak();
    let base_rss = rss::current_bytes();
    let idle_until = Instant::now() + IDLE_READS;
    let idle = read_phase(&engine, p.threads, keys, values, &|| {
        Instant::now() >= idle_until
    })?;

    let done = AtomicBool::new(false);
    let (defrag, during) = std::thread::scope(|s| {
        let defrag = s.spawn(|| {
            let start = Instant::now();
            let result = engine.defrag_with(OPTIONS);
            let seconds = start.elapsed().as_secs_f64();
            done.store(true, Ordering::Release);
            result.map(|r| (r, seconds))
        });
        let during = read_phase(&engine, p.threads, keys, values, &|| {
            done.load(Ordering::Acquire)
        });
        let defrag = defrag
            .join()
            .map_err(|_| anyhow!("the defrag thread panicked"));
        (defrag, during)
    });
    let (report, seconds) = defrag?.context("defragmenting")?;
    let during = during?;
    let peak_rss = rss::peak_bytes();
    let bytes_on_disk_after = disk::size_of_dir(dir)?;
    if report.blobs_rewritten.is_empty() {
        tracing::warn!(?report, "defragmentation rewrote no blob");
    }

    let stats = engine.stats();
    if stats.keys != keys.len() as u64 {
        bail!(
            "{} keys after defragmentation, expected {}",
            stats.keys,
            keys.len()
        );
    }
    let close_start = Instant::now();
    engine.close()?;
    Ok(DefragMeasured {
        report,
        seconds,
        idle,
        during,
        bytes_on_disk_before,
        bytes_on_disk_after,
        base_rss,
        peak_rss,
        close_seconds: close_start.elapsed().as_secs_f64(),
        keys: stats.keys,
        index_bytes: stats.index_bytes,
    })
}

/// Value of key `i` (of `n`) in write round `round`.
fn round_value(values: &ValuePool, n: u64, i: u64, round: u64) -> &[u8] {
    values.value(i + round * n)
}

/// Writes every key [`ROUNDS`] times, seals the last blob and waits until every blob but
/// the active one is sealed.
fn prepare(engine: &Engine, keys: &[Key], values: &ValuePool) -> Result<()> {
    tracing::info!(keys = keys.len(), rounds = ROUNDS, "writing");
    let opts = WriteOptions {
        compress: Some(false),
        durability: Some(Durability::None),
        ..WriteOptions::default()
    };
    // Staggered: step s writes key s (round 0), key s − 1 (round 1), key s − 2 (round 2),
    // so every blob holds the three rounds in equal parts and is ~2/3 garbage (one pass per
    // round would leave the first two thirds of the blobs all garbage, nothing to copy).
    let n = keys.len() as u64;
    for step in 0..n + ROUNDS - 1 {
        for round in 0..ROUNDS {
            let Some(i) = step.checked_sub(round).filter(|&i| i < n) else {
                continue;
            };
            engine.write(&keys[i as usize], round_value(values, n, i, round), opts)?;
        }
    }
    engine.rotate()?;
    let deadline = Instant::now() + SEAL_TIMEOUT;
    loop {
        let usage = engine.blob_usage();
        let unsealed = usage.iter().filter(|u| !u.sealed).count();
        if unsealed <= 1 {
            tracing::info!(
                blobs = usage.len(),
                reclaimable = usage.iter().map(|u| u.reclaimable_bytes).sum::<u64>(),
                "prepared"
            );
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{unsealed} blobs still unsealed after {SEAL_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `threads` readers doing uniform random point gets until `stop()`; merged latencies.
fn read_phase(
    engine: &Engine,
    threads: usize,
    keys: &[Key],
    values: &ValuePool,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<ReadLatency> {
    let start = Instant::now();
    let samples = run_threads(threads, |t| reader(engine, t, keys, values, stop))?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(ReadLatency::from_samples(samples.concat(), seconds))
}

/// One reader: per-get latency in nanoseconds; checks every value.
fn reader(
    engine: &Engine,
    thread: usize,
    keys: &[Key],
    values: &ValuePool,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<Vec<u32>> {
    let mut rng = SplitMix64::new(0x6465_6672 ^ (thread as u64).wrapping_mul(0x9e37_79b9));
    let n = keys.len() as u64;
    let mut ns = Vec::with_capacity(1 << 20);
    while !stop() {
        for _ in 0..CHECK_EVERY {
            let i = rng.below(n);
            let key = &keys[i as usize];
            let start = Instant::now();
            let got = engine.read(key, Range::all());
            let took = start.elapsed().as_nanos();
            let got = got.with_context(|| format!("reading key #{i}"))?;
            if got != round_value(values, n, i, ROUNDS - 1) {
                bail!("key #{i}: read back a value that is not its last one");
            }
            ns.push(took.min(u128::from(u32::MAX)) as u32);
        }
    }
    Ok(ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::data;
    use crate::bench::workload::Workload;
    use ringblob_engine::{IndexMode, IoKind};

    #[test]
    fn defragments_while_reading_the_latest_values() -> Result<()> {
        let dir = tempfile::tempdir()?;
        // 20,000 × 1 KiB × 3 rounds: four 16 MiB blobs, three sealed ones ~2/3 garbage.
        let p = Params {
            workload: Workload::Defrag,
            count: 20_000,
            value_size: 1024,
            threads: 1,
            durability: Durability::None,
            io: IoKind::Pread,
            index: IndexMode::Sorted,
            record_cache_mb: None,
            blobs: 0,
            duration: Duration::from_secs(1),
        };
        let keys = data::keys(p.count);
        let values = ValuePool::new(p.value_size);
        let m = run(dir.path(), &p, &keys, &values)?;
        assert!(m.report.blobs_rewritten.len() >= 3, "{:?}", m.report);
        assert!(m.report.records_copied > 10_000, "{:?}", m.report);
        assert!(m.report.bytes_reclaimed > m.report.bytes_copied);
        assert!(m.bytes_on_disk_after < m.bytes_on_disk_before);
        assert_eq!(m.keys, p.count);
        assert!(m.idle.reads > 0 && m.idle.p50_us > 0.0 && m.idle.p99_us >= m.idle.p50_us);
        assert!(m.seconds > 0.0);
        Ok(())
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=1000).collect();
        assert_eq!(percentile(&v, 50.0), 500.0);
        assert_eq!(percentile(&v, 99.0), 990.0);
        assert_eq!(percentile(&v, 100.0), 1000.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
        assert_eq!(percentile(&[7], 99.0), 7.0);
    }
}
