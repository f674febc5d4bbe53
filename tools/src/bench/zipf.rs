//! Zipfian item chooser, as in YCSB's `ZipfianGenerator` (Gray et al., "Quickly generating
//! billion-record synthetic databases", SIGMOD 1994).
//!
//! Item 0 is the most popular. Our keys are SHA-256 hashes of the item number, so popular
//! items are already scattered over the key space (YCSB's "scrambled" variant hashes for the
//! same reason).

use super::data::SplitMix64;

/// The skew YCSB uses by default.
pub const YCSB_THETA: f64 = 0.99;

/// Draws items in `0..n` with P(i) ∝ 1 / (i + 1)^theta.
#[derive(Debug, Clone)]
pub struct Zipfian {
    n: u64,
    theta: f64,
    alpha: f64,
    zeta_n: f64,
    eta: f64,
}

impl Zipfian {
    /// A generator over `n ≥ 1` items with skew `theta` in `(0, 1)`. Costs O(n) once.
    pub fn new(n: u64, theta: f64) -> Self {
        let n = n.max(1);
        let zeta_n = zeta(n, theta);
        let zeta_2 = zeta(2, theta);
        let eta = (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta_2 / zeta_n);
        Zipfian {
            n,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zeta_n,
            eta,
        }
    }

    /// The next item.
    pub fn next(&self, rng: &mut SplitMix64) -> u64 {
        let u = rng.next_f64();
        let uz = u * self.zeta_n;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1.min(self.n - 1);
        }
        let item = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        item.min(self.n - 1)
    }
}

/// Σ_{i=1..n} 1 / i^theta.
fn zeta(n: u64, theta: f64) -> f64 {
    (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_stay_in_range_and_skew_to_the_head() {
        let n = 10_000;
        let z = Zipfian::new(n, YCSB_THETA);
        let mut rng = SplitMix64::new(42);
        let mut counts = vec![0u32; n as usize];
        for _ in 0..200_000 {
            let i = z.next(&mut rng);
            assert!(i < n);
            counts[i as usize] += 1;
        }
        // P(0) = 1 / zeta(n) ≈ 0.10 for n = 10k, theta 0.99.
        let p0 = f64::from(counts[0]) / 200_000.0;
        assert!((0.08..0.13).contains(&p0), "p0 = {p0}");
        assert!(counts[0] > counts[1] && counts[1] > counts[100]);
    }

    #[test]
    fn one_item_is_always_item_zero() {
        let z = Zipfian::new(1, YCSB_THETA);
        let mut rng = SplitMix64::new(7);
        assert!((0..100).all(|_| z.next(&mut rng) == 0));
    }
}
