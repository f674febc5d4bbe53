//! Choosing a node's ring IDs so the group stays balanced by construction.
//!
//! - The first node of a group takes `count` IDs evenly spaced around the ring from a
//!   random offset (the only use of the injected RNG).
//! - A joining node of a group of `n` nodes aims at its fair share, 2^256 / (n + 1). It
//!   places its IDs one at a time: the *donor* is the node now owning the most keys (ties:
//!   smaller [`NodeIx`]); the donor's widest range (ties: lowest start) (s, e] is cut and the
//!   new ID goes at s + piece, so the joiner takes (s, s + piece] and the donor keeps the
//!   rest. The piece is the smallest of: what the joiner still needs divided by the IDs it
//!   has left to place, the donor's excess over the fair share, and ¾ of the range (so no
//!   remnant becomes a sliver); it is at least 1. Widths are recomputed after every cut.
//!
//! Splitting ranges at their midpoints alone keeps ranges within 2× of each other but gives
//! a joiner only ½ to 1× its fair share (exactly ½ whenever the group size is a power of
//! two), so joins would move too little and leave the newest nodes underloaded; cutting to
//! the need keeps every node within a few percent of the mean (see the tests' figures).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::num::NonZeroU64;

use rand::RngCore;

use super::wide::Wide;
use super::{GroupRing, NodeIx, RingError, RingId};

/// IDs a node takes when its configuration does not say otherwise.
pub const DEFAULT_IDS_PER_NODE: u32 = 64;
/// Most IDs one node may hold (also the bound of the IDs file and of route tables).
pub const MAX_IDS_PER_NODE: u32 = 4096;

/// `count` new, distinct ring IDs for a node joining the group whose ring is `existing`,
/// ascending. None of them is held in `existing`. See the module docs for the rule; the
/// result depends only on `existing`, `count` and (for a first node) the RNG's output.
pub fn choose_ids<R: RngCore + ?Sized>(
    existing: &GroupRing,
    count: u32,
    rng: &mut R,
) -> Result<Vec<RingId>, RingError> {
    if count > MAX_IDS_PER_NODE {
        return Err(RingError::TooManyIds {
            count: u64::from(count),
            max: MAX_IDS_PER_NODE,
        });
    }
    let Some(count) = NonZeroU64::new(u64::from(count)) else {
        return Ok(Vec::new());
    };
    let mut ids = if existing.is_empty() {
        evenly_spaced(count, rng)
    } else {
        split_for_join(existing, count)?
    };
    ids.sort_unstable();
    Ok(ids)
}

/// `count` IDs 2^256 / `count` apart, starting at a random position.
fn evenly_spaced<R: RngCore + ?Sized>(count: NonZeroU64, rng: &mut R) -> Vec<RingId> {
    let mut offset = RingId::MIN;
    rng.fill_bytes(&mut offset.0);
    let offset = Wide::from_id(&offset);
    let step = Wide::FULL.div_small(count);
    (0..count.get())
        .map(|i| offset.wrapping_add(step.mul_small(i)).to_id())
        .collect()
}

/// The joiner's IDs, cut out of the most loaded nodes' widest ranges.
fn split_for_join(existing: &GroupRing, count: NonZeroU64) -> Result<Vec<RingId>, RingError> {
    let mut donors = Donors::new(existing);
    let members = u64::try_from(donors.by_width.len())
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let members = NonZeroU64::new(members).unwrap_or(NonZeroU64::MIN);
    let fair = Wide::FULL.div_small(members);
    let mut taken = Wide::ZERO;
    let mut ids = Vec::new();
    for left in (1..=count.get()).rev().filter_map(NonZeroU64::new) {
        let want = fair.saturating_sub(taken).div_small(left);
        let (id, piece) = donors.cut(want, fair)?;
        taken = taken.wrapping_add(piece);
        ids.push(id);
    }
    Ok(ids)
}

/// The existing nodes' widths and ranges, updated as the joiner cuts pieces out of them.
struct Donors {
    /// (width, node): the last entry is the widest node, smaller index first on ties.
    by_width: BTreeSet<(Wide, Reverse<NodeIx>)>,
    /// Each node's ranges as (width, start): the top is the widest, lowest start on ties.
    ranges: BTreeMap<NodeIx, BinaryHeap<(Wide, Reverse<RingId>)>>,
}

impl Donors {
    fn new(ring: &GroupRing) -> Donors {
        let mut ranges: BTreeMap<NodeIx, BinaryHeap<(Wide, Reverse<RingId>)>> = BTreeMap::new();
        for (range, node) in ring.ranges() {
            let entry = (range.width(), Reverse(range.start_excl));
            ranges.entry(node).or_default().push(entry);
        }
        let by_width = ring
            .widths()
            .into_iter()
            .map(|(node, width)| (width, Reverse(node)))
            .collect();
        Donors { by_width, ranges }
    }

    /// Cuts one piece for the joiner (see the module docs) and returns the new ID and the
    /// piece's width.
    fn cut(&mut self, want: Wide, fair: Wide) -> Result<(RingId, Wide), RingError> {
        // Every node in `by_width` owns at least one range, so these lookups succeed; a
        // failure would be our bug and is reported as a full ring rather than a panic.
        let (width, Reverse(node)) = self
            .by_width
            .pop_last()
            .ok_or(RingError::RingFull { width: 0 })?;
        let heap = self
            .ranges
            .get_mut(&node)
            .ok_or(RingError::RingFull { width: 0 })?;
        let (range_width, Reverse(start)) = heap.pop().ok_or(RingError::RingFull { width: 0 })?;
        let cap = range_width.half().half().mul_small(3);
        if cap.is_zero() {
            return Err(RingError::RingFull {
                width: range_width.saturating_u64(),
            });
        }
        let excess = width.saturating_sub(fair);
        let piece = want.min(excess).min(cap).max(Wide::ONE);
        let id = Wide::from_id(&start).wrapping_add(piece).to_id();
        heap.push((range_width.saturating_sub(piece), Reverse(id)));
        self.by_width
            .insert((width.saturating_sub(piece), Reverse(node)));
        Ok((id, piece))
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    #[test]
    fn first_node_is_evenly_spaced() -> Result<(), RingError> {
        let ids = choose_ids(&GroupRing::default(), 64, &mut rng())?;
        assert_eq!(ids.len(), 64);
        let ring = GroupRing::new([(NodeIx(0), ids.clone())]);
        let step = Wide::FULL.div_small(NonZeroU64::MIN.saturating_add(63));
        for (range, _) in ring.ranges() {
            assert_eq!(range.width(), step, "{range}");
        }
        // Same seed, same IDs; another seed, another offset.
        assert_eq!(choose_ids(&GroupRing::default(), 64, &mut rng())?, ids);
        let other = choose_ids(&GroupRing::default(), 64, &mut StdRng::seed_from_u64(8))?;
        assert_ne!(other, ids);
        Ok(())
    }

    #[test]
    fn uneven_count_spacing_differs_by_at_most_one() -> Result<(), RingError> {
        let ids = choose_ids(&GroupRing::default(), 3, &mut rng())?;
        let ring = GroupRing::new([(NodeIx(0), ids)]);
        let mut widths: Vec<Wide> = ring.ranges().map(|(r, _)| r.width()).collect();
        widths.sort_unstable();
        let spread = widths.last().copied().unwrap_or_default();
        let low = widths.first().copied().unwrap_or_default();
        assert!(spread.saturating_sub(low) <= Wide::ONE.wrapping_add(Wide::ONE));
        Ok(())
    }

    #[test]
    fn second_node_gets_half_and_new_ids_are_distinct() -> Result<(), RingError> {
        let first = choose_ids(&GroupRing::default(), 64, &mut rng())?;
        let ring = GroupRing::new([(NodeIx(0), first.clone())]);
        let second = choose_ids(&ring, 64, &mut rng())?;
        assert_eq!(second.len(), 64);
        assert!(
            second.windows(2).all(|w| w.first() < w.get(1)),
            "ascending, distinct"
        );
        assert!(second.iter().all(|id| !first.contains(id)));
        let joined = ring.with_node(NodeIx(1), &second);
        assert!((joined.share_of(NodeIx(1)) - 0.5).abs() < 1e-9);
        assert!(joined.shadowed().is_empty());
        Ok(())
    }

    #[test]
    fn zero_and_too_many() -> Result<(), RingError> {
        assert_eq!(choose_ids(&GroupRing::default(), 0, &mut rng())?, vec![]);
        assert_eq!(
            choose_ids(&GroupRing::default(), MAX_IDS_PER_NODE + 1, &mut rng()),
            Err(RingError::TooManyIds {
                count: u64::from(MAX_IDS_PER_NODE) + 1,
                max: MAX_IDS_PER_NODE
            })
        );
        Ok(())
    }

    #[test]
    fn third_node_takes_a_third_from_both() -> Result<(), RingError> {
        let mut ring = GroupRing::default();
        for node in 0..2 {
            let ids = choose_ids(&ring, 64, &mut rng())?;
            ring = ring.with_node(NodeIx(node), &ids);
        }
        let ids = choose_ids(&ring, 64, &mut rng())?;
        let after = ring.with_node(NodeIx(2), &ids);
        for node in 0..3 {
            let share = after.share_of(NodeIx(node));
            assert!((share - 1.0 / 3.0).abs() < 1e-9, "{node}: {share}");
        }
        Ok(())
    }

    #[test]
    fn pieces_stay_inside_the_ranges_they_cut() -> Result<(), RingError> {
        // A lopsided ring: node 0 owns 3/4, node 1 a quarter in one range.
        let mut quarter = RingId::MIN;
        quarter.0[0] = 0x40;
        let ring = GroupRing::new([(NodeIx(0), [RingId::MAX]), (NodeIx(1), [quarter])]);
        let ids = choose_ids(&ring, 8, &mut rng())?;
        let after = ring.with_node(NodeIx(2), &ids);
        // The joiner takes only from node 0 (the one over its fair third).
        assert!((after.share_of(NodeIx(1)) - 0.25).abs() < 1e-12);
        assert!((after.share_of(NodeIx(2)) - 1.0 / 3.0).abs() < 1e-9);
        assert!(ids.iter().all(|id| *id > quarter && *id < RingId::MAX));
        Ok(())
    }
}
