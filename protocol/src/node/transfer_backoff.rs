//! When a failed hand-over transfer is tried again. A transfer that fails again and again —
//! its new owner's disk is full, or it does not answer — waits twice as long after each
//! failure in a row (2 s, 4 s, … up to a minute) instead of every 2 s for ever, so a stalled
//! drain neither floods the log nor keeps hammering the node it waits for. Any progress or
//! the transfer's end forgets its failures.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The wait after a first failure.
pub const FIRST_WAIT: Duration = Duration::from_secs(2);
/// The longest wait.
pub const LONGEST_WAIT: Duration = Duration::from_secs(60);

/// Failures in a row, and when each transfer may run again, by transfer id.
#[derive(Debug, Default)]
pub struct TransferBackoff {
    failed: HashMap<u64, (u32, Instant)>,
}

impl TransferBackoff {
    /// Notes a failure of transfer `id` at `now`: how many in a row, and how long it waits.
    pub fn failed(&mut self, id: u64, now: Instant) -> (u32, Duration) {
        let entry = self.failed.entry(id).or_insert((0, now));
        entry.0 = entry.0.saturating_add(1);
        let wait = wait_after(entry.0);
        entry.1 = now + wait;
        (entry.0, wait)
    }

    /// Transfer `id` moved on (progress, or done): its failures are forgotten.
    pub fn moved_on(&mut self, id: u64) {
        self.failed.remove(&id);
    }

    /// Whether transfer `id` is still waiting at `now` after failing.
    pub fn waiting(&self, id: u64, now: Instant) -> bool {
        self.failed.get(&id).is_some_and(|(_, until)| now < *until)
    }

    /// Forgets transfers that no longer exist.
    pub fn retain(&mut self, exists: impl Fn(u64) -> bool) {
        self.failed.retain(|id, _| exists(*id));
    }
}

/// The wait after the `n`th failure in a row (n ≥ 1): doubling from [`FIRST_WAIT`], at most
/// [`LONGEST_WAIT`].
fn wait_after(n: u32) -> Duration {
    let doublings = n.saturating_sub(1).min(16);
    FIRST_WAIT
        .saturating_mul(1u32 << doublings)
        .min(LONGEST_WAIT)
}

/// Whether the `n`th failure in a row is worth a warning: the first, then each that doubles
/// the count (the others are logged at debug level).
pub fn worth_a_warning(n: u32) -> bool {
    n.is_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_a_minute_and_progress_resets_them() {
        let t0 = Instant::now();
        let mut b = TransferBackoff::default();
        let waits: Vec<u64> = (0..8).map(|_| b.failed(7, t0).1.as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60, 60]);
        assert!(b.waiting(7, t0 + Duration::from_secs(59)));
        assert!(!b.waiting(7, t0 + Duration::from_secs(60)));
        assert!(!b.waiting(8, t0), "another transfer does not wait");
        b.moved_on(7);
        assert!(!b.waiting(7, t0));
        assert_eq!(b.failed(7, t0), (1, FIRST_WAIT));
        b.retain(|id| id != 7);
        assert!(!b.waiting(7, t0));
        assert_eq!(wait_after(u32::MAX), LONGEST_WAIT);
    }

    #[test]
    fn warnings_thin_out() {
        let warned: Vec<u32> = (1..=20).filter(|n| worth_a_warning(*n)).collect();
        assert_eq!(warned, [1, 2, 4, 8, 16]);
    }
}
