//! CRC-32 algebra for patch records (`docs/FORMAT.md` §6.7): the CRC of a value changed in
//! one span, from the old value's CRC and the span's old and new bytes, without reading the
//! rest of the value.
//!
//! CRC-32 is affine over GF(2): for messages of equal length, `crc(a ⊕ b) = crc(a) ⊕ crc(b)
//! ⊕ crc(0…0)`, and `crc(x ‖ y) = shift(crc(x), |y|) ⊕ crc(y)`, where `shift(c, n)` is the
//! linear map zlib's `crc32_combine` applies to its first argument. Two values that differ
//! only in the span `y` (same length before and after it) therefore have CRCs that differ by
//! `shift(crc(y_old) ⊕ crc(y_new), |z|)`, `z` being what follows the span.

use super::crc32;

/// `crc(x ‖ y)` from `crc(x)`, `crc(y)` and `|y|`.
pub fn concat(crc_x: u32, crc_y: u32, len_y: u64) -> u32 {
    let mut x = crc32fast::Hasher::new_with_initial_len(crc_x, 0);
    x.combine(&crc32fast::Hasher::new_with_initial_len(crc_y, len_y));
    x.finalize()
}

/// The linear part of appending `n` bytes: `concat(c, 0, n)`.
fn shift(c: u32, n: u64) -> u32 {
    concat(c, 0, n)
}

/// The CRC of `n` zero bytes, in O(log n) combines.
pub fn zeros(n: u64) -> u32 {
    let (mut result, mut result_len) = (0u32, 0u64);
    let (mut power, mut power_len) = (crc32(&[0]), 1u64);
    let mut rest = n;
    while rest > 0 {
        if rest & 1 == 1 {
            result = concat(result, power, power_len);
            result_len += power_len;
        }
        rest >>= 1;
        if rest > 0 {
            power = concat(power, power, power_len);
            power_len *= 2;
        }
    }
    debug_assert_eq!(result_len, n);
    result
}

/// The CRC of a value of `new_len` bytes made from one of `old_len` bytes (CRC `old_crc`)
/// by extending it with zeros to `new_len` (if longer) and then replacing the bytes from
/// `start` on with `new_span`. `old_span` holds the bytes that were there (the old value's,
/// zero beyond `old_len`), exactly as long as `new_span`. Needs `new_len ≥ old_len` and the
/// span inside `new_len`.
pub fn patched(
    old_crc: u32,
    old_len: u64,
    new_len: u64,
    start: u64,
    old_span: &[u8],
    new_span: &[u8],
) -> u32 {
    debug_assert_eq!(old_span.len(), new_span.len());
    let growth = new_len - old_len;
    let grown = concat(old_crc, zeros(growth), growth);
    let after = new_len - start - new_span.len() as u64;
    grown ^ shift(crc32(old_span) ^ crc32(new_span), after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn zeros_match_hashing_zeros() {
        for n in [0u64, 1, 2, 3, 7, 64, 1000, 65_536, 65_537, 1 << 20] {
            assert_eq!(zeros(n), crc32(&vec![0; n as usize]), "{n}");
        }
    }

    proptest! {
        #[test]
        fn concat_matches_hashing_both(
            x in proptest::collection::vec(any::<u8>(), 0..300),
            y in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let whole: Vec<u8> = x.iter().chain(&y).copied().collect();
            prop_assert_eq!(concat(crc32(&x), crc32(&y), y.len() as u64), crc32(&whole));
        }

        #[test]
        fn patched_matches_hashing_the_new_value(
            old in proptest::collection::vec(any::<u8>(), 0..2000),
            data in proptest::collection::vec(any::<u8>(), 0..500),
            at in 0u64..2600,
        ) {
            let new_len = (old.len() as u64).max(at + data.len() as u64);
            let mut grown = old.clone();
            grown.resize(new_len as usize, 0);
            let mut new = grown.clone();
            new[at as usize..at as usize + data.len()].copy_from_slice(&data);
            let old_span = &grown[at as usize..at as usize + data.len()];
            let got = patched(crc32(&old), old.len() as u64, new_len, at, old_span, &data);
            prop_assert_eq!(got, crc32(&new));
        }
    }
}
