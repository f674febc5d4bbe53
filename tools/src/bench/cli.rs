//! Command-line flags.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use ringblob_engine::{Durability, IndexMode, IoKind};

use super::store::EngineKind;

/// ringblob load generator.
#[derive(Debug, Parser)]
#[command(name = "ringblob-bench", version = crate::VERSION, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Benchmark the embedded engine (and optionally fjall / redb) in this process.
    Engine(EngineArgs),
    /// Load a running node over the wire (connections × pipeline), with latency percentiles.
    Remote(super::remote::RemoteArgs),
    /// Internal (the index-memory workload): open a data directory in this fresh process and
    /// print, as JSON, the resident memory before and after `Engine::open`.
    #[command(hide = true)]
    ReopenProbe(super::reopen::ProbeArgs),
}

/// Flags of `ringblob-bench engine`.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// Scratch directory; each engine+workload gets a sub-directory, wiped before use.
    #[arg(long, default_value_os_t = std::env::temp_dir().join("ringblob-bench"))]
    pub dir: PathBuf,
    /// Which workload to run.
    #[arg(long, value_enum)]
    pub workload: WorkloadArg,
    /// Number of keys (overrides the workload's default).
    #[arg(long)]
    pub count: Option<u64>,
    /// Value size in bytes (overrides the workload's default).
    #[arg(long)]
    pub value_size: Option<usize>,
    /// Client threads sharing one engine (puts, point-gets, ycsb-b; defrag: reader threads).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub threads: u32,
    /// Also run the workload on these engines, e.g. `fjall,redb`.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub compare: Vec<Peer>,
    /// One JSON object per result line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Durability of each put / update: none, batch or sync.
    #[arg(long, default_value = "none")]
    pub durability: Durability,
    /// How ringblob issues file IO: pread, mmap or uring.
    #[arg(long, default_value = "pread")]
    pub io: IoKind,
    /// Where ringblob indexes sealed blobs' keys: sorted (on-disk sorted indexes, bloom
    /// filters in memory) or memory (every key in memory).
    #[arg(long, default_value = "sorted")]
    pub index: IndexMode,
    /// ringblob's record cache in MiB (the engine's default when absent; 0: none).
    #[arg(long)]
    pub record_cache_mb: Option<u64>,
    /// Sealed blobs the keys are spread over: index-memory takes one number (default 128),
    /// sealed-gets a list and measures each (default 1,10,100).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    pub blobs: Option<Vec<u32>>,
    /// Duration of the ycsb-b run in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Internal: measure one workload on this engine and print one JSON row. The parent runs
    /// every measurement in its own child process so peak RSS and heap state do not leak
    /// from one engine or workload into the next.
    #[arg(long, value_enum, hide = true)]
    pub child: Option<EngineKind>,
}

/// `--workload` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WorkloadArg {
    SmallPuts,
    LargePuts,
    SeqWrites,
    PointGets,
    Open,
    YcsbB,
    /// Online defragmentation of a store with ~2/3 garbage, with read latency before and
    /// during it (ringblob only; not part of `all`).
    Defrag,
    /// Resident memory per key of reopening a store whose keys all live in sealed blobs,
    /// measured in a fresh process (ringblob only; not part of `all`).
    IndexMemory,
    /// Point-get hits and misses against keys spread over 1, 10, 100 sealed blobs, with
    /// latency percentiles (ringblob only; not part of `all`).
    SealedGets,
    /// Appends of `--value-size` bytes (default 4096) to 8 MiB values, natively against
    /// rewriting the value whole (ringblob only; not part of `all`).
    Appends,
    All,
}

/// Engines that `--compare` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Peer {
    Fjall,
    Redb,
}

/// The lowercase name scripts and the JSON output use for a durability.
pub fn durability_name(d: Durability) -> &'static str {
    match d {
        Durability::None => "none",
        Durability::Batch => "batch",
        Durability::Sync => "sync",
    }
}
