use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

/// A test slot: an id (0 = free) placed by a hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TestSlot {
    hash: u64,
    id: u32,
}

// SAFETY: all-zero is `id == 0`, the free slot, and a valid value of both fields.
#[allow(unsafe_code)]
unsafe impl TableSlot for TestSlot {
    const FREE: Self = TestSlot { hash: 0, id: 0 };
    fn is_free(&self) -> bool {
        self.id == 0
    }
    fn hash(&self) -> u64 {
        self.hash
    }
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u8),
    Remove(u32),
    Retain(u32),
    Reserve(u16),
}

/// Hashes from a small pool, so that many slots share a hash and many more a home.
fn hash_of(pick: u8) -> u64 {
    u64::from(pick % 24).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => any::<u8>().prop_map(Op::Insert),
        4 => (1u32..400).prop_map(Op::Remove),
        1 => (2u32..5).prop_map(Op::Retain),
        1 => (0u16..100).prop_map(Op::Reserve),
    ]
}

/// Every id of the model is found through its hash's probe run, nothing else is held, and
/// the table is at most 7/8 full.
fn check(t: &SlotTable<TestSlot>, model: &HashMap<u32, u64>) -> Result<(), TestCaseError> {
    prop_assert_eq!(t.len(), model.len());
    prop_assert_eq!(t.iter().count(), model.len());
    for (&id, &hash) in model {
        let found = t.iter_hash(hash).filter(|s| s.id == id).count();
        prop_assert_eq!(found, 1, "id {} of hash {:x}", id, hash);
    }
    for s in t.iter() {
        prop_assert_eq!(model.get(&s.id), Some(&s.hash));
    }
    prop_assert!(t.len() * MAX_LOAD_DEN <= t.slots.len() * MAX_LOAD_NUM);
    Ok(())
}

proptest! {
    #[test]
    fn the_table_holds_what_a_map_holds(ops in proptest::collection::vec(op(), 1..600)) {
        let mut t = SlotTable::<TestSlot>::with_capacity_in(0, HugePages::default());
        let mut model: HashMap<u32, u64> = HashMap::new();
        let mut next_id = 1u32;
        for op in ops {
            match op {
                Op::Insert(pick) => {
                    let slot = TestSlot { hash: hash_of(pick), id: next_id };
                    next_id += 1;
                    t.insert(slot);
                    model.insert(slot.id, slot.hash);
                }
                Op::Remove(id) => {
                    let hash = model.get(&id).copied().unwrap_or(hash_of(id as u8));
                    let removed = t.remove_where(hash, |s| s.id == id);
                    prop_assert_eq!(removed.map(|s| s.id), model.remove(&id).map(|_| id));
                }
                Op::Retain(k) => {
                    t.retain(|s| s.id % k != 0);
                    model.retain(|id, _| id % k != 0);
                }
                Op::Reserve(n) => {
                    let before = t.slots.len();
                    t.reserve(usize::from(n));
                    let room = t.slots.len() * MAX_LOAD_NUM / MAX_LOAD_DEN;
                    prop_assert!(t.len() + usize::from(n) <= room);
                    prop_assert!(t.slots.len() >= before);
                }
            }
            check(&t, &model)?;
        }
    }
}

#[test]
fn a_slot_is_changed_in_place_and_an_absent_one_is_not_found() {
    let mut t = SlotTable::<TestSlot>::with_capacity_in(4, HugePages::default());
    let h = hash_of(3);
    t.insert(TestSlot { hash: h, id: 7 });
    t.insert(TestSlot { hash: h, id: 8 });
    if let Some(s) = t.find_mut(h, |s| s.id == 8) {
        s.id = 9;
    }
    let ids: Vec<u32> = t.iter_hash(h).map(|s| s.id).collect();
    assert_eq!(ids, [7, 9]);
    assert!(t.find_mut(h, |s| s.id == 8).is_none());
    assert!(t.iter_hash(hash_of(4)).all(|s| s.hash != hash_of(4)));
    assert_eq!(t.remove_where(h, |s| s.id == 7).map(|s| s.id), Some(7));
    assert_eq!(t.len(), 1);
}

#[test]
fn an_empty_table_holds_no_memory_and_finds_nothing() {
    let mut t = SlotTable::<TestSlot>::with_capacity_in(0, HugePages::default());
    assert_eq!(t.allocation_size(), 0);
    assert_eq!(t.iter_hash(42).count(), 0);
    assert!(t.remove_where(42, |_| true).is_none());
    t.retain(|_| false);
    assert!(t.is_empty());
}

#[test]
fn a_full_run_that_wraps_the_end_is_probed_and_retained() {
    // Every slot has the same home, the table's last slot: the run wraps to the start.
    let mut t = SlotTable::<TestSlot>::with_capacity_in(7, HugePages::default());
    let last = u64::MAX;
    for id in 1..=7 {
        t.insert(TestSlot { hash: last, id });
    }
    assert_eq!(t.slots.len(), 8);
    assert_eq!(t.iter_hash(last).count(), 7);
    t.retain(|s| s.id % 2 == 1);
    let mut ids: Vec<u32> = t.iter_hash(last).map(|s| s.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 3, 5, 7]);
}

#[test]
fn prefetched_probes_find_what_probes_find() {
    // Prefetching is a hint on any hash, of an empty table or a full one, and changes
    // nothing a probe then finds.
    let mut t = SlotTable::<TestSlot>::with_capacity_in(0, HugePages::default());
    t.prefetch(u64::MAX);
    for id in 1..=200u32 {
        t.insert(TestSlot {
            hash: hash_of(id as u8),
            id,
        });
    }
    let before: Vec<Vec<u32>> = (0..=255u8)
        .map(|p| t.iter_hash(hash_of(p)).map(|s| s.id).collect())
        .collect();
    for h in [0, 1, u64::MAX, u64::MAX / 3]
        .into_iter()
        .chain((0..=255u8).map(hash_of))
    {
        t.prefetch(h);
    }
    let after: Vec<Vec<u32>> = (0..=255u8)
        .map(|p| t.iter_hash(hash_of(p)).map(|s| s.id).collect())
        .collect();
    assert_eq!(before, after);
    assert_eq!(t.len(), 200);
}
