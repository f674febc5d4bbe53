//! [`GroupRing`]: the ring of one replica group, and the ownership rule.
//!
//! A key belongs to the node holding the first ring ID that is ≥ the key (its successor),
//! wrapping around to the smallest ID. So each ID owns the range (previous ID, ID].

use std::collections::BTreeMap;

use super::wide::Wide;
use super::{KeyRange, NodeIx, RingId};
use crate::wire::KeyId;

/// The IDs of the nodes of one replica group, sorted around the ring.
///
/// If two nodes list the same ID, the smaller [`NodeIx`] holds it and the other claim is
/// kept aside in [`GroupRing::shadowed`], so every builder of the same input agrees on the
/// owner and the conflict can still be reported.
/// The key after `key` (big-endian + 1), or `None` past the top of the ring.
pub fn next_key(key: &KeyId) -> Option<KeyId> {
    let mut next = *key;
    for b in next.iter_mut().rev() {
        let (v, carry) = b.overflowing_add(1);
        *b = v;
        if !carry {
            return Some(next);
        }
    }
    None
}

/// The key before `key`, or `None` at 0.
pub fn prev_key(key: &KeyId) -> Option<KeyId> {
    let mut prev = *key;
    for b in prev.iter_mut().rev() {
        let (v, borrow) = b.overflowing_sub(1);
        *b = v;
        if !borrow {
            return Some(prev);
        }
    }
    None
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupRing {
    /// Every held ID with its node, ascending by ID, IDs distinct.
    points: Vec<(RingId, NodeIx)>,
    /// Claims of an ID already held by a node with a smaller index.
    shadowed: Vec<(RingId, NodeIx)>,
}

impl GroupRing {
    /// Builds the ring from each node's IDs, in O(n log n) for n IDs. Nodes without IDs
    /// own nothing; an ID listed twice by the same node counts once.
    pub fn new<I, J>(nodes: I) -> GroupRing
    where
        I: IntoIterator<Item = (NodeIx, J)>,
        J: IntoIterator<Item = RingId>,
    {
        let mut all: Vec<(RingId, NodeIx)> = nodes
            .into_iter()
            .flat_map(|(node, ids)| ids.into_iter().map(move |id| (id, node)))
            .collect();
        all.sort_unstable();
        all.dedup();
        let mut points: Vec<(RingId, NodeIx)> = Vec::with_capacity(all.len());
        let mut shadowed = Vec::new();
        for (id, node) in all {
            match points.last() {
                Some((held, _)) if *held == id => shadowed.push((id, node)),
                _ => points.push((id, node)),
            }
        }
        GroupRing { points, shadowed }
    }

    /// This ring plus `node` holding `ids` (a join, or more IDs for a member).
    pub fn with_node(&self, node: NodeIx, ids: &[RingId]) -> GroupRing {
        let existing = self.points.iter().chain(self.shadowed.iter()).copied();
        let added = ids.iter().map(|id| (*id, node));
        GroupRing::new(existing.chain(added).map(|(id, n)| (n, [id])))
    }

    /// This ring without `node` (a leave): its ranges fall to the successors.
    pub fn without_node(&self, node: NodeIx) -> GroupRing {
        let kept = self.points.iter().chain(self.shadowed.iter());
        GroupRing::new(kept.filter(|(_, n)| *n != node).map(|(id, n)| (*n, [*id])))
    }

    /// True if no node holds an ID: nobody owns anything.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Every held ID with its node, ascending by ID.
    pub fn points(&self) -> &[(RingId, NodeIx)] {
        &self.points
    }

    /// IDs claimed by a node but held by another with a smaller index (a conflict to log).
    pub fn shadowed(&self) -> &[(RingId, NodeIx)] {
        &self.shadowed
    }

    /// The node owning `key`: the holder of the first ID ≥ `key`, else of the smallest ID.
    /// A binary search; `None` only for an empty ring.
    pub fn owner(&self, key: &KeyId) -> Option<NodeIx> {
        self.successor(&RingId(*key)).map(|(_, node)| node)
    }

    /// The first held ID ≥ `pos` (wrapping to the smallest) and its node.
    pub fn successor(&self, pos: &RingId) -> Option<(RingId, NodeIx)> {
        let at = self.points.partition_point(|(id, _)| id < pos);
        self.points.get(at).or(self.points.first()).copied()
    }

    /// The nodes holding at least one ID, ascending.
    pub fn nodes(&self) -> Vec<NodeIx> {
        let mut nodes: Vec<NodeIx> = self.points.iter().map(|(_, n)| *n).collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes
    }

    /// The IDs `node` holds, ascending.
    pub fn ids_of(&self, node: NodeIx) -> Vec<RingId> {
        self.points
            .iter()
            .filter(|(_, n)| *n == node)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Every range with its owner, in ring order: the range of the smallest ID (which
    /// wraps past 2^256 − 1 unless that ID is the largest too) comes first.
    pub fn ranges(&self) -> impl Iterator<Item = (KeyRange, NodeIx)> + '_ {
        let before = self.points.last().into_iter().chain(self.points.iter());
        before
            .zip(self.points.iter())
            .map(|((start, _), (end, node))| (KeyRange::new(*start, *end), *node))
    }

    /// The inclusive key span `from ..= to` (`from` ≤ `to`, no wrapping) cut where
    /// ownership changes: (owner, first, last) pieces in key order. Empty for an empty ring.
    pub fn split(&self, from: KeyId, to: KeyId) -> Vec<(NodeIx, KeyId, KeyId)> {
        let mut out = Vec::new();
        let mut at = from;
        while let Some((id, node)) = self.successor(&RingId(at)) {
            // Past the largest ID the smallest one's node owns everything to the top.
            let end = match id.0 >= at && id.0 < to {
                true => id.0,
                false => to,
            };
            out.push((node, at, end));
            match (end < to).then(|| next_key(&end)).flatten() {
                Some(next) => at = next,
                None => break,
            }
        }
        out
    }

    /// The ranges `node` owns, in ring order; one per ID it holds.
    pub fn ranges_of(&self, node: NodeIx) -> Vec<KeyRange> {
        self.ranges()
            .filter(|(_, n)| *n == node)
            .map(|(range, _)| range)
            .collect()
    }

    /// The fraction of the 2^256 keys `node` owns, exact to ~1e-16.
    pub fn share_of(&self, node: NodeIx) -> f64 {
        self.width_of(node).fraction()
    }

    /// Every node's fraction of the keys, in one pass.
    pub fn shares(&self) -> BTreeMap<NodeIx, f64> {
        self.widths()
            .into_iter()
            .map(|(node, width)| (node, width.fraction()))
            .collect()
    }

    /// Every node's number of keys, exactly, in one pass.
    pub(crate) fn widths(&self) -> BTreeMap<NodeIx, Wide> {
        let mut widths: BTreeMap<NodeIx, Wide> = BTreeMap::new();
        for (range, node) in self.ranges() {
            let width = widths.entry(node).or_default();
            *width = width.wrapping_add(range.width());
        }
        widths
    }

    /// The number of keys `node` owns, exactly.
    pub(crate) fn width_of(&self, node: NodeIx) -> Wide {
        self.ranges()
            .filter(|(_, n)| *n == node)
            .map(|(range, _)| range.width())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(v: u8) -> RingId {
        let mut id = RingId::MIN;
        id.0[0] = v;
        id
    }

    fn three_nodes() -> GroupRing {
        GroupRing::new([
            (NodeIx(0), vec![at(10), at(200)]),
            (NodeIx(1), vec![at(100)]),
            (NodeIx(2), vec![at(150)]),
        ])
    }

    #[test]
    fn split_cuts_a_span_where_ownership_changes() {
        let ring = three_nodes();
        let top = RingId::MAX.0;
        let pieces = ring.split(at(5).0, top);
        let owners: Vec<NodeIx> = pieces.iter().map(|p| p.0).collect();
        assert_eq!(
            owners,
            [NodeIx(0), NodeIx(1), NodeIx(2), NodeIx(0), NodeIx(0)]
        );
        assert_eq!((pieces[0].1, pieces[0].2), (at(5).0, at(10).0));
        assert_eq!(Some(pieces[1].1), next_key(&at(10).0));
        assert_eq!(pieces[4].2, top);
        for w in pieces.windows(2) {
            assert_eq!(next_key(&w[0].2), Some(w[1].1));
        }
        let inside = ring.split(at(11).0, at(20).0);
        assert_eq!(inside, [(NodeIx(1), at(11).0, at(20).0)]);
        assert!(GroupRing::default().split(at(1).0, at(2).0).is_empty());
        assert_eq!(next_key(&top), None);
    }

    #[test]
    fn owner_is_the_successor_and_wraps() {
        let ring = three_nodes();
        assert_eq!(ring.owner(&at(10).0), Some(NodeIx(0)), "an ID owns itself");
        assert_eq!(ring.owner(&at(11).0), Some(NodeIx(1)));
        assert_eq!(ring.owner(&at(100).0), Some(NodeIx(1)));
        assert_eq!(ring.owner(&at(101).0), Some(NodeIx(2)));
        assert_eq!(ring.owner(&at(199).0), Some(NodeIx(0)));
        assert_eq!(
            ring.owner(&RingId::MAX.0),
            Some(NodeIx(0)),
            "wraps to the smallest"
        );
        assert_eq!(ring.owner(&RingId::MIN.0), Some(NodeIx(0)));
        assert_eq!(GroupRing::default().owner(&at(1).0), None);
    }

    #[test]
    fn ranges_and_shares() {
        let ring = three_nodes();
        assert_eq!(
            ring.ranges_of(NodeIx(0)),
            vec![
                KeyRange::new(at(200), at(10)),
                KeyRange::new(at(150), at(200))
            ]
        );
        assert_eq!(
            ring.ranges_of(NodeIx(1)),
            vec![KeyRange::new(at(10), at(100))]
        );
        assert!((ring.share_of(NodeIx(0)) - 116.0 / 256.0).abs() < 1e-12);
        assert!((ring.share_of(NodeIx(1)) - 90.0 / 256.0).abs() < 1e-12);
        assert!((ring.share_of(NodeIx(2)) - 50.0 / 256.0).abs() < 1e-12);
        assert_eq!(ring.share_of(NodeIx(9)), 0.0);
        let shares = ring.shares();
        assert_eq!(shares.len(), 3);
        assert_eq!(shares.get(&NodeIx(2)), Some(&ring.share_of(NodeIx(2))));
        assert_eq!(ring.nodes(), vec![NodeIx(0), NodeIx(1), NodeIx(2)]);
        assert_eq!(ring.ids_of(NodeIx(0)), vec![at(10), at(200)]);
    }

    #[test]
    fn single_id_owns_the_whole_ring() {
        let ring = GroupRing::new([(NodeIx(4), [at(9)])]);
        assert_eq!(ring.ranges_of(NodeIx(4)), vec![KeyRange::new(at(9), at(9))]);
        assert_eq!(ring.share_of(NodeIx(4)), 1.0);
        assert_eq!(ring.owner(&at(200).0), Some(NodeIx(4)));
    }

    #[test]
    fn conflicting_claims_go_to_the_smaller_index() {
        let ring = GroupRing::new([
            (NodeIx(3), vec![at(50), at(50)]),
            (NodeIx(1), vec![at(50), at(60)]),
        ]);
        assert_eq!(ring.points(), &[(at(50), NodeIx(1)), (at(60), NodeIx(1))]);
        assert_eq!(ring.shadowed(), &[(at(50), NodeIx(3))]);
        assert_eq!(ring.nodes(), vec![NodeIx(1)]);
        // Removing the holder hands the ID to the shadowed claimant.
        let after = ring.without_node(NodeIx(1));
        assert_eq!(after.points(), &[(at(50), NodeIx(3))]);
        assert!(after.shadowed().is_empty());
    }

    #[test]
    fn join_and_leave_helpers() {
        let ring = three_nodes();
        let joined = ring.with_node(NodeIx(7), &[at(120)]);
        assert_eq!(joined.owner(&at(110).0), Some(NodeIx(7)));
        assert_eq!(joined.owner(&at(121).0), Some(NodeIx(2)));
        assert_eq!(joined.without_node(NodeIx(7)), ring);
    }
}
