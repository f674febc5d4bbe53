//! [`SwimRng`]: the seeded generator handed to foca (which uses `rand_core` 0.10 traits):
//! SplitMix64, so a simulator replays the same choices from the same seed.

use std::convert::Infallible;

use rand_core_foca::TryRng;

/// SplitMix64 (Steele, Lea, Flood 2014): a 64-bit counter passed through a mixing
/// function. Not cryptographic; only used to pick whom to probe and gossip to.
#[derive(Clone, Debug)]
pub struct SwimRng {
    state: u64,
}

impl SwimRng {
    /// A generator whose whole sequence is fixed by `seed`.
    pub fn new(seed: u64) -> SwimRng {
        SwimRng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_word(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl TryRng for SwimRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.next_word() >> 32) as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.next_word())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next_word().to_le_bytes();
            for (d, s) in chunk.iter_mut().zip(bytes) {
                *d = s;
            }
        }
        Ok(())
    }
}

/// The same generator for the workspace's rand 0.8 (`ring::choose_ids`).
impl rand::RngCore for SwimRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_word() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.next_word()
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        let _ = TryRng::try_fill_bytes(self, dst);
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let (mut a, mut b) = (SwimRng::new(7), SwimRng::new(7));
        let xs: Vec<u64> = (0..4).map(|_| a.next_word()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.next_word()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs.first(), xs.get(1));
        // The published first output of SplitMix64 seeded with 0.
        assert_eq!(SwimRng::new(0).next_word(), 0xe220_a839_7b1d_cdaf);
    }
}
