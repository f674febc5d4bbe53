//! `ringblob routes`: the route table as a table of nodes — group, liveness, ring IDs, the
//! share of the group's key space each owns, and its first ranges.

use std::fmt::Write;

use ringblob_protocol::ring::{GroupRing, NodeIx, RouteTable};

/// Ranges shown per node before "…".
const SHOWN_RANGES: usize = 3;

/// The text `ringblob routes` prints for a `ROUTE_LIST` reply; `None` if it is not a table.
pub fn render(json: &str) -> Option<String> {
    let table = RouteTable::from_json(json).ok()?;
    Some(render_table(&table))
}

/// The text `ringblob routes` prints for a route table.
pub fn render_table(table: &RouteTable) -> String {
    let rings = table.rings();
    let mut out = String::new();
    let _ = writeln!(out, "route table version {}", table.version);
    let _ = writeln!(
        out,
        "{:<20} {:<22} {:>5} {:<5} {:>4} {:>7}  ranges",
        "node", "address", "group", "alive", "ids", "share"
    );
    for (ix, node) in table.nodes.iter().enumerate() {
        let ring = rings.get(&node.group);
        let (share, ranges) = ownership(ring, ix as u32, node.ids.is_empty() && node.alive);
        let _ = writeln!(
            out,
            "{:<20} {:<22} {:>5} {:<5} {:>4} {:>6.1}%  {}",
            node.name,
            node.addr,
            node.group,
            match (node.alive, node.leaving, node.has_left()) {
                (true, _, _) => "yes",
                (false, true, _) => "drain",
                (false, false, true) => "left",
                (false, false, false) => "no",
            },
            node.ids.len(),
            share * 100.0,
            ranges
        );
    }
    out
}

/// Each node's share of its group's ring (0..=1), in table order.
pub fn shares(table: &RouteTable) -> Vec<f64> {
    let rings = table.rings();
    table
        .nodes
        .iter()
        .enumerate()
        .map(|(ix, n)| ownership(rings.get(&n.group), ix as u32, n.ids.is_empty() && n.alive).0)
        .collect()
}

/// A node's share of its group's ring and a short list of its ranges. A lone node with no
/// IDs (outside a cluster) owns its whole group.
fn ownership(ring: Option<&GroupRing>, ix: u32, whole: bool) -> (f64, String) {
    let Some(ring) = ring.filter(|r| !r.is_empty()) else {
        return if whole {
            (1.0, "all keys".into())
        } else {
            (0.0, String::new())
        };
    };
    let ranges = ring.ranges_of(NodeIx(ix));
    let mut shown: Vec<String> = ranges
        .iter()
        .take(SHOWN_RANGES)
        .map(|r| {
            format!(
                "({}..{}]",
                short(&r.start_excl.to_hex()),
                short(&r.end_incl.to_hex())
            )
        })
        .collect();
    if ranges.len() > SHOWN_RANGES {
        shown.push(format!("… {} ranges", ranges.len()));
    }
    (ring.share_of(NodeIx(ix)), shown.join(" "))
}

fn short(hex: &str) -> &str {
    hex.get(..8).unwrap_or(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_node_owns_its_whole_group() {
        let json = r#"{"version":0,"nodes":[{"name":"n","addr":"127.0.0.1:1","group":1,"ids":[],"alive":true,"incarnation":0}]}"#;
        let text = render(json).unwrap_or_default();
        assert!(text.contains("100.0%"), "{text}");
        assert!(text.contains("all keys"), "{text}");
    }

    #[test]
    fn shares_of_two_nodes_add_up() {
        let a = "40".repeat(32);
        let b = "c0".repeat(32);
        let json = format!(
            r#"{{"version":3,"nodes":[{{"name":"a","addr":"x:1","group":1,"ids":["{a}"],"alive":true,"incarnation":1}},{{"name":"b","addr":"x:2","group":1,"ids":["{b}"],"alive":true,"incarnation":1}}]}}"#
        );
        let text = render(&json).unwrap_or_default();
        // (0x40.., 0xc0..] is 0x8080.. of 2^256: a hair over half.
        assert!(text.contains(" 49.8%") && text.contains(" 50.2%"), "{text}");
        assert!(render("[1,2]").is_none());
    }

    #[test]
    fn a_draining_node_is_shown_draining_not_dead() {
        let a = "40".repeat(32);
        let json = format!(
            r#"{{"version":3,"nodes":[{{"name":"a","addr":"x:1","group":1,"ids":["{a}"],"alive":false,"leaving":true,"incarnation":1}},{{"name":"b","addr":"x:2","group":1,"ids":[],"alive":false,"incarnation":2}},{{"name":"c","addr":"x:3","group":1,"ids":["{a}"],"alive":false,"incarnation":1}}]}}"#
        );
        let text = render(&json).unwrap_or_default();
        let alive: Vec<&str> = text
            .lines()
            .skip(2)
            .filter_map(|l| l.split_whitespace().nth(3))
            .collect();
        assert_eq!(alive, ["drain", "left", "no"], "{text}");
    }
}
