//! Group commit: writers that need durability wait until an fdatasync covers their record.
//! One of them (the leader) flushes the write buffer and syncs; everyone whose record that
//! sync covered is released together, so 64 writers cost one fdatasync, not 64.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::error::Error;

/// A failed sync, as every writer waiting on it (and every later one) sees it. Once a sync
/// fails the engine is poisoned for writes: what reached the disk is unknown. A full disk
/// met while writing the buffer out is not a failed sync (nothing was synced, the buffer is
/// kept): the writer that met it is told `DiskFull`, and the next one tries again.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SyncFailure(Arc<Error>);

impl From<SyncFailure> for Error {
    fn from(f: SyncFailure) -> Error {
        match *f.0 {
            Error::DiskFull { need, available } => Error::DiskFull { need, available },
            ref other => Error::Poisoned(other.to_string()),
        }
    }
}

/// A position in the log: blob id, then byte offset. Blobs are filled in id order, so
/// positions compare as tuples.
pub type LogPos = (u32, u64);

#[derive(Default)]
struct State {
    synced: LogPos,
    running: bool,
    failure: Option<SyncFailure>,
}

/// Tracks what is durable and who is syncing.
#[derive(Default)]
pub struct GroupCommit {
    state: Mutex<State>,
    done: Condvar,
}

impl GroupCommit {
    /// Everything up to `pos` is durable (a sealed blob was synced, or recovery found it on disk).
    pub fn mark_synced(&self, pos: LogPos) {
        let mut s = self.state.lock();
        if pos > s.synced {
            s.synced = pos;
        }
        self.done.notify_all();
    }

    /// Returns once `target` is durable. `sync` flushes the buffer and syncs, returning the
    /// position it made durable; it runs in at most one thread at a time, after waiting
    /// `window` for more writers to join.
    pub fn wait_durable(
        &self,
        target: LogPos,
        window: Duration,
        sync: impl Fn() -> Result<LogPos, Error>,
    ) -> Result<(), SyncFailure> {
        let mut s = self.state.lock();
        loop {
            if let Some(f) = &s.failure {
                return Err(f.clone());
            }
            if s.synced >= target {
                return Ok(());
            }
            if s.running {
                self.done.wait(&mut s);
                continue;
            }
            s.running = true;
            drop(s);
            if !window.is_zero() {
                std::thread::sleep(window);
            }
            let result = sync();
            s = self.state.lock();
            s.running = false;
            match result {
                Ok(pos) if pos > s.synced => s.synced = pos,
                Ok(_) => {}
                Err(e @ Error::DiskFull { .. }) => {
                    self.done.notify_all();
                    return Err(SyncFailure(Arc::new(e)));
                }
                Err(e) => s.failure = Some(SyncFailure(Arc::new(e))),
            }
            self.done.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn concurrent_waiters_share_syncs() {
        let gc = Arc::new(GroupCommit::default());
        let written = Arc::new(AtomicU64::new(0));
        let syncs = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (gc, written, syncs) = (gc.clone(), written.clone(), syncs.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let pos = written.fetch_add(1, Ordering::SeqCst) + 1;
                        let r = gc.wait_durable((1, pos), Duration::from_micros(100), || {
                            syncs.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_micros(200));
                            Ok((1, written.load(Ordering::SeqCst)))
                        });
                        assert!(r.is_ok());
                    }
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().is_ok());
        }
        let n = syncs.load(Ordering::SeqCst);
        assert!(n < 800, "800 durable writes took {n} syncs: no sharing");
    }

    #[test]
    fn a_failed_sync_fails_every_waiter_after_it() {
        let gc = GroupCommit::default();
        let gone = || Err(Error::InvalidConfig("disk gone".into()));
        let first = gc.wait_durable((1, 5), Duration::ZERO, gone);
        assert!(first.is_err_and(|e| e.to_string().contains("disk gone")));
        let later = gc.wait_durable((1, 1), Duration::ZERO, || Ok((1, 9)));
        assert!(later.is_err_and(|e| e.to_string().contains("disk gone")));
    }
}
