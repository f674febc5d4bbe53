//! The key index's table: open addressing with linear probing and Robin Hood placement
//! over slots that carry their own tags. A probe reads the slots from the key's home on,
//! which usually share its cache line: one cache miss per get on a table of tens of
//! megabytes, where hashbrown's layout (a control byte per slot, kept apart from the slots)
//! missed twice — on the control group, then on the slot (perf: 14–19 % of a point get).
//!
//! Robin Hood placement keeps every slot within the probe run of its home: a probe stops at
//! a free slot or at one nearer its own home than the probe is to the key's, so a key that
//! is not there costs about as much as one that is. Removal shifts the slots after it back
//! (no tombstones). The table doubles before it is 7/8 full; an empty table holds no memory.

use allocator_api2::boxed::Box;

use crate::huge_pages::HugePages;

/// A table slot.
///
/// # Safety
/// The all-zero bit pattern must be a valid value, and exactly the free slot
/// ([`is_free`](TableSlot::is_free)): tables are allocated zeroed.
#[allow(unsafe_code)]
pub unsafe trait TableSlot: Copy {
    /// The free slot (all bytes zero).
    const FREE: Self;
    fn is_free(&self) -> bool;
    /// The hash the slot is placed by (its home is taken from the high bits).
    fn hash(&self) -> u64;
}

/// The table is resized before more than `MAX_LOAD_NUM / MAX_LOAD_DEN` of it is full.
const MAX_LOAD_NUM: usize = 7;
const MAX_LOAD_DEN: usize = 8;
/// The smallest table that holds anything.
const MIN_CAPACITY: usize = 8;

/// Slots for `n` entries: a power of two, at most 7/8 full (none for none).
fn capacity_for(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let need = n.saturating_mul(MAX_LOAD_DEN).div_ceil(MAX_LOAD_NUM);
    need.max(MIN_CAPACITY).next_power_of_two()
}

fn zeroed<T: TableSlot>(capacity: usize, alloc: HugePages) -> Box<[T], HugePages> {
    let slots = Box::<[T], HugePages>::new_zeroed_slice_in(capacity, alloc);
    // SAFETY: `TableSlot`'s contract: all-zero bytes are a valid (free) slot.
    #[allow(unsafe_code)]
    unsafe {
        slots.assume_init()
    }
}

/// Open addressing, Robin Hood, linear probing (see the module's docs).
pub struct SlotTable<T: TableSlot> {
    slots: Box<[T], HugePages>,
    len: usize,
    alloc: HugePages,
}

impl<T: TableSlot> SlotTable<T> {
    /// A table for `n` entries before it grows (no memory for none).
    pub fn with_capacity_in(n: usize, alloc: HugePages) -> Self {
        SlotTable {
            slots: zeroed(capacity_for(n), alloc),
            len: 0,
            alloc,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of slots held.
    pub fn allocation_size(&self) -> usize {
        std::mem::size_of_val(&*self.slots)
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// Where a slot of `hash` belongs (the table is not empty).
    fn home(&self, hash: u64) -> usize {
        let bits = self.slots.len().trailing_zeros();
        match bits {
            0 => 0,
            _ => (hash >> (64 - bits)) as usize,
        }
    }

    /// Asks the CPU to start loading the home slot of `hash` into its cache, so that a
    /// probe made a little later does not wait for memory (a hint: nothing is read).
    pub fn prefetch(&self, hash: u64) {
        if self.slots.is_empty() {
            return;
        }
        let at: *const T = &self.slots[self.home(hash)];
        prefetch_line(at.cast());
    }

    /// How far `slot`, held at `at`, is from its home.
    fn distance(&self, at: usize, slot: &T) -> usize {
        at.wrapping_sub(self.home(slot.hash())) & self.mask()
    }

    /// The places of the held slots in the probe run of `hash`: every slot placed by
    /// `hash` is among them (with others, which the caller tells apart).
    fn probe(&self, hash: u64) -> Probe<'_, T> {
        Probe {
            table: self,
            at: if self.slots.is_empty() {
                0
            } else {
                self.home(hash)
            },
            distance: 0,
        }
    }

    /// Held slots that may have been placed by `hash` (the caller filters them).
    pub fn iter_hash(&self, hash: u64) -> impl Iterator<Item = &T> + '_ {
        self.probe(hash).map(move |at| &self.slots[at])
    }

    /// The first slot of `hash`'s run that `hit` accepts.
    pub fn find_mut(&mut self, hash: u64, hit: impl FnMut(&T) -> bool) -> Option<&mut T> {
        let at = self.find_at(hash, hit)?;
        Some(&mut self.slots[at])
    }

    fn find_at(&self, hash: u64, mut hit: impl FnMut(&T) -> bool) -> Option<usize> {
        self.probe(hash).find(|&at| hit(&self.slots[at]))
    }

    /// Removes and returns the first slot of `hash`'s run that `hit` accepts.
    pub fn remove_where(&mut self, hash: u64, hit: impl FnMut(&T) -> bool) -> Option<T> {
        let at = self.find_at(hash, hit)?;
        Some(self.remove_at(at))
    }

    /// Adds `slot` (not free), growing the table first if it would be over 7/8 full.
    pub fn insert(&mut self, slot: T) {
        debug_assert!(!slot.is_free());
        self.reserve(1);
        self.place(slot);
        self.len += 1;
    }

    /// Makes room for `n` more slots without growing.
    pub fn reserve(&mut self, n: usize) {
        let want = self.len.saturating_add(n);
        if want.saturating_mul(MAX_LOAD_DEN) > self.slots.len().saturating_mul(MAX_LOAD_NUM) {
            self.resize(capacity_for(want).max(self.slots.len() * 2));
        }
    }

    /// Every held slot moved into a table of `capacity` slots.
    fn resize(&mut self, capacity: usize) {
        let old = std::mem::replace(&mut self.slots, zeroed(capacity, self.alloc));
        for slot in old.iter().filter(|s| !s.is_free()) {
            self.place(*slot);
        }
    }

    /// Robin Hood placement: a slot farther from its home than the one it meets takes that
    /// one's place, and the displaced one goes on. There is room (load below 1).
    fn place(&mut self, mut carry: T) {
        let mask = self.mask();
        let mut at = self.home(carry.hash());
        let mut distance = 0;
        loop {
            let here = self.slots[at];
            if here.is_free() {
                self.slots[at] = carry;
                return;
            }
            let theirs = self.distance(at, &here);
            if theirs < distance {
                self.slots[at] = carry;
                carry = here;
                distance = theirs;
            }
            at = (at + 1) & mask;
            distance += 1;
        }
    }

    /// Empties the slot at `at`, shifting the run after it back by one until a free slot or
    /// one at its home.
    fn remove_at(&mut self, mut at: usize) -> T {
        let mask = self.mask();
        let removed = self.slots[at];
        loop {
            let next = (at + 1) & mask;
            let moved = self.slots[next];
            if moved.is_free() || self.distance(next, &moved) == 0 {
                self.slots[at] = T::FREE;
                break;
            }
            self.slots[at] = moved;
            at = next;
        }
        self.len -= 1;
        removed
    }

    /// Keeps only the slots `keep` accepts (it may be asked twice about one slot that a
    /// removal moved back across the start; it must answer the same).
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let capacity = self.slots.len();
        if self.len == 0 {
            return;
        }
        // Start where no run crosses: a free slot or one at its home. Removals shift slots
        // back, so a slot not yet visited only ever moves onto the place being visited.
        let start = (0..capacity)
            .find(|&at| {
                let s = &self.slots[at];
                s.is_free() || self.distance(at, s) == 0
            })
            .unwrap_or(0);
        let (mask, mut at, mut visited) = (self.mask(), start, 0);
        while visited < capacity {
            let slot = self.slots[at];
            if !slot.is_free() && !keep(&slot) {
                self.remove_at(at);
                continue;
            }
            at = (at + 1) & mask;
            visited += 1;
        }
    }

    /// Every held slot.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.slots.iter().filter(|s| !s.is_free())
    }
}

/// The places of a probe run (see [`SlotTable::probe`]).
struct Probe<'t, T: TableSlot> {
    table: &'t SlotTable<T>,
    at: usize,
    distance: usize,
}

impl<T: TableSlot> Iterator for Probe<'_, T> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let t = self.table;
        if self.distance >= t.slots.len() {
            return None;
        }
        let here = &t.slots[self.at];
        // A free slot, or one nearer its home than this probe is to the key's: no slot of
        // this hash lies further on (Robin Hood placement).
        if here.is_free() || t.distance(self.at, here) < self.distance {
            return None;
        }
        let found = self.at;
        self.at = (self.at + 1) & t.mask();
        self.distance += 1;
        Some(found)
    }
}

#[cfg(test)]
mod tests;

/// A hint to load the cache line at `p` (no effect where the CPU has no such hint).
#[inline]
pub(crate) fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults and changes no memory; `p` points
    // into a live slot or locator bucket (tested by `prefetched_probes_find_what_probes_find`
    // and the locator's tests, which build every table through prefetching inserts).
    #[allow(unsafe_code)]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
