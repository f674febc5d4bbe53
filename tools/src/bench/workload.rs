//! The workloads, their default sizes and the resolved parameters of one run.

use std::time::Duration;

use ringblob_engine::{Durability, IoKind};

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
}

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
        }
    }

    fn default_count(self) -> u64 {
        match self {
            Workload::LargePuts => 20_000,
            Workload::SeqWrites => 1024,
            Workload::Defrag => 200_000,
            _ => 1_000_000,
        }
    }

    fn default_value_size(self) -> usize {
        match self {
            Workload::LargePuts => 64 << 10,
            Workload::SeqWrites => 1 << 20,
            Workload::Defrag => 1 << 10,
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
    /// How long ycsb-b runs.
    pub duration: Duration,
}

impl Params {
    /// Resolves `workload` against the flags.
    pub fn new(workload: Workload, args: &EngineArgs) -> anyhow::Result<Params> {
        let count = args.count.unwrap_or(workload.default_count());
        if count == 0 || count > u64::from(u32::MAX) {
            anyhow::bail!("--count {count} must be in 1..={}", u32::MAX);
        }
        if !(args.seconds.is_finite() && args.seconds > 0.0) {
            anyhow::bail!("--seconds {} must be a positive number", args.seconds);
        }
        Ok(Params {
            workload,
            count,
            value_size: args.value_size.unwrap_or(workload.default_value_size()),
            threads: args.threads as usize,
            durability: args.durability,
            io: args.io,
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
}
