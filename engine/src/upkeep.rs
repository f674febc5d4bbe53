//! The upkeep room: what the background work needs to take turns — sealing (one at a
//! time, and the queue of blobs rotated out waiting for it), defragmentation (one at a
//! time, and its status) and the stop signal of the engine's threads. Its locks are
//! `Defrag`, `Seal` and `SealQueue` in the lock-order table of `engine`; the status and the
//! stop signal are leaves.

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::lock_order::{Held, Rank, Ranked};

/// Defragmentation's state, for stats.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DefragStatus {
    pub running: bool,
    pub runs: u64,
    pub blobs_rewritten: u64,
    pub bytes_reclaimed: u64,
    pub last: Option<crate::defrag::DefragReport>,
    pub last_error: Option<String>,
}

/// Held while a blob is sealed or the key locator built.
pub(crate) type Sealing<'a> = Held<MutexGuard<'a, ()>>;

/// Held while a defragmentation runs.
pub(crate) type Defragmenting<'a> = Held<MutexGuard<'a, ()>>;

/// The upkeep room.
pub(crate) struct Upkeep {
    seal: Ranked<Mutex<()>>,
    /// Blobs rotated out whose sync and index file are still to do (newest first).
    seal_queue: Ranked<Mutex<Vec<u32>>>,
    defrag: Ranked<Mutex<()>>,
    defrag_status: Ranked<Mutex<DefragStatus>>,
    /// Set once the engine closes; the condition wakes its threads. A leaf lock, outside
    /// the ranks: it is only ever waited on with nothing else held.
    stop: (Mutex<bool>, Condvar),
}

impl Upkeep {
    pub fn new() -> Upkeep {
        Upkeep {
            seal: Ranked::mutex(Rank::Seal, ()),
            seal_queue: Ranked::mutex(Rank::SealQueue, Vec::new()),
            defrag: Ranked::mutex(Rank::Defrag, ()),
            defrag_status: Ranked::mutex(Rank::Leaf, DefragStatus::default()),
            stop: (Mutex::new(false), Condvar::new()),
        }
    }

    /// Takes the seal lock.
    pub fn sealing(&self) -> Sealing<'_> {
        self.seal.lock()
    }

    /// Queues a rotated-out blob for sealing and wakes the maintenance thread.
    pub fn queue_seal(&self, id: u32) {
        self.seal_queue.lock().insert(0, id);
        self.wake();
    }

    /// Blobs waiting to be sealed.
    pub fn queued(&self) -> Vec<u32> {
        self.seal_queue.lock().clone()
    }

    /// The oldest blob waiting to be sealed.
    pub fn pop_oldest(&self) -> Option<u32> {
        self.seal_queue.lock().pop()
    }

    /// The oldest blob waiting to be sealed, if it is older than `id`.
    pub fn pop_older_than(&self, id: u32) -> Option<u32> {
        let mut queue = self.seal_queue.lock();
        if queue.last().is_some_and(|&oldest| oldest < id) {
            queue.pop()
        } else {
            None
        }
    }

    /// The defragmentation lock, or `Busy` if one runs.
    pub fn defragmenting(&self) -> Result<Defragmenting<'_>> {
        self.defrag.try_lock().ok_or(Error::Busy)
    }

    /// Counts a defragmentation's outcome.
    pub fn record_defrag(&self, result: &Result<crate::DefragReport>) {
        let mut st = self.defrag_status.lock();
        match result {
            Ok(r) => {
                st.runs += 1;
                st.blobs_rewritten += r.blobs_rewritten.len() as u64;
                st.bytes_reclaimed += r.bytes_reclaimed;
                st.last = Some(r.clone());
                st.last_error = None;
            }
            Err(Error::Busy) => {}
            Err(e) => st.last_error = Some(e.to_string()),
        }
    }

    pub fn defrag_status(&self) -> DefragStatus {
        DefragStatus {
            running: self.defrag.is_locked(),
            ..self.defrag_status.lock().clone()
        }
    }

    /// Tells the engine's threads to stop.
    pub fn stop(&self) {
        let (stopped, cond) = &self.stop;
        *stopped.lock() = true;
        cond.notify_all();
    }

    /// Wakes the maintenance thread early.
    pub fn wake(&self) {
        self.stop.1.notify_all();
    }

    /// Waits `every` (or until stopped); false once stopped.
    pub fn wait_or_stop(&self, every: std::time::Duration) -> bool {
        let (stopped, cond) = &self.stop;
        let mut s = stopped.lock();
        let deadline = std::time::Instant::now() + every;
        while !*s {
            if cond.wait_until(&mut s, deadline).timed_out() {
                break;
            }
        }
        !*s
    }

    /// Waits up to `interval`, or until woken or stopped; false once stopped.
    pub fn tick(&self, interval: std::time::Duration) -> bool {
        let (stopped, cond) = &self.stop;
        let mut s = stopped.lock();
        if !*s {
            cond.wait_for(&mut s, interval);
        }
        !*s
    }
}
