//! The record cache: small records' bytes kept in memory, so a hot key is read without a
//! system call.
//!
//! A record never changes once it lies below its blob's flushed end (blobs are append-only;
//! a torn tail is cut only while the engine opens), so the cache is keyed by where a record
//! is — blob, offset, length — and is never stale: a newer version of the key is another
//! record at another place, which the index names instead. An entry also carries the serial
//! of the [`Blob`](crate::blob::Blob) it was read from, so a blob retired and a later one
//! given the same id never answer for each other. What is cached are the record's bytes as
//! read, header and frame table included: every read from the cache decodes and checks them
//! as a read from the file does.
//!
//! Why not the page cache alone: a `pread` of 100 bytes from it costs a system call and the
//! kernel's file lookup (about 0.7 µs here, a third of what the node spends on a small
//! get), and untouched file pages are reclaimed within minutes even with memory free
//! (MACHINE-NOTES), where an in-process cache keeps what it was given.
//!
//! Bounded: records up to [`MAX_CACHED_RECORD`] bytes, at most the configured bytes in all
//! (each shard's table of slots included; an entry takes its record's bytes, padded to 8,
//! and a header of [`arena::HEADER`] bytes). Sixteen shards, each behind its own leaf lock,
//! keep two threads' reads apart; each keeps its records in a ring with CLOCK eviction (an
//! entry read since the ring's tail last passed it moves to the head once more), see
//! [`arena`].
//!
//! Only where it pays: a miss costs a lookup, an insert and, once full, an eviction (a
//! cache miss or two in the table and the ring's tail), a hit saves a system call. A full
//! shard (one that had to evict to keep a record) whose hits over its last [`WINDOW`]
//! lookups were fewer than half of them *passes* (a miss costs about what a hit saves, so
//! under half it loses; with a quarter, a full cache of a third of the keys
//! read uniformly kept paying a miss and an eviction for two reads in three): it is asked by one
//! read in [`SAMPLE`] only (those look up and keep what they read, so a hot set still moves
//! in and is noticed), and the others go straight to the file. Reads spread evenly over more
//! records than fit — a cold store, a scan — then cost the file's read and a sixteenth of a
//! miss once the cache is full; a set that fits is kept from its first read (a shard with
//! room never passes: judged by the hits of a cache filling up, a set read twice would never
//! be kept).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use crate::lock_order::{Rank, Ranked};

mod arena;

#[cfg(test)]
use arena::entry_size;
use arena::{Arena, Found, Place};

/// Lookups a shard weighs its hits over.
pub const WINDOW: u32 = 512;

/// While a shard passes, one read in this many asks it.
pub const SAMPLE: u32 = 16;

/// Records longer than this are read from the file every time (their copy, not the system
/// call, is what a read of them costs).
pub const MAX_CACHED_RECORD: usize = 4096;

const SHARDS: usize = 16;

#[derive(Default)]
struct Shard {
    /// Made at the first insert (a cache never filled costs no memory).
    arena: Option<Arena>,
    hits: u64,
    misses: u64,
    /// Lookups and hits of the window being counted.
    window: (u32, u32),
    /// Whether an insert of the window being counted had to evict.
    evicted: bool,
}

impl Shard {
    fn copy_into(&mut self, place: Place, serial: u64, out: &mut [u8]) -> bool {
        let hit = self
            .arena
            .as_mut()
            .is_some_and(|a| a.copy_into(place, serial, out) == Found::Hit);
        if hit {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        self.window.0 += 1;
        self.window.1 += u32::from(hit);
        hit
    }

    /// At the end of a window, whether the shard should pass: hits under half, and the
    /// shard full (an insert of the window had to evict). A shard with room keeps what it
    /// reads whatever its hits: a miss then costs no eviction, and a set read again later
    /// (each key twice, say) is kept for its second read rather than judged by its first.
    fn weigh(&mut self) -> Option<bool> {
        if self.window.0 < WINDOW {
            return None;
        }
        let (lookups, hits) = std::mem::take(&mut self.window);
        let full = std::mem::take(&mut self.evicted);
        Some(full && hits.saturating_mul(2) < lookups)
    }

    fn insert(&mut self, place: Place, serial: u64, bytes: &[u8], budget: usize) {
        let arena = self.arena.get_or_insert_with(|| Arena::new(budget));
        self.evicted |= arena.insert(place, serial, bytes);
    }
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The record was copied out.
    Hit,
    /// Not kept: read it and [`insert`](RecordCache::insert) it.
    Miss,
    /// The shard passes and this read was not sampled: read it, keep nothing.
    Passed,
}

/// A shard and whether it passes (read without its lock).
struct ShardRoom {
    shard: Ranked<Mutex<Shard>>,
    passing: AtomicBool,
}

thread_local! {
    /// This thread's reads of passing shards, for sampling one in [`SAMPLE`].
    static TICKS: Cell<u32> = const { Cell::new(0) };
}

/// Whether this read of a passing shard is the sampled one.
fn sampled() -> bool {
    TICKS.with(|t| {
        let n = t.get().wrapping_add(1);
        t.set(n);
        n.is_multiple_of(SAMPLE)
    })
}

/// What the cache has done, for `STAT` and the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordCacheFigures {
    pub hits: u64,
    /// Lookups that found nothing (reads of passing shards that were not sampled are not
    /// looked up, and counted nowhere).
    pub misses: u64,
    /// Shards passing now (of 16).
    pub passing_shards: u64,
    pub entries: u64,
    /// Bytes charged (records and their overhead); at most `capacity`.
    pub bytes: u64,
    pub capacity: u64,
}

/// The cache room: shards behind leaf locks, each with its counters inside.
pub(crate) struct RecordCache {
    shards: Vec<ShardRoom>,
    /// Bytes each shard may hold (0: the cache is off).
    shard_budget: usize,
}

impl RecordCache {
    /// A cache of at most `capacity` bytes (0: none; every read goes to the file).
    pub fn new(capacity: u64) -> Self {
        let shard_budget = usize::try_from(capacity / SHARDS as u64).unwrap_or(usize::MAX);
        RecordCache {
            shards: (0..SHARDS)
                .map(|_| ShardRoom {
                    shard: Ranked::mutex(Rank::Leaf, Shard::default()),
                    passing: AtomicBool::new(false),
                })
                .collect(),
            shard_budget,
        }
    }

    /// Whether a record of `len` bytes is kept.
    #[inline]
    pub fn takes(&self, len: usize) -> bool {
        self.shard_budget > 0 && len <= MAX_CACHED_RECORD
    }

    fn shard(&self, place: Place) -> &ShardRoom {
        // Records of one blob are spread by offset; a record's offset is at least its
        // header's length past the one before, so the low bits vary.
        let mix =
            (place.1 ^ u64::from(place.0).rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        &self.shards[(mix >> 60) as usize % SHARDS]
    }

    /// Fills `out` with the record at `place` of the blob with `serial`, if cached.
    pub fn lookup(&self, place: Place, serial: u64, out: &mut [u8]) -> Lookup {
        let room = self.shard(place);
        if room.passing.load(Ordering::Relaxed) && !sampled() {
            return Lookup::Passed;
        }
        let mut shard = room.shard.lock();
        let hit = shard.copy_into(place, serial, out);
        if let Some(passing) = shard.weigh() {
            room.passing.store(passing, Ordering::Relaxed);
        }
        if hit {
            Lookup::Hit
        } else {
            Lookup::Miss
        }
    }

    /// Keeps `bytes`, the record at `place` as read from the blob with `serial` (after a
    /// [`Lookup::Miss`]).
    pub fn insert(&self, place: Place, serial: u64, bytes: &[u8]) {
        if self.takes(bytes.len()) {
            let budget = self.shard_budget;
            self.shard(place)
                .shard
                .lock()
                .insert(place, serial, bytes, budget);
        }
    }

    /// Drops every record of blob `id` (it was retired: its memory is better spent).
    pub fn forget_blob(&self, id: u32) {
        for room in &self.shards {
            if let Some(a) = room.shard.lock().arena.as_mut() {
                a.forget_blob(id);
            }
        }
    }

    pub fn figures(&self) -> RecordCacheFigures {
        let mut f = RecordCacheFigures::default();
        for room in &self.shards {
            let s = room.shard.lock();
            if let Some(a) = &s.arena {
                f.entries += a.entries() as u64;
                f.bytes += a.live_bytes() as u64;
            }
            f.hits += s.hits;
            f.misses += s.misses;
            f.passing_shards += u64::from(room.passing.load(Ordering::Relaxed));
        }
        RecordCacheFigures {
            capacity: (self.shard_budget as u64).saturating_mul(SHARDS as u64),
            ..f
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fill: u8, len: usize) -> Vec<u8> {
        vec![fill; len]
    }

    #[test]
    fn a_hit_copies_the_bytes_kept_for_that_place_and_blob_only() {
        let cache = RecordCache::new(1 << 20);
        cache.insert((1, 64, 100), 7, &record(0xAB, 100));
        let mut out = vec![0u8; 100];
        assert_eq!(Lookup::Hit, cache.lookup((1, 64, 100), 7, &mut out));
        assert_eq!(out, record(0xAB, 100));
        // Another place, another length: misses.
        assert_ne!(Lookup::Hit, cache.lookup((1, 164, 100), 7, &mut out));
        assert_ne!(Lookup::Hit, cache.lookup((2, 64, 100), 7, &mut out));
        let mut short = vec![0u8; 50];
        assert_ne!(Lookup::Hit, cache.lookup((1, 64, 50), 7, &mut short));
        assert_eq!(Lookup::Hit, cache.lookup((1, 64, 100), 7, &mut out));
        // Another blob with the same id (retired, then a new one): a miss, and the retired
        // blob's record is dropped.
        assert_ne!(Lookup::Hit, cache.lookup((1, 64, 100), 8, &mut out));
        assert_ne!(Lookup::Hit, cache.lookup((1, 64, 100), 7, &mut out));
        let f = cache.figures();
        assert_eq!((f.hits, f.misses, f.entries), (2, 5, 0));
    }

    #[test]
    fn the_cache_stays_within_its_budget_and_keeps_what_is_read() {
        let cache = RecordCache::new(64 << 10);
        let mut out = vec![0u8; 200];
        // A hot record read between every insertion survives thousands of cold ones.
        cache.insert((1, 0, 200), 1, &record(1, 200));
        for i in 1..5000u64 {
            cache.insert((1, i * 256, 200), 1, &record(2, 200));
            assert_eq!(
                Lookup::Hit,
                cache.lookup((1, 0, 200), 1, &mut out),
                "evicted at {i}"
            );
            let f = cache.figures();
            assert!(f.bytes <= f.capacity, "{f:?}");
        }
        assert_eq!(out, record(1, 200));
        let f = cache.figures();
        assert!(f.entries > 100 && f.entries < 5000, "{f:?}");
    }

    #[test]
    fn large_records_and_a_cache_of_no_bytes_keep_nothing() {
        let cache = RecordCache::new(1 << 20);
        cache.insert((1, 0, 5000), 1, &record(1, MAX_CACHED_RECORD + 1));
        assert_eq!(cache.figures().entries, 0);
        let off = RecordCache::new(0);
        off.insert((1, 0, 100), 1, &record(1, 100));
        assert_eq!(off.figures().entries, 0);
        assert!(!off.takes(1));
    }

    /// Reads as the log makes them: look up, and keep what a miss read.
    fn read(cache: &RecordCache, place: Place, out: &mut [u8]) -> Lookup {
        let found = cache.lookup(place, 1, out);
        if found == Lookup::Miss {
            cache.insert(place, 1, &record(place.1 as u8, out.len()));
        }
        found
    }

    #[test]
    fn shards_pass_reads_spread_over_too_many_records_and_serve_a_hot_set_again() {
        let cache = RecordCache::new(1 << 20);
        let mut out = vec![0u8; 100];
        let mut passed = 0;
        for i in 0..100_000u64 {
            passed += u32::from(read(&cache, (1, i * 128, 100), &mut out) == Lookup::Passed);
        }
        // Every shard passes after its first window; from then on one read in SAMPLE asks.
        assert!(passed > 80_000, "{passed}");
        assert_eq!(cache.figures().passing_shards, SHARDS as u64);
        // A hot set moves in through the sampled reads and the shards serve it again.
        // (A passing shard weighs a window after WINDOW sampled lookups: 16 shards, one
        // read in SAMPLE sampled, so some thousands of rounds at most.)
        let mut hot_hits = 0;
        for _ in 0..5000 {
            hot_hits = (0..256u64)
                .filter(|i| read(&cache, (2, i * 128, 100), &mut out) == Lookup::Hit)
                .count();
            if cache.figures().passing_shards == 0 && hot_hits == 256 {
                break;
            }
        }
        let f = cache.figures();
        assert_eq!(f.passing_shards, 0, "{f:?}");
        assert_eq!(hot_hits, 256, "{f:?}");
    }

    #[test]
    fn a_set_that_fits_is_kept_from_its_first_read() {
        // Room for every record: 10,000 × (100 + overhead) is under 4 MiB.
        let cache = RecordCache::new(4 << 20);
        let mut out = vec![0u8; 100];
        let places = |blob| (0..10_000u64).map(move |i| (blob, i * 128, 100));
        let first: Vec<Lookup> = places(1).map(|p| read(&cache, p, &mut out)).collect();
        assert!(
            first.iter().all(|l| *l == Lookup::Miss),
            "nothing yet, nothing passed"
        );
        let f = cache.figures();
        assert_eq!((f.passing_shards, f.entries), (0, 10_000), "{f:?}");
        let hits = places(1)
            .filter(|p| read(&cache, *p, &mut out) == Lookup::Hit)
            .count();
        assert_eq!(hits, 10_000, "every record's second read is a hit");
    }

    /// The bytes a place of a blob holds in these tests: a function of both.
    fn bytes_of(place: Place, serial: u64) -> Vec<u8> {
        let seed = place.1.wrapping_mul(31) ^ serial ^ u64::from(place.0);
        (0..place.2)
            .map(|i| (seed >> (i % 8)) as u8 ^ i as u8)
            .collect()
    }

    #[test]
    fn threads_reading_keeping_and_forgetting_at_once_are_served_only_what_was_kept() {
        let cache = RecordCache::new(1 << 20);
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let cache = &cache;
                s.spawn(move || {
                    let mut seed = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(t + 1);
                    for _ in 0..20_000 {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        let blob = (seed % 4) as u32;
                        // A blob id's serial changes as if it were retired and given again.
                        // (now and then: one read in 32).
                        let serial = u64::from((seed >> 8).is_multiple_of(32));
                        // 800 places (a record's length goes with its place), which fit:
                        // most reads hit, so hits are checked as often as misses.
                        let offset = (seed >> 16) % 100;
                        let place = (blob, offset * 512, 40 + offset as u32 * 4);
                        let mut out = vec![0u8; place.2 as usize];
                        match cache.lookup(place, serial, &mut out) {
                            Lookup::Hit => assert_eq!(out, bytes_of(place, serial), "{place:?}"),
                            Lookup::Miss => cache.insert(place, serial, &bytes_of(place, serial)),
                            Lookup::Passed => {}
                        }
                        if seed.is_multiple_of(997) {
                            cache.forget_blob(blob);
                        }
                    }
                });
            }
        });
        let f = cache.figures();
        assert!(f.hits > f.misses && f.bytes <= f.capacity, "{f:?}");
    }

    #[test]
    fn forgetting_a_blob_frees_its_records_and_keeps_the_others() {
        let cache = RecordCache::new(1 << 20);
        for i in 0..100u64 {
            cache.insert((1, i * 128, 100), 1, &record(1, 100));
            cache.insert((2, i * 128, 100), 2, &record(2, 100));
        }
        cache.forget_blob(1);
        let f = cache.figures();
        assert_eq!(f.entries, 100);
        assert_eq!(f.bytes, 100 * entry_size(100) as u64);
        let mut out = vec![0u8; 100];
        assert_eq!(Lookup::Hit, cache.lookup((2, 0, 100), 2, &mut out));
        assert_ne!(Lookup::Hit, cache.lookup((1, 0, 100), 1, &mut out));
        // The clock no longer names the forgotten places: filling up evicts the live ones.
        for i in 100..2000u64 {
            cache.insert((3, i * 128, 100), 3, &record(3, 100));
        }
        assert!(cache.figures().bytes <= cache.figures().capacity);
    }
}
