//! Free disk space for writes: new values are refused (`DiskFull`) while the device has less
//! than a **reserve** free beyond them, so removes (tombstones) and defragmentation's copies
//! — which may use the reserve — can always be written, and the engine never meets `ENOSPC`
//! in the middle of a write it has half done. Free space is asked of the device (`statvfs`)
//! at most once a second while far from the reserve, and at every write near it, so writes
//! resume by themselves as soon as space comes back (files deleted, garbage defragmented).
//!
//! Lock order: `state` is a leaf.

use std::time::Duration;

use parking_lot::Mutex;

use crate::coarse_clock::coarse_now;
use crate::error::{Error, Result};
use crate::io::Device;
use crate::lock_order::{Rank, Ranked};

/// How long a free-space reading is trusted while far from the reserve.
const FRESH: Duration = Duration::from_secs(1);

/// Writes counted against the last reading before the device is asked again.
#[derive(Debug, Default)]
struct State {
    /// Free bytes at the last reading (`None`: the device cannot tell).
    free: Option<u64>,
    /// When, on [`coarse_now`]'s clock.
    read_at: Option<Duration>,
    /// Bytes written since that reading.
    spent: u64,
    /// Writes refused for lack of space, in all.
    refused: u64,
}

/// The disk-space check of the write path.
pub struct Space {
    reserve: u64,
    state: Ranked<Mutex<State>>,
}

impl Space {
    pub fn new(reserve: u64) -> Space {
        Space {
            reserve,
            state: Ranked::mutex(Rank::Leaf, State::default()),
        }
    }

    /// Admits a write of `len` bytes. `use_reserve`: a tombstone or a defragmentation copy,
    /// which may use the reserve (and is refused only when not even it has room).
    pub fn admit(&self, device: &dyn Device, len: u64, use_reserve: bool) -> Result<()> {
        let mut s = self.state.lock();
        let keep = if use_reserve { 0 } else { self.reserve };
        let near = |s: &State| {
            s.free
                .is_some_and(|f| f.saturating_sub(s.spent) < keep + len + self.reserve)
        };
        let now = coarse_now();
        let stale = s.read_at.is_none_or(|t| now.saturating_sub(t) >= FRESH);
        if stale || near(&s) {
            s.free = device
                .free_space()
                .map_err(|e| Error::io("statvfs", device.describe(), e))?;
            s.read_at = Some(now);
            s.spent = 0;
        }
        let Some(free) = s.free else {
            return Ok(());
        };
        let left = free.saturating_sub(s.spent);
        if left < keep + len {
            s.refused += 1;
            return Err(Error::DiskFull {
                need: keep + len,
                available: left,
            });
        }
        s.spent += len;
        Ok(())
    }

    /// Writes refused for lack of space since open.
    pub fn refused(&self) -> u64 {
        self.state.lock().refused
    }

    /// The next write asks the device again (after `ENOSPC` from the file system itself).
    pub fn forget(&self) {
        self.state.lock().read_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemDevice;

    #[test]
    fn values_leave_the_reserve_to_removes_and_resume_when_space_returns() {
        let dev = MemDevice::new();
        let space = Space::new(1000);
        assert!(
            space.admit(&dev, 1 << 30, false).is_ok(),
            "unknown free space"
        );
        dev.set_free_space(Some(1500));
        space.forget();
        assert!(space.admit(&dev, 400, false).is_ok());
        dev.set_free_space(Some(1100)); // the write reached the disk
        let full = space.admit(&dev, 400, false);
        assert!(matches!(full, Err(Error::DiskFull { .. })), "{full:?}");
        assert!(
            space.admit(&dev, 400, true).is_ok(),
            "a remove uses the reserve"
        );
        assert_eq!(space.refused(), 1);
        dev.set_free_space(Some(10_000));
        assert!(
            space.admit(&dev, 400, false).is_ok(),
            "resumes at once when near"
        );
    }

    #[test]
    fn a_reading_far_from_the_reserve_is_trusted_for_a_second_then_read_again() {
        let dev = MemDevice::new();
        let space = Space::new(1000);
        dev.set_free_space(Some(1 << 30));
        assert!(space.admit(&dev, 400, false).is_ok());
        // Another process fills the disk: not asked again within the second...
        dev.set_free_space(Some(0));
        assert!(space.admit(&dev, 400, false).is_ok(), "trusted reading");
        // ...but once it has passed (the coarse clock ticks every few milliseconds).
        std::thread::sleep(FRESH + Duration::from_millis(50));
        let full = space.admit(&dev, 400, false);
        assert!(matches!(full, Err(Error::DiskFull { .. })), "{full:?}");
    }
}
