//! Spreads requests over connections to one or more nodes and gathers their latencies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ringblob_protocol::client::ClientSecurity;
use ringblob_protocol::wire::Durability;

use super::conn;
use super::{Latencies, Outcome, RemoteWorkload};

/// How the connections behave.
#[derive(Debug, Clone)]
pub struct Load {
    pub connections: u32,
    pub pipeline: u32,
    pub value_size: usize,
    pub durability: Durability,
    /// Access key and TLS of every connection.
    pub security: ClientSecurity,
}

/// A node and the keys its connections cycle through.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: String,
    pub keys: Arc<Vec<[u8; 32]>>,
}

/// `n` split into `parts` shares differing by at most one; share `i`.
fn share(n: u64, parts: u64, i: u64) -> u64 {
    n / parts + u64::from(i < n % parts)
}

/// Sends `count` requests in all, split evenly over the targets (targets without keys are
/// skipped) and each target's share over its connections (`load.connections` split evenly,
/// at least one per target), and waits for them all.
pub async fn drive(
    load: &Load,
    targets: &[Target],
    w: RemoteWorkload,
    count: u64,
) -> Result<Outcome> {
    let targets: Vec<&Target> = targets.iter().filter(|t| !t.keys.is_empty()).collect();
    if targets.is_empty() {
        bail!("no keys to send requests for");
    }
    let n = targets.len() as u64;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (ti, t) in (0..n).zip(&targets) {
        let conns = share(u64::from(load.connections), n, ti).max(1);
        let target_count = share(count, n, ti);
        let mut first = 0;
        for c in 0..conns {
            let each = share(target_count, conns, c);
            let plan = conn::Plan {
                workload: w,
                first,
                count: each,
                pipeline: load.pipeline as usize,
                value_size: load.value_size,
                durability: load.durability,
                security: load.security.clone(),
            };
            first += each;
            let (addr, keys) = (t.addr.clone(), t.keys.clone());
            tasks.push(tokio::spawn(
                async move { conn::run(&addr, &keys, plan).await },
            ));
        }
    }
    let mut latencies = Latencies::default();
    let mut connect = Latencies::default();
    let mut errors = 0;
    for t in tasks {
        let r = t.await.context("connection task")??;
        latencies.merge(r.latencies);
        connect.record(r.connect_us);
        errors += r.errors;
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
        connect,
    })
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn shares_add_up() {
        for (n, parts) in [(10, 3), (0, 4), (7, 7), (5, 8)] {
            let total: u64 = (0..parts).map(|i| share(n, parts, i)).sum();
            assert_eq!(total, n);
        }
    }
}
