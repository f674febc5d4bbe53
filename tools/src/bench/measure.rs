//! The timed part of each workload, for any [`Store`].

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Result};
use ringblob_engine::{Durability, Key};

use super::data::{SplitMix64, ValuePool};
use super::parallel::{run_threads, share};
use super::rss;
use super::store::{EngineKind, Figures, Store};
use super::workload::Params;
use super::zipf::{Zipfian, YCSB_THETA};

/// What one workload run measured.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub ops: u64,
    pub seconds: f64,
    pub close_seconds: Option<f64>,
    pub figures: Figures,
    pub base_rss: u64,
    pub peak_rss: u64,
    pub reads: Option<u64>,
    pub updates: Option<u64>,
}

/// Resets the peak RSS and remembers the RSS at that moment.
fn reset_rss() -> u64 {
    rss::reset_peak();
    rss::current_bytes()
}

/// `keys.len()` puts split over the client threads; the close is timed separately.
pub fn puts(
    kind: EngineKind,
    dir: &Path,
    p: &Params,
    keys: &[Key],
    values: &ValuePool,
) -> Result<Measured> {
    let store = kind.open(dir, p, p.durability)?;
    let base_rss = reset_rss();
    let n = keys.len() as u64;
    let start = Instant::now();
    run_threads(p.threads, |t| {
        let range = share(n, p.threads, t);
        let mine = &keys[range.start as usize..range.end as usize];
        for (i, key) in range.zip(mine) {
            store.put(key, values.value(i))?;
        }
        Ok(())
    })?;
    let seconds = start.elapsed().as_secs_f64();
    let figures = store.figures();
    let close_start = Instant::now();
    store.close()?;
    Ok(Measured {
        ops: n,
        seconds,
        close_seconds: Some(close_start.elapsed().as_secs_f64()),
        figures,
        base_rss,
        peak_rss: rss::peak_bytes(),
        ..Measured::default()
    })
}

/// Loads `keys` (untimed, durability none) and closes, leaving a store to reopen.
fn prepare(
    kind: EngineKind,
    dir: &Path,
    p: &Params,
    keys: &[Key],
    values: &ValuePool,
) -> Result<()> {
    let store = kind.open(dir, p, Durability::None)?;
    store.load(keys, values)?;
    store.close()
}

/// Checks a get found a value of the expected size.
fn check_get(found: Option<usize>, i: u64, value_size: usize) -> Result<()> {
    match found {
        Some(len) if len == value_size => Ok(()),
        other => bail!("key #{i}: expected a {value_size}-byte value, got {other:?}"),
    }
}

/// `keys.len()` uniform random gets (seeded) after a reopen.
pub fn point_gets(
    kind: EngineKind,
    dir: &Path,
    p: &Params,
    keys: &[Key],
    values: &ValuePool,
) -> Result<Measured> {
    prepare(kind, dir, p, keys, values)?;
    let store = kind.open(dir, p, p.durability)?;
    let n = keys.len() as u64;
    let mut rng = SplitMix64::new(0x6765_7473);
    // The keys asked for, in the order asked, laid out before the clock starts (as the
    // raw-pread baseline lays out its offsets): a server finds each key in the request it
    // just read, not at a random place of a 32 MB table — picking `keys[i]` there cost
    // every get a cache and TLB miss that no store pays in service.
    let asked: Vec<(u64, Key)> = (0..n)
        .map(|_| rng.below(n))
        .map(|i| (i, keys[i as usize]))
        .collect();
    let base_rss = reset_rss();
    let start = Instant::now();
    run_threads(p.threads, |t| {
        let range = share(n, p.threads, t);
        for (i, key) in &asked[range.start as usize..range.end as usize] {
            check_get(store.get(key)?, *i, p.value_size)?;
        }
        Ok(())
    })?;
    let seconds = start.elapsed().as_secs_f64();
    let figures = store.figures();
    store.close()?;
    Ok(Measured {
        ops: n,
        seconds,
        figures,
        base_rss,
        peak_rss: rss::peak_bytes(),
        ..Measured::default()
    })
}

/// Time to reopen a store holding `keys.len()` keys; ops = keys the engine reports loaded
/// (peers cannot say cheaply, so for them the number prepared).
pub fn open(
    kind: EngineKind,
    dir: &Path,
    p: &Params,
    keys: &[Key],
    values: &ValuePool,
) -> Result<Measured> {
    prepare(kind, dir, p, keys, values)?;
    let base_rss = reset_rss();
    let start = Instant::now();
    let store = kind.open(dir, p, p.durability)?;
    let seconds = start.elapsed().as_secs_f64();
    let figures = store.figures();
    store.close()?;
    let ops = figures.keys.unwrap_or(keys.len() as u64);
    if ops != keys.len() as u64 {
        tracing::warn!(
            engine = kind.name(),
            loaded = ops,
            prepared = keys.len(),
            "reopen lost keys"
        );
    }
    Ok(Measured {
        ops,
        seconds,
        figures,
        base_rss,
        peak_rss: rss::peak_bytes(),
        ..Measured::default()
    })
}

/// Per-thread YCSB-B counts.
#[derive(Debug, Default, Clone, Copy)]
struct Mix {
    reads: u64,
    updates: u64,
}

/// Ops between two looks at the clock.
const CLOCK_EVERY: u32 = 32;

/// YCSB-B for `p.duration`: 95 % gets, 5 % updates, Zipfian keys, after a reopen.
pub fn ycsb_b(
    kind: EngineKind,
    dir: &Path,
    p: &Params,
    keys: &[Key],
    values: &ValuePool,
) -> Result<Measured> {
    prepare(kind, dir, p, keys, values)?;
    let store = kind.open(dir, p, p.durability)?;
    let zipf = Zipfian::new(keys.len() as u64, YCSB_THETA);
    let base_rss = reset_rss();
    let start = Instant::now();
    let deadline = start + p.duration;
    let mixes = run_threads(p.threads, |t| {
        ycsb_client(store.as_ref(), &zipf, t, deadline, keys, values)
    })?;
    let seconds = start.elapsed().as_secs_f64();
    let figures = store.figures();
    store.close()?;
    let reads = mixes.iter().map(|m| m.reads).sum::<u64>();
    let updates = mixes.iter().map(|m| m.updates).sum::<u64>();
    Ok(Measured {
        ops: reads + updates,
        seconds,
        figures,
        base_rss,
        peak_rss: rss::peak_bytes(),
        reads: Some(reads),
        updates: Some(updates),
        ..Measured::default()
    })
}

/// One YCSB-B client thread; updates write a different value than the loaded one.
fn ycsb_client(
    store: &dyn Store,
    zipf: &Zipfian,
    thread: usize,
    deadline: Instant,
    keys: &[Key],
    values: &ValuePool,
) -> Result<Mix> {
    let mut rng = SplitMix64::new(0x7963_7362 ^ (thread as u64).wrapping_mul(0x9e37_79b9));
    let mut mix = Mix::default();
    let n = keys.len() as u64;
    while Instant::now() < deadline {
        for _ in 0..CLOCK_EVERY {
            let i = zipf.next(&mut rng);
            // i < n = keys.len(): Zipfian::next stays in range.
            let key = &keys[i as usize];
            if rng.below(100) < 5 {
                store.put(key, values.value(i + n))?;
                mix.updates += 1;
            } else {
                check_get(store.get(key)?, i, values.value_size())?;
                mix.reads += 1;
            }
        }
    }
    Ok(mix)
}
