//! The little 256-bit arithmetic the digest tree needs to cut a range into equal parts:
//! ring positions are 32 big-endian bytes.

use crate::ring::{KeyRange, RingId, RING_ID_LEN};

/// `a + b` modulo 2^256.
fn add(a: &RingId, b: &RingId) -> RingId {
    let mut out = RingId::MIN;
    let mut carry = 0u16;
    for i in (0..RING_ID_LEN).rev() {
        let (x, y) = (a.0.get(i).copied(), b.0.get(i).copied());
        let sum = u16::from(x.unwrap_or(0)) + u16::from(y.unwrap_or(0)) + carry;
        if let Some(slot) = out.0.get_mut(i) {
            *slot = (sum & 0xff) as u8;
        }
        carry = sum >> 8;
    }
    out
}

/// `a − b` modulo 2^256.
fn sub(a: &RingId, b: &RingId) -> RingId {
    let mut out = RingId::MIN;
    let mut borrow = 0i16;
    for i in (0..RING_ID_LEN).rev() {
        let (x, y) = (a.0.get(i).copied(), b.0.get(i).copied());
        let mut diff = i16::from(x.unwrap_or(0)) - i16::from(y.unwrap_or(0)) - borrow;
        borrow = 0;
        if diff < 0 {
            diff += 256;
            borrow = 1;
        }
        if let Some(slot) = out.0.get_mut(i) {
            *slot = diff as u8;
        }
    }
    out
}

/// `a · k / 16` for `k ≤ 16`, exactly (the product may pass 2^256 only when `k = 16`,
/// and then the result is `a`).
fn times_sixteenths(a: &RingId, k: u8) -> RingId {
    if k >= 16 {
        return *a;
    }
    // (a · k) fits in 260 bits: compute it in 33 bytes, then shift right by 4 bits.
    let mut wide = [0u8; RING_ID_LEN + 1];
    let mut carry = 0u16;
    for i in (0..RING_ID_LEN).rev() {
        let product = u16::from(a.0.get(i).copied().unwrap_or(0)) * u16::from(k) + carry;
        if let Some(slot) = wide.get_mut(i + 1) {
            *slot = (product & 0xff) as u8;
        }
        carry = product >> 8;
    }
    if let Some(top) = wide.first_mut() {
        *top = carry as u8;
    }
    let mut out = RingId::MIN;
    for (i, slot) in out.0.iter_mut().enumerate() {
        let hi = wide.get(i).copied().unwrap_or(0);
        let lo = wide.get(i + 1).copied().unwrap_or(0);
        *slot = (hi << 4) | (lo >> 4);
    }
    out
}

/// The `parts`-th sixteenth boundaries of `range`: part `i` (0..16) is
/// `(s + w·i/16, s + w·(i+1)/16]` for the width `w` (2^256 for the whole ring). Parts of a
/// range narrower than 16 keys may be empty (start equal to end but not the whole ring);
/// they hold no key and callers skip them with [`part_is_empty`].
pub(crate) fn sixteenth(range: &KeyRange, i: u8) -> KeyRange {
    let start = range.start_excl;
    if range.is_whole_ring() {
        // w/16 = 2^252: byte 0 = 0x10.
        let step = |k: u8| {
            let mut id = RingId::MIN;
            if let Some(top) = id.0.first_mut() {
                *top = k.wrapping_mul(0x10);
            }
            add(&start, &id)
        };
        return KeyRange::new(step(i), step(i.saturating_add(1)));
    }
    let width = sub(&range.end_incl, &start);
    let lo = add(&start, &times_sixteenths(&width, i));
    let hi = add(&start, &times_sixteenths(&width, i.saturating_add(1)));
    KeyRange::new(lo, hi)
}

/// Where `key` lies in `range`, as a value whose order is the range's order: the distance
/// up from the start, with 0 (the start itself, the last key of a whole ring) last.
pub(crate) fn order_in(range: &KeyRange, key: &RingId) -> (bool, RingId) {
    let offset = sub(key, &range.start_excl);
    (offset == RingId::MIN, offset)
}

/// True if a part produced by [`sixteenth`] holds no key.
pub(crate) fn part_is_empty(parent: &KeyRange, part: &KeyRange) -> bool {
    part.is_whole_ring() && !parent.is_whole_ring()
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
    fn parts_tile_the_range() {
        for range in [
            KeyRange::new(at(0x10), at(0x90)),
            KeyRange::new(at(0xf0), at(0x30)),
            KeyRange::new(at(0x42), at(0x42)),
        ] {
            let parts: Vec<KeyRange> = (0..16).map(|i| sixteenth(&range, i)).collect();
            assert_eq!(parts.first().map(|p| p.start_excl), Some(range.start_excl));
            assert_eq!(parts.last().map(|p| p.end_incl), Some(range.end_incl));
            for pair in parts.windows(2) {
                if let [a, b] = pair {
                    assert_eq!(a.end_incl, b.start_excl);
                }
            }
        }
        let part = sixteenth(&KeyRange::new(at(0x10), at(0x90)), 1);
        assert_eq!(part, KeyRange::new(at(0x18), at(0x20)));
    }

    #[test]
    fn tiny_ranges_have_empty_parts() {
        let mut end = RingId::MIN;
        end.0[31] = 3;
        let range = KeyRange::new(RingId::MIN, end);
        let parts: Vec<KeyRange> = (0..16).map(|i| sixteenth(&range, i)).collect();
        let full = parts.iter().filter(|p| !part_is_empty(&range, p)).count();
        assert_eq!(full, 3);
    }
}
