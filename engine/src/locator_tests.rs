use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

fn key(i: u64) -> Key {
    Key::from_name(b"locator", &i.to_le_bytes())
}

/// Adds blob `id` holding `keys` to both the locator and the model.
fn add(
    loc: &mut Locator,
    model: &mut BTreeMap<u64, BTreeSet<u32>>,
    id: u32,
    keys: impl Iterator<Item = u64>,
) {
    loc.add_blob(id);
    let keys: Vec<u64> = keys.collect();
    loc.reserve(keys.len() as u64);
    for k in keys {
        loc.insert(&key(k), id);
        model.entry(k).or_default().insert(id);
    }
}

fn check(loc: &Locator, model: &BTreeMap<u64, BTreeSet<u32>>) -> Result<(), TestCaseError> {
    for (k, ids) in model {
        let found: BTreeSet<u32> = loc.candidates(&key(*k)).into_iter().collect();
        prop_assert!(
            found.is_superset(ids),
            "key {k}: {found:?} lacks some of {ids:?}"
        );
    }
    Ok(())
}

#[test]
fn finds_every_key_in_every_blob_and_few_others() -> Result<(), TestCaseError> {
    let mut loc = Locator::for_entries(100_000);
    let mut model = BTreeMap::new();
    for id in 0..100u32 {
        let from = u64::from(id) * 1000;
        add(&mut loc, &mut model, id, from..from + 1000);
    }
    check(&loc, &model)?;
    let exact = model
        .iter()
        .filter(|(k, ids)| loc.candidates(&key(**k)).len() == ids.len())
        .count();
    prop_assert!(
        exact > 94_000,
        "{exact} of 100000 keys had no false candidate"
    );
    let false_hits: usize = (1_000_000..1_100_000u64)
        .map(|k| loc.candidates(&key(k)).len())
        .sum();
    // 8 slots checked, 8-bit fingerprints, ~92 % fill: about 3 %.
    prop_assert!(
        false_hits < 5_000,
        "{false_hits} false candidates in 100000"
    );
    prop_assert!(false_hits > 500, "{false_hits}: not the documented ~3 %");
    prop_assert!(!loc.needs_rebuild());
    Ok(())
}

#[test]
fn a_key_in_many_blobs_is_found_in_each() -> Result<(), TestCaseError> {
    // Far more copies than a key's two buckets hold: the rest go to the stash.
    let mut loc = Locator::for_entries(1000);
    let mut model = BTreeMap::new();
    for id in 0..200u32 {
        add(
            &mut loc,
            &mut model,
            id,
            [7, 1000 + u64::from(id)].into_iter(),
        );
    }
    check(&loc, &model)?;
    prop_assert_eq!(loc.candidates(&key(7)).len(), 200);
    Ok(())
}

#[test]
fn retired_blobs_are_not_found_and_their_slots_are_reused() -> Result<(), TestCaseError> {
    let mut loc = Locator::for_entries(20_000);
    let mut model = BTreeMap::new();
    for id in 0..20u32 {
        let from = u64::from(id) * 1000;
        add(&mut loc, &mut model, id, from..from + 1000);
    }
    let slots = loc.tables[0].slots();
    for id in 0..10u32 {
        loc.retire(id);
        for ids in model.values_mut() {
            ids.remove(&id);
        }
    }
    for k in 0..10_000 {
        let found = loc.candidates(&key(k));
        prop_assert!(found.iter().all(|id| *id >= 10), "key {k}: {found:?}");
    }
    // Ten more blobs fit in the slots the retired ones left.
    for id in 100..110u32 {
        let from = u64::from(id) * 1000;
        add(&mut loc, &mut model, id, from..from + 1000);
    }
    check(&loc, &model)?;
    prop_assert_eq!(loc.tables.len(), 1);
    prop_assert_eq!(loc.tables[0].slots(), slots);
    prop_assert_eq!(loc.live(), 20_000);
    Ok(())
}

#[test]
fn growing_past_the_table_adds_tables_then_asks_for_a_rebuild() -> Result<(), TestCaseError> {
    let mut loc = Locator::for_entries(10_000);
    let mut model = BTreeMap::new();
    let mut id = 0u32;
    while !loc.needs_rebuild() {
        let from = u64::from(id) * 1000;
        add(&mut loc, &mut model, id, from..from + 1000);
        id += 1;
    }
    check(&loc, &model)?;
    prop_assert_eq!(loc.tables.len(), MAX_TABLES + 1);
    // Each new table holds a quarter of the live keys: six of them took the store past
    // 1.25^5 times the first one's 10000 keys, with under half a slot per key to spare (the
    // newest table is empty, the others at most 95 % full).
    prop_assert!(
        loc.live() > 30_000,
        "rebuild asked for at {} keys",
        loc.live()
    );
    let slots: u64 = loc.tables.iter().map(Table::slots).sum();
    prop_assert!(
        slots * 2 < loc.live() * 3,
        "{slots} slots for {} keys",
        loc.live()
    );
    Ok(())
}

#[test]
fn blobs_sharing_a_residue_are_both_candidates() -> Result<(), TestCaseError> {
    let mut loc = Locator::for_entries(1000);
    let mut model = BTreeMap::new();
    let (low, high) = (5u32, 5 + (1 << 16));
    add(&mut loc, &mut model, low, 0..100);
    add(&mut loc, &mut model, high, 50..150);
    check(&loc, &model)?;
    loc.retire(low);
    model.clear();
    add(&mut loc, &mut model, high, std::iter::empty());
    for k in 50..150 {
        model.entry(k).or_insert_with(BTreeSet::new).insert(high);
    }
    check(&loc, &model)?;
    prop_assert!((0..150).all(|k| !loc.candidates(&key(k)).contains(&low)));
    // The retired blob's slots still name the residue: not reclaimed, counted stale.
    prop_assert_eq!(loc.live(), 100);
    loc.retire(high);
    prop_assert!((0..150).all(|k| loc.candidates(&key(k)).is_empty()));
    Ok(())
}

#[derive(Debug, Clone)]
enum Op {
    /// A blob with keys `from..from + len` (keys overlap between blobs).
    Add { from: u64, len: u64 },
    /// Retires the n-th live blob (modulo their count).
    Retire(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..3000, 1u64..800).prop_map(|(from, len)| Op::Add { from, len }),
        1 => any::<usize>().prop_map(Op::Retire),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever the adds and retirements, every live (key, blob) is found and no retired
    /// blob is.
    #[test]
    fn never_loses_a_live_key(capacity in 1u64..5000, ops in proptest::collection::vec(op(), 1..40)) {
        let mut loc = Locator::for_entries(capacity);
        let mut model: BTreeMap<u64, BTreeSet<u32>> = BTreeMap::new();
        let mut live: Vec<u32> = Vec::new();
        let mut retired = BTreeSet::new();
        for (id, op) in ops.into_iter().enumerate() {
            let id = id as u32;
            match op {
                Op::Add { from, len } => {
                    // Every other blob shares a residue with an earlier one.
                    let id = if id % 2 == 1 { id - 1 + (1 << 16) } else { id };
                    add(&mut loc, &mut model, id, from..from + len);
                    live.push(id);
                }
                Op::Retire(i) if !live.is_empty() => {
                    let gone = live.remove(i % live.len());
                    loc.retire(gone);
                    retired.insert(gone);
                    for ids in model.values_mut() {
                        ids.remove(&gone);
                    }
                }
                Op::Retire(_) => {}
            }
            check(&loc, &model)?;
        }
        for k in 0..4000u64 {
            let found = loc.candidates(&key(k));
            prop_assert!(found.iter().all(|id| !retired.contains(id)), "key {k}: {found:?}");
        }
        let entries: usize = model.values().map(|ids| ids.len()).sum();
        prop_assert_eq!(loc.live(), entries as u64);
    }
}
