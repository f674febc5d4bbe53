//! The in-memory key index: a compact hash table from a 64-bit keyed tag of each key to the
//! location of its newest record. Full keys stay on disk; a tag match is confirmed by
//! reading the record's key, so two keys whose tags collide never shadow each other.

use std::hash::{BuildHasher, RandomState};

use crate::huge_pages::HugePages;

mod slots;
pub(crate) use slots::prefetch_line;
use slots::{SlotTable, TableSlot};

use crate::error::Result;
use crate::key::Key;

/// Where a record lives: blob, byte offset, record length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loc {
    pub blob: u32,
    pub offset: u32,
    pub len: u32,
}

/// Set in a slot's blob field when the record is a tombstone (blob ids stay below it).
const TOMBSTONE_BIT: u32 = 1 << 31;
/// Largest blob id the index can hold.
pub const MAX_BLOB_ID: u32 = TOMBSTONE_BIT - 1;
/// The low bits of a tag that hold the column.
const COLUMN_MASK: u64 = 0xFFFF;
/// Set in every tag the table holds, so that no held slot is all zero (the free slot).
/// Two keys whose tags differ only here share a tag: the record read tells them apart, as
/// for any two keys whose tags collide.
const TAG_HELD_BIT: u64 = 1 << 16;

/// `tag` as the table holds it.
fn held(tag: u64) -> u64 {
    tag | TAG_HELD_BIT
}

/// 20 bytes, byte-aligned, so the table wastes no padding.
#[derive(Clone, Copy)]
struct Slot {
    /// The key's tag (low 16 bits zero) with the column in its low 16 bits.
    tag: [u8; 8],
    blob: [u8; 4],
    offset: [u8; 4],
    len: [u8; 4],
}

const _: () = assert!(std::mem::size_of::<Slot>() == 20);

// SAFETY: a slot is plain bytes, so all-zero is a valid value; it is the free slot, since
// every held slot's tag has `TAG_HELD_BIT` set.
#[allow(unsafe_code)]
unsafe impl TableSlot for Slot {
    const FREE: Self = Slot {
        tag: [0; 8],
        blob: [0; 4],
        offset: [0; 4],
        len: [0; 4],
    };
    fn is_free(&self) -> bool {
        self.tag == [0; 8]
    }
    fn hash(&self) -> u64 {
        table_hash(self.key_tag())
    }
}

impl Slot {
    fn new(tag: u64, column: u16, e: Entry) -> Self {
        let flag = if e.tombstone { TOMBSTONE_BIT } else { 0 };
        Slot {
            tag: (held(tag) | u64::from(column)).to_le_bytes(),
            blob: (e.loc.blob | flag).to_le_bytes(),
            offset: e.loc.offset.to_le_bytes(),
            len: e.loc.len.to_le_bytes(),
        }
    }
    fn full_tag(&self) -> u64 {
        u64::from_le_bytes(self.tag)
    }
    fn key_tag(&self) -> u64 {
        self.full_tag() & !COLUMN_MASK
    }
    fn entry(&self) -> Entry {
        let blob = u32::from_le_bytes(self.blob);
        Entry {
            loc: Loc {
                blob: blob & !TOMBSTONE_BIT,
                offset: u32::from_le_bytes(self.offset),
                len: u32::from_le_bytes(self.len),
            },
            column: (self.full_tag() & COLUMN_MASK) as u16,
            tombstone: blob & TOMBSTONE_BIT != 0,
        }
    }
}

/// The table's hash of a key tag: every column of a key lands in the same probe sequence.
fn table_hash(key_tag: u64) -> u64 {
    (held(key_tag) >> 16).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// A record the index points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub loc: Loc,
    pub column: u16,
    /// The record is a tombstone (only kept when sealed blobs may hold older values).
    pub tombstone: bool,
}

impl Entry {
    pub fn value(loc: Loc, column: u16) -> Self {
        Entry {
            loc,
            column,
            tombstone: false,
        }
    }
}

/// Candidate entries for a key (almost always zero or one per column).
pub type Candidates = smallvec::SmallVec<[Entry; 2]>;

/// The key index.
pub struct KeyIndex {
    table: SlotTable<Slot>,
    hasher: RandomState,
    /// Tests: the tag bits kept (see [`TAG_BITS_FOR_TESTS`]).
    #[cfg(test)]
    tag_mask: u64,
}

#[cfg(test)]
thread_local! {
    /// Tests: the tag bits an index created on this thread keeps (all by default). With
    /// fewer, keys share tags, and every write and read must tell them apart by the key in
    /// the record.
    pub static TAG_BITS_FOR_TESTS: std::cell::Cell<u64> = const { std::cell::Cell::new(u64::MAX) };
}

impl Default for KeyIndex {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl KeyIndex {
    pub fn with_capacity(n: usize) -> Self {
        KeyIndex {
            table: SlotTable::with_capacity_in(
                n,
                HugePages::for_size(n.saturating_mul(std::mem::size_of::<Slot>())),
            ),
            hasher: RandomState::new(),
            #[cfg(test)]
            tag_mask: TAG_BITS_FOR_TESTS.with(std::cell::Cell::get),
        }
    }

    /// The key's tag: SipHash with a per-process random key (so crafted keys cannot pile
    /// into one bucket), low 16 bits cleared for the column.
    pub fn tag(&self, key: &Key) -> u64 {
        let tag = self.hasher.hash_one(key.0) & !COLUMN_MASK;
        #[cfg(test)]
        let tag = tag & self.tag_mask;
        tag
    }

    /// Starts loading the first slot a probe of `tag` reads (see [`SlotTable::prefetch`]).
    pub fn prefetch(&self, tag: u64) {
        self.table.prefetch(table_hash(held(tag)));
    }

    /// Entries of `column` whose tag matches; the caller confirms the key on disk.
    pub fn candidates(&self, tag: u64, column: u16) -> Candidates {
        let tag = held(tag);
        let full = tag | u64::from(column);
        self.table
            .iter_hash(table_hash(tag))
            .filter(|s| s.full_tag() == full)
            .map(Slot::entry)
            .collect()
    }

    /// Entries of every column whose key tag matches.
    pub fn key_candidates(&self, tag: u64) -> Candidates {
        let tag = held(tag);
        self.table
            .iter_hash(table_hash(tag))
            .filter(|s| s.key_tag() == tag)
            .map(Slot::entry)
            .collect()
    }

    /// Points (key, column) at `e`; `same_key(candidate)` says whether a candidate with the
    /// same tag holds this key. Returns the entry it replaced.
    pub fn upsert(
        &mut self,
        tag: u64,
        column: u16,
        e: Entry,
        same_key: impl FnMut(Loc) -> Result<bool>,
    ) -> Result<Option<Entry>> {
        let full = held(tag) | u64::from(column);
        match self.find(tag, column, same_key)? {
            Some(old) => {
                let hit = |s: &Slot| s.full_tag() == full && s.entry() == old;
                if let Some(s) = self.table.find_mut(table_hash(tag), hit) {
                    *s = Slot::new(tag, column, e);
                }
                Ok(Some(old))
            }
            None => {
                self.table.insert(Slot::new(tag, column, e));
                Ok(None)
            }
        }
    }

    /// Forgets (key, column); returns what it pointed at.
    pub fn remove(
        &mut self,
        tag: u64,
        column: u16,
        same_key: impl FnMut(Loc) -> Result<bool>,
    ) -> Result<Option<Entry>> {
        let Some(old) = self.find(tag, column, same_key)? else {
            return Ok(None);
        };
        let full = held(tag) | u64::from(column);
        let hit = |s: &Slot| s.full_tag() == full && s.entry() == old;
        self.table.remove_where(table_hash(tag), hit);
        Ok(Some(old))
    }

    /// The candidate that holds (key, column), if any.
    pub fn find(
        &self,
        tag: u64,
        column: u16,
        mut same_key: impl FnMut(Loc) -> Result<bool>,
    ) -> Result<Option<Entry>> {
        for e in self.candidates(tag, column) {
            if same_key(e.loc)? {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// Drops every entry that points into `blob` (its sorted index now answers for them).
    pub fn remove_blob(&mut self, blob: u32) {
        self.table.retain(|s| s.entry().loc.blob != blob);
    }

    /// Entries held (values and tombstones).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Tombstones held.
    pub fn tombstones(&self) -> usize {
        self.table.iter().filter(|s| s.entry().tombstone).count()
    }

    /// Heap bytes the table uses.
    pub fn heap_bytes(&self) -> usize {
        self.table.allocation_size()
    }

    /// Every value's location (tombstones left out).
    pub fn locations(&self) -> Vec<Loc> {
        self.table
            .iter()
            .map(Slot::entry)
            .filter(|e| !e.tombstone)
            .map(|e| e.loc)
            .collect()
    }

    /// Reserves room for `n` more keys.
    pub fn reserve(&mut self, n: usize) {
        self.table.reserve(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(o: u32) -> Loc {
        Loc {
            blob: 1,
            offset: o,
            len: 10,
        }
    }

    fn val(o: u32) -> Entry {
        Entry::value(loc(o), 0)
    }

    #[test]
    fn colliding_tags_keep_both_keys_apart() {
        // Two different keys forced onto the same tag: the confirmation callback tells them apart.
        let mut ix = KeyIndex::default();
        let tag = 42 << 16;
        let key_at = |l: Loc| if l.offset < 100 { "a" } else { "b" };
        let is = |k: &'static str| move |l: Loc| Ok(key_at(l) == k);
        assert_eq!(ix.upsert(tag, 0, val(1), is("a")).ok(), Some(None));
        assert_eq!(ix.upsert(tag, 0, val(101), is("b")).ok(), Some(None));
        assert_eq!(ix.len(), 2);
        assert_eq!(ix.upsert(tag, 0, val(2), is("a")).ok(), Some(Some(val(1))));
        assert_eq!(ix.len(), 2);
        assert_eq!(ix.find(tag, 0, is("b")).ok(), Some(Some(val(101))));
        assert_eq!(ix.remove(tag, 0, is("a")).ok(), Some(Some(val(2))));
        assert_eq!(ix.find(tag, 0, is("a")).ok(), Some(None));
        assert_eq!(ix.find(tag, 0, is("b")).ok(), Some(Some(val(101))));
    }

    #[test]
    fn columns_of_a_key_are_apart_yet_found_together() {
        let mut ix = KeyIndex::default();
        let tag = ix.tag(&Key([7; 32]));
        let yes = |_: Loc| Ok(true);
        let thumb = Entry::value(loc(50), 2);
        assert!(ix.upsert(tag, 0, val(1), yes).is_ok());
        assert!(ix.upsert(tag, 2, thumb, yes).is_ok());
        assert_eq!(ix.find(tag, 0, yes).ok(), Some(Some(val(1))));
        assert_eq!(ix.find(tag, 2, yes).ok(), Some(Some(thumb)));
        assert_eq!(ix.find(tag, 1, yes).ok(), Some(None));
        let mut cols: Vec<u16> = ix.key_candidates(tag).iter().map(|e| e.column).collect();
        cols.sort_unstable();
        assert_eq!(cols, [0, 2]);
    }

    #[test]
    fn tombstones_are_kept_apart_from_values_and_blobs_drop_out() {
        let mut ix = KeyIndex::default();
        let tag = ix.tag(&Key([1; 32]));
        let yes = |_: Loc| Ok(true);
        let dead = Entry {
            loc: Loc {
                blob: MAX_BLOB_ID,
                offset: 9,
                len: 88,
            },
            column: 0,
            tombstone: true,
        };
        assert!(ix.upsert(tag, 0, dead, yes).is_ok());
        assert_eq!(ix.find(tag, 0, yes).ok(), Some(Some(dead)));
        assert!(ix.locations().is_empty());
        assert_eq!(ix.tombstones(), 1);
        let other = ix.tag(&Key([2; 32]));
        assert!(ix.upsert(other, 0, val(5), yes).is_ok());
        ix.remove_blob(MAX_BLOB_ID);
        assert_eq!(ix.len(), 1);
        assert_eq!(ix.locations(), [loc(5)]);
    }

    #[test]
    fn slot_memory_per_key_is_small() {
        // 60,000 keys sit just past a doubling (at 57,344): the emptiest the table gets.
        let mut ix = KeyIndex::default();
        for i in 0..60_000u32 {
            let k = Key::from_name(b"", &i.to_le_bytes());
            let t = ix.tag(&k);
            assert!(ix.upsert(t, 0, val(i), |_| Ok(false)).is_ok());
        }
        let per_key = ix.heap_bytes() / ix.len();
        assert!(per_key <= 48, "{per_key} bytes per key");
    }
}
