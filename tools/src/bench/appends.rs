//! The `appends` workload (ringblob only): appends to large values, natively (patch records,
//! `docs/FORMAT.md` §6.7) against rewriting the value whole (what a store without native
//! appends does, and what ringblob did before them), in the same run.
//!
//! 1. Prepare (untimed): [`VALUES`] values of [`BASE_LEN`] bytes each.
//! 2. Native: `count` appends of `value_size` bytes, round-robin over the values, one
//!    thread, at `--durability`; bytes written are the growth of the blob files.
//! 3. Rewrite: appends of the same size done as read whole + write whole, onto fresh values
//!    of the same length, for `count / 100` appends (at least 20): at 8 MiB a rewrite costs
//!    milliseconds, so the full count would take minutes.
//!
//! Every value is read back whole at the end and checked against its expected length and
//! checksum.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ringblob_engine::{Config, Engine, Key, Range, WriteOptions};

use super::disk;
use super::workload::Params;

/// Values appended to.
pub const VALUES: usize = 8;
/// Their length before the appends.
pub const BASE_LEN: usize = 8 << 20;

/// What the appends workload measured.
pub struct AppendsMeasured {
    pub appends: u64,
    pub seconds: f64,
    /// Blob bytes written by the native appends.
    pub bytes_written: u64,
    pub rewrites: u64,
    pub rewrite_seconds: f64,
    pub rewrite_bytes_written: u64,
}

fn key(i: usize) -> Key {
    Key::from_name(b"bench-appends", &i.to_le_bytes())
}

fn fill(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Runs the workload in `dir` (fresh).
pub fn run(dir: &Path, p: &Params) -> Result<AppendsMeasured> {
    let config = Config {
        defrag_interval: None,
        io: p.io,
        index: p.index,
        durability: p.durability,
        ..Config::default()
    };
    let engine = Engine::open(dir, config)
        .with_context(|| format!("opening ringblob in {}", dir.display()))?;
    let opts = WriteOptions::default();
    let base = fill(BASE_LEN, 1);
    for i in 0..2 * VALUES {
        engine.write(&key(i), &base, opts)?;
    }
    engine.sync()?;
    let chunk = fill(p.value_size, 2);

    let before = disk::size_of_dir(dir)?;
    let started = Instant::now();
    for n in 0..p.count {
        engine.append_column(&key(n as usize % VALUES), 0, &chunk, opts)?;
    }
    engine.sync()?;
    let seconds = started.elapsed().as_secs_f64();
    let bytes_written = disk::size_of_dir(dir)?.saturating_sub(before);

    let rewrites = (p.count / 100).max(20);
    let before = disk::size_of_dir(dir)?;
    let started = Instant::now();
    for n in 0..rewrites {
        let k = key(VALUES + n as usize % VALUES);
        let mut v = engine.read(&k, Range::all())?;
        v.extend_from_slice(&chunk);
        engine.write(&k, &v, opts)?;
    }
    engine.sync()?;
    let rewrite_seconds = started.elapsed().as_secs_f64();
    let rewrite_bytes_written = disk::size_of_dir(dir)?.saturating_sub(before);

    for i in 0..VALUES {
        let count = p.count as usize;
        let appended = count / VALUES + usize::from(i < count % VALUES);
        let want = BASE_LEN + appended * chunk.len();
        let got = engine.lookup(&key(i))?;
        if got.size != want as u64 || engine.read(&key(i), Range::all())?.len() != want {
            bail!(
                "value {i}: {} bytes after the appends, want {want}",
                got.size
            );
        }
    }
    engine.close()?;
    Ok(AppendsMeasured {
        appends: p.count,
        seconds,
        bytes_written,
        rewrites,
        rewrite_seconds,
        rewrite_bytes_written,
    })
}
