//! `--workload huge-object`: one object of `--value-size` bytes (default 20 GiB) through the
//! `ringblob` CLI with its default sizes, against a node of its own: `put` from a pipe,
//! a `get` of the last MiB (a range near the end), then a whole `get` to a pipe; every byte
//! read is checked, and the CLI's peak resident memory is read from `/proc` for each step.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::nodes::{NodeProc, Scratch};
use super::pattern::fill;
use super::ClusterSetup;
use crate::bench::rss;

const SEED: u64 = 20;

/// `ringblob`, next to `ringblob-node`.
fn cli_binary(node_bin: &Path) -> Result<PathBuf> {
    let cli = node_bin.with_file_name("ringblob");
    if !cli.is_file() {
        bail!("no ringblob CLI at {} (build it)", cli.display());
    }
    Ok(cli)
}

/// The peak resident memory of `pid` so far (`VmHWM`), 0 if unknown.
fn process_peak(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    rss::parse_kib(&status, "VmHWM:").unwrap_or(0) * 1024
}

/// One CLI step: what it moved, how long it took, its peak RSS.
struct Step {
    bytes: u64,
    seconds: f64,
    peak_rss: u64,
}

impl Step {
    fn json(&self) -> Value {
        json!({
            "bytes": self.bytes,
            "seconds": self.seconds,
            "mb_per_sec": self.bytes as f64 / 1e6 / self.seconds.max(1e-9),
            "cli_peak_rss_bytes": self.peak_rss,
        })
    }
}

/// Runs the CLI with `args`, feeding `len` pattern bytes from `feed_from` to its stdin (when
/// `Some`) and checking its stdout against the pattern from `expect_from` (when `Some`).
fn run_cli(
    cli: &Path,
    addr: &str,
    args: &[&str],
    feed: Option<u64>,
    expect_from: Option<u64>,
) -> Result<Step> {
    let mut cmd = Command::new(cli);
    cmd.args(["--remote", addr, "--quiet", "--timeout", "300"])
        .args(args)
        .stdin(if feed.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(if expect_from.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::inherit());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", cli.display()))?;
    let pid = child.id();
    let feeder = child.stdin.take().zip(feed).map(|(mut stdin, len)| {
        std::thread::spawn(move || -> std::io::Result<()> {
            let mut buf = vec![0u8; 1 << 20];
            let mut at = 0u64;
            while at < len {
                let n = (len - at).min(buf.len() as u64) as usize;
                fill(SEED, at, &mut buf[..n]);
                stdin.write_all(&buf[..n])?;
                at += n as u64;
            }
            Ok(())
        })
    });
    let checker = child.stdout.take().zip(expect_from).map(|(mut out, from)| {
        std::thread::spawn(move || -> std::io::Result<(u64, u64)> {
            let (mut buf, mut want) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
            let (mut at, mut wrong) = (from, 0u64);
            loop {
                let n = out.read(&mut buf)?;
                if n == 0 {
                    return Ok((at - from, wrong));
                }
                fill(SEED, at, &mut want[..n]);
                wrong += buf[..n]
                    .iter()
                    .zip(&want[..n])
                    .filter(|(a, b)| a != b)
                    .count() as u64;
                at += n as u64;
            }
        })
    });
    let mut peak = 0;
    let status = loop {
        peak = peak.max(process_peak(pid));
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if let Some(f) = feeder {
        f.join()
            .map_err(|_| anyhow::anyhow!("the feeder panicked"))??;
    }
    let mut bytes = feed.unwrap_or(0);
    if let Some(c) = checker {
        let (n, wrong) = c
            .join()
            .map_err(|_| anyhow::anyhow!("the checker panicked"))??;
        if wrong > 0 {
            bail!("ringblob {args:?}: {wrong} of {n} bytes read were wrong");
        }
        bytes = n;
    }
    if !status.success() {
        bail!("ringblob {args:?} failed: {status}");
    }
    Ok(Step {
        bytes,
        seconds: started.elapsed().as_secs_f64(),
        peak_rss: peak,
    })
}

pub async fn run(s: &ClusterSetup, size: u64) -> Result<Value> {
    let scratch = Scratch::new(&s.dir)?;
    let node = NodeProc::single(&s.node_bin, &scratch.path, s.rebalance_mb_per_sec)?;
    let cli = cli_binary(&s.node_bin)?;
    let addr = node.addr.clone();
    let pid = node.pid();
    tokio::task::spawn_blocking(move || -> Result<Value> {
        let put = run_cli(&cli, &addr, &["put", "huge"], Some(size), None)?;
        let tail = size.saturating_sub(1 << 20);
        let (offset, len) = (tail.to_string(), (size - tail).to_string());
        let range = run_cli(
            &cli,
            &addr,
            &["get", "huge", "--offset", &offset, "--size", &len],
            None,
            Some(tail),
        )?;
        if range.bytes != size - tail {
            bail!(
                "the range near the end came back with {} bytes",
                range.bytes
            );
        }
        let get = run_cli(&cli, &addr, &["get", "huge"], None, Some(0))?;
        if get.bytes != size {
            bail!("the object came back with {} of {size} bytes", get.bytes);
        }
        let node_peak = process_peak(pid);
        Ok(json!({
            "engine": "ringblob",
            "workload": "remote-huge-object",
            "value_size": size,
            "chunk_size": ringblob_protocol::client::object::DEFAULT_CHUNK_SIZE,
            "put": put.json(),
            "range_near_end": range.json(),
            "get": get.json(),
            "node_peak_rss_bytes": node_peak,
            "errors": 0,
        }))
    })
    .await?
}
