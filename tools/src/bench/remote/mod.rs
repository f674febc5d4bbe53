//! `ringblob-bench remote`: load over the wire against a running node, like
//! `redis-benchmark`: N connections, each keeping `--pipeline` requests in flight, latency
//! measured per request from the write of its batch to the arrival of its reply.

mod conn;
mod latency;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::ValueEnum;
use ringblob_engine::Key;

pub use latency::Latencies;

/// `--workload` values of the remote bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RemoteWorkload {
    Puts,
    Gets,
    /// 50 % gets, 50 % puts.
    Mixed,
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
    /// Requests in total.
    #[arg(long, default_value_t = 200_000)]
    pub count: u64,
    /// Distinct keys (gets read keys the run first writes).
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Durability of puts: none, batch, sync (default: the node's).
    #[arg(long)]
    pub durability: Option<String>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// What one run measured.
pub struct Outcome {
    pub ops: u64,
    pub seconds: f64,
    pub latencies: Latencies,
    pub errors: u64,
}

/// Runs the remote workload and prints its row.
pub fn run_remote(args: &RemoteArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let keys: Arc<Vec<[u8; 32]>> = Arc::new(
            (0..args.keys.max(1))
                .map(|i| Key::from_name(b"bench", &i.to_le_bytes()).0)
                .collect(),
        );
        if args.workload != RemoteWorkload::Puts {
            drive(args, keys.clone(), RemoteWorkload::Puts, args.keys)
                .await
                .context("prefilling keys")?;
        }
        let outcome = drive(args, keys, args.workload, args.count).await?;
        let node = conn::node_stat(&args.addr).await.unwrap_or_default();
        print_row(args, &outcome, &node)
    })
}

/// Spreads `count` requests over the connections and waits for them all.
async fn drive(
    args: &RemoteArgs,
    keys: Arc<Vec<[u8; 32]>>,
    w: RemoteWorkload,
    count: u64,
) -> Result<Outcome> {
    let conns = u64::from(args.connections);
    let start = Instant::now();
    let mut tasks = Vec::new();
    let mut first = 0;
    for c in 0..conns {
        let share = count / conns + u64::from(c < count % conns);
        let plan = conn::Plan {
            workload: w,
            first,
            count: share,
            pipeline: args.pipeline as usize,
            value_size: args.value_size,
            durability: conn::durability(args.durability.as_deref())?,
        };
        first += share;
        let (addr, keys) = (args.addr.clone(), keys.clone());
        tasks.push(tokio::spawn(
            async move { conn::run(&addr, &keys, plan).await },
        ));
    }
    let mut latencies = Latencies::default();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.context("connection task")??;
        latencies.merge(l);
        errors += e;
    }
    let seconds = start
        .elapsed()
        .as_secs_f64()
        .max(Duration::from_micros(1).as_secs_f64());
    Ok(Outcome {
        ops: latencies.len() as u64,
        seconds,
        latencies,
        errors,
    })
}

fn print_row(args: &RemoteArgs, o: &Outcome, node: &serde_json::Value) -> Result<()> {
    let ops_per_sec = o.ops as f64 / o.seconds;
    let payload = args.value_size as f64;
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
        "connections": args.connections,
        "pipeline": args.pipeline,
        "value_size": args.value_size,
        "errors": o.errors,
        "backend": node["backend"]["kind"],
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
