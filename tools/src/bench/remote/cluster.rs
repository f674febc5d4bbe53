//! Asking the nodes of a bench cluster about membership and data movement.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use ringblob_protocol::client::{Client, ClientConfig};
use ringblob_protocol::ring::RouteTable;
use serde_json::Value;

use super::conn;

/// The replica group every bench node serves.
pub const GROUP: u32 = 1;

/// How often the waits below ask the nodes.
pub const POLL: Duration = Duration::from_millis(50);

/// The node's route table.
pub async fn routes(addr: &str) -> Result<RouteTable> {
    let config = ClientConfig {
        timeout: Duration::from_secs(10),
        name: "ringblob-bench".to_string(),
        ..ClientConfig::default()
    };
    let c = Client::connect(addr, config)
        .await
        .map_err(|e| anyhow!("connecting to {addr}: {e}"))?;
    let text = c
        .routes()
        .await
        .map_err(|e| anyhow!("ROUTE_LIST from {addr}: {e}"))?;
    RouteTable::from_json(&text).map_err(|e| anyhow!("route table of {addr}: {e}"))
}

/// The node's STAT object.
pub async fn stat(addr: &str) -> Result<Value> {
    conn::node_stat(addr, &Default::default()).await
}

/// What the route table says about the cluster's nodes: name, ring IDs, alive.
fn membership(t: &RouteTable) -> Vec<(String, usize, bool)> {
    t.nodes
        .iter()
        .map(|n| (n.name.clone(), n.ids.len(), n.alive))
        .collect()
}

/// Waits until every node in `addrs` holds the same table listing `alive` live nodes, each
/// with its ring IDs chosen; returns that table.
pub async fn converged(addrs: &[&str], alive: usize, limit: Duration) -> Result<RouteTable> {
    let deadline = Instant::now() + limit;
    loop {
        let mut tables = Vec::new();
        for a in addrs {
            tables.push(routes(a).await?);
        }
        let first = tables.first().map(membership).unwrap_or_default();
        let live = first.iter().filter(|(_, ids, up)| *up && *ids > 0).count();
        let same = tables.iter().all(|t| membership(t) == first);
        if same && live == alive {
            if let Some(t) = tables.into_iter().next() {
                return Ok(t);
            }
        }
        if Instant::now() > deadline {
            bail!("the nodes did not agree on {alive} live nodes within {limit:?}: {first:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Outgoing transfers the node still has pending.
pub fn pending(stat: &Value) -> usize {
    stat["cluster"]["rebalancing"]["pending"]
        .as_array()
        .map_or(0, Vec::len)
}

/// A counter of the node's data movement (`records_sent`, `bytes_sent`).
pub fn moved(stat: &Value, field: &str) -> u64 {
    stat["cluster"]["rebalancing"][field].as_u64().unwrap_or(0)
}

/// Keys the node stores.
pub fn keys(stat: &Value) -> u64 {
    stat["backend"]["keys"].as_u64().unwrap_or(0)
}

/// Requests forwarded and CPU seconds used, summed over the nodes at `addrs` (STAT).
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub forwarded: u64,
    pub cpu_secs: f64,
}

impl Counters {
    /// What was counted between `before` and this.
    pub fn since(self, before: Counters) -> Counters {
        Counters {
            forwarded: self.forwarded.saturating_sub(before.forwarded),
            cpu_secs: (self.cpu_secs - before.cpu_secs).max(0.0),
        }
    }
}

/// The nodes' [`Counters`] now.
pub async fn counters(addrs: &[&str]) -> Result<Counters> {
    let mut c = Counters::default();
    for a in addrs {
        let s = stat(a).await?;
        c.forwarded += s["forwarded"].as_u64().unwrap_or(0);
        c.cpu_secs += s["cpu_secs"].as_f64().unwrap_or(0.0);
    }
    Ok(c)
}

/// Waits until no node in `addrs` has a transfer pending.
pub async fn movement_done(addrs: &[&str], limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let mut left = 0;
        for a in addrs {
            left += pending(&stat(a).await?);
        }
        if left == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{left} transfers still pending after {limit:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}
