//! The workloads, their default sizes and the resolved parameters of one run.

use std::time::Duration;

use ringblob_engine::{Durability, IndexMode, IoKind};

use super::cli::{EngineArgs, WorkloadArg};

/// One concrete workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Many small puts (default 1,000,000 × 100 B).
    SmallPuts,
    /// Fewer large puts (default 20,000 × 64 KiB).
    LargePuts,
    /// Sequential 1 MiB puts (default 1,024 × 1 MiB): the engine's large-write bandwidth.
    SeqWrites,
    /// Uniform random gets after a reopen (default 1,000,000 keys × 100 B).
    PointGets,
    /// Time to reopen a store of N keys (default 1,000,000 × 100 B).
    Open,
    /// YCSB-B: 95 % reads / 5 % updates, Zipfian (theta 0.99), for `--seconds`.
    YcsbB,
    /// Online defragmentation (ringblob only; default 200,000 keys × 1 KiB, each written
    /// three times into 16 MiB blobs): defrag throughput and point-get latency while idle
    /// and during it. Not in [`Workload::ALL`].
    Defrag,
    /// Resident memory per key of reopening a store of N keys (default 1,000,000 × 32 B)
    /// spread over [`DEFAULT_INDEX_MEMORY_BLOBS`] sealed blobs (ringblob only, not in
    /// [`Workload::ALL`]).
    IndexMemory,
    /// Point-get hits and misses with the keys (default 1,000,000 × 32 B) spread over each of
    /// `--blobs` sealed blobs (ringblob only, not in [`Workload::ALL`]).
    SealedGets,
    /// Appends (default 20,000 × 4 KiB) to 8 MiB values, natively against rewriting them
    /// whole (ringblob only, not in [`Workload::ALL`]).
    Appends,
}

/// Sealed blobs of the index-memory workload unless `--blobs` says.
pub const DEFAULT_INDEX_MEMORY_BLOBS: u32 = 128;
/// Sealed-blob counts of the sealed-gets workload unless `--blobs` says.
pub const DEFAULT_SEALED_GETS_BLOBS: [u32; 3] = [1, 10, 100];

impl Workload {
    /// The workloads `--workload all` runs, in order (every one but [`Workload::Defrag`],
    /// which only ringblob can run and which runs only when named).
    pub const ALL: [Workload; 6] = [
        Workload::SmallPuts,
        Workload::LargePuts,
        Workload::SeqWrites,
        Workload::PointGets,
        Workload::Open,
        Workload::YcsbB,
    ];

    /// The workloads `arg` selects.
    pub fn selected(arg: WorkloadArg) -> Vec<Workload> {
        match arg {
            WorkloadArg::SmallPuts => vec![Workload::SmallPuts],
            WorkloadArg::LargePuts => vec![Workload::LargePuts],
            WorkloadArg::SeqWrites => vec![Workload::SeqWrites],
            WorkloadArg::PointGets => vec![Workload::PointGets],
            WorkloadArg::Open => vec![Workload::Open],
            WorkloadArg::YcsbB => vec![Workload::YcsbB],
            WorkloadArg::Defrag => vec![Workload::Defrag],
            WorkloadArg::IndexMemory => vec![Workload::IndexMemory],
            WorkloadArg::SealedGets => vec![Workload::SealedGets],
            WorkloadArg::Appends => vec![Workload::Appends],
            WorkloadArg::All => Self::ALL.to_vec(),
        }
    }

    /// The name used on the command line and in the output.
    pub fn name(self) -> &'static str {
        match self {
            Workload::SmallPuts => "small-puts",
            Workload::LargePuts => "large-puts",
            Workload::SeqWrites => "seq-writes",
            Workload::PointGets => "point-gets",
            Workload::Open => "open",
            Workload::YcsbB => "ycsb-b",
            Workload::Defrag => "defrag",
            Workload::IndexMemory => "index-memory",
            Workload::SealedGets => "sealed-gets",
            Workload::Appends => "appends",
        }
    }

    /// Whether only ringblob can run it (`--compare` is ignored).
    pub fn ringblob_only(self) -> bool {
        matches!(
            self,
            Workload::Defrag | Workload::IndexMemory | Workload::SealedGets | Workload::Appends
        )
    }

    /// The sealed-blob counts to measure: one run per element. `[0]` (the engine's own
    /// rotation) for workloads that do not spread keys over a chosen number of blobs.
    pub fn blob_counts(self, blobs: Option<&[u32]>) -> anyhow::Result<Vec<u32>> {
        let counts = match (self, blobs) {
            (Workload::IndexMemory, Some(&[b])) => vec![b],
            (Workload::IndexMemory, Some(_)) => {
                anyhow::bail!("index-memory takes one --blobs number")
            }
            (Workload::IndexMemory, None) => vec![DEFAULT_INDEX_MEMORY_BLOBS],
            (Workload::SealedGets, Some(list)) if !list.is_empty() => list.to_vec(),
            (Workload::SealedGets, _) => DEFAULT_SEALED_GETS_BLOBS.to_vec(),
            (_, Some(_)) => anyhow::bail!("--blobs applies to index-memory and sealed-gets only"),
            (_, None) => vec![0],
        };
        Ok(counts)
    }

    fn default_count(self) -> u64 {
        match self {
            Workload::LargePuts => 20_000,
            Workload::SeqWrites => 1024,
            Workload::Defrag => 200_000,
            Workload::Appends => 20_000,
            _ => 1_000_000,
        }
    }

    fn default_value_size(self) -> usize {
        match self {
            Workload::LargePuts => 64 << 10,
            Workload::SeqWrites => 1 << 20,
            Workload::Defrag => 1 << 10,
            Workload::Appends => 4096,
            Workload::IndexMemory | Workload::SealedGets => 32,
            _ => 100,
        }
    }
}

/// A workload with every parameter resolved.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub workload: Workload,
    /// Keys written (puts) or held by the prepared store (gets, open, ycsb-b).
    pub count: u64,
    pub value_size: usize,
    pub threads: usize,
    pub durability: Durability,
    /// ringblob's IO path.
    pub io: IoKind,
    /// Where ringblob indexes sealed blobs.
    pub index: IndexMode,
    /// ringblob's record cache (`None`: the engine's default).
    pub record_cache_mb: Option<u64>,
    /// Sealed blobs to spread the keys over (index-memory, sealed-gets; 0 for the others).
    pub blobs: u32,
    /// How long ycsb-b runs.
    pub duration: Duration,
}

impl Params {
    /// Resolves `workload` against the flags; `blobs` is the first of its
    /// [`Workload::blob_counts`].
    pub fn new(workload: Workload, args: &EngineArgs) -> anyhow::Result<Params> {
        let count = args.count.unwrap_or(workload.default_count());
        if count == 0 || count > u64::from(u32::MAX) {
            anyhow::bail!("--count {count} must be in 1..={}", u32::MAX);
        }
        if !(args.seconds.is_finite() && args.seconds > 0.0) {
            anyhow::bail!("--seconds {} must be a positive number", args.seconds);
        }
        let blob_counts = workload.blob_counts(args.blobs.as_deref())?;
        if let Some(b) = blob_counts.iter().find(|&&b| u64::from(b) > count) {
            anyhow::bail!("--blobs {b} is more blobs than the {count} keys can fill");
        }
        Ok(Params {
            workload,
            count,
            value_size: args.value_size.unwrap_or(workload.default_value_size()),
            threads: args.threads as usize,
            durability: args.durability,
            io: args.io,
            index: args.index,
            record_cache_mb: args.record_cache_mb,
            blobs: blob_counts.first().copied().unwrap_or(0),
            duration: Duration::from_secs_f64(args.seconds),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defrag_runs_only_when_named() {
        assert!(!Workload::ALL.contains(&Workload::Defrag));
        assert!(!Workload::selected(WorkloadArg::All).contains(&Workload::Defrag));
        assert_eq!(
            Workload::selected(WorkloadArg::Defrag),
            vec![Workload::Defrag]
        );
        assert_eq!(Workload::Defrag.name(), "defrag");
        assert_eq!(
            (
                Workload::Defrag.default_count(),
                Workload::Defrag.default_value_size()
            ),
            (200_000, 1024)
        );
    }

    #[test]
    fn blob_counts_per_workload() -> anyhow::Result<()> {
        assert_eq!(Workload::SealedGets.blob_counts(None)?, [1, 10, 100]);
        assert_eq!(Workload::SealedGets.blob_counts(Some(&[3, 7]))?, [3, 7]);
        assert_eq!(Workload::IndexMemory.blob_counts(None)?, [128]);
        assert_eq!(Workload::IndexMemory.blob_counts(Some(&[200]))?, [200]);
        assert!(Workload::IndexMemory.blob_counts(Some(&[1, 2])).is_err());
        assert_eq!(Workload::PointGets.blob_counts(None)?, [0]);
        assert!(Workload::PointGets.blob_counts(Some(&[5])).is_err());
        for w in [Workload::IndexMemory, Workload::SealedGets] {
            assert!(w.ringblob_only() && !Workload::ALL.contains(&w));
        }
        Ok(())
    }
}
