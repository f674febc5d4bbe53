//! Balanced rings in any start order (`docs/PROTOCOL.md` §15.3).
//!
//! A joining node chooses its IDs against the ring it knows. Nodes of one group that start
//! together each choose against a ring without the others, cut the same donor ranges, and
//! can end up owning 0.4 %, 9 % and 90 % of the group. So every active node checks its
//! group's ring once per join check: when the ring has not changed for [`STABLE_CHECKS`]
//! checks, every node of the group is alive, this node has nothing left to hand over, and
//! some node's share is outside [mean / [`BALANCE_FACTOR`], mean × [`BALANCE_FACTOR`]], the
//! node with the smallest share (lowest index on ties; every node computes the same one from
//! the same table) chooses its IDs again, against the ring without itself. That gives it its
//! fair share, cut out of the most loaded nodes; the ordinary hand-over moves the data. Each
//! round fixes the smallest node, so a group of n converges in at most n - 1 rounds.

use std::collections::BTreeMap;

use super::outbox::Outbox;
use super::state::Phase;
use super::{Cluster, ClusterError, Effect};
use crate::ring::{choose_ids, NodeIx, RingId};

/// A ring is balanced when every node's share is within this factor of the mean.
pub const BALANCE_FACTOR: f64 = 1.25;
/// Join checks the group's ring must stay unchanged before a node re-chooses its IDs.
pub const STABLE_CHECKS: u32 = 3;

/// The node that should choose its IDs again: the one with the smallest share (lowest index
/// on ties), if any node's share is outside [mean / F, mean × F]; `None` if balanced.
pub fn rebalancer(shares: &BTreeMap<NodeIx, f64>) -> Option<NodeIx> {
    if shares.len() < 2 {
        return None;
    }
    let mean = 1.0 / shares.len() as f64;
    let balanced = shares
        .values()
        .all(|s| *s * BALANCE_FACTOR >= mean && *s <= mean * BALANCE_FACTOR);
    if balanced {
        return None;
    }
    shares
        .iter()
        .min_by(|a, b| a.1.total_cmp(b.1).then(a.0.cmp(b.0)))
        .map(|(ix, _)| *ix)
}

/// What a node last saw of its group's ring, and for how many checks it stayed so.
#[derive(Debug, Default)]
pub struct RingWatch {
    last: Vec<(String, Vec<RingId>)>,
    stable: u32,
}

impl RingWatch {
    /// Notes `now` (the group's members and IDs); true once it has not changed for
    /// [`STABLE_CHECKS`] checks in a row.
    fn settled(&mut self, now: Vec<(String, Vec<RingId>)>) -> bool {
        if now == self.last {
            self.stable = self.stable.saturating_add(1);
        } else {
            self.last = now;
            self.stable = 0;
        }
        self.stable >= STABLE_CHECKS
    }

    /// Whether `now` is what the last [`STABLE_CHECKS`] checks saw (without counting a
    /// check).
    fn steady(&self, now: &[(String, Vec<RingId>)]) -> bool {
        self.stable >= STABLE_CHECKS && self.last == now
    }

    fn reset(&mut self) {
        self.stable = 0;
    }
}

impl Cluster {
    /// The group's members and their IDs, as the ring watch compares them.
    fn group_view(&self) -> Vec<(String, Vec<RingId>)> {
        let group = self.config.group;
        self.table
            .nodes
            .iter()
            .filter(|n| n.group == group)
            .map(|n| (n.name.clone(), n.ids.clone()))
            .collect()
    }

    /// Whether a leave may start now: the group's ring has not changed for
    /// [`STABLE_CHECKS`] join checks and this node has nothing left to hand over — no
    /// balancing round or join is still moving ranges, so every node of the group knows
    /// where each range is before the leave moves them again.
    pub(crate) fn ready_to_leave(&self) -> bool {
        self.plan.is_empty() && self.ring_watch.steady(&self.group_view())
    }

    /// A leave asked for while the ring was moving: one more join check; starts the leave
    /// once [`Cluster::ready_to_leave`].
    pub(crate) fn leave_check(&mut self, out: &mut Outbox) -> Result<(), ClusterError> {
        let view = self.group_view();
        self.ring_watch.settled(view);
        // Alone now (every other member gone), there is no ring to settle.
        if self.ready_to_leave() || self.swim.num_members() == 0 {
            self.start_leaving(out)?;
        }
        Ok(())
    }

    /// Re-chooses this node's IDs if it is the group's rebalancer (module docs).
    pub(crate) fn balance_check(&mut self, out: &mut Outbox) -> Result<(), ClusterError> {
        let group = self.config.group;
        let members: Vec<_> = self
            .table
            .nodes
            .iter()
            .filter(|n| n.group == group)
            .collect();
        let view = self.group_view();
        let ready =
            self.phase == Phase::Active && self.plan.is_empty() && members.iter().all(|n| n.alive);
        if !self.ring_watch.settled(view) || !ready {
            return Ok(());
        }
        let Some(me) = self.my_index() else {
            return Ok(());
        };
        let rings = self.table.rings();
        let Some(ring) = rings.get(&group) else {
            return Ok(());
        };
        if rebalancer(&ring.shares()) != Some(me) {
            return Ok(());
        }
        let before = self.table.clone();
        self.ids = choose_ids(
            &ring.without_node(me),
            self.config.ids_per_node,
            &mut self.rng,
        )?;
        out.effects.push(Effect::IdsChosen(self.ids.clone()));
        self.ring_watch.reset();
        self.settle(before, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(s: &[f64]) -> BTreeMap<NodeIx, f64> {
        (0u32..).zip(s).map(|(i, s)| (NodeIx(i), *s)).collect()
    }

    #[test]
    fn the_smallest_share_rebalances_only_outside_the_band() {
        assert_eq!(rebalancer(&shares(&[1.0])), None);
        assert_eq!(rebalancer(&shares(&[0.3, 0.36, 0.34])), None);
        assert_eq!(rebalancer(&shares(&[0.004, 0.094, 0.902])), Some(NodeIx(0)));
        assert_eq!(rebalancer(&shares(&[0.571, 0.027, 0.402])), Some(NodeIx(1)));
        // Only the largest is out of the band: the smallest still moves (it takes from it).
        assert_eq!(
            rebalancer(&shares(&[0.22, 0.21, 0.22, 0.35])),
            Some(NodeIx(1))
        );
        assert_eq!(rebalancer(&shares(&[0.1, 0.1, 0.8])), Some(NodeIx(0)));
    }

    #[test]
    fn a_ring_must_stay_unchanged_for_some_checks() {
        let mut w = RingWatch::default();
        let view = |n: u8| vec![("a".to_string(), vec![RingId([n; 32])])];
        for _ in 0..STABLE_CHECKS {
            assert!(!w.settled(view(1)));
        }
        assert!(w.settled(view(1)));
        assert!(!w.settled(view(2)), "a change starts the count again");
        w.reset();
        assert!(!w.settled(view(2)));
    }
}
