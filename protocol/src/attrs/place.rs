//! Regions to ring positions (`docs/ATTRIBUTES.md` §3). A space of `N` regions divides the
//! ring's leading 64 bits evenly: region `R` (its coordinates read as a mixed-radix number,
//! dimension 0 most significant) owns the 64-bit prefixes `⌊R·2^64/N⌋ ..= ⌊(R+1)·2^64/N⌋ − 1`.
//! An index entry's key is a prefix in its region (chosen by the entry's digest) followed by
//! 24 more bytes of that digest, so entries of one region spread over its span and a run of
//! regions is one contiguous key range.

use super::hash::entry_digest;
use crate::wire::KeyId;

/// The region of `coords` (mixed radix over `radices`, dimension 0 most significant).
pub fn region_of(coords: &[u32], radices: &[u32]) -> u64 {
    coords
        .iter()
        .zip(radices)
        .fold(0u64, |acc, (c, r)| acc * u64::from(*r) + u64::from(*c))
}

/// The first 64-bit prefix of region `region` of `total`.
pub fn region_start(region: u64, total: u64) -> u64 {
    ((u128::from(region) << 64) / u128::from(total.max(1))) as u64
}

/// The last 64-bit prefix of region `region` of `total` (inclusive).
pub fn region_end(region: u64, total: u64) -> u64 {
    if region + 1 >= total {
        return u64::MAX;
    }
    region_start(region + 1, total) - 1
}

/// The key of the index entry of `name` in `namespace`, overlay `overlay`, placed in region
/// `region` of `total`: bytes 0..8 = the region's first prefix plus (the digest's first 8
/// bytes, big-endian, modulo the region's width), bytes 8..32 = the digest's bytes 8..32.
pub fn entry_key(namespace: &str, overlay: u16, name: &[u8], region: u64, total: u64) -> KeyId {
    let digest = entry_digest(namespace, overlay, name);
    let (lo, hi) = (region_start(region, total), region_end(region, total));
    let width = u128::from(hi - lo) + 1;
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let offset = (u128::from(u64::from_be_bytes(first)) % width) as u64;
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&(lo + offset).to_be_bytes());
    key[8..].copy_from_slice(&digest[8..]);
    key
}

/// The inclusive key range of regions `first ..= last` of `total`.
pub fn run_keys(first: u64, last: u64, total: u64) -> (KeyId, KeyId) {
    let mut from = [0u8; 32];
    from[..8].copy_from_slice(&region_start(first, total).to_be_bytes());
    let mut to = [0xffu8; 32];
    to[..8].copy_from_slice(&region_end(last, total).to_be_bytes());
    (from, to)
}

/// The region of `total` a key falls in (the inverse of the placement).
pub fn region_of_key(key: &KeyId, total: u64) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&key[..8]);
    let prefix = u64::from_be_bytes(first);
    // ⌊prefix·N/2^64⌋ can land one below the region whose start is exactly `prefix`.
    let guess = ((u128::from(prefix) * u128::from(total)) >> 64) as u64;
    if guess + 1 < total && region_start(guess + 1, total) <= prefix {
        guess + 1
    } else {
        guess
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn regions_tile_the_ring() {
        for total in [1u64, 2, 3, 59_049, 1 << 32] {
            assert_eq!(region_start(0, total), 0);
            assert_eq!(region_end(total - 1, total), u64::MAX);
            for r in [0, total / 2, total.saturating_sub(2)] {
                if r + 1 < total {
                    assert_eq!(region_end(r, total) + 1, region_start(r + 1, total));
                }
            }
        }
    }

    #[test]
    fn mixed_radix_puts_dimension_0_first() {
        assert_eq!(region_of(&[0, 0, 0, 1, 1, 0, 0, 0, 2, 0], &[3; 10]), 978);
        assert_eq!(region_of(&[1, 2], &[9, 4]), 6);
    }

    proptest! {
        #[test]
        fn an_entry_lies_in_its_region(region in any::<u64>(), total in 1u64..=(1 << 32),
                                       name in proptest::collection::vec(any::<u8>(), 0..20)) {
            let region = region % total;
            let key = entry_key("ns", 3, &name, region, total);
            let (from, to) = run_keys(region, region, total);
            prop_assert!(from <= key && key <= to);
            prop_assert_eq!(region_of_key(&key, total), region);
        }
    }
}
