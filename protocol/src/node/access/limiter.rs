//! Failed authentications per source address: a token bucket per IP. Each failure takes a
//! token; with none left, the source's next attempts are refused before any work (no proof
//! is checked) until a token has come back. Bounded: at most [`MAX_SOURCES`] addresses are
//! remembered; when full, recovered sources are forgotten first, then the oldest.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Failures a source may have in a burst.
pub const BURST: f64 = 5.0;
/// One failure is forgiven every this long.
pub const REFILL: Duration = Duration::from_secs(2);
/// Sources remembered at once.
pub const MAX_SOURCES: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    /// Attempts refused since the source was first remembered.
    refused: u64,
}

impl Bucket {
    fn level(&self, now: Instant) -> f64 {
        let back = now.saturating_duration_since(self.at).as_secs_f64() / REFILL.as_secs_f64();
        (self.tokens + back).min(BURST)
    }
}

/// Failed attempts per source.
#[derive(Debug, Default)]
pub struct FailureLimiter {
    sources: Mutex<HashMap<IpAddr, Bucket>>,
}

impl FailureLimiter {
    /// `Some((wait, refused))` if `ip` has failed too often and must wait that long;
    /// counts the refusal (`refused` is the count so far, for the log).
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> Option<(Duration, u64)> {
        let mut sources = self.sources.lock();
        let b = sources.get_mut(&ip)?;
        let level = b.level(now);
        if level >= 1.0 {
            return None;
        }
        b.refused += 1;
        Some((REFILL.mul_f64(1.0 - level), b.refused))
    }

    /// Notes a failure from `ip`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut sources = self.sources.lock();
        if sources.len() >= MAX_SOURCES && !sources.contains_key(&ip) {
            evict(&mut sources, now);
        }
        let b = sources.entry(ip).or_insert(Bucket {
            tokens: BURST,
            at: now,
            refused: 0,
        });
        b.tokens = (b.level(now) - 1.0).max(0.0);
        b.at = now;
    }

    /// Sources remembered.
    pub fn len(&self) -> usize {
        self.sources.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn evict(sources: &mut HashMap<IpAddr, Bucket>, now: Instant) {
    sources.retain(|_, b| b.level(now) < BURST);
    while sources.len() >= MAX_SOURCES {
        let oldest = sources.iter().min_by_key(|(_, b)| b.at).map(|(ip, _)| *ip);
        match oldest {
            Some(ip) => sources.remove(&ip),
            None => break,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn a_source_is_blocked_after_a_burst_and_recovers() {
        let l = FailureLimiter::default();
        let (a, b) = (
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        );
        let t = Instant::now();
        for _ in 0..5 {
            assert_eq!(l.blocked(a, t), None);
            l.failed(a, t);
        }
        assert!(l.blocked(a, t).is_some(), "sixth attempt in a burst");
        assert_eq!(l.blocked(b, t), None, "another source is not affected");
        assert_eq!(l.blocked(a, t + REFILL), None, "one token back");
        l.failed(a, t + REFILL);
        assert_eq!(l.blocked(a, t + REFILL).map(|b| b.1), Some(2));
    }

    #[test]
    fn memory_is_bounded() {
        let l = FailureLimiter::default();
        let t = Instant::now();
        for i in 0..(MAX_SOURCES as u32 + 100) {
            l.failed(IpAddr::V4(Ipv4Addr::from(i)), t);
        }
        assert!(l.len() <= MAX_SOURCES);
    }
}
