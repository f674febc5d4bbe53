//! [`moved_ranges`]: which key ranges change owner between two rings of one group.
//!
//! Between consecutive IDs of the union of both rings' IDs, the successor in each ring is
//! the same for every key, so each such elementary range has one owner before and one
//! after. The ranges whose owners differ are listed, adjacent ones with the same
//! (from, to) merged, in ring order.

use super::{GroupRing, KeyRange, NodeIx, RingId};

/// A key range whose owner changed: its keys must be streamed `from` → `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Move {
    /// The keys that move.
    pub range: KeyRange,
    /// Their owner in the ring before.
    pub from: NodeIx,
    /// Their owner in the ring after.
    pub to: NodeIx,
}

/// Exactly the key ranges whose owner differs between `before` and `after` (a join, a
/// leave, or any other change), in ring order starting from the smallest position; a key
/// `k` is in a listed range iff `before.owner(k) != after.owner(k)`. Both rings must number
/// nodes alike. If either ring is empty nothing can be streamed and the list is empty.
/// O(m log n) for m IDs in both rings together.
pub fn moved_ranges(before: &GroupRing, after: &GroupRing) -> Vec<Move> {
    if before.is_empty() || after.is_empty() {
        return Vec::new();
    }
    let mut bounds: Vec<RingId> = before
        .points()
        .iter()
        .chain(after.points().iter())
        .map(|(id, _)| *id)
        .collect();
    bounds.sort_unstable();
    bounds.dedup();
    let starts = bounds.last().into_iter().chain(bounds.iter());
    let mut moves: Vec<Move> = Vec::new();
    for (start, end) in starts.zip(bounds.iter()) {
        let (Some((_, from)), Some((_, to))) = (before.successor(end), after.successor(end)) else {
            continue;
        };
        if from == to {
            continue;
        }
        match moves.last_mut() {
            Some(last) if last.range.end_incl == *start && (last.from, last.to) == (from, to) => {
                last.range.end_incl = *end;
            }
            _ => moves.push(Move {
                range: KeyRange::new(*start, *end),
                from,
                to,
            }),
        }
    }
    join_across_zero(&mut moves);
    moves
}

/// Merges the last move into the first if they are one range split at the wrap point.
fn join_across_zero(moves: &mut Vec<Move>) {
    if moves.len() < 2 {
        return;
    }
    let (Some(first), Some(last)) = (moves.first(), moves.last()) else {
        return;
    };
    if last.range.end_incl == first.range.start_excl
        && (last.from, last.to) == (first.from, first.to)
    {
        let start = last.range.start_excl;
        moves.pop();
        if let Some(first) = moves.first_mut() {
            first.range.start_excl = start;
        }
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

    fn mv(start: u8, end: u8, from: u32, to: u32) -> Move {
        Move {
            range: KeyRange::new(at(start), at(end)),
            from: NodeIx(from),
            to: NodeIx(to),
        }
    }

    fn base() -> GroupRing {
        GroupRing::new([
            (NodeIx(0), vec![at(10), at(130)]),
            (NodeIx(1), vec![at(70), at(200)]),
        ])
    }

    #[test]
    fn join_moves_the_ranges_before_the_new_ids() {
        let after = base().with_node(NodeIx(2), &[at(40), at(160)]);
        assert_eq!(
            moved_ranges(&base(), &after),
            vec![mv(10, 40, 1, 2), mv(130, 160, 1, 2)]
        );
    }

    #[test]
    fn leave_moves_its_ranges_to_the_successors() {
        let after = base().without_node(NodeIx(1));
        assert_eq!(
            moved_ranges(&base(), &after),
            vec![mv(10, 70, 1, 0), mv(130, 200, 1, 0)]
        );
    }

    #[test]
    fn a_range_across_zero_is_one_move() {
        let before = GroupRing::new([(NodeIx(0), [at(100)]), (NodeIx(1), [at(200)])]);
        // Node 2 takes (200, 250] and (250, 20], which wraps past the top of the ring.
        let after = before.with_node(NodeIx(2), &[at(20), at(250)]);
        assert_eq!(moved_ranges(&before, &after), vec![mv(200, 20, 0, 2)]);
    }

    #[test]
    fn adjacent_elementary_ranges_merge() {
        // Node 2 joins with two adjacent IDs inside node 1's range (70, 200].
        let after = base().with_node(NodeIx(2), &[at(150), at(180)]);
        assert_eq!(moved_ranges(&base(), &after), vec![mv(130, 180, 1, 2)]);
    }

    #[test]
    fn whole_ring_handover_and_no_change() {
        let before = GroupRing::new([(NodeIx(0), [at(5)])]);
        let after = GroupRing::new([(NodeIx(1), [at(9)])]);
        assert_eq!(moved_ranges(&before, &after), vec![mv(9, 9, 0, 1)]);
        assert_eq!(moved_ranges(&base(), &base()), vec![]);
        assert_eq!(moved_ranges(&GroupRing::default(), &base()), vec![]);
        assert_eq!(moved_ranges(&base(), &GroupRing::default()), vec![]);
    }
}
