//! Ranked locks: every lock of the engine's rooms has a rank (see the table in `engine`),
//! and a thread may only take a lock ranked above every lock it already holds. Debug
//! builds check this on every acquisition and panic with both ranks on a violation, so a
//! test that takes two locks in the wrong order fails on its first run instead of
//! deadlocking once in a thousand. Release builds keep only the lock.

use std::ops::{Deref, DerefMut};

use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A lock's place in the engine's lock order: lower ranks are taken first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Rank {
    /// Upkeep: one defragmentation at a time, held for the whole run.
    Defrag = 1,
    /// Upkeep: one seal (or key locator build) at a time.
    Seal = 2,
    /// Log: the active blob and its write buffer (the writer lock).
    Writer = 3,
    /// Upkeep: blobs rotated out and waiting to be sealed.
    SealQueue = 4,
    /// Keys: the in-memory index.
    Index = 5,
    /// Keys: the sealed blobs' sorted indexes and key locator.
    Sealed = 6,
    /// Log: the open blob files.
    Blobs = 7,
    /// Locks under which no other lock is ever taken (poison reason, defragmentation
    /// status).
    Leaf = 8,
}

/// A lock with a rank.
pub(crate) struct Ranked<L> {
    rank: Rank,
    lock: L,
}

/// A guard that keeps its rank noted as held until it drops.
pub(crate) struct Held<G> {
    guard: G,
    _token: Token,
}

impl<G: Deref> Deref for Held<G> {
    type Target = G::Target;
    #[inline]
    fn deref(&self) -> &G::Target {
        &self.guard
    }
}

impl<G: DerefMut> DerefMut for Held<G> {
    #[inline]
    fn deref_mut(&mut self) -> &mut G::Target {
        &mut self.guard
    }
}

impl<T> Ranked<Mutex<T>> {
    pub fn mutex(rank: Rank, value: T) -> Self {
        Ranked {
            rank,
            lock: Mutex::new(value),
        }
    }

    #[inline]
    pub fn lock(&self) -> Held<MutexGuard<'_, T>> {
        let token = Token::take(self.rank);
        Held {
            guard: self.lock.lock(),
            _token: token,
        }
    }

    /// The lock if it is free now (a refused try cannot deadlock, but the order is still
    /// checked: holding it would make later acquisitions wrong).
    pub fn try_lock(&self) -> Option<Held<MutexGuard<'_, T>>> {
        let token = Token::take(self.rank);
        let guard = self.lock.try_lock()?;
        Some(Held {
            guard,
            _token: token,
        })
    }

    pub fn is_locked(&self) -> bool {
        self.lock.is_locked()
    }
}

impl<T> Ranked<RwLock<T>> {
    pub fn rw(rank: Rank, value: T) -> Self {
        Ranked {
            rank,
            lock: RwLock::new(value),
        }
    }

    #[inline]
    pub fn read(&self) -> Held<RwLockReadGuard<'_, T>> {
        let token = Token::take(self.rank);
        Held {
            guard: self.lock.read(),
            _token: token,
        }
    }

    #[inline]
    pub fn write(&self) -> Held<RwLockWriteGuard<'_, T>> {
        let token = Token::take(self.rank);
        Held {
            guard: self.lock.write(),
            _token: token,
        }
    }
}

/// The note that this thread holds a lock of some rank (debug builds only).
struct Token {
    #[cfg(debug_assertions)]
    rank: Rank,
}

#[cfg(debug_assertions)]
thread_local! {
    static HELD: std::cell::RefCell<Vec<Rank>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Token {
    #[cfg(debug_assertions)]
    #[inline]
    fn take(rank: Rank) -> Token {
        HELD.with(|held| {
            let mut held = held.borrow_mut();
            if let Some(&top) = held.iter().max() {
                assert!(
                    top < rank,
                    "lock order violated: taking {rank:?} while holding {top:?} (held: {held:?})"
                );
            }
            held.push(rank);
        });
        Token { rank }
    }

    #[cfg(not(debug_assertions))]
    #[inline]
    fn take(_rank: Rank) -> Token {
        Token {}
    }
}

#[cfg(debug_assertions)]
impl Drop for Token {
    fn drop(&mut self) {
        // Guards may drop in any order: forget the newest note of this rank.
        let _ = HELD.try_with(|held| {
            let mut held = held.borrow_mut();
            if let Some(at) = held.iter().rposition(|r| *r == self.rank) {
                held.remove(at);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_taken_in_rank_order_pass() {
        let writer = Ranked::mutex(Rank::Writer, 1);
        let index = Ranked::rw(Rank::Index, 2);
        let blobs = Ranked::rw(Rank::Blobs, 3);
        let a = writer.lock();
        let i = index.read();
        let b = blobs.write();
        assert_eq!(*a + *i + *b, 6);
        drop(a); // out of order: fine
        drop(b);
        drop(i);
        // All released: the low rank may be taken again.
        let _a = writer.lock();
    }

    #[cfg(debug_assertions)]
    #[test]
    fn taking_a_lower_rank_while_holding_a_higher_one_panics() {
        let writer = Ranked::mutex(Rank::Writer, ());
        let index = Ranked::rw(Rank::Index, ());
        let outcome = std::thread::spawn(move || {
            let _i = index.read();
            let _a = writer.lock();
        })
        .join();
        let message = outcome.err().and_then(|e| e.downcast::<String>().ok());
        assert!(
            message.is_some_and(|m| m.contains("taking Writer while holding Index")),
            "the violation must be reported with both ranks"
        );
    }

    #[cfg(debug_assertions)]
    #[test]
    fn taking_the_same_rank_twice_panics() {
        // Two read locks of one RwLock deadlock once a writer queues between them.
        let index = Ranked::rw(Rank::Index, ());
        let outcome = std::thread::spawn(move || {
            let _a = index.read();
            let _b = index.read();
        })
        .join();
        assert!(outcome.is_err());
    }
}
