//! One shard's storage: the records' bytes in a ring (an arena written front to back), and a
//! table of 8-byte slots naming where each record lies in it.
//!
//! Why not a map of boxed records (as before 2026-12-07): a hit read the map's control byte,
//! its bucket and then the box — three cache misses — and a miss paid an allocation, a
//! rehash now and then, and a free at eviction; filling a 64 MiB cache while reading 1M
//! records once each cost point gets 10–14 % of their rate. Here a hit reads a slot and the
//! entry it names (header and bytes side by side); an insert writes at the ring's head, in
//! memory just written, and an eviction reads the ring's tail in order.
//!
//! Slots: `0` is empty; otherwise the place's 32-bit tag in the high half and the entry's
//! offset in the ring divided by 8, plus one, in the low half. The tag also chooses the
//! slot a place starts probing at (linear probing; removal shifts later slots back, so
//! there are no tombstones). At most three slots in four are ever used.
//!
//! Entries: a [`HEADER`]-byte header (place, serial, state) and the record's bytes, padded
//! to 8. Eviction is CLOCK on the ring: the entry at the tail is dropped unless it was read
//! since the tail last passed it, in which case it moves to the head (a `memmove` within
//! the ring; the free space between head and tail stays the same) without its mark.

/// Where a record lies: blob id, offset, length.
pub type Place = (u32, u64, u32);

/// Bytes before each record in the ring: blob (4), length (4), offset (8), serial (8),
/// state (1), padding.
pub const HEADER: usize = 32;

/// The most one arena holds (16 GiB; 256 GiB for the 16 shards).
pub const MAX_BUDGET: usize = 16 << 30;

/// Slots of a new table.
const FIRST_SLOTS: usize = 1024;

/// An entry's state byte: dropped (its bytes wait for the tail), live, live and read since
/// the tail last passed.
const DEAD: u8 = 0;
const LIVE: u8 = 1;
const MARKED: u8 = 2;

/// Bytes an entry of a `len`-byte record takes in the ring.
pub fn entry_size(len: usize) -> usize {
    HEADER + len.div_ceil(8) * 8
}

/// The 64-bit hash of a place (a multiply per field, the FxHash scheme: places are where
/// the engine appended records, not chosen by whoever sends requests).
fn hash(place: Place) -> u64 {
    let mut h = 0u64;
    for n in [u64::from(place.0), place.1, u64::from(place.2)] {
        h = (h.rotate_left(5) ^ n).wrapping_mul(0x51_7C_C1_B7_27_22_0A_95);
    }
    h
}

fn tag_of(place: Place) -> u32 {
    (hash(place) >> 32) as u32
}

fn slot_for(tag: u32, at: usize) -> u64 {
    (u64::from(tag) << 32) | (at / 8 + 1) as u64
}

fn slot_at(slot: u64) -> usize {
    ((slot as u32) as usize - 1) * 8
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Copied out.
    Hit,
    /// Nothing for this place (or a retired blob's record, now dropped).
    Absent,
}

pub struct Arena {
    /// Grows (doubling) as entries come, up to `max_slots`: a table sized for the records
    /// kept is more often in the CPU's caches than one sized for the budget (perf of
    /// 100-byte GETs still shows about half a lookup's time on the slot's load).
    slots: Box<[u64]>,
    max_slots: usize,
    ring: Box<[u8]>,
    /// Where the next entry is written.
    head: usize,
    /// The oldest entry.
    tail: usize,
    /// Whether the head has gone round and now writes before the tail; the tail's lap then
    /// ends at `end`.
    wrapped: bool,
    end: usize,
    entries: usize,
    max_entries: usize,
    /// Ring bytes of live entries.
    live: usize,
}

impl Arena {
    /// An arena of at most `budget` bytes, table included (at most [`MAX_BUDGET`]: ring
    /// offsets are kept in 32 bits, in units of 8 bytes).
    pub fn new(budget: usize) -> Self {
        let budget = budget.min(MAX_BUDGET);
        let max_slots = (budget / 72).max(4).next_power_of_two();
        let ring = budget.saturating_sub(max_slots * 8);
        let slots = max_slots.min(FIRST_SLOTS);
        Arena {
            slots: vec![0u64; slots].into_boxed_slice(),
            max_slots,
            ring: vec![0u8; ring].into_boxed_slice(),
            head: 0,
            tail: 0,
            wrapped: false,
            end: ring,
            entries: 0,
            max_entries: slots / 4 * 3,
            live: 0,
        }
    }

    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Ring bytes of live entries (headers and padding included).
    pub fn live_bytes(&self) -> usize {
        self.live
    }

    /// Whether a record of `len` bytes can be kept at all.
    pub fn takes(&self, len: usize) -> bool {
        entry_size(len) <= self.ring.len() && self.max_entries > 0
    }

    fn u32_at(&self, at: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.ring[at..at + 4]);
        u32::from_ne_bytes(b)
    }

    fn u64_at(&self, at: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.ring[at..at + 8]);
        u64::from_ne_bytes(b)
    }

    fn place_at(&self, at: usize) -> Place {
        (self.u32_at(at), self.u64_at(at + 8), self.u32_at(at + 4))
    }

    fn state_at(&self, at: usize) -> u8 {
        self.ring[at + 24]
    }

    fn set_state(&mut self, at: usize, state: u8) {
        self.ring[at + 24] = state;
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The first slot from `tag`'s home on that is empty (`None`) or `wanted`.
    fn probe(&self, tag: u32, wanted: impl Fn(u64) -> bool) -> Option<usize> {
        let mut i = tag as usize & self.mask();
        loop {
            match self.slots[i] {
                0 => return None,
                s if wanted(s) => return Some(i),
                _ => i = (i + 1) & self.mask(),
            }
        }
    }

    /// The slot naming the live entry of `place`.
    fn find(&self, place: Place) -> Option<usize> {
        let tag = tag_of(place);
        self.probe(tag, |s| {
            (s >> 32) as u32 == tag && self.place_at(slot_at(s)) == place
        })
    }

    /// The slot naming the entry at ring offset `at`, whose place is `place`.
    fn slot_of(&self, place: Place, at: usize) -> Option<usize> {
        let want = slot_for(tag_of(place), at);
        self.probe(tag_of(place), |s| s == want)
    }

    /// Empties slot `i`, shifting back the slots after it that probed past it.
    fn clear_slot(&mut self, mut i: usize) {
        let mask = self.mask();
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let s = self.slots[j];
            if s == 0 {
                break;
            }
            let home = (s >> 32) as usize & mask;
            // Slot j may move to i if its home is not in (i, j] (cyclically).
            let stays = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !stays {
                self.slots[i] = s;
                i = j;
            }
        }
        self.slots[i] = 0;
    }

    /// Puts `slot` in the first empty slot from its tag's home on.
    fn put(&mut self, slot: u64) {
        let mut i = (slot >> 32) as usize & self.mask();
        while self.slots[i] != 0 {
            i = (i + 1) & self.mask();
        }
        self.slots[i] = slot;
    }

    /// Doubles the table, if it may (the slots name their tags: no entry is read).
    fn grow(&mut self) -> bool {
        if self.slots.len() >= self.max_slots {
            return false;
        }
        let bigger = vec![0u64; self.slots.len() * 2].into_boxed_slice();
        let old = std::mem::replace(&mut self.slots, bigger);
        self.max_entries = self.slots.len() / 4 * 3;
        for &s in old.iter().filter(|&&s| s != 0) {
            self.put(s);
        }
        true
    }

    /// Drops the live entry named by slot `i` (its bytes wait for the tail).
    fn drop_entry(&mut self, i: usize) {
        let at = slot_at(self.slots[i]);
        self.set_state(at, DEAD);
        self.drop_entry_at(i, at);
    }

    /// Copies the record at `place` of the blob with `serial` into `out`. A record of the
    /// same place from another blob (retired, its id given again) is dropped.
    pub fn copy_into(&mut self, place: Place, serial: u64, out: &mut [u8]) -> Found {
        let Some(i) = self.find(place) else {
            return Found::Absent;
        };
        let at = slot_at(self.slots[i]);
        if self.u64_at(at + 16) != serial || place.2 as usize != out.len() {
            self.drop_entry(i);
            return Found::Absent;
        }
        out.copy_from_slice(&self.ring[at + HEADER..at + HEADER + out.len()]);
        self.set_state(at, MARKED);
        Found::Hit
    }

    /// Keeps `bytes` as the record at `place` of the blob with `serial`, replacing one kept
    /// there. Returns whether older entries had to go to make room.
    pub fn insert(&mut self, place: Place, serial: u64, bytes: &[u8]) -> bool {
        let size = entry_size(bytes.len());
        if !self.takes(bytes.len()) {
            return false;
        }
        if let Some(i) = self.find(place) {
            self.drop_entry(i);
        }
        let evicted = self.make_room(size);
        let at = self.head;
        let h = &mut self.ring[at..at + HEADER];
        h[0..4].copy_from_slice(&place.0.to_ne_bytes());
        h[4..8].copy_from_slice(&place.2.to_ne_bytes());
        h[8..16].copy_from_slice(&place.1.to_ne_bytes());
        h[16..24].copy_from_slice(&serial.to_ne_bytes());
        h[24] = LIVE;
        self.ring[at + HEADER..at + HEADER + bytes.len()].copy_from_slice(bytes);
        self.put(slot_for(tag_of(place), at));
        self.head += size;
        self.entries += 1;
        self.live += size;
        evicted
    }

    /// Free bytes right at the head.
    fn room(&self) -> usize {
        if self.wrapped {
            self.tail - self.head
        } else {
            self.ring.len() - self.head
        }
    }

    /// Frees `size` bytes at the head and a slot; returns whether entries were evicted.
    fn make_room(&mut self, size: usize) -> bool {
        let mut evicted = false;
        loop {
            if !self.wrapped {
                if self.head == self.tail {
                    // Empty: start again at the front.
                    (self.head, self.tail) = (0, 0);
                }
                if self.room() < size {
                    // Too little left at the back: the head goes round.
                    (self.end, self.head, self.wrapped) = (self.head, 0, true);
                }
            }
            if self.room() >= size && self.entries < self.max_entries {
                return evicted;
            }
            if self.entries >= self.max_entries && self.grow() {
                continue;
            }
            evicted |= self.advance_tail();
        }
    }

    /// Moves the tail past one entry: drops it, or moves a marked one to the head. Returns
    /// whether an entry was dropped.
    fn advance_tail(&mut self) -> bool {
        if self.wrapped && self.tail == self.end {
            (self.tail, self.wrapped) = (0, false);
            return false;
        }
        let at = self.tail;
        let place = self.place_at(at);
        let size = entry_size(place.2 as usize);
        let state = self.state_at(at);
        self.tail += size;
        if state == DEAD {
            return false;
        }
        let Some(i) = self.slot_of(place, at) else {
            return false;
        };
        if state == MARKED && self.room() >= size {
            // Second chance: to the head, unmarked (the regions may overlap: memmove).
            let to = self.head;
            self.ring.copy_within(at..at + size, to);
            self.set_state(to, LIVE);
            self.slots[i] = slot_for(tag_of(place), to);
            self.head += size;
            return false;
        }
        self.drop_entry_at(i, at);
        true
    }

    /// Frees slot `i` and the count of the entry at `at` it names (the tail has passed it,
    /// or [`drop_entry`](Self::drop_entry) marked it dropped).
    fn drop_entry_at(&mut self, i: usize, at: usize) {
        let len = self.u32_at(at + 4) as usize;
        self.clear_slot(i);
        self.entries -= 1;
        self.live -= entry_size(len);
    }

    /// Drops every live entry of blob `id` (one pass over the ring, in order).
    pub fn forget_blob(&mut self, id: u32) {
        let mut at = self.tail;
        let mut wrapped = self.wrapped;
        loop {
            if wrapped && at == self.end {
                (at, wrapped) = (0, false);
            }
            if !wrapped && at == self.head {
                return;
            }
            let place = self.place_at(at);
            if place.0 == id && self.state_at(at) != DEAD {
                if let Some(i) = self.slot_of(place, at) {
                    self.drop_entry(i);
                }
            }
            at += entry_size(place.2 as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn record(place: Place, serial: u64) -> Vec<u8> {
        let seed = (place.1 as u8) ^ (serial as u8) ^ (place.0 as u8);
        (0..place.2).map(|i| seed.wrapping_add(i as u8)).collect()
    }

    /// Every slot names a live entry of its place, every live entry has one slot, and the
    /// counts agree.
    fn check_consistent(a: &Arena) {
        let mut named = 0;
        let mut live = 0;
        for &s in a.slots.iter().filter(|&&s| s != 0) {
            let at = slot_at(s);
            let place = a.place_at(at);
            assert_ne!(a.state_at(at), DEAD, "slot names a dropped entry");
            assert_eq!(a.find(place).map(|i| a.slots[i]), Some(s), "{place:?}");
            named += 1;
            live += entry_size(place.2 as usize);
        }
        assert_eq!(named, a.entries());
        assert_eq!(live, a.live_bytes());
        assert!(a.entries() <= a.max_entries);
        assert!(a.live_bytes() <= a.ring.len());
    }

    #[test]
    fn records_kept_across_many_turns_of_the_ring_read_back_whole() -> Result<(), String> {
        let mut a = Arena::new(16 << 10);
        let mut out = vec![0u8; 300];
        for i in 0..2000u64 {
            let len = 40 + (i as u32 * 37) % 260;
            let place = (1, i * 512, len);
            a.insert(place, 9, &record(place, 9));
            let out = &mut out[..len as usize];
            if a.copy_into(place, 9, out) != Found::Hit || *out != record(place, 9)[..] {
                return Err(format!("record {i} not read back"));
            }
            check_consistent(&a);
        }
        Ok(())
    }

    #[test]
    fn a_record_read_between_inserts_survives_every_turn_of_the_ring() {
        let mut a = Arena::new(8 << 10);
        let hot = (1, 0, 200);
        a.insert(hot, 1, &record(hot, 1));
        let mut out = vec![0u8; 200];
        for i in 1..3000u64 {
            let cold = (2, i * 256, 100 + (i % 7) as u32 * 16);
            a.insert(cold, 1, &record(cold, 1));
            assert_eq!(Found::Hit, a.copy_into(hot, 1, &mut out), "evicted at {i}");
        }
        assert_eq!(out, record(hot, 1));
        check_consistent(&a);
    }

    #[test]
    fn another_blobs_record_at_the_same_place_is_dropped_not_served() {
        let mut a = Arena::new(64 << 10);
        let place = (3, 128, 100);
        a.insert(place, 1, &record(place, 1));
        let mut out = vec![0u8; 100];
        assert_eq!(Found::Absent, a.copy_into(place, 2, &mut out));
        assert_eq!(a.entries(), 0);
        a.insert(place, 2, &record(place, 2));
        assert_eq!(Found::Hit, a.copy_into(place, 2, &mut out));
        assert_eq!(out, record(place, 2));
        check_consistent(&a);
    }

    #[test]
    fn forgetting_a_blob_in_a_ring_gone_round_keeps_the_others() {
        let mut a = Arena::new(8 << 10);
        for i in 0..500u64 {
            let place = ((i % 3) as u32, i * 256, 120);
            a.insert(place, 1, &record(place, 1));
        }
        assert!(a.wrapped || a.tail > 0, "the ring went round");
        let before = a.entries();
        a.forget_blob(1);
        check_consistent(&a);
        assert!(a.entries() < before && a.entries() > 0);
        let mut out = vec![0u8; 120];
        for &s in a.slots.iter().filter(|&&s| s != 0) {
            assert_ne!(a.place_at(slot_at(s)).0, 1);
        }
        let kept = (0..500u64)
            .map(|i| ((i % 3) as u32, i * 256, 120))
            .filter(|p| a.copy_into(*p, 1, &mut out) == Found::Hit)
            .count();
        assert_eq!(kept, a.entries());
    }

    #[test]
    fn the_table_grows_with_the_records_kept_and_loses_none() {
        let mut a = Arena::new(4 << 20);
        assert_eq!(a.slots.len(), FIRST_SLOTS);
        let places: Vec<Place> = (0..5000u64).map(|i| (7, i * 192, 100)).collect();
        for &p in &places {
            assert!(
                !a.insert(p, 1, &record(p, 1)),
                "room for all: nothing evicted"
            );
        }
        assert_eq!(a.slots.len(), 8192);
        check_consistent(&a);
        let mut out = vec![0u8; 100];
        for &p in &places {
            assert_eq!(Found::Hit, a.copy_into(p, 1, &mut out));
            assert_eq!(out, record(p, 1));
        }
    }

    #[test]
    fn an_arena_too_small_for_a_record_keeps_nothing() {
        let mut a = Arena::new(200);
        assert!(!a.takes(4096));
        assert!(!a.insert((1, 0, 4096), 1, &[0u8; 4096]));
        assert_eq!(a.entries(), 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, u16),
        Read(u8),
        Forget(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (any::<u8>(), 1u16..1500).prop_map(|(k, len)| Op::Insert(k, len)),
            4 => any::<u8>().prop_map(Op::Read),
            1 => (0u8..4).prop_map(Op::Forget),
        ]
    }

    fn place_of(k: u8, len: u16) -> Place {
        (u32::from(k % 4), u64::from(k) * 4096, u32::from(len))
    }

    proptest! {
        /// Against a model: whatever is served is exactly what was last kept for that place
        /// and blob; the table and the counts stay consistent.
        #[test]
        fn what_is_served_is_what_was_kept(ops in proptest::collection::vec(op(), 1..400)) {
            let mut a = Arena::new(12 << 10);
            let mut model: HashMap<u8, Place> = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, len) => {
                        let place = place_of(k, len);
                        if let Some(old) = model.insert(k, place) {
                            if old != place {
                                // Another length at the same key: the old entry is another
                                // place; read it no more.
                                a.forget_place_for_test(old);
                            }
                        }
                        a.insert(place, 1, &record(place, 1));
                    }
                    Op::Read(k) => {
                        if let Some(&place) = model.get(&k) {
                            let mut out = vec![0u8; place.2 as usize];
                            if a.copy_into(place, 1, &mut out) == Found::Hit {
                                prop_assert_eq!(out, record(place, 1));
                            }
                        }
                    }
                    Op::Forget(blob) => {
                        a.forget_blob(u32::from(blob));
                        model.retain(|_, p| p.0 != u32::from(blob));
                    }
                }
                check_consistent(&a);
            }
        }
    }

    impl Arena {
        fn forget_place_for_test(&mut self, place: Place) {
            if let Some(i) = self.find(place) {
                self.drop_entry(i);
            }
        }
    }
}
