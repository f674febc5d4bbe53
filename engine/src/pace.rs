//! [`Pace`]: keeping a copy under a byte rate. Shared by defragmentation (which sleeps its
//! thread) and the node's hand-over of key ranges (which sleeps its task).

use std::time::{Duration, Instant};

/// Bytes spent against a rate. Idle time banks at most one second's worth of credit: after
/// a pause, counting starts afresh instead of bursting to catch up.
#[derive(Debug)]
pub struct Pace {
    per_sec: u64,
    started: Instant,
    bytes: u64,
}

impl Pace {
    /// `per_sec` = 0: unlimited.
    pub fn new(per_sec: u64) -> Self {
        Pace {
            per_sec,
            started: Instant::now(),
            bytes: 0,
        }
    }

    /// Counts `n` bytes spent; returns how long to wait before spending more.
    pub fn spent(&mut self, n: u64) -> Option<Duration> {
        if self.per_sec == 0 {
            return None;
        }
        let allowed = self.started.elapsed().as_secs_f64() * self.per_sec as f64;
        if allowed > self.bytes as f64 + self.per_sec as f64 {
            self.started = Instant::now();
            self.bytes = 0;
        }
        self.bytes += n;
        let due = Duration::from_secs_f64(self.bytes as f64 / self.per_sec as f64);
        due.checked_sub(self.started.elapsed())
            .filter(|wait| !wait.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_is_what_the_rate_asks_for() {
        let mut unlimited = Pace::new(0);
        assert_eq!(unlimited.spent(u64::MAX / 2), None);
        let mut pace = Pace::new(1000);
        // 500 bytes at 1000 B/s are due after 0.5 s: nearly all of it is still to wait.
        let wait = pace.spent(500).unwrap_or_default();
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
        let more = pace.spent(500).unwrap_or_default();
        assert!(more > wait, "more bytes, longer wait");
    }
}
