//! Integration tests of `ringblob_protocol::ring`: balance of sequential joins (figures
//! printed; run with `--nocapture` to see them), what a join or leave moves, and property
//! tests of ownership, movement, the route table's merge laws and the codecs.

use proptest::collection::vec;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use ringblob_protocol::ring::*;
use ringblob_protocol::wire::KeyId;

const SEEDS: [u64; 5] = [0, 1, 2, 3, 0x5eed];

/// A group grown by `nodes` sequential joins of `ids_per_node` IDs each.
fn grow(nodes: u32, ids_per_node: u32, seed: u64) -> Result<GroupRing, RingError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ring = GroupRing::default();
    for node in 0..nodes {
        let ids = choose_ids(&ring, ids_per_node, &mut rng)?;
        ring = ring.with_node(NodeIx(node), &ids);
    }
    Ok(ring)
}

/// (largest share, smallest share) over the mean share.
fn balance(ring: &GroupRing) -> (f64, f64) {
    let shares = ring.shares();
    let mean = 1.0 / shares.len() as f64;
    let max = shares.values().copied().fold(0.0, f64::max);
    let min = shares.values().copied().fold(1.0, f64::min);
    (max / mean, min / mean)
}

fn check_balance(nodes: u32) -> Result<(), RingError> {
    let mut worst = 0.0f64;
    for seed in SEEDS {
        let ring = grow(nodes, DEFAULT_IDS_PER_NODE, seed)?;
        let (max, min) = balance(&ring);
        println!(
            "balance: {nodes} nodes x {DEFAULT_IDS_PER_NODE} ids, seed {seed}: \
             largest share {max:.4}x the mean, smallest {min:.4}x"
        );
        assert_eq!(ring.nodes().len(), nodes as usize);
        assert!(ring.shadowed().is_empty());
        assert_eq!(ring.points().len(), (nodes * DEFAULT_IDS_PER_NODE) as usize);
        let total: f64 = ring.shares().values().sum();
        assert!((total - 1.0).abs() < 1e-9, "shares sum to {total}");
        assert!(
            max <= 1.25,
            "seed {seed}: largest share is {max:.4}x the mean"
        );
        worst = worst.max(max);
    }
    println!("balance: {nodes} nodes, worst over seeds: {worst:.4}x the mean");
    Ok(())
}

#[test]
fn sequential_joins_stay_balanced_3_nodes() -> Result<(), RingError> {
    check_balance(3)
}

#[test]
fn sequential_joins_stay_balanced_10_nodes() -> Result<(), RingError> {
    check_balance(10)
}

#[test]
fn sequential_joins_stay_balanced_50_nodes() -> Result<(), RingError> {
    check_balance(50)
}

#[test]
fn eleventh_join_moves_about_one_eleventh_to_the_new_node() -> Result<(), RingError> {
    for seed in SEEDS {
        let before = grow(10, DEFAULT_IDS_PER_NODE, seed)?;
        let ids = choose_ids(
            &before,
            DEFAULT_IDS_PER_NODE,
            &mut StdRng::seed_from_u64(seed),
        )?;
        let after = before.with_node(NodeIx(10), &ids);
        let moves = moved_ranges(&before, &after);
        let moved: f64 = moves.iter().map(|m| m.range.fraction()).sum();
        let ratio = moved * 11.0;
        println!(
            "join of an 11th node, seed {seed}: {} ranges moved, {moved:.5} of the keys \
             ({ratio:.4}x of 1/11)",
            moves.len()
        );
        assert!((1.0 / 1.25..=1.25).contains(&ratio), "moved {moved}");
        assert!(moves
            .iter()
            .all(|m| m.to == NodeIx(10) && m.from != NodeIx(10)));
        assert!((moved - after.share_of(NodeIx(10))).abs() < 1e-12);
        let (max, _) = balance(&after);
        assert!(
            max <= 1.25,
            "after the join the largest share is {max:.4}x the mean"
        );
    }
    Ok(())
}

#[test]
fn leave_hands_exactly_the_leavers_ranges_to_others() -> Result<(), RingError> {
    let before = grow(10, DEFAULT_IDS_PER_NODE, 9)?;
    let after = before.without_node(NodeIx(4));
    let moves = moved_ranges(&before, &after);
    let moved: f64 = moves.iter().map(|m| m.range.fraction()).sum();
    assert!(moves
        .iter()
        .all(|m| m.from == NodeIx(4) && m.to != NodeIx(4)));
    assert!((moved - before.share_of(NodeIx(4))).abs() < 1e-12);
    assert_eq!(after.share_of(NodeIx(4)), 0.0);
    Ok(())
}

#[test]
fn rejoin_with_persisted_ids_restores_the_ring() -> Result<(), RingError> {
    let ring = grow(5, DEFAULT_IDS_PER_NODE, 4)?;
    let file = encode_ids_file(&ring.ids_of(NodeIx(2)))?;
    let back = ring
        .without_node(NodeIx(2))
        .with_node(NodeIx(2), &decode_ids_file(&file)?);
    assert_eq!(back, ring);
    Ok(())
}

#[test]
fn joins_rebalance_after_leaves() -> Result<(), RingError> {
    // Seeded churn: leaves let the successors' shares grow; each join takes from the most
    // loaded nodes first, so the group heals. The seeds choose who leaves.
    for seed in SEEDS {
        let mut ring = grow(12, DEFAULT_IDS_PER_NODE, seed)?;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut worst_after_leave = 0.0f64;
        for (round, next) in (0..20u32).zip(12u32..) {
            let members = ring.nodes();
            let leaver = members[(rng.next_u32() as usize) % members.len()];
            ring = ring.without_node(leaver);
            worst_after_leave = worst_after_leave.max(balance(&ring).0);
            let fair = 1.0 / (ring.nodes().len() + 1) as f64;
            let (before_max, _) = balance(&ring);
            let ids = choose_ids(&ring, DEFAULT_IDS_PER_NODE, &mut rng)?;
            ring = ring.with_node(NodeIx(next), &ids);
            let got = ring.share_of(NodeIx(next)) / fair;
            assert!(
                got >= 0.8,
                "seed {seed} round {round}: joiner got {got:.3}x its share"
            );
            let after_max = balance(&ring).0;
            assert!(
                after_max <= before_max,
                "a join made the largest share grow"
            );
        }
        let (max, min) = balance(&ring);
        println!(
            "churn, seed {seed}: 20 leave+join rounds on 12 nodes: worst right after a leave \
             {worst_after_leave:.4}x, at the end largest {max:.4}x, smallest {min:.4}x the mean"
        );
        assert!(
            max <= 1.25,
            "seed {seed}: after churn the largest share is {max:.4}x"
        );
    }
    Ok(())
}

// ---- strategies ----

/// A ring position: mostly anywhere, sometimes on a coarse grid so IDs and keys coincide.
fn position() -> impl Strategy<Value = RingId> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(RingId),
        any::<u8>().prop_map(|b| {
            let mut id = RingId::MIN;
            id.0[0] = b;
            id
        }),
    ]
}

/// Up to 6 nodes with up to 6 IDs each (empty and single-ID rings included).
fn ring_shape() -> impl Strategy<Value = GroupRing> {
    vec((0u32..6, vec(position(), 0..6)), 0..6)
        .prop_map(|nodes| GroupRing::new(nodes.into_iter().map(|(ix, ids)| (NodeIx(ix), ids))))
}

/// Two rings of one group: a shape, then a change (join, leave, or both at once).
fn ring_change() -> impl Strategy<Value = (GroupRing, GroupRing)> {
    (ring_shape(), 0u32..8, vec(position(), 0..6), 0u32..8).prop_map(
        |(before, joiner, ids, leaver)| {
            let after = before
                .with_node(NodeIx(joiner), &ids)
                .without_node(NodeIx(leaver));
            (before, after)
        },
    )
}

/// Keys to probe `rings`: random ones, every ID and its neighbours.
fn probes(rings: &[&GroupRing], random: Vec<RingId>) -> Vec<KeyId> {
    let mut keys: Vec<KeyId> = random.into_iter().map(|id| id.0).collect();
    for ring in rings {
        for (id, _) in ring.points() {
            keys.push(id.0);
            keys.push(step(id.0, 1));
            keys.push(step(id.0, -1));
        }
    }
    keys.push(RingId::MIN.0);
    keys.push(RingId::MAX.0);
    keys
}

/// `key` ± 1 on the ring.
fn step(mut key: KeyId, delta: i8) -> KeyId {
    for byte in key.iter_mut().rev() {
        let (next, carry) = if delta > 0 {
            byte.overflowing_add(1)
        } else {
            byte.overflowing_sub(1)
        };
        *byte = next;
        if !carry {
            break;
        }
    }
    key
}

fn route_node() -> impl Strategy<Value = RouteNode> {
    (
        prop_oneof![Just("a"), Just("b"), Just("c"), Just("d")],
        prop_oneof![Just("10.0.0.1:7000"), Just("10.0.0.2:7000")],
        0u32..2,
        vec(position(), 0..3),
        (any::<bool>(), any::<bool>()),
        0u64..3,
    )
        .prop_map(
            |(name, addr, group, ids, (alive, leaving), incarnation)| RouteNode {
                name: name.to_string(),
                addr: addr.to_string(),
                group,
                ids,
                alive,
                leaving,
                incarnation,
            },
        )
}

fn route_table() -> impl Strategy<Value = RouteTable> {
    (0u64..4, vec(route_node(), 0..6)).prop_map(|(v, nodes)| RouteTable::new(v, nodes))
}

fn merged(a: &RouteTable, b: &RouteTable) -> RouteTable {
    let mut out = a.clone();
    out.merge(b);
    out
}

// ---- properties ----

proptest! {
    #[test]
    fn owner_changes_exactly_inside_moved_ranges(
        (before, after) in ring_change(),
        random in vec(position(), 0..32),
    ) {
        let moves = moved_ranges(&before, &after);
        for key in probes(&[&before, &after], random) {
            let (was, now) = (before.owner(&key), after.owner(&key));
            let hits: Vec<&Move> = moves.iter().filter(|m| m.range.contains(&key)).collect();
            prop_assert!(hits.len() <= 1, "key {:?} in {} moved ranges", RingId(key), hits.len());
            match (was, now, hits.first()) {
                (Some(was), Some(now), Some(hit)) => {
                    prop_assert_ne!(was, now);
                    prop_assert_eq!((hit.from, hit.to), (was, now));
                }
                (Some(was), Some(now), None) => prop_assert_eq!(was, now),
                (_, _, hit) => prop_assert!(hit.is_none(), "a move with an empty ring"),
            }
        }
    }

    #[test]
    fn ranges_partition_the_ring(ring in ring_shape(), random in vec(position(), 0..32)) {
        let total: f64 = ring.nodes().iter().map(|n| ring.share_of(*n)).sum();
        if !ring.is_empty() {
            prop_assert!((total - 1.0).abs() < 1e-9, "shares sum to {}", total);
        }
        for key in probes(&[&ring], random) {
            let holders: Vec<NodeIx> = ring
                .nodes()
                .into_iter()
                .filter(|n| ring.ranges_of(*n).iter().any(|r| r.contains(&key)))
                .collect();
            match ring.owner(&key) {
                Some(owner) => prop_assert_eq!(holders, vec![owner]),
                None => prop_assert!(holders.is_empty()),
            }
        }
    }

    #[test]
    fn chosen_ids_are_new_and_distinct(ring in ring_shape(), count in 0u32..40, seed in any::<u64>()) {
        let ids = choose_ids(&ring, count, &mut StdRng::seed_from_u64(seed))?;
        prop_assert_eq!(ids.len(), count as usize);
        prop_assert!(ids.windows(2).all(|w| w[0] < w[1]));
        prop_assert!(ids.iter().all(|id| ring.points().iter().all(|(p, _)| p != id)));
    }

    #[test]
    fn merge_is_commutative(a in route_table(), b in route_table()) {
        prop_assert_eq!(merged(&a, &b), merged(&b, &a));
    }

    #[test]
    fn merge_is_associative(a in route_table(), b in route_table(), c in route_table()) {
        prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
    }

    #[test]
    fn merge_is_idempotent(a in route_table(), b in route_table()) {
        prop_assert_eq!(merged(&a, &a), a.clone());
        let ab = merged(&a, &b);
        prop_assert_eq!(merged(&ab, &b), ab.clone());
    }

    #[test]
    fn table_owner_agrees_with_its_rings(table in route_table(), random in vec(position(), 0..16)) {
        let rings = table.rings();
        let all: Vec<&GroupRing> = rings.values().collect();
        for group in 0..3u32 {
            for key in probes(&all, random.clone()) {
                let via_ring = rings
                    .get(&group)
                    .and_then(|r| r.owner(&key))
                    .and_then(|ix| table.nodes.get(ix.0 as usize));
                prop_assert_eq!(table.owner(group, &key), via_ring);
            }
        }
    }

    #[test]
    fn route_table_json_round_trips(table in route_table()) {
        let json = table.to_json()?;
        prop_assert_eq!(RouteTable::from_json(&json)?, table);
    }

    #[test]
    fn ids_file_round_trips(ids in vec(position(), 0..64)) {
        let mut want = ids.clone();
        want.sort();
        want.dedup();
        prop_assert_eq!(decode_ids_file(&encode_ids_file(&ids)?)?, want);
    }

    #[test]
    fn ids_file_decoder_never_panics(bytes in vec(any::<u8>(), 0..200)) {
        let _ = decode_ids_file(&bytes);
        let mut framed = IDS_FILE_MAGIC.to_vec();
        framed.extend_from_slice(&bytes);
        let _ = decode_ids_file(&framed);
    }
}
