//! The in-memory key index: a compact hash table from a 64-bit keyed tag of each key to the
//! location of its newest record. Full keys stay on disk; a tag match is confirmed by
//! reading the record's key, so two keys whose tags collide never shadow each other.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use crate::error::Result;
use crate::key::Key;

/// Where a record lives: blob, byte offset, record length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loc {
    pub blob: u32,
    pub offset: u32,
    pub len: u32,
}

/// 20 bytes, byte-aligned, so the table wastes no padding.
#[derive(Clone, Copy)]
struct Slot {
    tag: [u8; 8],
    blob: [u8; 4],
    offset: [u8; 4],
    len: [u8; 4],
}

const _: () = assert!(std::mem::size_of::<Slot>() == 20);

impl Slot {
    fn new(tag: u64, loc: Loc) -> Self {
        Slot {
            tag: tag.to_le_bytes(),
            blob: loc.blob.to_le_bytes(),
            offset: loc.offset.to_le_bytes(),
            len: loc.len.to_le_bytes(),
        }
    }
    fn tag(&self) -> u64 {
        u64::from_le_bytes(self.tag)
    }
    fn loc(&self) -> Loc {
        Loc {
            blob: u32::from_le_bytes(self.blob),
            offset: u32::from_le_bytes(self.offset),
            len: u32::from_le_bytes(self.len),
        }
    }
}

/// Candidate locations for a key (almost always zero or one).
pub type Candidates = smallvec::SmallVec<[Loc; 2]>;

/// The key index.
pub struct KeyIndex {
    table: HashTable<Slot>,
    hasher: RandomState,
}

impl Default for KeyIndex {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl KeyIndex {
    pub fn with_capacity(n: usize) -> Self {
        KeyIndex {
            table: HashTable::with_capacity(n),
            hasher: RandomState::new(),
        }
    }

    /// The key's tag: SipHash with a per-process random key, so crafted keys cannot pile
    /// into one bucket.
    pub fn tag(&self, key: &Key) -> u64 {
        self.hasher.hash_one(key.0)
    }

    /// Locations whose tag matches; the caller confirms the key on disk.
    pub fn candidates(&self, tag: u64) -> Candidates {
        self.table
            .iter_hash(tag)
            .filter(|s| s.tag() == tag)
            .map(Slot::loc)
            .collect()
    }

    /// Points the key at `loc`; `same_key(candidate)` says whether a candidate with the same
    /// tag holds this key. Returns the location it replaced.
    pub fn upsert(
        &mut self,
        tag: u64,
        loc: Loc,
        same_key: impl FnMut(Loc) -> Result<bool>,
    ) -> Result<Option<Loc>> {
        match self.find(tag, same_key)? {
            Some(old) => {
                if let Some(s) = self
                    .table
                    .find_mut(tag, |s| s.tag() == tag && s.loc() == old)
                {
                    *s = Slot::new(tag, loc);
                }
                Ok(Some(old))
            }
            None => {
                self.table
                    .insert_unique(tag, Slot::new(tag, loc), Slot::tag);
                Ok(None)
            }
        }
    }

    /// Removes the key; returns where it was.
    pub fn remove(
        &mut self,
        tag: u64,
        same_key: impl FnMut(Loc) -> Result<bool>,
    ) -> Result<Option<Loc>> {
        let Some(old) = self.find(tag, same_key)? else {
            return Ok(None);
        };
        if let Ok(e) = self
            .table
            .find_entry(tag, |s| s.tag() == tag && s.loc() == old)
        {
            e.remove();
        }
        Ok(Some(old))
    }

    /// The candidate that holds the key, if any.
    pub fn find(
        &self,
        tag: u64,
        mut same_key: impl FnMut(Loc) -> Result<bool>,
    ) -> Result<Option<Loc>> {
        for loc in self.candidates(tag) {
            if same_key(loc)? {
                return Ok(Some(loc));
            }
        }
        Ok(None)
    }

    /// Live keys.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Heap bytes the table uses.
    pub fn heap_bytes(&self) -> usize {
        self.table.allocation_size()
    }

    /// Every live location.
    pub fn locations(&self) -> Vec<Loc> {
        self.table.iter().map(Slot::loc).collect()
    }

    /// Reserves room for `n` more keys.
    pub fn reserve(&mut self, n: usize) {
        self.table.reserve(n, Slot::tag);
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

    #[test]
    fn colliding_tags_keep_both_keys_apart() {
        // Two different keys forced onto the same tag: the confirmation callback tells them apart.
        let mut ix = KeyIndex::default();
        let tag = 42;
        let key_at = |l: Loc| if l.offset < 100 { "a" } else { "b" };
        assert_eq!(
            ix.upsert(tag, loc(1), |l| Ok(key_at(l) == "a")).ok(),
            Some(None)
        );
        assert_eq!(
            ix.upsert(tag, loc(101), |l| Ok(key_at(l) == "b")).ok(),
            Some(None)
        );
        assert_eq!(ix.len(), 2);
        assert_eq!(
            ix.upsert(tag, loc(2), |l| Ok(key_at(l) == "a")).ok(),
            Some(Some(loc(1)))
        );
        assert_eq!(ix.len(), 2);
        assert_eq!(
            ix.find(tag, |l| Ok(key_at(l) == "b")).ok(),
            Some(Some(loc(101)))
        );
        assert_eq!(
            ix.remove(tag, |l| Ok(key_at(l) == "a")).ok(),
            Some(Some(loc(2)))
        );
        assert_eq!(ix.find(tag, |l| Ok(key_at(l) == "a")).ok(), Some(None));
        assert_eq!(
            ix.find(tag, |l| Ok(key_at(l) == "b")).ok(),
            Some(Some(loc(101)))
        );
    }

    #[test]
    fn slot_memory_per_key_is_small() {
        // 60,000 keys sit just past a doubling (at 57,344): the emptiest the table gets.
        let mut ix = KeyIndex::default();
        for i in 0..60_000u32 {
            let k = Key::from_name(b"", &i.to_le_bytes());
            let t = ix.tag(&k);
            assert!(ix.upsert(t, loc(i), |_| Ok(false)).is_ok());
        }
        let per_key = ix.heap_bytes() / ix.len();
        assert!(per_key <= 48, "{per_key} bytes per key");
    }
}
