//! `--workload big-values`: memory under large values. One node of its own; `--streams`
//! values of `--value-size` bytes are written first (chunked objects above `--chunk-size`);
//! then, at once, each is read back by its own client at `--read-mb-per-sec` (slow readers,
//! every byte checked) while as many other clients upload one value each. The node's
//! resident memory is sampled throughout (`/proc/PID/status`); the row reports it idle and
//! at its peak, this process's peak (all the clients), and the throughputs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ringblob_protocol::client::{Client, ClientConfig, ClientSecurity, PutOptions, Target};
use serde_json::{json, Value};

use super::nodes::{NodeProc, Scratch};
use super::pattern::{PatternSource, SlowSink};
use super::ClusterSetup;
use crate::bench::rss;

/// What the workload is asked for.
pub struct BigValues {
    pub streams: u32,
    pub value_size: u64,
    pub chunk_size: u64,
    pub read_bytes_per_sec: u64,
    pub timeout: Duration,
}

fn target(i: u32, kind: &str) -> Target {
    Target::named("bench-big", format!("{kind}-{i}").into_bytes())
}

async fn client(addr: &str, b: &BigValues, security: &ClientSecurity) -> Result<Client> {
    let config = ClientConfig {
        timeout: b.timeout,
        chunk_size: b.chunk_size,
        security: security.clone(),
        ..ClientConfig::default()
    };
    Client::connect(addr, config)
        .await
        .with_context(|| format!("connecting to {addr}"))
}

/// Samples `pid`'s resident memory every 50 ms into `peak` until `stop` is set.
fn sample_rss(pid: u32, peak: Arc<AtomicU64>, stop: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while stop.load(Ordering::Relaxed) == 0 {
            peak.fetch_max(process_rss(pid), Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

/// Resident bytes of `pid` (`VmRSS`), 0 if unknown.
fn process_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    rss::parse_kib(&status, "VmRSS:").unwrap_or(0) * 1024
}

pub async fn run(s: &ClusterSetup, b: &BigValues, security: &ClientSecurity) -> Result<Value> {
    let scratch = Scratch::new(&s.dir)?;
    let node = NodeProc::single(&s.node_bin, &scratch.path, s.rebalance_mb_per_sec)?;
    let pid = node.pid();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = process_rss(pid);
    let loaded = Instant::now();
    let mut puts = Vec::new();
    for i in 0..b.streams {
        let c = client(&node.addr, b, security).await?;
        let len = b.value_size;
        puts.push(tokio::spawn(async move {
            let mut src = PatternSource::new(u64::from(i), len);
            c.put_object(
                target(i, "read"),
                &mut src,
                (Some(len), PutOptions::default()),
                |_| {},
            )
            .await
        }));
    }
    for p in puts {
        p.await??;
    }
    let load_seconds = loaded.elapsed().as_secs_f64();
    let after_load = process_rss(pid);

    let peak = Arc::new(AtomicU64::new(after_load));
    let stop = Arc::new(AtomicU64::new(0));
    let sampler = sample_rss(pid, peak.clone(), stop.clone());
    rss::reset_peak();
    let started = Instant::now();
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for i in 0..b.streams {
        let c = client(&node.addr, b, security).await?;
        let rate = b.read_bytes_per_sec;
        readers.push(tokio::spawn(async move {
            let mut sink = SlowSink::new(u64::from(i), rate);
            let n = c
                .get_object_to(target(i, "read"), (0, None), &mut sink)
                .await?;
            anyhow::Ok((n, sink.wrong, Instant::now()))
        }));
        let c = client(&node.addr, b, security).await?;
        let len = b.value_size;
        writers.push(tokio::spawn(async move {
            let mut src = PatternSource::new(1000 + u64::from(i), len);
            let n = c
                .put_object(
                    target(i, "write"),
                    &mut src,
                    (Some(len), PutOptions::default()),
                    |_| {},
                )
                .await?;
            anyhow::Ok((n, Instant::now()))
        }));
    }
    let (mut read_bytes, mut read_done) = (0u64, Duration::ZERO);
    for r in readers {
        let (n, wrong, at) = r.await??;
        if wrong > 0 || n != b.value_size {
            bail!("a reader got {n} bytes, {wrong} of them wrong");
        }
        read_bytes += n;
        read_done = read_done.max(at - started);
    }
    let (mut written, mut write_done) = (0u64, Duration::ZERO);
    for w in writers {
        let (n, at) = w.await??;
        written += n;
        write_done = write_done.max(at - started);
    }
    stop.store(1, Ordering::Relaxed);
    let _ = sampler.await;
    let node_peak = peak.load(Ordering::Relaxed);
    let mb = |bytes: u64, d: Duration| bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9);
    Ok(json!({
        "engine": "ringblob",
        "workload": "remote-big-values",
        "streams": b.streams,
        "value_size": b.value_size,
        "chunk_size": b.chunk_size,
        "read_mb_per_sec_per_stream": b.read_bytes_per_sec as f64 / 1e6,
        "load_seconds": load_seconds,
        "node_idle_rss_bytes": idle,
        "node_rss_after_load_bytes": after_load,
        "node_peak_rss_bytes": node_peak,
        "node_rss_growth_bytes": node_peak.saturating_sub(idle),
        "client_peak_rss_bytes": rss::peak_bytes(),
        "read_bytes": read_bytes,
        "read_mb_per_sec": mb(read_bytes, read_done),
        "written_bytes": written,
        "write_mb_per_sec": mb(written, write_done),
        "seconds": started.elapsed().as_secs_f64(),
        "errors": 0,
    }))
}
