//! `--workload find`: queries on attributes and notifications on a cluster of its own
//! (`docs/ATTRIBUTES.md`). Starts `--nodes` nodes in one group, writes `--keys` objects with
//! 4 to 6 random properties (through the library, as `ringblob put --attr` does) under an
//! attribute space with overlays, then for queries with 1, 2 and 3 fixed properties measures
//! the nodes asked and the latency of the planned query against a scatter-gather scan of
//! every node's entries (`FindAsk::scan`), alternating in the same run and checking both
//! return the same names; and the delay from a write's start to its notification arriving
//! at a watcher attached through another node.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use bytes::Bytes;
use ringblob_backends::names::{AttrValue, Attrs, NameRecord};
use ringblob_protocol::attrs::{Query, Space};
use ringblob_protocol::client::{
    Client, ClientConfig, FindAsk, PutOptions, Target, WatchEvent, WatchTarget,
};
use ringblob_protocol::wire::Status;
use serde_json::{json, Value};

use super::cluster::{self, GROUP};
use super::latency::Latencies;
use super::nodes::{NodeProc, NodeSpec, Scratch};
use super::ClusterSetup;

const NS: &str = "bench";
const PROPERTIES: usize = 8;
/// Values per property.
const VALUES: usize = 10;
/// The space: two overlays that together index every property.
const SPACE: &str =
    r#"{"overlays":[{"p0":16,"p1":16,"p2":16,"p3":16},{"p4":16,"p5":16,"p6":16,"p7":16}]}"#;
/// Writes in flight while loading.
const LOADERS: usize = 64;

/// What `--workload find` needs beyond the cluster.
pub struct FindBench {
    pub nodes: u32,
    /// Queries of each shape, each run planned and as a scan.
    pub rounds: u32,
    /// Writes timed for notification latency.
    pub notes: u32,
}

/// A deterministic generator (xorshift64*), so runs load the same objects.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

fn value(p: usize, v: usize) -> AttrValue {
    match p % 2 {
        0 => AttrValue::Str(format!("v{v}")),
        _ => AttrValue::Int(v as i64),
    }
}

fn attrs(rng: &mut Rng) -> Attrs {
    let mut props = BTreeSet::new();
    let count = 4 + rng.below(3);
    while props.len() < count {
        props.insert(rng.below(PROPERTIES));
    }
    props
        .into_iter()
        .map(|p| (format!("p{p}"), value(p, rng.below(VALUES))))
        .collect()
}

fn config() -> ClientConfig {
    ClientConfig {
        timeout: Duration::from_secs(60),
        name: "ringblob-bench".into(),
        ..ClientConfig::default()
    }
}

pub async fn run(s: &ClusterSetup, b: &FindBench) -> Result<Value> {
    let scratch = Scratch::new(&s.dir)?;
    let names: Vec<String> = (0..b.nodes.max(2)).map(|i| format!("f{i:02}")).collect();
    let mut nodes: Vec<NodeProc> = Vec::new();
    for name in &names {
        let seed = nodes.first().map(|n| n.addr.as_str());
        let spec = NodeSpec {
            bin: &s.node_bin,
            root: &scratch.path,
            name,
            group: GROUP,
            seed,
            rebalance_mb_per_sec: s.rebalance_mb_per_sec,
        };
        let node = NodeProc::start(&spec)?;
        nodes.push(node);
    }
    let seed = nodes[0].addr.clone();
    let addrs: Vec<&str> = nodes.iter().map(|n| n.addr.as_str()).collect();
    cluster::converged(&addrs, nodes.len(), Duration::from_secs(120)).await?;
    settled(&addrs).await?;

    let c = Arc::new(connect(&seed).await?.in_group(GROUP));
    let space = Space::from_json(SPACE).map_err(|e| anyhow!("{e}"))?;
    c.set_attribute_space(NS, &space, PutOptions::default())
        .await
        .map_err(|e| anyhow!("storing the space: {e}"))?;
    let loaded = Instant::now();
    let truth = load(&c, &space, s.keys).await?;
    let load_seconds = loaded.elapsed().as_secs_f64();
    // Progress on stderr, one JSON line per step: a long run that is stopped keeps what it
    // measured.
    eprintln!(
        "{}",
        json!({"loaded": s.keys, "load_seconds": load_seconds})
    );

    let mut rng = Rng(0x0005_eed0_f1d5);
    let mut shapes = Vec::new();
    for fixed in 1..=3 {
        let row = shape(&c, &truth, fixed, b, &mut rng).await?;
        eprintln!("{row}");
        shapes.push(row);
    }
    let notes = notification_latency(&seed, &nodes[1].addr, b.notes).await?;
    Ok(json!({
        "workload": "remote-find",
        "nodes": b.nodes,
        "objects": s.keys,
        "load_seconds": load_seconds,
        "load_objects_per_sec": s.keys as f64 / load_seconds,
        "space": serde_json::from_str::<Value>(SPACE)?,
        "queries": shapes,
        "notifications": notes,
    }))
}

/// Waits until every node has the same ring IDs for every node, nothing is moving, and that
/// stays so for 3 s (a write would otherwise bounce between two views of the ring).
async fn settled(addrs: &[&str]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut stable_since: Option<(Instant, Vec<String>)> = None;
    loop {
        let mut views = Vec::new();
        let mut balanced = true;
        for a in addrs {
            let t = cluster::routes(a).await?;
            let rings = t.rings();
            balanced &= rings
                .values()
                .all(|r| ringblob_protocol::cluster::rebalancer(&r.shares()).is_none());
            let mut ids: Vec<String> = t
                .nodes
                .iter()
                .map(|n| format!("{}{:?}", n.name, n.ids))
                .collect();
            ids.sort();
            views.push(ids);
        }
        let same = balanced && views.windows(2).all(|w| w[0] == w[1]);
        cluster::movement_done(addrs, Duration::from_secs(120)).await?;
        match (&stable_since, same) {
            (Some((t, v)), true) if *v == views[0] => {
                if t.elapsed() > Duration::from_secs(3) {
                    return Ok(());
                }
            }
            (_, true) => stable_since = Some((Instant::now(), views[0].clone())),
            (_, false) => stable_since = None,
        }
        if Instant::now() > deadline {
            bail!("the cluster's rings never settled");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn connect(addr: &str) -> Result<Client> {
    Client::connect(addr, config())
        .await
        .map_err(|e| anyhow!("connecting to {addr}: {e}"))
}

/// Writes `n` objects (value, entries, record), `LOADERS` at a time; returns their
/// attributes in name order.
async fn load(c: &Arc<Client>, space: &Space, n: u64) -> Result<Vec<(String, Attrs)>> {
    let mut rng = Rng(0x0000_00b1_0b5e);
    let all: Vec<(String, Attrs)> = (0..n)
        .map(|i| (format!("o{i:08}"), attrs(&mut rng)))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (name, a)) in all.iter().enumerate() {
        if i > 0 && i % 100_000 == 0 {
            eprintln!("{}", json!({"loading": i}));
        }
        if tasks.len() >= LOADERS {
            if let Some(done) = tasks.join_next().await {
                done??;
            }
        }
        let (c, space, name, a) = (c.clone(), space.clone(), name.clone(), a.clone());
        tasks.spawn(async move {
            let o = PutOptions::default();
            let value = Bytes::from(format!("object {i}"));
            let record = NameRecord {
                attrs: a,
                ..NameRecord::new(NS, name.clone().into_bytes(), 16)
            };
            // A write that bounced between two views of a ring still settling is sent again.
            let mut tries = 0;
            loop {
                let put = async {
                    c.put_column(Target::named(NS, name.clone()), 0, value.clone(), o)
                        .await?;
                    c.put_record_indexed(&record, None, &space, o).await
                };
                match put.await {
                    Ok(_) => return Ok::<(), anyhow::Error>(()),
                    Err(e) if tries < 20 && e.status() == Some(Status::TooManyHops) => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => bail!("{name}: {e}"),
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(all)
}

/// Queries with `fixed` fixed properties: planned and as a scan, alternating.
async fn shape(
    c: &Client,
    truth: &[(String, Attrs)],
    fixed: usize,
    b: &FindBench,
    rng: &mut Rng,
) -> Result<Value> {
    let (mut planned, mut scanned) = (Latencies::default(), Latencies::default());
    let (mut asked, mut group_nodes, mut found) = (0u64, 0u64, 0u64);
    let mut regions = (0u64, 0u64);
    let mut each = Vec::new();
    for round in 0..b.rounds {
        let mut props = BTreeSet::new();
        while props.len() < fixed {
            props.insert(rng.below(PROPERTIES));
        }
        let words: Vec<String> = props
            .iter()
            .map(|p| format!("p{p}={}", value(*p, rng.below(VALUES))))
            .collect();
        let query = Query::parse(&words, false).map_err(|e| anyhow!("{e}"))?;
        let want = truth.iter().filter(|(_, a)| query.matches(a)).count();
        let run = |scan: bool| find_all(c, &query, scan);
        let ((p, p_us), (s, s_us)) = match round % 2 {
            0 => {
                let p = run(false).await?;
                (p, run(true).await?)
            }
            _ => {
                let s = run(true).await?;
                (run(false).await?, s)
            }
        };
        if p.0 != want || s.0 != want {
            bail!(
                "{words:?}: planned found {}, scan {}, brute force {want}",
                p.0,
                s.0
            );
        }
        planned.record(p_us);
        scanned.record(s_us);
        each.push(json!({"query": words.join(" "), "found": want, "planned_us": p_us, "scan_us": s_us, "nodes_asked": p.1}));
        asked += p.1;
        group_nodes += p.2;
        found += want as u64;
        regions = (p.3, p.4);
    }
    let rounds = u64::from(b.rounds.max(1));
    Ok(json!({
        "fixed_properties": fixed,
        "rounds": b.rounds,
        "mean_found": found as f64 / rounds as f64,
        "regions_asked": regions.0,
        "regions_total": regions.1,
        "fraction_of_nodes_asked": asked as f64 / group_nodes.max(1) as f64,
        "planned_p50_us": planned.percentile(50.0),
        "planned_p99_us": planned.percentile(99.0),
        "scan_p50_us": scanned.percentile(50.0),
        "scan_p99_us": scanned.percentile(99.0),
        "scan_over_planned_p50": f64::from(scanned.percentile(50.0))
            / f64::from(planned.percentile(50.0).max(1)),
        "each": each,
    }))
}

/// Every answer of `query` (pages of 1,000): (answers, nodes asked, group nodes, regions
/// planned, regions of the overlay), and the time taken in µs.
async fn find_all(
    c: &Client,
    query: &Query,
    scan: bool,
) -> Result<((usize, u64, u64, u64, u64), u64)> {
    let started = Instant::now();
    let mut ask = FindAsk {
        namespace: NS.into(),
        query: query.clone(),
        after: None,
        limit: 1000,
        groups: vec![GROUP],
        scan,
    };
    let (mut n, mut asked) = (0, 0);
    loop {
        let page = c.find(&ask).await.map_err(|e| anyhow!("find: {e}"))?;
        n += page.hits.len();
        asked = asked.max(page.cost.asked_nodes as u64);
        let Some(next) = page.next else {
            let us = started.elapsed().as_micros() as u64;
            let cost = &page.cost;
            let shape = (cost.group_nodes as u64, cost.regions, cost.total_regions);
            return Ok(((n, asked, shape.0, shape.1, shape.2), us));
        };
        ask.after = Some(next);
    }
}

/// From a write's start (through `writer_addr`) to its note arriving at a watcher attached
/// through `watch_addr`, one write at a time.
async fn notification_latency(writer_addr: &str, watch_addr: &str, n: u32) -> Result<Value> {
    let writer = connect(writer_addr).await?.in_group(GROUP);
    let via = connect(watch_addr).await?;
    let target = Target::named(NS, "watched".to_string());
    let mut watch = via.watch(WatchTarget::Key(target.clone()), GROUP);
    match tokio::time::timeout(Duration::from_secs(30), watch.next()).await {
        Ok(Some(Ok(WatchEvent::Attached { .. }))) => {}
        other => bail!("the watcher did not attach: {other:?}"),
    }
    let mut lat = Latencies::default();
    let mut gaps = 0;
    for i in 0..n {
        let started = Instant::now();
        let value = Bytes::from(format!("change {i}"));
        writer
            .put_column(target.clone(), 0, value, PutOptions::default())
            .await
            .map_err(|e| anyhow!("write {i}: {e}"))?;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), watch.next()).await {
                Ok(Some(Ok(WatchEvent::Change { .. }))) => break,
                Ok(Some(Ok(WatchEvent::Gap { .. }))) => gaps += 1,
                Ok(Some(Ok(WatchEvent::Attached { .. }))) => {}
                other => bail!("no note for write {i}: {other:?}"),
            }
        }
        lat.record(started.elapsed().as_micros() as u64);
    }
    Ok(json!({
        "writes": n,
        "p50_us": lat.percentile(50.0),
        "p99_us": lat.percentile(99.0),
        "gaps": gaps,
    }))
}
