//! The wall clock that versions, deadlines and ages are stated in: Unix nanoseconds.
//!
//! One reading decides a write's version wherever it is accepted — by the node a client
//! sends it to, or by a client (the CLI, the gateway) that sends one write to several
//! groups, so every copy carries the same version (`docs/PROTOCOL.md` §7.4, §9.1).

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in nanoseconds since the Unix epoch (0 for a clock set before it; saturating in
/// the year 2554).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::now_ns;

    #[test]
    fn the_clock_reads_past_2020_and_does_not_run_back_between_two_readings() {
        let (a, b) = (now_ns(), now_ns());
        assert!(a > 1_577_836_800_000_000_000, "{a}");
        assert!(b >= a);
    }
}
