//! The machine's own limit for point gets: a loop of 4 KiB `pread`s at random 4 KiB-aligned
//! offsets of the files a ringblob point-gets run just read, as many reads with as many
//! threads, in the same run. ringblob's point-gets row carries its ratio to this one
//! (`raw_pread_ratio`): a get costs an index probe plus one `pread` of the record, so the
//! pread loop is the ceiling on the same file system, page cache and CPU.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::data::SplitMix64;
use super::parallel::{run_threads, share};
use super::report::Row;
use super::workload::Workload;

const READ: u64 = 4096;

/// `reads` random 4 KiB reads over the regular files under `dir` (weighted by size), on
/// `threads` threads, as a `raw-pread` row.
pub fn measure(dir: &Path, reads: u64, threads: usize) -> Result<Row> {
    let files = data_files(dir)?;
    let total: u64 = files.iter().map(|(_, len)| len / READ).sum();
    if total == 0 {
        bail!("no data under {} to read", dir.display());
    }
    // Which (file, offset) each read takes: chosen before the clock starts.
    let mut rng = SplitMix64::new(0x7072_6561_6421);
    let plan: Vec<(usize, u64)> = (0..reads)
        .map(|_| locate(&files, rng.below(total)))
        .collect();
    let start = Instant::now();
    run_threads(threads, |t| {
        let mut buf = vec![0u8; READ as usize];
        let range = share(reads, threads, t);
        for &(f, block) in &plan[range.start as usize..range.end as usize] {
            files[f]
                .0
                .read_exact_at(&mut buf, block * READ)
                .context("raw pread")?;
        }
        Ok(())
    })?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(Row {
        engine: "raw-pread".into(),
        workload: Workload::PointGets.name().into(),
        ops: reads,
        seconds,
        ops_per_sec: reads as f64 / seconds,
        mb_per_sec: (reads * READ) as f64 / seconds / 1e6,
        threads: Some(threads),
        value_size: Some(READ as usize),
        ..Row::default()
    })
}

/// The file and block of the `n`th 4 KiB block of all the files.
fn locate(files: &[(File, u64)], mut n: u64) -> (usize, u64) {
    for (i, (_, len)) in files.iter().enumerate() {
        let blocks = len / READ;
        if n < blocks {
            return (i, n);
        }
        n -= blocks;
    }
    (0, 0)
}

/// The regular files under `dir` (not descending), open, with their sizes.
fn data_files(dir: &Path) -> Result<Vec<(File, u64)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        let len = std::fs::metadata(&path)?.len();
        if path.is_file() && len >= READ {
            let f = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
            files.push((f, len));
        }
    }
    Ok(files)
}
