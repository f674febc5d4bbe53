//! Anti-entropy of route tables: a node sends a summary of its table (one
//! [`EntrySummary`] per entry) to a random member; the member answers with the entries the
//! sender lacks or holds older and names the entries it wants back. Merging is a join
//! (`RouteTable::merge`), so any order of exchanges converges.

use std::collections::BTreeMap;

use super::message::{entry_hash, summarize, EntrySummary};
use crate::ring::{RouteNode, RouteTable, RING_ID_LEN};

/// A summary of every entry of `table`.
pub fn digest_of(table: &RouteTable) -> Vec<EntrySummary> {
    table.nodes.iter().map(summarize).collect()
}

/// What to answer a digest: my entries that may be newer than the sender's (or that it
/// lacks), at most about `max_bytes` of them starting at the `rotate`-th, and the names of
/// entries the sender holds newer or that I lack.
pub fn answer_digest(
    table: &RouteTable,
    theirs: &[EntrySummary],
    max_bytes: usize,
    rotate: usize,
) -> (Vec<RouteNode>, Vec<String>) {
    let by_name: BTreeMap<&str, &EntrySummary> =
        theirs.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut give: Vec<&RouteNode> = Vec::new();
    for mine in &table.nodes {
        match by_name.get(mine.name.as_str()) {
            None => give.push(mine),
            Some(their) if rank_of(their) <= rank(mine) && !same(their, mine) => give.push(mine),
            Some(_) => {}
        }
    }
    let want = theirs
        .iter()
        .filter(|their| match table.node(&their.name) {
            None => true,
            Some(mine) => rank_of(their) >= rank(mine) && !same(their, mine),
        })
        .map(|their| their.name.clone())
        .collect();
    (capped(&give, max_bytes, rotate), want)
}

/// The entries named in `names` that `table` holds, at most about `max_bytes` of them.
pub fn entries_named(table: &RouteTable, names: &[String], max_bytes: usize) -> Vec<RouteNode> {
    let found: Vec<&RouteNode> = names.iter().filter_map(|n| table.node(n)).collect();
    capped(&found, max_bytes, 0)
}

/// Entries from the `rotate`-th (wrapping) until their encodings pass `max_bytes`; at
/// least one, so every entry can travel whatever the cap.
fn capped(entries: &[&RouteNode], max_bytes: usize, rotate: usize) -> Vec<RouteNode> {
    let n = entries.len();
    let mut out = Vec::new();
    let mut used = 0usize;
    for i in 0..n {
        let Some(entry) = entries.get((rotate + i) % n) else {
            break;
        };
        let len = encoded_len(entry);
        if !out.is_empty() && used + len > max_bytes {
            break;
        }
        used += len;
        out.push((*entry).clone());
    }
    out
}

fn encoded_len(node: &RouteNode) -> usize {
    2 + node.name.len() + node.addr.len() + 4 + 8 + 1 + 4 + node.ids.len() * RING_ID_LEN
}

fn rank(node: &RouteNode) -> (u64, u8) {
    (node.incarnation, node.liveness_rank())
}

fn rank_of(summary: &EntrySummary) -> (u64, u8) {
    let liveness = match (summary.alive, summary.leaving) {
        (true, _) => 0,
        (false, true) => 1,
        (false, false) => 2,
    };
    (summary.incarnation, liveness)
}

fn same(summary: &EntrySummary, node: &RouteNode) -> bool {
    rank_of(summary) == rank(node) && summary.hash == entry_hash(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::RingId;

    fn node(name: &str, incarnation: u64, alive: bool) -> RouteNode {
        RouteNode {
            name: name.into(),
            addr: format!("{name}:1"),
            group: 0,
            ids: vec![RingId::MAX],
            alive,
            leaving: false,
            incarnation,
        }
    }

    fn table(nodes: Vec<RouteNode>) -> RouteTable {
        RouteTable::new(1, nodes)
    }

    #[test]
    fn one_exchange_makes_both_tables_equal() {
        let mut a = table(vec![
            node("a", 1, true),
            node("c", 2, true),
            node("d", 5, true),
        ]);
        let mut b = table(vec![
            node("b", 1, true),
            node("c", 2, false),
            node("d", 4, true),
        ]);
        // a → b: digest; b answers with entries and wants; a sends the wanted entries.
        let (entries, want) = answer_digest(&b, &digest_of(&a), usize::MAX, 0);
        a.merge(&table(entries));
        let back = entries_named(&a, &want, usize::MAX);
        b.merge(&table(back));
        assert_eq!(a, b);
        assert_eq!(a.node("c").map(|n| n.alive), Some(false), "dead wins a tie");
        assert_eq!(a.node("d").map(|n| n.incarnation), Some(5));
        let (entries, want) = answer_digest(&b, &digest_of(&a), usize::MAX, 0);
        assert!(entries.is_empty() && want.is_empty(), "nothing left to say");
    }

    #[test]
    fn the_cap_limits_entries_but_sends_one() {
        let t = table((0..10).map(|i| node(&format!("n{i}"), 1, true)).collect());
        let (entries, _) = answer_digest(&t, &[], 1, 3);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries.first().map(|n| n.name.as_str()), Some("n3"));
        let (all, _) = answer_digest(&t, &[], usize::MAX, 0);
        assert_eq!(all.len(), 10);
    }
}
