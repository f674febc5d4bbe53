//! `--workload rebalance`: one node of its own, loaded; then a second node joins through it,
//! and the hand-over of the ranges it now owns is timed from the second node's start until no
//! node has a transfer pending and the new node holds every key it owns.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::cluster::{self, GROUP, POLL};
use super::load::{self, Load, Target};
use super::nodes::{NodeProc, NodeSpec, Scratch};
use super::{bench_keys, ClusterSetup, RemoteWorkload};

/// Longest the hand-over may take.
const LIMIT: Duration = Duration::from_secs(1800);

/// Polls in a row that must find the hand-over finished (the new node's key count unchanged).
const STABLE_POLLS: u32 = 3;

/// What the polls saw.
#[derive(Default)]
struct Watch {
    /// When the first node's table first listed the new node alive with its IDs.
    joined: Option<Duration>,
    /// Keys the new node owns by that table.
    expected: u64,
    /// When the finished state was first seen (reset if it stops holding).
    done: Option<Duration>,
    stable: u32,
    last_keys: u64,
}

pub async fn run(s: &ClusterSetup, load: &Load) -> Result<Value> {
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
    cluster::converged(&[a.addr.as_str()], 1, Duration::from_secs(60)).await?;
    let keys = bench_keys(s.keys);
    let target = Target {
        addr: a.addr.clone(),
        keys: Arc::new(keys.clone()),
    };
    let loaded = Instant::now();
    let o = load::drive(load, &[target], RemoteWorkload::Puts, s.keys).await?;
    let load_seconds = loaded.elapsed().as_secs_f64();
    if o.errors > 0 {
        bail!("{} of {} loading writes failed", o.errors, s.keys);
    }
    let held = cluster::keys(&cluster::stat(&a.addr).await?);
    if held != s.keys {
        bail!("the first node holds {held} keys after loading {}", s.keys);
    }

    let t0 = Instant::now();
    let b = NodeProc::start(&spec("n2", Some(&a.addr)))?;
    let mut w = Watch::default();
    let (sa, sb) = loop {
        if t0.elapsed() > LIMIT {
            bail!("the hand-over did not finish within {LIMIT:?}");
        }
        if w.joined.is_none() {
            let t = cluster::routes(&a.addr).await?;
            if t.node(&b.name)
                .is_some_and(|n| n.alive && !n.ids.is_empty())
            {
                w.joined = Some(t0.elapsed());
                w.expected = keys
                    .iter()
                    .filter(|k| t.owner(GROUP, k).is_some_and(|n| n.name == b.name))
                    .count() as u64;
            }
        }
        let (sa, sb) = (cluster::stat(&a.addr).await?, cluster::stat(&b.addr).await?);
        let on_b = cluster::keys(&sb);
        let finished = w.joined.is_some()
            && cluster::pending(&sa) == 0
            && cluster::pending(&sb) == 0
            && on_b >= w.expected
            && cluster::moved(&sa, "records_sent") >= w.expected;
        if finished && (w.done.is_none() || on_b == w.last_keys) {
            w.done.get_or_insert_with(|| t0.elapsed());
            w.stable += 1;
        } else {
            w.done = None;
            w.stable = 0;
        }
        w.last_keys = on_b;
        if w.stable >= STABLE_POLLS {
            break (sa, sb);
        }
        tokio::time::sleep(POLL).await;
    };
    Ok(row(s, load, load_seconds, &w, &sa, &sb))
}

fn row(
    s: &ClusterSetup,
    load: &Load,
    load_seconds: f64,
    w: &Watch,
    sa: &Value,
    sb: &Value,
) -> Value {
    let seconds = w.done.map_or(0.0, |d| d.as_secs_f64()).max(1e-6);
    let joined = w.joined.map_or(0.0, |d| d.as_secs_f64());
    let transfer = (seconds - joined).max(1e-6);
    let bytes = cluster::moved(sa, "bytes_sent");
    let loaded = s.keys * load.value_size as u64;
    json!({
        "engine": "ringblob",
        "workload": "remote-rebalance",
        "keys": s.keys,
        "value_size": load.value_size,
        "loaded_bytes": loaded,
        "load_seconds": load_seconds,
        "load_mb_per_sec": loaded as f64 / 1e6 / load_seconds.max(1e-6),
        "node_rebalance_mb_per_sec_setting": s.rebalance_mb_per_sec,
        "keys_moved": cluster::moved(sa, "records_sent"),
        "keys_expected": w.expected,
        "keys_on_new_node": cluster::keys(sb),
        "bytes_moved": bytes,
        "seconds": seconds,
        "join_seconds": joined,
        "transfer_seconds": transfer,
        "rebalance_mb_per_sec": bytes as f64 / 1e6 / seconds,
        "transfer_mb_per_sec": bytes as f64 / 1e6 / transfer,
        "move_failures": sa["cluster"]["rebalancing"]["failures"],
        "connections": load.connections,
        "pipeline": load.pipeline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_has_the_contract_fields() {
        let s = ClusterSetup {
            node_bin: "ringblob-node".into(),
            dir: std::env::temp_dir(),
            keys: 4,
            rebalance_mb_per_sec: 0,
        };
        let load = Load {
            connections: 1,
            pipeline: 1,
            value_size: 1_000_000,
            durability: ringblob_protocol::wire::Durability::Default,
            security: Default::default(),
        };
        let w = Watch {
            joined: Some(Duration::from_secs(1)),
            expected: 2,
            done: Some(Duration::from_secs(2)),
            stable: STABLE_POLLS,
            last_keys: 2,
        };
        let sa = json!({"cluster": {"rebalancing": {"records_sent": 2, "bytes_sent": 2_000_000}}});
        let sb = json!({"backend": {"keys": 2}});
        let r = row(&s, &load, 1.0, &w, &sa, &sb);
        assert_eq!(r["rebalance_mb_per_sec"].as_f64(), Some(1.0));
        assert_eq!(r["transfer_mb_per_sec"].as_f64(), Some(2.0));
        assert_eq!(r["keys_moved"].as_u64(), Some(2));
        assert_eq!(r["bytes_moved"].as_u64(), Some(2_000_000));
        assert_eq!(r["seconds"].as_f64(), Some(2.0));
    }
}
