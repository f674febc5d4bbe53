//! One sync for many waiters, awaited without a thread each. A caller that applied writes
//! without durability and must not answer before they are durable awaits
//! [`SharedSync::after_writes`]: it waits for the next `Backend::sync` that *starts* after
//! it asked (a sync already running may have missed its writes). One syncing task runs the
//! syncs back to back on the blocking pool for as long as anyone waits, so every waiter that
//! arrives while one sync runs shares the next one — one fdatasync per round for any number
//! of connections, and no pool thread parked per writer.
//!
//! A round that covered more than one waiter is followed by a short gather: the next sync
//! starts only after as long again as the last one took (at most [`MAX_GATHER`]), so the
//! writers that its replies set going — and every other connection's — join it rather than
//! the round after. Under load this is what one fdatasync per event-loop turn gives a
//! single-threaded server; a lone writer (rounds of one) never waits for it.
//!
//! Lock order: the state mutex is a leaf (nothing else is taken under it, and it is never
//! held across an await or a sync).

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::error::{Error, Result};

/// What makes everything written so far durable (`Backend::sync`).
pub type SyncFn = Arc<dyn Fn() -> Result<()> + Send + Sync>;

/// How a round's sync ended, as every waiter of that round sees it.
type Outcome = Option<std::result::Result<(), Arc<Error>>>;

struct Round {
    /// The next round's outcome, sent once its sync ends; waiters subscribe to it.
    next: watch::Sender<Outcome>,
    /// How many subscribed to `next`.
    waiters: u32,
    /// Whether the syncing task is running.
    running: bool,
}

/// Shared syncs of one backend.
pub struct SharedSync {
    sync: SyncFn,
    round: Arc<Mutex<Round>>,
}

impl SharedSync {
    pub fn new(sync: SyncFn) -> SharedSync {
        SharedSync {
            sync,
            round: Arc::new(Mutex::new(Round {
                next: watch::channel(None).0,
                waiters: 0,
                running: false,
            })),
        }
    }

    /// Returns once a sync that started after this call has ended: everything the caller
    /// wrote before calling is then durable (or the sync's error is returned).
    pub async fn after_writes(&self) -> Result<()> {
        let mut rx = {
            let mut r = self.round.lock();
            r.waiters = r.waiters.saturating_add(1);
            let rx = r.next.subscribe();
            if !r.running {
                r.running = true;
                self.start_syncing();
            }
            rx
        };
        let outcome = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| Error::Internal("the syncing task ended".into()))?
            .clone();
        match outcome {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(same_error(&e)),
            None => Err(Error::Internal("no sync outcome".into())),
        }
    }

    /// Runs rounds on the blocking pool until a round ends with nobody waiting for the next.
    fn start_syncing(&self) {
        let (sync, round) = (self.sync.clone(), self.round.clone());
        tokio::task::spawn_blocking(move || {
            let mut gather = Duration::ZERO;
            loop {
                if !gather.is_zero() {
                    std::thread::sleep(gather);
                }
                let (this_round, waiters) = {
                    let mut r = round.lock();
                    if r.waiters == 0 {
                        r.running = false;
                        return;
                    }
                    let waiters = std::mem::take(&mut r.waiters);
                    (
                        std::mem::replace(&mut r.next, watch::channel(None).0),
                        waiters,
                    )
                };
                let started = Instant::now();
                let outcome = sync().map_err(Arc::new);
                gather = gather_after(waiters, started.elapsed());
                this_round.send_replace(Some(outcome));
            }
        });
    }
}

/// The longest a round waits for more writers before its sync.
pub const MAX_GATHER: Duration = Duration::from_millis(1);

/// How long the next round gathers writers, after a round of `waiters` whose sync took
/// `took`: nothing after a lone waiter, else as long as that sync (up to [`MAX_GATHER`]).
fn gather_after(waiters: u32, took: Duration) -> Duration {
    if waiters < 2 {
        return Duration::ZERO;
    }
    took.min(MAX_GATHER)
}

/// A waiter's copy of a round's error, keeping the kinds a client is told apart.
fn same_error(e: &Error) -> Error {
    match e {
        Error::NoSpace(why) => Error::NoSpace(why.clone()),
        Error::ReadOnly(why) => Error::ReadOnly(why.clone()),
        other => Error::Internal(format!("sync failed: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn a_round_of_one_is_followed_at_once_and_a_shared_one_by_a_bounded_gather() {
        let took = Duration::from_micros(300);
        assert_eq!(gather_after(0, took), Duration::ZERO);
        assert_eq!(gather_after(1, took), Duration::ZERO);
        assert_eq!(gather_after(2, took), took);
        assert_eq!(gather_after(50, Duration::from_millis(20)), MAX_GATHER);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_waiters_share_few_syncs_and_each_waits_for_one_that_started_after_it() {
        let started = Arc::new(AtomicU64::new(0));
        let ended = Arc::new(AtomicU64::new(0));
        let (s, e) = (started.clone(), ended.clone());
        let shared = Arc::new(SharedSync::new(Arc::new(move || {
            s.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(5));
            e.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })));
        let mut tasks = Vec::new();
        for i in 0..200u64 {
            let (shared, started, ended) = (shared.clone(), started.clone(), ended.clone());
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_micros(i * 97 % 20_000)).await;
                let begun_before = started.load(Ordering::SeqCst);
                shared.after_writes().await?;
                // The sync after every one begun before the call has ended.
                Ok::<bool, Error>(ended.load(Ordering::SeqCst) > begun_before)
            }));
        }
        for t in tasks {
            let covered = t.await.unwrap_or_else(|e| panic!("{e}"));
            assert!(covered.unwrap_or_else(|e| panic!("{e}")));
        }
        let syncs = ended.load(Ordering::SeqCst);
        assert!(syncs < 100, "{syncs} syncs for 200 waiters");
        assert!(
            syncs >= 2,
            "the waiters came over 20 ms: more than one round"
        );
    }

    #[tokio::test]
    async fn a_failed_sync_fails_its_waiters_and_the_next_round_tries_again() {
        let calls = Arc::new(AtomicU64::new(0));
        let c = calls.clone();
        let shared = SharedSync::new(Arc::new(move || {
            if c.fetch_add(1, Ordering::SeqCst) == 0 {
                return Err(Error::NoSpace("test".into()));
            }
            Ok(())
        }));
        let first = shared.after_writes().await;
        assert!(first.is_err_and(|e| e.to_string().contains("no space")));
        assert!(shared.after_writes().await.is_ok());
    }
}
