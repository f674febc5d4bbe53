//! One sync for many waiters, awaited without a thread each. A caller that applied writes
//! without durability and must not answer before they are durable awaits
//! [`SharedSync::after_writes`]: it waits for the next `Backend::sync` that *starts* after
//! it asked (a sync already running may have missed its writes). One syncing task runs the
//! syncs back to back on the blocking pool for as long as anyone waits, so every waiter that
//! arrives while one sync runs shares the next one — one fdatasync per round for any number
//! of connections, and no pool thread parked per writer.
//!
//! A round of pipelined writes (several waiters, at least [`PIPELINED`] writes each on
//! average: clients that send many writes before awaiting any) is followed by a *gather*:
//! the next sync waits for as many new waiters as the round released (the writers its
//! replies set going), or at most as long again as its sync took (never over
//! [`MAX_GATHER`]), so they join it rather than the round after. Such writers keep the node
//! busy between syncs, and a larger round spreads a sync's fixed cost (its waits inside
//! `fdatasync`, the wake-ups) over more writes — what one fsync per event-loop turn gives a
//! single-threaded server. Writers of one write at a time are not gathered: their next
//! writes are served while the sync runs, and a gather would only add its wait to their
//! latency (measured: 10–20 % fewer writes per second at 50 connections). A lone writer
//! never waits for one either.
//!
//! Lock order: the state mutex is a leaf (nothing else is taken under it, and it is never
//! held across an await or a sync; the syncing thread waits on its condition variable).

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use crate::error::{Error, Result};

/// What makes everything written so far durable (`Backend::sync`).
pub type SyncFn = Arc<dyn Fn() -> Result<()> + Send + Sync>;

/// How a round's sync ended, as every waiter of that round sees it.
type Outcome = Option<std::result::Result<(), Arc<Error>>>;

struct Round {
    /// The next round's outcome, sent once its sync ends; waiters subscribe to it.
    next: watch::Sender<Outcome>,
    /// How many subscribed to `next`, and the durable writes they made.
    waiters: u32,
    writes: u32,
    /// While the syncing thread gathers: the waiters it waits for (0: not gathering).
    gathering_for: u32,
    /// Whether the syncing task is running.
    running: bool,
}

/// The next round, and the syncing thread's wake-up when a gather has its waiters.
struct Rounds {
    round: Mutex<Round>,
    gathered: Condvar,
}

/// Shared syncs of one backend.
pub struct SharedSync {
    sync: SyncFn,
    rounds: Arc<Rounds>,
}

impl SharedSync {
    pub fn new(sync: SyncFn) -> SharedSync {
        SharedSync {
            sync,
            rounds: Arc::new(Rounds::new()),
        }
    }

    /// Returns once a sync that started after this call has ended: everything the caller
    /// wrote before calling (`writes` durable writes) is then durable (or the sync's error
    /// is returned).
    pub async fn after_writes(&self, writes: u32) -> Result<()> {
        let (mut rx, start) = self.rounds.join(writes);
        if start {
            self.start_syncing();
        }
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
        let (sync, rounds) = (self.sync.clone(), self.rounds.clone());
        tokio::task::spawn_blocking(move || {
            let mut gather = Gather::default();
            loop {
                let Some((this_round, taken)) = rounds.take_round(gather) else {
                    return;
                };
                let started = Instant::now();
                let outcome = sync().map_err(Arc::new);
                gather = Gather::after(taken, started.elapsed());
                this_round.send_replace(Some(outcome));
            }
        });
    }
}

impl Rounds {
    /// No round under way, nobody waiting.
    fn new() -> Rounds {
        Rounds {
            round: Mutex::new(Round {
                next: watch::channel(None).0,
                waiters: 0,
                writes: 0,
                gathering_for: 0,
                running: false,
            }),
            gathered: Condvar::new(),
        }
    }

    /// Joins the next round with `writes` durable writes: its outcome's receiver, and
    /// whether the syncing task must be started (it was not running; it is marked so).
    fn join(&self, writes: u32) -> (watch::Receiver<Outcome>, bool) {
        let mut r = self.round.lock();
        r.waiters = r.waiters.saturating_add(1);
        r.writes = r.writes.saturating_add(writes);
        if r.gathering_for != 0 && r.waiters >= r.gathering_for {
            r.gathering_for = 0;
            self.gathered.notify_one();
        }
        let start = !std::mem::replace(&mut r.running, true);
        (r.next.subscribe(), start)
    }

    /// After `gather`, the round to sync now with its waiters and writes (a fresh one takes
    /// its place); `None`, with the syncing task marked stopped, when nobody waits.
    fn take_round(&self, gather: Gather) -> Option<(watch::Sender<Outcome>, Taken)> {
        let mut r = self.round.lock();
        if gather.released > 0 {
            let deadline = Instant::now() + gather.longest;
            let want = r.waiters.saturating_add(gather.released);
            r.gathering_for = want;
            while r.waiters < want && !self.gathered.wait_until(&mut r, deadline).timed_out() {}
            r.gathering_for = 0;
        }
        if r.waiters == 0 {
            r.running = false;
            return None;
        }
        let taken = Taken {
            waiters: std::mem::take(&mut r.waiters),
            writes: std::mem::take(&mut r.writes),
        };
        Some((
            std::mem::replace(&mut r.next, watch::channel(None).0),
            taken,
        ))
    }
}

/// The longest a round waits for more writers before its sync.
pub const MAX_GATHER: Duration = Duration::from_millis(1);

/// Durable writes per waiter, on average, from which a round counts as pipelined.
pub const PIPELINED: u32 = 4;

/// A round as the syncing thread took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Taken {
    waiters: u32,
    writes: u32,
}

/// What the next round waits for before its sync: `released` more waiters (those the last
/// round let go), for at most `longest`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Gather {
    released: u32,
    longest: Duration,
}

impl Gather {
    /// After round `taken` whose sync took `took`: nothing unless it was a round of
    /// pipelined writes (see the module's doc), else as many waiters again for as long as
    /// that sync (up to [`MAX_GATHER`]).
    fn after(taken: Taken, took: Duration) -> Gather {
        if taken.waiters < 2 || taken.writes / taken.waiters < PIPELINED {
            return Gather::default();
        }
        Gather {
            released: taken.waiters,
            longest: took.min(MAX_GATHER),
        }
    }
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
    fn only_a_round_of_pipelined_writers_is_followed_by_a_bounded_gather() {
        let took = Duration::from_micros(300);
        let round = |waiters, writes| Taken { waiters, writes };
        // A lone writer, however many writes it made; writers of one write at a time.
        assert_eq!(Gather::after(round(0, 0), took), Gather::default());
        assert_eq!(Gather::after(round(1, 16), took), Gather::default());
        assert_eq!(Gather::after(round(50, 50), took), Gather::default());
        assert_eq!(Gather::after(round(50, 199), took), Gather::default());
        let pipelined = Gather::after(round(50, 800), took);
        assert_eq!((pipelined.released, pipelined.longest), (50, took));
        let slow = Gather::after(round(2, 8), Duration::from_millis(20));
        assert_eq!((slow.released, slow.longest), (2, MAX_GATHER));
    }

    #[test]
    fn a_gather_ends_when_the_released_waiters_are_back_or_at_its_bound() {
        let rounds = Arc::new(Rounds::new());
        let _first = rounds.join(16);
        let gather = Gather {
            released: 2,
            longest: Duration::from_secs(10),
        };
        let (r2, started) = (rounds.clone(), Instant::now());
        let back = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let _a = r2.join(16);
            let _b = r2.join(16);
        });
        let taken = rounds.take_round(gather).map(|(_, t)| t);
        assert!(back.join().is_ok());
        // The one there before and the two released ones, long before the bound.
        assert_eq!(
            taken,
            Some(Taken {
                waiters: 3,
                writes: 48
            })
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        // Nobody comes back: the round goes at the bound with whoever is there.
        let _late = rounds.join(1);
        let gather = Gather {
            released: 5,
            longest: Duration::from_millis(10),
        };
        let started = Instant::now();
        let taken = rounds.take_round(gather).map(|(_, t)| t);
        assert_eq!(
            taken,
            Some(Taken {
                waiters: 1,
                writes: 1
            })
        );
        assert!(started.elapsed() >= Duration::from_millis(10));
        // Nobody at all: the syncing task stops.
        assert!(rounds.take_round(Gather::default()).is_none());
        assert!(!rounds.round.lock().running);
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
                shared.after_writes(1).await?;
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
        let first = shared.after_writes(1).await;
        assert!(first.is_err_and(|e| e.to_string().contains("no space")));
        assert!(shared.after_writes(1).await.is_ok());
    }
}
