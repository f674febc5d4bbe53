//! The `sealed-gets` workload (ringblob only): point gets of keys that live in sealed blobs,
//! hits and misses, for one number of sealed blobs per run (`--blobs`; the parent runs one
//! child per number).
//!
//! 1. Load (untimed): `count` keys spread over `blobs` sealed blobs, the active blob left
//!    empty, closed ([`super::sealed_load`]); then reopen, so every lookup goes through the
//!    sealed index `--index` chooses (page cache warm: the files were just written).
//! 2. Hits: `count` gets of uniformly random loaded keys over `--threads` threads, every value
//!    checked for its length.
//! 3. Misses: `count` gets of random 32-byte keys that were never written (each must be
//!    `NotFound`).
//!
//! Each get is timed on its own for the percentiles; `ops_per_sec` is the gets of the phase
//! over its wall time, so it includes the two clock reads per get (~50 ns).

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ringblob_engine::{Engine, Error, Key, Range};

use super::data::{SplitMix64, ValuePool};
use super::defrag::ReadLatency;
use super::disk;
use super::parallel::{run_threads, share};
use super::report::Row;
use super::rss;
use super::sealed_load;
use super::workload::Params;

/// Which gets a phase does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    Hit,
    Miss,
}

impl Lookup {
    fn name(self) -> &'static str {
        match self {
            Lookup::Hit => "hit",
            Lookup::Miss => "miss",
        }
    }
}

/// Runs the workload in the empty directory `dir`: a hit row and a miss row.
pub fn rows(dir: &Path, p: &Params, keys: &[Key], values: &ValuePool) -> Result<Vec<Row>> {
    let loaded = sealed_load::load(dir, p, keys, values)?;
    let engine = Engine::open(dir, sealed_load::config(p))
        .with_context(|| format!("reopening ringblob in {}", dir.display()))?;
    rss::reset_peak();
    let base_rss = rss::current_bytes();
    let mut rows = Vec::new();
    for lookup in [Lookup::Hit, Lookup::Miss] {
        tracing::info!(
            lookup = lookup.name(),
            blobs = loaded.sealed_blobs,
            "measuring"
        );
        let lat = phase(&engine, p, keys, lookup)?;
        let per_sec = if lat.seconds > 0.0 {
            lat.reads as f64 / lat.seconds
        } else {
            0.0
        };
        rows.push(Row {
            engine: "ringblob".into(),
            workload: p.workload.name().into(),
            ops: lat.reads,
            seconds: lat.seconds,
            ops_per_sec: per_sec,
            mb_per_sec: if lookup == Lookup::Hit {
                per_sec * p.value_size as f64 / 1e6
            } else {
                0.0
            },
            threads: Some(p.threads),
            value_size: Some(p.value_size),
            io: Some(p.io.name().to_string()),
            index: Some(p.index.name().to_string()),
            base_rss_bytes: Some(base_rss),
            count: Some(p.count),
            blobs: Some(loaded.sealed_blobs),
            lookup: Some(lookup.name().to_string()),
            p50_us: Some(lat.p50_us),
            p99_us: Some(lat.p99_us),
            load_seconds: Some(loaded.seconds),
            ..Row::default()
        });
    }
    let stats = engine.stats();
    let peak_rss = rss::peak_bytes();
    engine.close().context("closing after the gets")?;
    let bytes_on_disk = disk::size_of_dir(dir)?;
    for row in &mut rows {
        row.peak_rss_bytes = peak_rss;
        row.bytes_on_disk = bytes_on_disk;
        row.keys = Some(stats.keys);
        row.stats_index_bytes_per_key = Some(stats.index_bytes as f64 / p.count as f64);
    }
    Ok(rows)
}

/// `p.count` gets of one kind over `p.threads` threads; merged latencies.
fn phase(engine: &Engine, p: &Params, keys: &[Key], lookup: Lookup) -> Result<ReadLatency> {
    let start = Instant::now();
    let samples = run_threads(p.threads, |t| {
        let ops = share(p.count, p.threads, t).count();
        let seed = 0x7365_616c ^ (t as u64).wrapping_mul(0x9e37_79b9) ^ lookup as u64;
        getter(engine, keys, p.value_size, lookup, ops, seed)
    })?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(ReadLatency::from_samples(samples.concat(), seconds))
}

/// One client thread: `ops` gets, each timed (nanoseconds).
fn getter(
    engine: &Engine,
    keys: &[Key],
    value_size: usize,
    lookup: Lookup,
    ops: usize,
    seed: u64,
) -> Result<Vec<u32>> {
    let mut rng = SplitMix64::new(seed);
    let n = keys.len() as u64;
    let mut ns = Vec::with_capacity(ops);
    for _ in 0..ops {
        let (i, key) = match lookup {
            Lookup::Hit => {
                let i = rng.below(n);
                (Some(i), keys[i as usize])
            }
            Lookup::Miss => (None, random_key(&mut rng)),
        };
        let start = Instant::now();
        let got = engine.read(&key, Range::all());
        let took = start.elapsed().as_nanos();
        match (got, i) {
            (Ok(v), Some(_)) if v.len() == value_size => {}
            (Err(Error::NotFound(_)), None) => {}
            (Ok(v), i) => bail!("key #{i:?} ({key}): unexpected {}-byte value", v.len()),
            (Err(e), i) => return Err(e).with_context(|| format!("key #{i:?} ({key})")),
        }
        ns.push(took.min(u128::from(u32::MAX)) as u32);
    }
    Ok(ns)
}

/// A key no benchmark writes (the odds that 256 random bits hit a SHA-256 of ours are nil).
fn random_key(rng: &mut SplitMix64) -> Key {
    let mut k = [0u8; 32];
    for w in k.chunks_exact_mut(8) {
        w.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    Key(k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::data;
    use crate::bench::workload::Workload;
    use ringblob_engine::{Durability, IndexMode, IoKind};
    use std::time::Duration;

    fn params(index: IndexMode, blobs: u32) -> Params {
        Params {
            workload: Workload::SealedGets,
            count: 3_000,
            value_size: 32,
            threads: 2,
            durability: Durability::None,
            io: IoKind::Pread,
            index,
            record_cache_mb: None,
            blobs,
            duration: Duration::from_secs(1),
        }
    }

    #[test]
    fn hits_and_misses_over_sealed_blobs_in_both_index_modes() -> Result<()> {
        for index in [IndexMode::Sorted, IndexMode::Memory] {
            let dir = tempfile::tempdir()?;
            let p = params(index, 10);
            let keys = data::keys(p.count);
            let values = ValuePool::new(p.value_size);
            let rows = rows(dir.path(), &p, &keys, &values)?;
            let kinds: Vec<Option<&str>> = rows.iter().map(|r| r.lookup.as_deref()).collect();
            assert_eq!(kinds, [Some("hit"), Some("miss")]);
            for r in &rows {
                assert_eq!(r.blobs, Some(10), "{r:?}");
                assert_eq!(r.ops, p.count);
                assert_eq!(r.keys, Some(p.count));
                assert_eq!(r.index.as_deref(), Some(index.name()));
                assert!(r.p99_us >= r.p50_us && r.ops_per_sec > 0.0, "{r:?}");
            }
        }
        Ok(())
    }
}
