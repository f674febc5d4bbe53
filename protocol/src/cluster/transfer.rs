//! [`TransferPlan`]: the key ranges this node must stream to their new owners, each with a
//! cursor so a stream resumes where it stopped.
//!
//! On every route-table change the plan is rebuilt from what is still pending plus the
//! ranges this node owned before and does not own after (`RouteTable::moves_to`), all cut
//! by the new ring's owners: a pending range whose owner changed again goes to the newest
//! owner, a range that came back to this node is dropped. A transfer untouched by the
//! change keeps its id and cursor.

use super::split::split_by_owner;
use super::{ClusterError, TransferProgress};
use crate::ring::{KeyRange, RouteTable};
use crate::wire::KeyId;

/// One outgoing stream: every key of `range` after `cursor`, in the range's order, to `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// Stable while the transfer is unchanged; a new id after any re-planning of it.
    pub id: u64,
    /// The keys to stream, in the order from `start_excl` up to `end_incl` (wrapping).
    pub range: KeyRange,
    /// The node that owns them now (look its address up in the route table).
    pub to: String,
    /// The last key sent and acknowledged; `None` before the first.
    pub cursor: Option<KeyId>,
}

impl Transfer {
    /// The keys still to send, or `None` when the cursor reached the end.
    pub fn remaining(&self) -> Option<KeyRange> {
        match self.cursor {
            None => Some(self.range),
            Some(c) if c == self.range.end_incl.0 => None,
            Some(c) => Some(KeyRange::new(crate::ring::RingId(c), self.range.end_incl)),
        }
    }

    /// The record to persist for this transfer.
    pub fn progress(&self) -> TransferProgress {
        TransferProgress {
            range: self.range,
            to: self.to.clone(),
            cursor: self.cursor,
        }
    }
}

/// Every pending outgoing transfer of one node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransferPlan {
    next_id: u64,
    transfers: Vec<Transfer>,
}

impl TransferPlan {
    /// A plan resumed from persisted progress records.
    pub fn resume(records: Vec<TransferProgress>) -> TransferPlan {
        let mut plan = TransferPlan::default();
        for record in records {
            let id = plan.take_id();
            plan.transfers.push(Transfer {
                id,
                range: record.range,
                to: record.to,
                cursor: record.cursor,
            });
        }
        plan.transfers.retain(|t| t.remaining().is_some());
        plan
    }

    /// The pending transfers.
    pub fn transfers(&self) -> &[Transfer] {
        &self.transfers
    }

    /// True if nothing is left to stream.
    pub fn is_empty(&self) -> bool {
        self.transfers.is_empty()
    }

    /// Re-plans after the table changed from `before` to `after`, for node `me`; true if
    /// the list changed.
    pub fn replan(&mut self, before: &RouteTable, after: &RouteTable, me: &str) -> bool {
        let Some(group) = after.node(me).or(before.node(me)).map(|n| n.group) else {
            return false;
        };
        let mut pending: Vec<(KeyRange, String, Option<Transfer>)> = Vec::new();
        for t in std::mem::take(&mut self.transfers) {
            if let Some(rest) = t.remaining() {
                pending.push((rest, t.to.clone(), Some(t)));
            }
        }
        let moves = before.moves_to(after, group);
        for m in moves.into_iter().filter(|m| m.from == me) {
            pending.push((m.range, m.to, None));
        }
        let rings = after.rings();
        let Some(ring) = rings.get(&group) else {
            // Nobody is left to own anything: keep what is pending, as it is.
            self.transfers = pending.into_iter().filter_map(|(_, _, t)| t).collect();
            return false;
        };
        let mut changed = false;
        for (range, to, old) in pending {
            let pieces = split_by_owner(&range, ring);
            let name_of = |ix: crate::ring::NodeIx| {
                let at = usize::try_from(ix.0).ok()?;
                after.nodes.get(at).map(|n| n.name.clone())
            };
            if let (Some(old), [(piece, owner)]) = (&old, pieces.as_slice()) {
                if *piece == range && name_of(*owner).as_deref() == Some(to.as_str()) {
                    self.transfers.push(old.clone());
                    continue;
                }
            }
            changed = true;
            for (piece, owner) in pieces {
                match name_of(owner) {
                    Some(name) if name != me => {
                        let id = self.take_id();
                        self.transfers.push(Transfer {
                            id,
                            range: piece,
                            to: name,
                            cursor: None,
                        });
                    }
                    _ => {}
                }
            }
        }
        changed
    }

    /// Records that every key of transfer `id` up to `cursor` was acknowledged; a cursor
    /// at the range's end finishes it. Unknown ids (re-planned meanwhile) are ignored.
    pub fn advance(&mut self, id: u64, cursor: KeyId) -> Result<(), ClusterError> {
        let Some(t) = self.transfers.iter_mut().find(|t| t.id == id) else {
            return Ok(());
        };
        if !t.range.contains(&cursor) {
            return Err(ClusterError::CursorOutsideRange);
        }
        t.cursor = Some(cursor);
        self.transfers.retain(|t| t.remaining().is_some());
        Ok(())
    }

    /// Records that transfer `id` sent everything.
    pub fn finish(&mut self, id: u64) {
        self.transfers.retain(|t| t.id != id);
    }

    fn take_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{RingId, RouteNode};

    fn at(v: u8) -> RingId {
        let mut id = RingId::MIN;
        if let Some(b) = id.0.first_mut() {
            *b = v;
        }
        id
    }

    fn node(name: &str, ids: &[u8], alive: bool) -> RouteNode {
        RouteNode {
            name: name.into(),
            addr: format!("{name}:1"),
            group: 0,
            ids: ids.iter().map(|v| at(*v)).collect(),
            alive,
            leaving: false,
            incarnation: 1,
        }
    }

    fn table(nodes: Vec<RouteNode>) -> RouteTable {
        RouteTable::new(1, nodes)
    }

    #[test]
    fn a_join_plans_the_joiners_ranges_and_a_second_change_retargets() -> Result<(), ClusterError> {
        let t1 = table(vec![node("a", &[100], true), node("b", &[200], true)]);
        let t2 = table(vec![
            node("a", &[100], true),
            node("b", &[200], true),
            node("c", &[150], true),
        ]);
        let mut plan = TransferPlan::default();
        assert!(plan.replan(&t1, &t2, "b"));
        let first = plan.transfers().to_vec();
        assert_eq!(first.len(), 1);
        assert_eq!(
            first.first().map(|t| (t.range, t.to.as_str())),
            Some((KeyRange::new(at(100), at(150)), "c"))
        );
        plan.advance(first.first().map(|t| t.id).unwrap_or(0), at(120).0)?;
        // d joins inside the pending part: the rest is split between d and c.
        let mut t3 = t2.clone();
        t3.merge(&table(vec![node("d", &[130], true)]));
        assert!(plan.replan(&t2, &t3, "b"));
        let got: Vec<(KeyRange, &str)> = plan
            .transfers()
            .iter()
            .map(|t| (t.range, t.to.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (KeyRange::new(at(120), at(130)), "d"),
                (KeyRange::new(at(130), at(150)), "c")
            ]
        );
        // c dies: its part comes back to b and is dropped; d's stays.
        let mut t4 = t3.clone();
        let mut dead = node("c", &[150], false);
        dead.incarnation = 1;
        t4.merge(&table(vec![dead]));
        plan.replan(&t3, &t4, "b");
        assert_eq!(plan.transfers().len(), 1);
        assert_eq!(plan.transfers().first().map(|t| t.to.as_str()), Some("d"));
        Ok(())
    }

    #[test]
    fn unchanged_transfers_keep_id_and_cursor_and_resume() -> Result<(), ClusterError> {
        let t1 = table(vec![node("a", &[100], true), node("b", &[200], true)]);
        let t2 = table(vec![node("a", &[100], true), node("b", &[200], false)]);
        let mut plan = TransferPlan::default();
        plan.replan(&t1, &t2, "b");
        let id = plan.transfers().first().map(|t| t.id).unwrap_or(0);
        plan.advance(id, at(150).0)?;
        assert!(!plan.replan(&t2, &t2, "b"));
        assert_eq!(
            plan.transfers().first().map(|t| (t.id, t.cursor)),
            Some((id, Some(at(150).0)))
        );
        let records: Vec<TransferProgress> =
            plan.transfers().iter().map(Transfer::progress).collect();
        let resumed = TransferPlan::resume(records);
        assert_eq!(
            resumed.transfers().first().map(|t| t.cursor),
            Some(Some(at(150).0))
        );
        assert!(plan.advance(id, at(250).0).is_err(), "outside (100, 200]");
        plan.advance(id, at(200).0)?;
        assert!(plan.is_empty());
        Ok(())
    }
}
