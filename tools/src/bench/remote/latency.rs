//! Request latencies in microseconds, and their percentiles.

/// Collected latencies (µs).
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    us: Vec<u32>,
    sorted: bool,
}

impl Latencies {
    pub fn record(&mut self, us: u64) {
        self.us.push(us.min(u64::from(u32::MAX)) as u32);
        self.sorted = false;
    }

    pub fn merge(&mut self, other: Latencies) {
        self.us.extend(other.us);
        self.sorted = false;
    }

    pub fn len(&self) -> usize {
        self.us.len()
    }

    pub fn is_empty(&self) -> bool {
        self.us.is_empty()
    }

    /// The `p`th percentile (nearest rank), 0 when empty.
    pub fn percentile(&self, p: f64) -> u32 {
        if self.us.is_empty() {
            return 0;
        }
        let mut v = self.us.clone();
        if !self.sorted {
            v.sort_unstable();
        }
        // Nearest rank in integer arithmetic (p in tenths of a percent), so 99.9 % of 1000
        // is rank 999, not a float's 1000.
        let tenths = (p * 10.0).round() as usize;
        let rank = (tenths * v.len()).div_ceil(1000);
        v[rank.clamp(1, v.len()) - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut l = Latencies::default();
        for i in 1..=1000 {
            l.record(i);
        }
        assert_eq!(l.percentile(50.0), 500);
        assert_eq!(l.percentile(99.0), 990);
        assert_eq!(l.percentile(99.9), 999);
        assert_eq!(l.percentile(100.0), 1000);
        assert_eq!(Latencies::default().percentile(50.0), 0);
    }
}
