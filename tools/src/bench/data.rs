//! Deterministic keys, values and random numbers.
//!
//! Keys are `Key::from_name(b"bench", &i.to_le_bytes())` for `i` in `0..count` (`i: u64`),
//! computed before any clock starts. Values are windows into one pool of SplitMix64 output
//! (seed fixed), so they are pseudo-random and **incompressible** (Snappy/LZ4 gain nothing);
//! value `i` starts at a different pool offset than value `i + 1`.

use ringblob_engine::Key;

/// SplitMix64 (Steele, Lea, Flood 2014): small, fast, seedable, good enough for load shapes.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n > 0`); the modulo bias is negligible for `n` ≪ 2^64.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The benchmark keys `0..count`.
pub fn keys(count: u64) -> Vec<Key> {
    (0..count)
        .map(|i| Key::from_name(b"bench", &i.to_le_bytes()))
        .collect()
}

/// A pool of pseudo-random bytes that hands out fixed-size values.
pub struct ValuePool {
    bytes: Vec<u8>,
    value_size: usize,
    /// Number of distinct start offsets.
    slots: usize,
}

impl ValuePool {
    /// A pool for values of `value_size` bytes (at least 1 MiB of distinct data).
    pub fn new(value_size: usize) -> Self {
        let extra = (1usize << 20).max(value_size.saturating_mul(16));
        let mut rng = SplitMix64::new(0x7269_6e67_626c_6f62);
        let mut bytes = Vec::with_capacity(value_size + extra + 8);
        while bytes.len() < value_size + extra {
            bytes.extend_from_slice(&rng.next_u64().to_le_bytes());
        }
        ValuePool {
            bytes,
            value_size,
            slots: extra,
        }
    }

    /// The value for key number `i`.
    pub fn value(&self, i: u64) -> &[u8] {
        // 7919 is prime, so consecutive keys start far apart in the pool.
        let start = (i.wrapping_mul(7919) % self.slots as u64) as usize;
        self.bytes
            .get(start..start + self.value_size)
            .unwrap_or_default()
    }

    pub fn value_size(&self) -> usize {
        self.value_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_have_the_right_size_and_differ() {
        let pool = ValuePool::new(100);
        assert_eq!(pool.value(0).len(), 100);
        assert_eq!(pool.value(u64::MAX).len(), 100);
        assert_ne!(pool.value(0), pool.value(1));
        let big = ValuePool::new(64 << 10);
        assert_eq!(big.value(12_345).len(), 64 << 10);
    }

    #[test]
    fn keys_are_deterministic_and_distinct() {
        let k = keys(3);
        assert_eq!(k[1], Key::from_name(b"bench", &1u64.to_le_bytes()));
        assert_ne!(k[0], k[1]);
    }

    #[test]
    fn uniform_floats_stay_in_range() {
        let mut rng = SplitMix64::new(1);
        for _ in 0..10_000 {
            let x = rng.next_f64();
            assert!((0.0..1.0).contains(&x), "{x}");
        }
    }
}
