//! Blocked bloom filters over keys: every key sets `k` bits inside one 64-byte block, so a
//! probe touches one cache line. Sorted index files store one per sealed blob; the engine
//! keeps another over every sealed key. The hash is specified in `docs/FORMAT.md` §15.3.

use super::le_u64;
use crate::key::Key;

/// Bytes per block: one cache line.
pub const BLOCK_LEN: usize = 64;
/// Bits per block.
const BLOCK_BITS: u64 = 512;
/// Bits per key the engine sizes its filters for (≈1 % false positives with 7 probes).
pub const BITS_PER_KEY: u64 = 10;
/// Probes per key. Seven 9-bit positions fit in one 64-bit hash.
pub const PROBES: u32 = 7;
/// Largest filter accepted from disk (blocks): 1 GiB, far above what a 4 GiB blob needs.
pub const MAX_BLOCKS: u32 = 1 << 24;
/// The seed this build writes.
pub const DEFAULT_SEED: u64 = 0x7269_6e67_626c_6f62; // "ringblob"

/// SplitMix64's finaliser: a bijective 64-bit mixer (also the key locator's).
pub(crate) fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A key's filter hash: which block (high half) and which bits (a second mix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyHash {
    block: u64,
    bits: u64,
}

impl KeyHash {
    /// `x = seed; for each little-endian u64 word w of the key: x = mix64(x ^ w)`;
    /// block selector `x >> 32`, bit positions from `mix64(x ^ 0x9e3779b97f4a7c15)`.
    pub fn of(key: &Key, seed: u64) -> KeyHash {
        let mut x = seed;
        for w in key.0.chunks_exact(8) {
            x = mix64(x ^ le_u64(w, 0));
        }
        KeyHash {
            block: x >> 32,
            bits: mix64(x ^ 0x9e37_79b9_7f4a_7c15),
        }
    }

    /// The block among `blocks`: `(block_selector * blocks) >> 32`.
    fn block_in(&self, blocks: u32) -> usize {
        ((self.block * u64::from(blocks)) >> 32) as usize
    }

    /// Probe `i`'s bit inside the block: the `i`-th 9-bit group of the bit hash.
    fn bit(&self, i: u32) -> u64 {
        (self.bits >> (9 * i)) & (BLOCK_BITS - 1)
    }
}

/// A blocked bloom filter.
#[derive(Clone, PartialEq, Eq)]
pub struct Bloom {
    words: Vec<u64>,
    blocks: u32,
    probes: u32,
    seed: u64,
}

impl std::fmt::Debug for Bloom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bloom")
            .field("blocks", &self.blocks)
            .field("probes", &self.probes)
            .finish()
    }
}

impl Bloom {
    /// An empty filter sized for `keys` keys at [`BITS_PER_KEY`].
    pub fn for_keys(keys: u64) -> Bloom {
        let blocks = (keys * BITS_PER_KEY)
            .div_ceil(BLOCK_BITS)
            .clamp(1, u64::from(MAX_BLOCKS));
        Bloom {
            words: vec![0; blocks as usize * 8],
            blocks: blocks as u32,
            probes: PROBES,
            seed: DEFAULT_SEED,
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn blocks(&self) -> u32 {
        self.blocks
    }

    pub fn probes(&self) -> u32 {
        self.probes
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.words.capacity() * 8
    }

    pub fn insert(&mut self, h: KeyHash) {
        let base = h.block_in(self.blocks) * 8;
        for i in 0..self.probes {
            let b = h.bit(i);
            self.words[base + (b >> 6) as usize] |= 1 << (b & 63);
        }
    }

    /// False: the key is certainly absent. True: it may be present.
    pub fn may_contain(&self, h: KeyHash) -> bool {
        let base = h.block_in(self.blocks) * 8;
        (0..self.probes).all(|i| {
            let b = h.bit(i);
            self.words[base + (b >> 6) as usize] & (1 << (b & 63)) != 0
        })
    }

    /// The blocks as stored: each 64-bit word little-endian, blocks in order.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.words.len() * 8);
        for w in &self.words {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }

    /// Rebuilds a filter from stored blocks. `None` if the parameters are out of range or
    /// `bytes` is not exactly `blocks` blocks.
    pub fn decode(bytes: &[u8], blocks: u32, probes: u32, seed: u64) -> Option<Bloom> {
        if blocks == 0 || blocks > MAX_BLOCKS || !(1..=PROBES).contains(&probes) {
            return None;
        }
        if bytes.len() != blocks as usize * BLOCK_LEN {
            return None;
        }
        let words = bytes.chunks_exact(8).map(|w| le_u64(w, 0)).collect();
        Some(Bloom {
            words,
            blocks,
            probes,
            seed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> Key {
        Key::from_name(b"bloom", &i.to_le_bytes())
    }

    #[test]
    fn no_false_negatives_and_about_one_percent_false_positives() {
        let mut f = Bloom::for_keys(10_000);
        for i in 0..10_000 {
            f.insert(KeyHash::of(&key(i), f.seed()));
        }
        assert!((0..10_000).all(|i| f.may_contain(KeyHash::of(&key(i), f.seed()))));
        let fp = (10_000..110_000)
            .filter(|&i| f.may_contain(KeyHash::of(&key(i), f.seed())))
            .count();
        // 10 bits per key, 7 probes, 512-bit blocks: about 1 %; 2 % leaves room.
        assert!(fp < 2_000, "{fp} false positives in 100000");
        assert!(
            fp > 0,
            "a filter with no false positives is not sized as documented"
        );
    }

    #[test]
    fn round_trips_and_refuses_bad_parameters() {
        let mut f = Bloom::for_keys(100);
        f.insert(KeyHash::of(&key(1), f.seed()));
        let mut b = Vec::new();
        f.encode_into(&mut b);
        assert_eq!(
            Bloom::decode(&b, f.blocks(), f.probes(), f.seed()),
            Some(f.clone())
        );
        assert_eq!(Bloom::decode(&b[1..], f.blocks(), 7, f.seed()), None);
        assert_eq!(Bloom::decode(&b, f.blocks(), 0, f.seed()), None);
        assert_eq!(Bloom::decode(&b, f.blocks(), 8, f.seed()), None);
        assert_eq!(Bloom::decode(&[], 0, 7, f.seed()), None);
    }

    #[test]
    fn hash_matches_documented_vectors() {
        // docs/FORMAT.md §15.3, computed independently with Python.
        let h = KeyHash::of(&Key([0; 32]), DEFAULT_SEED);
        assert_eq!((h.block, h.bits), (0x32b7_6567, 0x62c3_8778_b26c_9bf9));
        let mut k = [0u8; 32];
        k.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        let h = KeyHash::of(&Key(k), DEFAULT_SEED);
        assert_eq!((h.block, h.bits), (0xc06c_e9c2, 0x40d4_75b3_a009_c43b));
    }
}
