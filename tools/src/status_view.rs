//! `ringblob status`: the cluster on one screen — every node with its group, liveness,
//! share of the ring, keys, bytes, free disk, damage, and what it is doing (hand-over,
//! repair, scrub, defragmentation), from the route table and every node's STAT.

use std::fmt::Write;

use ringblob_protocol::ring::RouteTable;
use serde_json::{json, Value};

/// One row per node of `table`, with its STAT (or why there is none) and share.
pub fn rows(table: &RouteTable, stats: &[Result<Value, String>], shares: &[f64]) -> Vec<Value> {
    table
        .nodes
        .iter()
        .zip(stats)
        .zip(shares)
        .map(|((n, stat), share)| {
            let state = match (n.alive, n.leaving, n.has_left()) {
                (true, _, _) => "alive",
                (false, true, _) => "leaving",
                (false, false, true) => "left",
                (false, false, false) => "down",
            };
            let mut row = json!({
                "name": n.name, "addr": n.addr, "group": n.group, "alive": n.alive,
                "state": state, "share": share,
            });
            match stat {
                Ok(s) => {
                    let b = &s["backend"];
                    row["keys"] = b["keys"].clone();
                    row["live_bytes"] = b["live_bytes"].clone();
                    row["disk_free_bytes"] = b["disk_free_bytes"].clone();
                    row["read_only"] = b["read_only"].clone();
                    row["damaged_records"] = b["damage"]["records_known"].clone();
                    row["scrub"] = b["damage"]["scrub"].clone();
                    row["defrag_running"] = b["defrag"]["running"].clone();
                    row["handing_over"] = s["cluster"]["rebalancing"]["pending"]
                        .as_array()
                        .map_or(0, |p| p.len())
                        .into();
                    row["repair_rounds"] = s["cluster"]["repair"]["rounds"].clone();
                    row["quarantined"] = s["quarantined"].clone();
                }
                Err(e) => row["error"] = e.clone().into(),
            }
            row
        })
        .collect()
}

fn size(v: &Value) -> String {
    let Some(b) = v.as_u64() else {
        return "-".into();
    };
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = b as f64;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < units.len() {
        x /= 1024.0;
        u += 1;
    }
    format!("{x:.1} {}", units[u])
}

/// What a node is busy with, in a few words.
fn activity(r: &Value) -> String {
    let mut doing = Vec::new();
    if let Some(n) = r["handing_over"].as_u64().filter(|n| *n > 0) {
        doing.push(format!("handing over {n} ranges"));
    }
    if r["scrub"]["running"].as_bool() == Some(true) {
        doing.push("scrubbing".to_string());
    }
    if r["defrag_running"].as_bool() == Some(true) {
        doing.push("defragmenting".to_string());
    }
    if r["quarantined"].as_bool() == Some(true) {
        doing.push("QUARANTINED".to_string());
    }
    if r["read_only"].is_string() {
        doing.push("READ-ONLY".to_string());
    }
    if r["damaged_records"].as_u64().is_some_and(|d| d > 0) {
        doing.push(format!("{} damaged records", r["damaged_records"]));
    }
    match (r["error"].as_str(), r["state"].as_str()) {
        // A node that left after handing everything over may have stopped: no error.
        (Some(_), Some("left")) => doing.push("left the cluster".to_string()),
        (Some(e), _) => doing.push(format!("unreachable: {e}")),
        (None, Some("left")) => doing.push("left the cluster (still running)".to_string()),
        (None, _) => {}
    }
    if doing.is_empty() {
        "idle".into()
    } else {
        doing.join(", ")
    }
}

/// The screen.
pub fn render(table: &RouteTable, rows: &[Value]) -> String {
    let mut out = String::new();
    let alive = table.nodes.iter().filter(|n| n.alive).count();
    let _ = writeln!(
        out,
        "route table version {}: {} nodes, {} alive",
        table.version,
        table.nodes.len(),
        alive
    );
    let _ = writeln!(
        out,
        "{:<16} {:<22} {:>5} {:<5} {:>6} {:>10} {:>10} {:>10}  activity",
        "node", "address", "group", "alive", "share", "keys", "live", "disk free"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<16} {:<22} {:>5} {:<5} {:>5.1}% {:>10} {:>10} {:>10}  {}",
            r["name"].as_str().unwrap_or_default(),
            r["addr"].as_str().unwrap_or_default(),
            r["group"],
            match r["state"].as_str() {
                Some("alive") => "yes",
                Some("leaving") => "drain",
                Some("left") => "left",
                _ => "no",
            },
            r["share"].as_f64().unwrap_or(0.0) * 100.0,
            r["keys"].as_u64().map_or("-".into(), |k| k.to_string()),
            size(&r["live_bytes"]),
            size(&r["disk_free_bytes"]),
            activity(r)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringblob_protocol::ring::{RingId, RouteNode};

    fn node(name: &str, alive: bool, leaving: bool, ids: usize) -> RouteNode {
        RouteNode {
            name: name.into(),
            addr: format!("{name}:1"),
            group: 1,
            ids: vec![RingId([7; 32]); ids],
            alive,
            leaving,
            incarnation: 1,
        }
    }

    #[test]
    fn a_node_that_left_is_shown_left_not_unreachable() {
        let table = RouteTable::new(
            3,
            vec![
                node("a", true, false, 1),
                node("b", false, true, 1),
                node("c", false, false, 0),
                node("d", false, false, 1),
            ],
        );
        let gone = || Err("connection refused".to_string());
        let stats = [Ok(json!({})), Ok(json!({})), gone(), gone()];
        let rows = rows(&table, &stats, &[1.0, 0.0, 0.0, 0.0]);
        let states: Vec<&str> = rows.iter().filter_map(|r| r["state"].as_str()).collect();
        assert_eq!(states, ["alive", "leaving", "left", "down"]);
        assert_eq!(activity(&rows[2]), "left the cluster");
        assert_eq!(activity(&rows[3]), "unreachable: connection refused");
        let screen = render(&table, &rows);
        assert!(
            screen
                .lines()
                .any(|l| l.starts_with('c') && l.contains(" left ")),
            "{screen}"
        );
    }
}
