//! Cutting a key range where a ring's ownership changes.

use crate::ring::{GroupRing, KeyRange, NodeIx, RingId};

/// The pieces of `range` with one owner each in `ring`, in the range's order, adjacent
/// pieces of the same owner merged. Empty for an empty ring.
pub(crate) fn split_by_owner(range: &KeyRange, ring: &GroupRing) -> Vec<(KeyRange, NodeIx)> {
    if ring.is_empty() {
        return Vec::new();
    }
    let start = range.start_excl;
    let mut bounds: Vec<RingId> = ring
        .points()
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| *id != range.end_incl && *id != start && range.contains(&id.0))
        .collect();
    // Ring order from the range's start: the IDs above it, then those that wrapped.
    bounds.sort_by_key(|id| (*id < start, *id));
    bounds.push(range.end_incl);
    let mut pieces: Vec<(KeyRange, NodeIx)> = Vec::with_capacity(bounds.len());
    let mut prev = start;
    for end in bounds {
        let Some((_, owner)) = ring.successor(&end) else {
            continue;
        };
        match pieces.last_mut() {
            Some((last, node)) if *node == owner => last.end_incl = end,
            _ => pieces.push((KeyRange::new(prev, end), owner)),
        }
        prev = end;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(v: u8) -> RingId {
        let mut id = RingId::MIN;
        id.0[0] = v;
        id
    }

    fn ring() -> GroupRing {
        GroupRing::new([
            (NodeIx(0), vec![at(10), at(130)]),
            (NodeIx(1), vec![at(70), at(200)]),
        ])
    }

    #[test]
    fn cuts_at_owner_changes_and_merges_runs() {
        let pieces = split_by_owner(&KeyRange::new(at(5), at(100)), &ring());
        assert_eq!(
            pieces,
            vec![
                (KeyRange::new(at(5), at(10)), NodeIx(0)),
                (KeyRange::new(at(10), at(70)), NodeIx(1)),
                (KeyRange::new(at(70), at(100)), NodeIx(0)),
            ]
        );
    }

    #[test]
    fn wrapping_and_whole_ring() {
        let pieces = split_by_owner(&KeyRange::new(at(190), at(20)), &ring());
        assert_eq!(
            pieces,
            vec![
                (KeyRange::new(at(190), at(200)), NodeIx(1)),
                (KeyRange::new(at(200), at(10)), NodeIx(0)),
                (KeyRange::new(at(10), at(20)), NodeIx(1)),
            ]
        );
        let whole = split_by_owner(&KeyRange::new(at(10), at(10)), &ring());
        assert_eq!(whole.len(), 4);
        assert_eq!(whole.first().map(|p| p.0.start_excl), Some(at(10)));
        assert_eq!(whole.last().map(|p| p.0.end_incl), Some(at(10)));
        assert!(split_by_owner(&KeyRange::new(at(1), at(2)), &GroupRing::default()).is_empty());
    }
}
