//! Which sealed blobs may hold a key: one table over every sealed key whose slots each hold
//! an 8-bit fingerprint of a key and the low 16 bits of the id of the blob it is in (a
//! partial-key cuckoo table, buckets of four slots). A lookup reads the key's two buckets
//! and gets the blobs whose slots match its fingerprint — the one that holds it, and about
//! 3 % of the time one that does not — however many blobs there are. Per-blob filters made a
//! hit probe the filter of every newer blob and read a page for ~1 % of them, so hits slowed
//! with the number of blobs (ARCHITECTURE.md, "Which blob holds a key").
//!
//! The table is exact in one direction: every (key, blob) inserted and not retired is found.
//! A slot names a blob by its id's low 16 bits (its *residue*): every live blob with that
//! residue is a candidate, so more than 65,536 live blobs cost an extra page read per shared
//! residue, never a missed key. A blob's slots are not cleared when it leaves the set (that
//! would need its keys, or a pass over the table, under the set's write lock): a slot whose
//! residue has no live blob is dead, lookups skip it and inserts take it as free. A blob
//! whose keys would fill the last table past [`MAX_FILL`] gets a new table, sized for its
//! keys or a quarter of the live ones, whichever is more (so tables grow in number with the
//! logarithm of the growth, and a lookup reads two buckets in each); the set asks for a
//! rebuild (one table sized for the live keys) past [`MAX_TABLES`] tables, or when more
//! slots are dead (or name retired blobs) than live.

use std::collections::HashMap;

use smallvec::SmallVec;

use crate::format::bloom::mix64;
use crate::key::Key;

/// Slots per bucket.
const SLOTS: usize = 4;
/// Relocations tried before an entry goes to the stash.
const MAX_KICKS: u32 = 500;
/// Fill (per mille) a table is sized for when built.
const BUILD_FILL: u64 = 920;
/// Fill (per mille) past which new keys go to a new table.
const MAX_FILL: u64 = 950;
/// Tables past which the locator asks to be rebuilt (a lookup reads two buckets of each).
const MAX_TABLES: usize = 6;
/// Slots of the smallest table.
const MIN_SLOTS: u64 = 4096;
/// An empty slot's fingerprint (a key's is never 0).
const EMPTY: u8 = 0;
/// Stash entries past which the table the stash fills is treated as full.
const MAX_STASH: usize = 64;

/// Blob ids that may hold a key, in no order (usually one).
pub type BlobIds = SmallVec<[u32; 8]>;

/// A key's locator hash: the key's four little-endian words mixed in turn (SplitMix64's
/// finaliser) from a fixed seed. In memory only; nothing on disk depends on it.
fn hash_of(key: &Key) -> u64 {
    let mut x = 0x6c6f_6361_746f_7221u64; // "locator!"
    for w in key.0.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        x = mix64(x ^ u64::from_le_bytes(word));
    }
    x
}

/// A key's fingerprint: the hash's low byte, 0 taken as 1 (0 marks an empty slot).
fn fingerprint(h: u64) -> u8 {
    (h as u8).max(1)
}

#[derive(Clone, Copy, Default)]
struct Bucket {
    fps: [u8; SLOTS],
    residues: [u16; SLOTS],
}

/// One cuckoo table.
struct Table {
    buckets: Vec<Bucket>,
    /// Slots holding an entry (live or dead).
    used: u64,
    /// Entries of live blobs in this table (slots and stash).
    live: u64,
    /// Entries of this table that went to the stash: past [`MAX_STASH`] it counts as full.
    stashed: usize,
}

impl Table {
    fn for_entries(entries: u64, fill: u64) -> Table {
        let slots = (entries * 1000).div_ceil(fill).max(MIN_SLOTS);
        let buckets = slots.div_ceil(SLOTS as u64) as usize;
        Table {
            buckets: vec![Bucket::default(); buckets],
            used: 0,
            live: 0,
            stashed: 0,
        }
    }

    fn slots(&self) -> u64 {
        (self.buckets.len() * SLOTS) as u64
    }

    /// Live entries at [`MAX_FILL`] of the slots.
    fn filled(&self) -> bool {
        self.live * 1000 >= self.slots() * MAX_FILL
    }

    /// The key's first bucket: the hash's high half scaled to the bucket count.
    fn home(&self, h: u64) -> usize {
        (((h >> 32) * self.buckets.len() as u64) >> 32) as usize
    }

    /// The other bucket of an entry in bucket `i` with fingerprint `fp`: `(c - i) mod n`
    /// with `c` in `0..n` from the fingerprint alone, so the map is its own inverse.
    #[inline]
    fn other(&self, i: usize, fp: u8) -> usize {
        let n = self.buckets.len() as u64;
        let c = ((u64::from(fp).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) * n) >> 32;
        let j = c + n - i as u64;
        (if j >= n { j - n } else { j }) as usize
    }

    /// Starts loading the two buckets of the key with hash `h`.
    fn prefetch(&self, h: u64) {
        let (_, i, j) = self.pair(h);
        for b in [i, j] {
            if let Some(bucket) = self.buckets.get(b) {
                crate::index::prefetch_line((bucket as *const Bucket).cast());
            }
        }
    }

    fn pair(&self, h: u64) -> (u8, usize, usize) {
        let fp = fingerprint(h);
        let i = self.home(h);
        (fp, i, self.other(i, fp))
    }
}

/// An entry that found no slot: its table, the lower of its two buckets there, its
/// fingerprint and its blob's residue.
#[derive(Clone, Copy)]
struct Stashed {
    table: usize,
    low: usize,
    fp: u8,
    residue: u16,
}

fn residue(id: u32) -> u16 {
    id as u16
}

/// The locator over every sealed blob's keys.
pub struct Locator {
    tables: Vec<Table>,
    stash: Vec<Stashed>,
    /// Residue -> the live blobs with it (usually one), grown as residues appear.
    residues: Vec<SmallVec<[u32; 1]>>,
    /// Live blob -> its entries in each table.
    blobs: HashMap<u32, SmallVec<[u64; 2]>>,
    /// Entries of live blobs.
    live: u64,
    /// Slots and stash entries holding an entry, live or not.
    occupied: u64,
    /// State of the relocation walk's choices.
    walk: u64,
    /// Whether a blob was ever retired (else no slot is dead, and inserts look for empty
    /// slots only).
    retired_any: bool,
}

impl Locator {
    /// An empty locator with room for about `entries` entries.
    pub fn for_entries(entries: u64) -> Locator {
        Locator {
            tables: vec![Table::for_entries(entries, BUILD_FILL)],
            stash: Vec::new(),
            residues: Vec::new(),
            blobs: HashMap::new(),
            live: 0,
            occupied: 0,
            walk: 0x2545_f491_4f6c_dd1d,
            retired_any: false,
        }
    }

    /// Whether blob `id` is in the locator.
    pub fn covers(&self, id: u32) -> bool {
        self.blobs.contains_key(&id)
    }

    /// The blobs in the locator.
    pub fn blob_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.blobs.keys().copied()
    }

    /// Blob `id` joins (with no keys yet).
    pub fn add_blob(&mut self, id: u32) {
        if self.blobs.contains_key(&id) {
            return;
        }
        let r = residue(id) as usize;
        if self.residues.len() <= r {
            self.residues.resize(r + 1, SmallVec::new());
        }
        self.residues[r].push(id);
        self.blobs.insert(id, SmallVec::new());
    }

    /// Records that blob `id` holds `key`. Call once per key per blob.
    #[cfg(test)]
    pub fn insert(&mut self, key: &Key, id: u32) {
        self.insert_keys(id, std::iter::once(key));
    }

    /// Records that blob `id` holds each of `keys` (each once per blob). The next key's
    /// buckets are prefetched while one is placed: building at open is bound by the table's
    /// cache misses.
    pub fn insert_keys<'a>(&mut self, id: u32, keys: impl Iterator<Item = &'a Key>) {
        self.add_blob(id);
        let r = residue(id);
        let mut added: SmallVec<[u64; 2]> = SmallVec::new();
        let mut keys = keys.map(hash_of).peekable();
        while let Some(h) = keys.next() {
            if self.last_table_full() {
                self.grow(0);
            }
            let t = self.tables.len() - 1;
            if let Some(next) = keys.peek() {
                self.tables[t].prefetch(*next);
            }
            if added.len() <= t {
                added.resize(t + 1, 0);
            }
            added[t] += 1;
            self.tables[t].live += 1;
            self.live += 1;
            self.occupied += 1;
            self.insert_hash(t, h, r);
        }
        if let Some(counts) = self.blobs.get_mut(&id) {
            if counts.len() < added.len() {
                counts.resize(added.len(), 0);
            }
            for (c, a) in counts.iter_mut().zip(&added) {
                *c += a;
            }
        }
    }

    /// Places an entry in table `t`: in the emptier of its two buckets, else by relocation.
    fn insert_hash(&mut self, t: usize, h: u64, r: u16) {
        let table = &self.tables[t];
        let (fp, i, j) = table.pair(h);
        let empties = |b: usize| table.buckets[b].fps.iter().filter(|&&f| f == EMPTY).count();
        let (first, second) = if empties(j) > empties(i) {
            (j, i)
        } else {
            (i, j)
        };
        if self.place(t, first, fp, r) || self.place(t, second, fp, r) {
            return;
        }
        self.relocate(t, i, j, fp, r);
    }

    /// Makes room for `entries` more entries (a blob about to be inserted): a new table when
    /// the last one would pass [`MAX_FILL`] with them.
    pub fn reserve(&mut self, entries: u64) {
        let Some(last) = self.tables.last() else {
            return self.grow(entries);
        };
        if last.stashed > MAX_STASH || (last.live + entries) * 1000 > last.slots() * MAX_FILL {
            self.grow(entries);
        }
    }

    /// Adds a table for `entries` entries or a quarter of the live ones, whichever is more,
    /// so the number of tables grows with the logarithm of the growth.
    fn grow(&mut self, entries: u64) {
        let room = entries.max(self.live / 4);
        self.tables.push(Table::for_entries(room, BUILD_FILL));
    }

    /// Whether new entries need a new table: the last one's relocations keep failing, or its
    /// live entries fill it to [`MAX_FILL`] (dead slots count as free: inserts take them).
    fn last_table_full(&self) -> bool {
        self.tables
            .last()
            .is_none_or(|last| last.stashed > MAX_STASH || last.filled())
    }

    fn dead(&self, r: u16) -> bool {
        self.residues
            .get(r as usize)
            .is_none_or(|ids| ids.is_empty())
    }

    /// Puts (fp, r) into a free or dead slot of bucket `b` of table `t`.
    fn place(&mut self, t: usize, b: usize, fp: u8, r: u16) -> bool {
        let bucket = self.tables[t].buckets[b];
        let empty = bucket.fps.iter().position(|&f| f == EMPTY);
        let dead = || (0..SLOTS).find(|&s| self.dead(bucket.residues[s]));
        let free = match empty {
            Some(s) => Some(s),
            None if self.retired_any => dead(),
            None => None,
        };
        let Some(s) = free else { return false };
        let table = &mut self.tables[t];
        if bucket.fps[s] == EMPTY {
            table.used += 1;
        } else {
            // A dead entry gives way: it was counted as occupied.
            self.occupied -= 1;
        }
        table.buckets[b].fps[s] = fp;
        table.buckets[b].residues[s] = r;
        true
    }

    /// Cuckoo relocation: puts the entry in hand in a slot of a full bucket, takes the
    /// entry that was there to its other bucket, and so on; what is in hand after
    /// [`MAX_KICKS`] goes to the stash. Every slot met holds a live entry (a bucket with a
    /// free or dead slot would have taken the entry in hand).
    fn relocate(&mut self, t: usize, i: usize, j: usize, fp: u8, r: u16) {
        let (mut fp, mut r) = (fp, r);
        let mut at = if self.next_walk() & 1 == 0 { i } else { j };
        for _ in 0..MAX_KICKS {
            let s = (self.next_walk() % SLOTS as u64) as usize;
            let bucket = &mut self.tables[t].buckets[at];
            let evicted = (bucket.fps[s], bucket.residues[s]);
            bucket.fps[s] = fp;
            bucket.residues[s] = r;
            (fp, r) = evicted;
            at = self.tables[t].other(at, fp);
            if self.place(t, at, fp, r) {
                return;
            }
        }
        let other = self.tables[t].other(at, fp);
        self.tables[t].stashed += 1;
        self.stash.push(Stashed {
            table: t,
            low: at.min(other),
            fp,
            residue: r,
        });
    }

    fn next_walk(&mut self) -> u64 {
        self.walk = self.walk.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.walk)
    }

    /// Blob `id` left the set: its entries stop being found (unless another live blob shares
    /// its residue: they are then that blob's false candidates until a rebuild).
    pub fn retire(&mut self, id: u32) {
        let Some(counts) = self.blobs.remove(&id) else {
            return;
        };
        self.retired_any = true;
        for (t, n) in counts.iter().enumerate() {
            self.tables[t].live -= n;
            self.live -= n;
        }
        let r = residue(id);
        if let Some(ids) = self.residues.get_mut(r as usize) {
            ids.retain(|b| *b != id);
        }
        if self.dead(r) {
            let before = self.stash.len();
            self.stash.retain(|s| s.residue != r);
            self.occupied -= (before - self.stash.len()) as u64;
        }
    }

    /// The ids of blobs that may hold `key` (every live blob that does is among them).
    pub fn candidates(&self, key: &Key) -> BlobIds {
        let h = hash_of(key);
        let mut out = BlobIds::new();
        for (t, table) in self.tables.iter().enumerate() {
            if table.used == 0 {
                continue;
            }
            let (fp, i, j) = table.pair(h);
            for b in [i, j] {
                let bucket = &table.buckets[b];
                for s in 0..SLOTS {
                    if bucket.fps[s] == fp {
                        self.push_blobs(bucket.residues[s], &mut out);
                    }
                }
                if i == j {
                    break;
                }
            }
            if !self.stash.is_empty() {
                let low = i.min(j);
                for s in &self.stash {
                    if s.table == t && s.low == low && s.fp == fp {
                        self.push_blobs(s.residue, &mut out);
                    }
                }
            }
        }
        out
    }

    fn push_blobs(&self, r: u16, out: &mut BlobIds) {
        if let Some(ids) = self.residues.get(r as usize) {
            out.extend_from_slice(ids);
        }
    }

    /// Whether some blob may hold `key`.
    pub fn may_hold(&self, key: &Key) -> bool {
        !self.candidates(key).is_empty()
    }

    /// Whether the locator should be rebuilt: more than [`MAX_TABLES`] tables, more dead or
    /// retired entries than live ones, or a long stash.
    pub fn needs_rebuild(&self) -> bool {
        let stale = self.occupied - self.live;
        self.tables.len() > MAX_TABLES
            || stale > self.live.max(MIN_SLOTS)
            || self.stash.len() > 4 * MAX_STASH
    }

    /// Entries found by lookups (inserted, not retired).
    #[cfg(test)]
    pub fn live(&self) -> u64 {
        self.live
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        let tables: usize = self
            .tables
            .iter()
            .map(|t| t.buckets.capacity() * std::mem::size_of::<Bucket>())
            .sum();
        tables
            + self.stash.capacity() * std::mem::size_of::<Stashed>()
            + self.residues.capacity() * std::mem::size_of::<SmallVec<[u32; 1]>>()
            + self.blobs.capacity() * (4 + std::mem::size_of::<SmallVec<[u64; 2]>>())
    }
}

#[cfg(test)]
#[path = "locator_tests.rs"]
mod tests;
