//! [`KeyRange`]: an arc of the ring, (start, end], and [`NodeIx`], the opaque node number
//! rings are built from.

use std::fmt;

use super::wide::Wide;
use super::RingId;
use crate::wire::KeyId;

/// A node, as numbered by whoever builds a ring. The ring treats it as an opaque label: two
/// rings compared with [`moved_ranges`](super::moved_ranges) must number nodes alike.
/// [`RouteTable`](super::RouteTable) numbers its nodes by their position in its list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeIx(pub u32);

impl fmt::Display for NodeIx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node#{}", self.0)
    }
}

/// The keys `k` with `start_excl < k ≤ end_incl`, going up from `start_excl` and wrapping
/// from 2^256 − 1 to 0. A range whose start equals its end is the whole ring (the range of
/// the only ID of a ring).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyRange {
    /// The position just before the first key of the range (the previous ring ID).
    pub start_excl: RingId,
    /// The last key of the range (the ring ID that owns it).
    pub end_incl: RingId,
}

impl KeyRange {
    /// The range (`start_excl`, `end_incl`].
    pub fn new(start_excl: RingId, end_incl: RingId) -> KeyRange {
        KeyRange {
            start_excl,
            end_incl,
        }
    }

    /// True if `key` is in the range.
    pub fn contains(&self, key: &KeyId) -> bool {
        let (start, end, key) = (&self.start_excl.0, &self.end_incl.0, key);
        match start.cmp(end) {
            std::cmp::Ordering::Less => start < key && key <= end,
            std::cmp::Ordering::Greater => key > start || key <= end,
            std::cmp::Ordering::Equal => true,
        }
    }

    /// True if the two ranges share a key. (Two arcs that meet hold, each, the end of the
    /// one that ends first going clockwise from a shared key.)
    pub fn overlaps(&self, other: &KeyRange) -> bool {
        self.contains(&other.end_incl.0) || other.contains(&self.end_incl.0)
    }

    /// True if the range is the whole ring.
    pub fn is_whole_ring(&self) -> bool {
        self.start_excl == self.end_incl
    }

    /// The fraction of the 2^256 keys in the range, in (0, 1].
    pub fn fraction(&self) -> f64 {
        self.width().fraction()
    }

    /// The number of keys in the range, exactly.
    pub(crate) fn width(&self) -> Wide {
        Wide::distance(&self.start_excl, &self.end_incl)
    }
}

impl fmt::Display for KeyRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {}]", self.start_excl, self.end_incl)
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

    #[test]
    fn ranges_overlap_when_they_share_a_key_wrapping_or_not() {
        let r = |a, b| KeyRange::new(at(a), at(b));
        assert!(r(10, 20).overlaps(&r(15, 30)));
        assert!(r(15, 30).overlaps(&r(10, 20)));
        assert!(r(10, 40).overlaps(&r(20, 30)), "one inside the other");
        assert!(!r(10, 20).overlaps(&r(20, 30)), "they only meet");
        assert!(!r(20, 30).overlaps(&r(10, 20)));
        assert!(r(200, 10).overlaps(&r(5, 8)), "wrapping");
        assert!(r(200, 10).overlaps(&r(250, 255)));
        assert!(!r(200, 10).overlaps(&r(10, 200)), "the rest of the ring");
        assert!(r(7, 7).overlaps(&r(1, 2)), "the whole ring");
    }

    #[test]
    fn plain_range_excludes_start_includes_end() {
        let range = KeyRange::new(at(10), at(20));
        assert!(!range.contains(&at(10).0));
        assert!(range.contains(&at(11).0));
        assert!(range.contains(&at(20).0));
        assert!(!range.contains(&at(21).0));
        assert!((range.fraction() - 10.0 / 256.0).abs() < 1e-12);
    }

    #[test]
    fn wrapping_range() {
        let range = KeyRange::new(at(250), at(5));
        assert!(range.contains(&RingId::MAX.0));
        assert!(range.contains(&RingId::MIN.0));
        assert!(range.contains(&at(5).0));
        assert!(!range.contains(&at(250).0));
        assert!(!range.contains(&at(100).0));
        assert!((range.fraction() - 11.0 / 256.0).abs() < 1e-12);
    }

    #[test]
    fn equal_ends_mean_the_whole_ring() {
        let range = KeyRange::new(at(7), at(7));
        assert!(range.is_whole_ring());
        assert!(range.contains(&at(7).0));
        assert!(range.contains(&at(8).0));
        assert_eq!(range.fraction(), 1.0);
    }
}
