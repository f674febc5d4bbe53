//! [`Wide`]: exact unsigned arithmetic for lengths and sums on the ring. A range can be the
//! whole ring, 2^256 positions, which does not fit in 256 bits, so lengths get a fifth limb.

use std::cmp::Ordering;
use std::num::NonZeroU64;

use super::RingId;

/// An unsigned integer below 2^320 in little-endian 64-bit limbs. Ring lengths and shares
/// are at most 2^256 ([`Wide::FULL`]); the spare bits only absorb intermediate sums.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub(crate) struct Wide([u64; 5]);

impl Wide {
    pub(crate) const ZERO: Wide = Wide([0; 5]);
    pub(crate) const ONE: Wide = Wide([1, 0, 0, 0, 0]);
    /// 2^256: the number of positions on the ring.
    pub(crate) const FULL: Wide = Wide([0, 0, 0, 0, 1]);

    /// The position as a number.
    pub(crate) fn from_id(id: &RingId) -> Wide {
        let mut limbs = [0u64; 5];
        for (limb, chunk) in limbs.iter_mut().zip(id.0.chunks_exact(8).rev()) {
            let mut be = [0u8; 8];
            be.copy_from_slice(chunk);
            *limb = u64::from_be_bytes(be);
        }
        Wide(limbs)
    }

    /// The position this number lands on: the value modulo 2^256.
    pub(crate) fn to_id(self) -> RingId {
        let mut out = [0u8; 32];
        for (chunk, limb) in out.chunks_exact_mut(8).rev().zip(self.0.iter()) {
            chunk.copy_from_slice(&limb.to_be_bytes());
        }
        RingId(out)
    }

    /// The number of positions in the range (`start`, `end`] going up from `start` and
    /// wrapping past 2^256 − 1; a range that starts where it ends is the whole ring.
    pub(crate) fn distance(start: &RingId, end: &RingId) -> Wide {
        let (start, end) = (Wide::from_id(start), Wide::from_id(end));
        match end.cmp(&start) {
            Ordering::Greater => end.wrapping_sub(start),
            _ => end.wrapping_add(Wide::FULL).wrapping_sub(start),
        }
    }

    /// `self + other` modulo 2^320 (our sums stay far below).
    pub(crate) fn wrapping_add(self, other: Wide) -> Wide {
        let mut out = [0u64; 5];
        let mut carry = false;
        for (o, (a, b)) in out.iter_mut().zip(self.0.iter().zip(other.0.iter())) {
            let (sum, c1) = a.overflowing_add(*b);
            let (sum, c2) = sum.overflowing_add(u64::from(carry));
            *o = sum;
            carry = c1 || c2;
        }
        Wide(out)
    }

    /// `self − other` modulo 2^320.
    fn wrapping_sub(self, other: Wide) -> Wide {
        let mut out = [0u64; 5];
        let mut borrow = false;
        for (o, (a, b)) in out.iter_mut().zip(self.0.iter().zip(other.0.iter())) {
            let (diff, b1) = a.overflowing_sub(*b);
            let (diff, b2) = diff.overflowing_sub(u64::from(borrow));
            *o = diff;
            borrow = b1 || b2;
        }
        Wide(out)
    }

    /// `self − other`, or zero if `other` is larger.
    pub(crate) fn saturating_sub(self, other: Wide) -> Wide {
        if other >= self {
            Wide::ZERO
        } else {
            self.wrapping_sub(other)
        }
    }

    /// `self / 2`, rounded down.
    pub(crate) fn half(self) -> Wide {
        let mut out = self.0;
        let mut carry = 0u64;
        for limb in out.iter_mut().rev() {
            let low_bit = *limb & 1;
            *limb = (*limb >> 1) | (carry << 63);
            carry = low_bit;
        }
        Wide(out)
    }

    /// `self / divisor`, rounded down.
    pub(crate) fn div_small(self, divisor: NonZeroU64) -> Wide {
        let divisor = u128::from(divisor.get());
        let mut out = self.0;
        let mut rem = 0u128;
        for limb in out.iter_mut().rev() {
            let cur = (rem << 64) | u128::from(*limb);
            // cur < divisor · 2^64, so the quotient fits in 64 bits.
            *limb = u64::try_from(cur / divisor).unwrap_or(u64::MAX);
            rem = cur % divisor;
        }
        Wide(out)
    }

    /// `self · factor`, modulo 2^320.
    pub(crate) fn mul_small(self, factor: u64) -> Wide {
        let mut out = [0u64; 5];
        let mut carry = 0u128;
        for (o, a) in out.iter_mut().zip(self.0.iter()) {
            let cur = u128::from(*a) * u128::from(factor) + carry;
            *o = cur as u64; // low 64 bits, by design
            carry = cur >> 64;
        }
        Wide(out)
    }

    /// The value as a fraction of the ring, `self / 2^256` (relative error ~1e-16).
    pub(crate) fn fraction(self) -> f64 {
        let mut scale = 2f64.powi(-256);
        let mut sum = 0.0;
        for limb in self.0 {
            sum += limb as f64 * scale;
            scale *= 2f64.powi(64);
        }
        sum
    }

    /// The value if it fits in 64 bits, else `u64::MAX` (for error messages).
    pub(crate) fn saturating_u64(self) -> u64 {
        match self.0 {
            [low, 0, 0, 0, 0] => low,
            _ => u64::MAX,
        }
    }

    /// True for zero.
    pub(crate) fn is_zero(self) -> bool {
        self == Wide::ZERO
    }
}

impl Ord for Wide {
    fn cmp(&self, other: &Wide) -> Ordering {
        self.0.iter().rev().cmp(other.0.iter().rev())
    }
}

impl PartialOrd for Wide {
    fn partial_cmp(&self, other: &Wide) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::iter::Sum for Wide {
    fn sum<I: Iterator<Item = Wide>>(iter: I) -> Wide {
        iter.fold(Wide::ZERO, Wide::wrapping_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(v: u64) -> Wide {
        Wide([v, 0, 0, 0, 0])
    }

    fn id_with_last(v: u8) -> RingId {
        let mut id = RingId::MIN;
        id.0[31] = v;
        id
    }

    #[test]
    fn id_round_trips_and_keeps_order() {
        let mut id = RingId::MIN;
        id.0[0] = 0x80;
        id.0[31] = 1;
        let wide = Wide::from_id(&id);
        assert_eq!(wide, Wide([1, 0, 0, 1 << 63, 0]));
        assert_eq!(wide.to_id(), id);
        assert!(Wide::from_id(&RingId::MAX) < Wide::FULL);
        assert_eq!(
            Wide::from_id(&RingId::MAX).wrapping_add(Wide::ONE),
            Wide::FULL
        );
        assert_eq!(Wide::FULL.to_id(), RingId::MIN);
    }

    #[test]
    fn distance_wraps_and_whole_ring() {
        assert_eq!(
            Wide::distance(&id_with_last(3), &id_with_last(10)),
            small(7)
        );
        assert_eq!(
            Wide::distance(&id_with_last(10), &id_with_last(3)),
            Wide::FULL.wrapping_sub(small(7))
        );
        assert_eq!(
            Wide::distance(&id_with_last(5), &id_with_last(5)),
            Wide::FULL
        );
        assert_eq!(Wide::distance(&RingId::MAX, &RingId::MIN), Wide::ONE);
    }

    #[test]
    fn carries_and_borrows_cross_limbs() {
        let a = Wide([u64::MAX, u64::MAX, 0, 0, 0]);
        assert_eq!(a.wrapping_add(Wide::ONE), Wide([0, 0, 1, 0, 0]));
        assert_eq!(Wide([0, 0, 1, 0, 0]).wrapping_sub(Wide::ONE), a);
        assert_eq!(small(3).saturating_sub(small(5)), Wide::ZERO);
        assert_eq!(small(5).saturating_sub(small(3)), small(2));
    }

    #[test]
    fn halving_and_division() {
        assert_eq!(Wide::FULL.half(), Wide([0, 0, 0, 1 << 63, 0]));
        assert_eq!(small(7).half(), small(3));
        let three = NonZeroU64::new(3).unwrap_or(NonZeroU64::MIN);
        let third = Wide::FULL.div_small(three);
        // 3 · ⌊2^256 / 3⌋ = 2^256 − 1, since 2^256 ≡ 1 (mod 3).
        assert_eq!(third.mul_small(3), Wide::FULL.wrapping_sub(Wide::ONE));
        assert_eq!(small(100).div_small(three), small(33));
    }

    #[test]
    fn fractions() {
        assert_eq!(Wide::FULL.fraction(), 1.0);
        assert_eq!(Wide::FULL.half().fraction(), 0.5);
        assert_eq!(Wide::ZERO.fraction(), 0.0);
        let third = Wide::FULL.div_small(NonZeroU64::new(3).unwrap_or(NonZeroU64::MIN));
        assert!((third.fraction() - 1.0 / 3.0).abs() < 1e-15);
    }
}
