//! `ringblob-bench remote`: load over the wire against a running node, like
//! `redis-benchmark`: N connections, each keeping `--pipeline` requests in flight, latency
//! measured per request from the write of its batch to the arrival of its reply.
//!
//! Two workloads start a cluster of their own instead (`ringblob-node` processes on free
//! 127.0.0.1 ports, killed at the end): `forwarding` (requests to a key's owner against
//! requests to the other node, which forwards them) and `rebalance` (the hand-over of key
//! ranges to a node that joins).

mod big_values;
mod cluster;
mod conn;
mod find;
mod forwarding;
mod huge_object;
mod latency;
mod load;
mod nodes;
mod pattern;
mod probe;
mod rebalance;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::ValueEnum;
use ringblob_engine::Key;
use ringblob_protocol::node::process_cpu_secs;

pub use latency::Latencies;
use load::{Load, Target};

/// `--workload` values of the remote bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RemoteWorkload {
    Puts,
    Gets,
    /// 50 % gets, 50 % puts.
    Mixed,
    /// Starts a 2-node cluster, preloads `--keys`, then GETs each key from its owner and from
    /// the other node (which forwards) in alternating `--rounds` of `--count` requests
    /// [defaults: 10,000 keys × 1 KiB]. Ignores `--addr`.
    Forwarding,
    /// Starts one node, loads `--keys` × `--value-size`, starts a second node that joins
    /// through it and times the hand-over of its ranges [defaults: 4,096 × 64 KiB = 256 MiB].
    /// Ignores `--addr`.
    Rebalance,
    /// Starts one node, writes `--streams` values of `--value-size` (chunked objects), then
    /// reads each back slowly (`--read-mb-per-sec`) while as many clients upload one value
    /// each; reports the node's idle and peak RSS and this process's [default: 8 × 2 GiB].
    /// Ignores `--addr`.
    BigValues,
    /// Starts one node and round-trips one object of `--value-size` through the `ringblob`
    /// CLI (put from a pipe, the last MiB, a whole get), checking every byte; reports the
    /// CLI's peak RSS and throughput of each step [default: 20 GiB]. Ignores `--addr`.
    HugeObject,
    /// Starts `--nodes` nodes in one group, writes `--keys` objects with 4 to 6 random
    /// attributes, then times queries with 1, 2 and 3 fixed properties planned against a
    /// scan of every node (`--rounds` of each) and the delay of `--notes` notifications
    /// [default: 12 nodes, 100,000 objects]. Ignores `--addr`.
    Find,
}

impl RemoteWorkload {
    /// Default (keys, value size).
    fn sizes(self) -> (u64, usize) {
        match self {
            RemoteWorkload::Puts | RemoteWorkload::Gets | RemoteWorkload::Mixed => (100_000, 100),
            RemoteWorkload::Forwarding => (10_000, 1024),
            RemoteWorkload::Rebalance => (4096, 64 << 10),
            RemoteWorkload::BigValues => (8, 2 << 30),
            RemoteWorkload::HugeObject => (1, 20 << 30),
            RemoteWorkload::Find => (100_000, 16),
        }
    }
}

/// Flags of `ringblob-bench remote`.
#[derive(Debug, Clone, clap::Args)]
pub struct RemoteArgs {
    /// Node address.
    #[arg(long, default_value = "127.0.0.1:1025")]
    pub addr: String,
    #[arg(long, value_enum)]
    pub workload: RemoteWorkload,
    /// Concurrent connections.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub connections: u32,
    /// Requests each connection keeps in flight.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub pipeline: u32,
    /// Requests in total (forwarding: per mode and round).
    #[arg(long, default_value_t = 200_000)]
    pub count: u64,
    /// Distinct keys (gets read keys the run first writes) [default: 100,000; forwarding
    /// 10,000; rebalance 4,096].
    #[arg(long)]
    pub keys: Option<u64>,
    /// Value size in bytes [default: 100; forwarding 1024; rebalance 65536; big-values 2 GiB;
    /// huge-object 20 GiB].
    #[arg(long)]
    pub value_size: Option<usize>,
    /// big-values: readers, and as many uploaders.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub streams: u32,
    /// big-values: how fast each reader takes its value (MB/s).
    #[arg(long, default_value_t = 32)]
    pub read_mb_per_sec: u64,
    /// big-values: the chunk size of chunked objects (bytes).
    #[arg(long, default_value_t = ringblob_protocol::client::object::DEFAULT_CHUNK_SIZE)]
    pub chunk_size: u64,
    /// Durability of puts: none, batch, sync (default: the node's).
    #[arg(long)]
    pub durability: Option<String>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// forwarding, rebalance: the `ringblob-node` to start [default: the one next to this
    /// executable].
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// forwarding, rebalance: where the nodes' data directories go (a fresh sub-directory,
    /// removed at the end) [default: the system temp dir].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// forwarding: rounds of owner and forwarded requests, alternating which goes first.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// forwarding, rebalance: the nodes' `rebalance_mb_per_sec` (0: unthrottled; the node's
    /// own default is 64).
    #[arg(long, default_value_t = 0)]
    pub rebalance_mb_per_sec: u64,
    /// find: nodes in the cluster.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(2..=64))]
    pub nodes: u32,
    /// find: writes timed for notification latency.
    #[arg(long, default_value_t = 1000)]
    pub notes: u32,
    /// Threads of the load generator's runtime [default: one per core]. 1 drives every
    /// connection from one thread, as `redis-benchmark` does by default.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub client_threads: Option<u32>,
    #[command(flatten)]
    pub security: crate::client_args::SecurityArgs,
}

/// What the cluster workloads need to start their nodes.
pub struct ClusterSetup {
    pub node_bin: PathBuf,
    pub dir: PathBuf,
    pub keys: u64,
    pub rebalance_mb_per_sec: u64,
}

/// The bench's keys `0..n`.
fn bench_keys(n: u64) -> Vec<[u8; 32]> {
    (0..n)
        .map(|i| Key::from_name(b"bench", &i.to_le_bytes()).0)
        .collect()
}

/// What one run measured.
pub struct Outcome {
    pub ops: u64,
    pub seconds: f64,
    pub latencies: Latencies,
    pub errors: u64,
    /// Per connection: connecting, TLS and the handshake (authentication included), µs.
    pub connect: Latencies,
}

/// The load generator's runtime: `threads` workers (1: a current-thread runtime, no
/// hand-offs between workers), or one per core.
fn load_runtime(threads: Option<u32>) -> Result<tokio::runtime::Runtime> {
    let mut b = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n as usize);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    Ok(b.enable_all().build()?)
}

/// Runs the remote workload and prints its row.
pub fn run_remote(args: &RemoteArgs) -> Result<()> {
    let rt = load_runtime(args.client_threads)?;
    let (default_keys, default_size) = args.workload.sizes();
    let keys = args.keys.unwrap_or(default_keys).max(1);
    let load = Load {
        connections: args.connections,
        pipeline: args.pipeline,
        value_size: args.value_size.unwrap_or(default_size),
        durability: conn::durability(args.durability.as_deref())?,
        security: args.security.security()?,
    };
    let cluster = || -> Result<ClusterSetup> {
        Ok(ClusterSetup {
            node_bin: nodes::node_binary(args.node_bin.as_deref())?,
            dir: args.dir.clone().unwrap_or_else(std::env::temp_dir),
            keys,
            rebalance_mb_per_sec: args.rebalance_mb_per_sec,
        })
    };
    rt.block_on(async {
        match args.workload {
            RemoteWorkload::Forwarding => {
                let row = forwarding::run(&cluster()?, &load, args.count, args.rounds).await?;
                print_cluster_row(args, &row)
            }
            RemoteWorkload::Rebalance => {
                let row = rebalance::run(&cluster()?, &load).await?;
                print_cluster_row(args, &row)
            }
            RemoteWorkload::BigValues => {
                let b = big_values::BigValues {
                    streams: args.streams,
                    value_size: load.value_size as u64,
                    chunk_size: args.chunk_size,
                    read_bytes_per_sec: args.read_mb_per_sec.max(1) * 1_000_000,
                    timeout: std::time::Duration::from_secs(300),
                };
                let row = big_values::run(&cluster()?, &b, &load.security).await?;
                print_cluster_row(args, &row)
            }
            RemoteWorkload::HugeObject => {
                let row = huge_object::run(&cluster()?, load.value_size as u64).await?;
                print_cluster_row(args, &row)
            }
            RemoteWorkload::Find => {
                let b = find::FindBench {
                    nodes: args.nodes,
                    rounds: args.rounds,
                    notes: args.notes,
                };
                let row = find::run(&cluster()?, &b).await?;
                print_cluster_row(args, &row)
            }
            w => {
                let target = Target {
                    addr: args.addr.clone(),
                    keys: Arc::new(bench_keys(keys)),
                };
                let targets = std::slice::from_ref(&target);
                if w != RemoteWorkload::Puts {
                    load::drive(&load, targets, RemoteWorkload::Puts, keys)
                        .await
                        .context("prefilling keys")?;
                }
                let before = conn::node_stat(&args.addr, &load.security)
                    .await
                    .unwrap_or_default();
                let own_before = process_cpu_secs();
                let outcome = load::drive(&load, targets, w, args.count).await?;
                let client_cpu = process_cpu_secs() - own_before;
                let node = conn::node_stat(&args.addr, &load.security)
                    .await
                    .unwrap_or_default();
                let cpu = |s: &serde_json::Value| s["cpu_secs"].as_f64();
                let node_cpu = cpu(&node).zip(cpu(&before)).map(|(a, b)| a - b);
                print_row(args, &load, &outcome, (&node, node_cpu), client_cpu)
            }
        }
    })
}

/// A cluster workload's row: the JSON, or it pretty-printed.
fn print_cluster_row(args: &RemoteArgs, row: &serde_json::Value) -> Result<()> {
    if args.json {
        println!("{row}");
    } else {
        println!("{}", serde_json::to_string_pretty(row)?);
    }
    Ok(())
}

/// `node_cpu`: the node's CPU seconds (user + system) over the measured requests, from its
/// `STAT` before and after; `client_cpu`: this load generator's over the same requests.
fn print_row(
    args: &RemoteArgs,
    load: &Load,
    o: &Outcome,
    (node, node_cpu): (&serde_json::Value, Option<f64>),
    client_cpu: f64,
) -> Result<()> {
    let ops_per_sec = o.ops as f64 / o.seconds;
    let cpu_us_per_op = node_cpu.map(|secs| secs * 1e6 / o.ops.max(1) as f64);
    let client_us_per_op = client_cpu * 1e6 / o.ops.max(1) as f64;
    let payload = load.value_size as f64;
    let row = serde_json::json!({
        "engine": "ringblob",
        "workload": format!("remote-{:?}", args.workload).to_lowercase(),
        "ops": o.ops,
        "seconds": o.seconds,
        "ops_per_sec": ops_per_sec,
        "mb_per_sec": ops_per_sec * payload / 1e6,
        "peak_rss_bytes": node["peak_rss_bytes"],
        "bytes_on_disk": node["backend"]["bytes_on_disk"],
        "p50_us": o.latencies.percentile(50.0),
        "p99_us": o.latencies.percentile(99.0),
        "p999_us": o.latencies.percentile(99.9),
        "connect_p50_us": o.connect.percentile(50.0),
        "tls": load.security.tls.is_some(),
        "auth": load.security.credentials.get().is_some(),
        "connections": args.connections,
        "pipeline": args.pipeline,
        "value_size": load.value_size,
        "errors": o.errors,
        "backend": node["backend"]["kind"],
        "node_cpu_secs": node_cpu,
        "node_cpu_us_per_op": cpu_us_per_op,
        "client_cpu_us_per_op": client_us_per_op,
        "client_threads": args.client_threads,
    });
    if args.json {
        println!("{row}");
    } else {
        println!(
            "{:<14} {:>10} ops {:>8.2} s {:>12.0} ops/s  p50 {:>6} µs  p99 {:>6} µs  p999 {:>6} µs  errors {}",
            row["workload"].as_str().unwrap_or_default(),
            o.ops,
            o.seconds,
            ops_per_sec,
            o.latencies.percentile(50.0),
            o.latencies.percentile(99.0),
            o.latencies.percentile(99.9),
            o.errors
        );
    }
    Ok(())
}
