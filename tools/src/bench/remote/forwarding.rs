//! `--workload forwarding`: a two-node cluster of its own; the same GETs sent to each key's
//! owner and to the other node (which forwards them), in alternating rounds, with the
//! forwarded ÷ owner latency and throughput ratios.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::cluster::{self, GROUP};
use super::load::{self, Load, Target};
use super::nodes::{NodeProc, NodeSpec, Scratch};
use super::{bench_keys, ClusterSetup, Latencies, Outcome, RemoteWorkload};

/// The first target for forwarded ÷ owner p50 latency (kept in the row; the one that
/// holds on a 2-vCPU VM is stated against the probe, `add_probe`).
const TARGET_RATIO: f64 = 1.3;
/// Pipelined forwarded throughput ÷ owner throughput to reach.
const THROUGHPUT_TARGET: f64 = 0.8;

/// The mode of one round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Each request to its key's owner.
    Owner,
    /// Each request to the node that does not own its key.
    Forwarded,
}

/// Sums of one mode over all rounds.
#[derive(Default)]
struct Totals {
    ops: u64,
    seconds: f64,
    errors: u64,
    latencies: Latencies,
    forwarded: u64,
    /// CPU seconds the nodes used, together.
    node_cpu_secs: f64,
    round_p50s: Vec<u32>,
}

impl Totals {
    fn add(&mut self, o: Outcome, used: cluster::Counters) {
        self.ops += o.ops;
        self.seconds += o.seconds;
        self.errors += o.errors;
        self.forwarded += used.forwarded;
        self.node_cpu_secs += used.cpu_secs;
        self.round_p50s.push(o.latencies.percentile(50.0));
        self.latencies.merge(o.latencies);
    }

    fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.seconds.max(1e-6)
    }

    fn json(&self) -> Value {
        json!({
            "ops": self.ops,
            "seconds": self.seconds,
            "ops_per_sec": self.ops_per_sec(),
            "p50_us": self.latencies.percentile(50.0),
            "p99_us": self.latencies.percentile(99.0),
            "p999_us": self.latencies.percentile(99.9),
            "round_p50_us": self.round_p50s,
            "errors": self.errors,
            "forwarded_by_nodes": self.forwarded,
            "node_cpu_us_per_op": self.node_cpu_secs * 1e6 / (self.ops.max(1) as f64),
        })
    }
}

/// Starts the cluster, preloads, measures; returns the result row.
pub async fn run(s: &ClusterSetup, load: &Load, count: u64, rounds: u32) -> Result<Value> {
    let scratch = Scratch::new(&s.dir)?;
    let spec = |name, seed| NodeSpec {
        bin: &s.node_bin,
        root: &scratch.path,
        name,
        group: GROUP,
        seed,
        rebalance_mb_per_sec: s.rebalance_mb_per_sec,
    };
    let a = NodeProc::start(&spec("n1", None))?;
    let b = NodeProc::start(&spec("n2", Some(&a.addr)))?;
    let addrs = [a.addr.as_str(), b.addr.as_str()];
    let table = cluster::converged(&addrs, 2, Duration::from_secs(120)).await?;

    let keys = bench_keys(s.keys);
    let (mut of_a, mut of_b) = (Vec::new(), Vec::new());
    for k in keys.iter() {
        match table.owner(GROUP, k) {
            Some(n) if n.name == a.name => of_a.push(*k),
            Some(n) if n.name == b.name => of_b.push(*k),
            other => bail!(
                "key owned by {:?}, not by either node",
                other.map(|n| &n.name)
            ),
        }
    }
    let (of_a, of_b) = (Arc::new(of_a), Arc::new(of_b));
    let to = |addr: &str, keys: &Arc<Vec<[u8; 32]>>| Target {
        addr: addr.to_string(),
        keys: keys.clone(),
    };
    let owner = [to(&a.addr, &of_a), to(&b.addr, &of_b)];
    let other = [to(&a.addr, &of_b), to(&b.addr, &of_a)];

    // Preload, each key written once to its owner.
    for t in &owner {
        let n = t.keys.len() as u64;
        let o = load::drive(load, std::slice::from_ref(t), RemoteWorkload::Puts, n).await?;
        if o.errors > 0 {
            bail!("{} of {n} preload writes to {} failed", o.errors, t.addr);
        }
    }
    cluster::movement_done(&addrs, Duration::from_secs(120)).await?;

    // Warm-up (untimed): opens the forwarding connections, touches every key.
    let warm = count.min(s.keys * 2);
    load::drive(load, &other, RemoteWorkload::Gets, warm).await?;
    load::drive(load, &owner, RemoteWorkload::Gets, warm).await?;

    let (mut own, mut fwd) = (Totals::default(), Totals::default());
    for r in 0..rounds {
        let order = if r % 2 == 0 {
            [Mode::Owner, Mode::Forwarded]
        } else {
            [Mode::Forwarded, Mode::Owner]
        };
        for mode in order {
            let (targets, totals) = match mode {
                Mode::Owner => (&owner, &mut own),
                Mode::Forwarded => (&other, &mut fwd),
            };
            let before = cluster::counters(&addrs).await?;
            let o = load::drive(load, targets, RemoteWorkload::Gets, count).await?;
            let after = cluster::counters(&addrs).await?;
            totals.add(o, after.since(before));
        }
    }
    // The machine's own round trip, in the same run, with the same shape.
    let probe = super::probe::ping_pong(load.connections, load.pipeline, count).await?;
    let mut row = row(s, load, count, rounds, [of_a.len(), of_b.len()], &own, &fwd);
    add_probe(&mut row, probe, (&own, &fwd), load.pipeline);
    Ok(row)
}

/// The probe and the targets stated against it: forwarded p50 ≤ owner p50 + one probe
/// round trip (p50), and — pipelined — forwarded throughput ≥ 0.8 × owner throughput.
fn add_probe(row: &mut Value, probe: Value, (own, fwd): (&Totals, &Totals), pipeline: u32) {
    let probe_p50 = probe["p50_us"].as_u64().unwrap_or(0);
    let limit = u64::from(own.latencies.percentile(50.0)) + probe_p50;
    let fwd_p50 = u64::from(fwd.latencies.percentile(50.0));
    let throughput = fwd.ops_per_sec() / own.ops_per_sec().max(1e-9);
    row["probe"] = probe;
    row["targets"] = json!({
        "forwarded_p50_limit_us": limit,
        "forwarded_p50_us": fwd_p50,
        "latency_met": fwd_p50 <= limit,
        "forwarded_throughput_ratio": throughput,
        "throughput_target": THROUGHPUT_TARGET,
        "throughput_met": (pipeline > 1).then_some(throughput >= THROUGHPUT_TARGET),
    });
}

fn row(
    s: &ClusterSetup,
    load: &Load,
    count: u64,
    rounds: u32,
    split: [usize; 2],
    own: &Totals,
    fwd: &Totals,
) -> Value {
    let ratio = |f: u32, o: u32| f64::from(f) / f64::from(o.max(1));
    let latency_ratio = ratio(
        fwd.latencies.percentile(50.0),
        own.latencies.percentile(50.0),
    );
    let round_ratios: Vec<f64> = own
        .round_p50s
        .iter()
        .zip(&fwd.round_p50s)
        .map(|(o, f)| ratio(*f, *o))
        .collect();
    json!({
        "engine": "ringblob",
        "workload": "remote-forwarding",
        "nodes": 2,
        "keys": s.keys,
        "keys_per_node": split,
        "value_size": load.value_size,
        "connections": load.connections,
        "pipeline": load.pipeline,
        "rounds": rounds,
        "requests_per_round": count,
        "owner": own.json(),
        "forwarded": fwd.json(),
        "forwarding_latency_ratio": latency_ratio,
        "forwarding_p99_ratio": ratio(fwd.latencies.percentile(99.0), own.latencies.percentile(99.0)),
        "forwarding_round_latency_ratios": round_ratios,
        "forwarding_throughput_ratio": fwd.ops_per_sec() / own.ops_per_sec().max(1e-9),
        "target_latency_ratio": TARGET_RATIO,
        "target_met": latency_ratio <= TARGET_RATIO,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(us: u64) -> Outcome {
        let mut latencies = Latencies::default();
        latencies.record(us);
        Outcome {
            ops: 1,
            seconds: 0.5,
            latencies,
            errors: 0,
            connect: Latencies::default(),
        }
    }

    #[test]
    fn row_has_the_contract_fields() {
        let s = ClusterSetup {
            node_bin: "ringblob-node".into(),
            dir: std::env::temp_dir(),
            keys: 2,
            rebalance_mb_per_sec: 0,
        };
        let load = Load {
            connections: 1,
            pipeline: 1,
            value_size: 8,
            durability: ringblob_protocol::wire::Durability::Default,
            security: Default::default(),
        };
        let (mut own, mut fwd) = (Totals::default(), Totals::default());
        own.add(outcome(100), cluster::Counters::default());
        let used = cluster::Counters {
            forwarded: 1,
            cpu_secs: 2e-5,
        };
        fwd.add(outcome(150), used);
        let r = row(&s, &load, 1, 1, [1, 1], &own, &fwd);
        assert_eq!(r["forwarding_latency_ratio"].as_f64(), Some(1.5));
        assert_eq!(r["forwarding_throughput_ratio"].as_f64(), Some(1.0));
        assert_eq!(r["target_met"].as_bool(), Some(false));
        assert_eq!(r["forwarded"]["node_cpu_us_per_op"].as_f64(), Some(20.0));
        for mode in ["owner", "forwarded"] {
            for field in ["p50_us", "p99_us", "ops_per_sec", "errors"] {
                assert!(r[mode][field].is_number(), "{mode}.{field} in {r}");
            }
        }
    }
}
