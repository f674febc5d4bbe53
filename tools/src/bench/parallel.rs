//! Client threads that share one store (scoped threads borrowing it, like an `Arc`).

use std::ops::Range;

use anyhow::{anyhow, Result};

/// Runs `work(t)` for `t` in `0..threads`, each on its own thread (inline when `threads` is
/// 1), and returns the results in thread order. The first error wins.
pub fn run_threads<T, F>(threads: usize, work: F) -> Result<Vec<T>>
where
    T: Send,
    F: Fn(usize) -> Result<T> + Sync,
{
    if threads <= 1 {
        return Ok(vec![work(0)?]);
    }
    std::thread::scope(|s| {
        let work = &work;
        let handles: Vec<_> = (0..threads).map(|t| s.spawn(move || work(t))).collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow!("a client thread panicked"))?)
            .collect()
    })
}

/// Thread `t`'s share of `0..n` when split into `threads` contiguous ranges
/// (the first `n % threads` ranges are one longer).
pub fn share(n: u64, threads: usize, t: usize) -> Range<u64> {
    let threads = threads.max(1) as u64;
    let t = t as u64;
    let base = n / threads;
    let extra = n % threads;
    let start = t * base + t.min(extra);
    let len = base + u64::from(t < extra);
    start..start + len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_everything_once() {
        for (n, threads) in [(10, 3), (3, 8), (1_000_000, 64), (0, 2)] {
            let mut next = 0;
            for t in 0..threads {
                let r = share(n, threads, t);
                assert_eq!(r.start, next);
                next = r.end;
            }
            assert_eq!(next, n);
        }
    }

    #[test]
    fn results_come_back_in_thread_order() -> Result<()> {
        assert_eq!(run_threads(4, |t| Ok(t * 10))?, vec![0, 10, 20, 30]);
        assert!(run_threads(3, |t| if t == 1 { Err(anyhow!("boom")) } else { Ok(t) }).is_err());
        Ok(())
    }
}
