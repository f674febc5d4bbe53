//! `ringblob stat`'s cluster part: the node's own statistics, plus every node of its route
//! table asked for theirs — keys and bytes per node and per group, rebalancing progress —
//! so one command shows the whole cluster.

use std::time::Duration;

use ringblob_protocol::client::{Client, ClientConfig, ClientSecurity};
use ringblob_protocol::ring::RouteTable;
use serde_json::{json, Map, Value};

/// `own` (the node's STAT JSON) with `cluster_nodes` and `cluster_totals` added when its
/// route table lists other nodes. Nodes that do not answer are listed with their error.
pub async fn with_cluster(
    own: Value,
    table: &RouteTable,
    timeout: Duration,
    security: &ClientSecurity,
) -> Value {
    if table.nodes.len() < 2 {
        return own;
    }
    let mut nodes = Vec::new();
    for n in &table.nodes {
        // A draining node is not alive in the table but answers (`reachable`).
        let stat = if n.reachable() {
            node_stat(&n.addr, timeout, security.clone()).await
        } else {
            Err("down".to_string())
        };
        nodes.push((n.name.clone(), n.addr.clone(), n.group, stat));
    }
    let mut out = own;
    if let Value::Object(map) = &mut out {
        map.insert("cluster_totals".into(), totals(&nodes));
        map.insert(
            "cluster_nodes".into(),
            Value::Array(nodes.iter().map(row).collect()),
        );
    }
    out
}

type NodeStat = (String, String, u32, Result<Value, String>);

/// Every node's STAT (or why it could not be had), in route table order.
pub async fn all_stats(
    table: &RouteTable,
    timeout: Duration,
    security: &ClientSecurity,
) -> Vec<Result<Value, String>> {
    let mut out = Vec::new();
    for n in &table.nodes {
        out.push(if n.reachable() {
            node_stat(&n.addr, timeout, security.clone()).await
        } else {
            Err("down".to_string())
        });
    }
    out
}

async fn node_stat(
    addr: &str,
    timeout: Duration,
    security: ClientSecurity,
) -> Result<Value, String> {
    let config = ClientConfig {
        timeout,
        retries: 0,
        security,
        ..ClientConfig::default()
    };
    let c = Client::connect(addr, config)
        .await
        .map_err(|e| e.to_string())?;
    c.stat_value().await.map_err(|e| e.to_string())
}

fn row((name, addr, group, stat): &NodeStat) -> Value {
    match stat {
        Ok(s) => json!({
            "name": name, "addr": addr, "group": group, "up": true,
            "keys": s["backend"]["keys"],
            "bytes_on_disk": s["backend"]["bytes_on_disk"],
            "forwarded": s["forwarded"],
            "rebalancing": s["cluster"]["rebalancing"],
        }),
        Err(e) => json!({ "name": name, "addr": addr, "group": group, "up": false, "error": e }),
    }
}

/// Keys and bytes per group, nodes up, transfers pending.
fn totals(nodes: &[NodeStat]) -> Value {
    let mut groups: Map<String, Value> = Map::new();
    let (mut up, mut pending) = (0u64, 0u64);
    for (_, _, group, stat) in nodes {
        let Ok(s) = stat else { continue };
        up += 1;
        pending += s["cluster"]["rebalancing"]["pending"]
            .as_array()
            .map_or(0, |p| p.len() as u64);
        let g = groups
            .entry(group.to_string())
            .or_insert_with(|| json!({"keys": 0, "bytes_on_disk": 0}));
        for field in ["keys", "bytes_on_disk"] {
            let add = s["backend"][field].as_u64().unwrap_or(0);
            let sum = g[field].as_u64().unwrap_or(0) + add;
            g[field] = json!(sum);
        }
    }
    json!({
        "nodes": nodes.len(),
        "nodes_up": up,
        "transfers_pending": pending,
        "groups": groups,
    })
}
