//! Ends a hand-over's read-through as soon as the previous owner has handed everything
//! over, instead of when the window (`handover_read_secs`, hours by default) runs out.
//! While a range taken over is read through, reads of keys this node lacks are relayed to
//! the previous owner and `ITERATE` answers covering it say `MOVING`, which makes a query
//! ask the previous owner too (`docs/PROTOCOL.md` §7.6, §15.10): both cost work for as long
//! as the range is awaited.
//!
//! Once a second, for each previous owner this node still awaits ranges from (not a leaving
//! one: those are read through for as long as they leave), it asks that owner for its route
//! table and then its `STAT`. The owner has handed over everything when
//! 1. its route table gives this node every part of the awaited ranges that this node's
//!    own table still gives it — it adopted the change, and a node plans the transfers a
//!    table calls for, and shows them in `STAT`, before it serves that table
//!    (`membership.rs`); a part that moved on since is its new owner's to await; and
//! 2. its `STAT`, read after the table, lists no pending transfer to this node: each one
//!    ended, and a transfer ends only once every record of its range is held here (or
//!    something newer is).
//!
//! Then the ranges noted up to the check's start are dropped (`IncomingRanges::handed_over`);
//! a range noted later waits for the next check. A failed check changes nothing: the window
//! still bounds how long a range is read through.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::handover::Handovers;
use crate::client::{Client, ClientConfig, ClientSecurity};
use crate::cluster::Awaited;
use crate::ring::{next_key, GroupRing, KeyRange, NodeIx, RouteTable};

/// How often previous owners are asked.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What the check needs from the node.
pub struct HandoverCheck {
    pub handovers: Arc<Handovers>,
    pub routes: watch::Receiver<Option<Arc<RouteTable>>>,
    pub me: String,
    pub security: ClientSecurity,
}

impl HandoverCheck {
    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(CHECK_EVERY) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return;
            }
            for awaited in self.handovers.awaited() {
                let table = self.routes.borrow().clone();
                let Some(owner) = table.as_ref().and_then(|t| t.node(&awaited.from)) else {
                    continue;
                };
                if !owner.reachable() {
                    continue;
                }
                let addr = owner.addr.clone();
                match self.handed_over(&addr, &awaited).await {
                    Ok(true) => {
                        let dropped = self.handovers.handed_over(&awaited.from, awaited.seq);
                        tracing::debug!(from = %awaited.from, dropped, "ranges taken over are all here");
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::debug!(from = %awaited.from, error = %e, "hand-over check failed")
                    }
                }
            }
        }
    }

    /// Whether `addr` (the previous owner) has handed over every range of `awaited`.
    async fn handed_over(
        &self,
        addr: &str,
        awaited: &Awaited,
    ) -> Result<bool, crate::client::ClientError> {
        let config = ClientConfig {
            name: format!("{} (hand-over check)", self.me),
            security: self.security.clone(),
            ..ClientConfig::default()
        };
        let Some(mine) = self.routes.borrow().clone() else {
            return Ok(false);
        };
        let owner = Client::connect(addr, config).await?;
        let theirs = owner.route_table().await?;
        if !agrees(&mine, &theirs, awaited, &self.me) {
            return Ok(false);
        }
        let stat = owner.stat_value().await?;
        Ok(!pending_to(&stat, &self.me))
    }
}

/// `group`'s ring in `table`, and the number `me` has in it.
fn ring_of(table: &RouteTable, group: u32, me: &str) -> Option<(GroupRing, NodeIx)> {
    let ix = table.nodes.iter().position(|n| n.name == me)?;
    let ring = table.rings().remove(&group)?;
    Some((ring, NodeIx(u32::try_from(ix).ok()?)))
}

/// Whether `theirs` (the previous owner's table) gives `me` every part of `awaited`'s
/// ranges that `mine` still gives it. (A part taken over since by another node is that
/// node's to await.)
fn agrees(mine: &RouteTable, theirs: &RouteTable, awaited: &Awaited, me: &str) -> bool {
    let (Some((my_ring, my_ix)), Some((their_ring, me_there))) = (
        ring_of(mine, awaited.group, me),
        ring_of(theirs, awaited.group, me),
    ) else {
        return false;
    };
    awaited
        .ranges
        .iter()
        .flat_map(spans)
        .flat_map(|(from, to)| my_ring.split(from, to))
        .filter(|(n, _, _)| *n == my_ix)
        .all(|(_, from, to)| {
            their_ring
                .split(from, to)
                .iter()
                .all(|(n, _, _)| *n == me_there)
        })
}

/// `range` as inclusive key spans without wrapping (one or two).
fn spans(range: &KeyRange) -> Vec<([u8; 32], [u8; 32])> {
    let (start, end) = (range.start_excl.0, range.end_incl.0);
    if range.is_whole_ring() {
        return vec![([0; 32], [0xff; 32])];
    }
    match next_key(&start) {
        // The range starts past 2^256 − 1: it is 0 ..= end.
        None => vec![([0; 32], end)],
        Some(first) if first <= end => vec![(first, end)],
        Some(first) => vec![(first, [0xff; 32]), ([0; 32], end)],
    }
}

/// Whether `stat` (a node's `STAT`) lists a transfer to `me` still pending.
fn pending_to(stat: &serde_json::Value, me: &str) -> bool {
    let pending = &stat["cluster"]["rebalancing"]["pending"];
    match pending.as_array() {
        Some(moves) => moves.iter().any(|m| m["to"].as_str() == Some(me)),
        // A node that does not say cannot be taken at its word.
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::fixtures::{at, c_joins, node};
    use crate::ring::RingId;

    #[test]
    fn ranges_become_spans_that_do_not_wrap() {
        let r = KeyRange::new(at(0x10), at(0x20));
        let mut first = at(0x10).0;
        first[31] = 1;
        assert_eq!(spans(&r), vec![(first, at(0x20).0)]);
        let wrapping = KeyRange::new(at(0xf0), at(0x10));
        assert_eq!(spans(&wrapping).len(), 2);
        assert_eq!(spans(&wrapping)[1], ([0; 32], at(0x10).0));
        let whole = KeyRange::new(at(0x10), at(0x10));
        assert_eq!(spans(&whole), vec![([0; 32], [0xff; 32])]);
        let from_top = KeyRange::new(RingId([0xff; 32]), at(0x10));
        assert_eq!(spans(&from_top), vec![([0; 32], at(0x10).0)]);
    }

    #[test]
    fn the_previous_owner_agrees_once_its_table_gives_us_what_ours_still_does() {
        let (before, after) = c_joins();
        // c took (0xff…, 0x40…] from a.
        let awaited = Awaited {
            from: "a".into(),
            group: 1,
            ranges: vec![KeyRange::new(at(0xff), at(0x40))],
            seq: 1,
        };
        assert!(
            !agrees(&after, &before, &awaited, "c"),
            "a has not adopted it"
        );
        assert!(agrees(&after, &after, &awaited, "c"));
        // d took (0x20…, 0x40…] from c since: c awaits only the rest.
        let later = RouteTable::new(
            3,
            vec![
                node("a", &[0x80]),
                node("b", &[0xff]),
                node("c", &[0x20]),
                node("d", &[0x40]),
            ],
        );
        assert!(agrees(&later, &after, &awaited, "c"));
        assert!(agrees(&later, &later, &awaited, "c"));
        assert!(!agrees(&later, &before, &awaited, "c"));
    }

    #[test]
    fn a_node_is_waited_for_while_it_lists_a_transfer_to_us_or_lists_nothing() {
        let stat = |pending: serde_json::Value| serde_json::json!({"cluster": {"rebalancing": {"pending": pending}}});
        let to_c = stat(serde_json::json!([{"to": "c", "fraction_left": 0.1}]));
        assert!(pending_to(&to_c, "c"));
        assert!(!pending_to(&to_c, "d"));
        assert!(!pending_to(&stat(serde_json::json!([])), "c"));
        assert!(pending_to(&serde_json::json!({}), "c"));
    }
}
