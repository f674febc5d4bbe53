//! Unit tests of the route table: JSON shape, merge rules, rings, owners, moves.

use super::route::*;
use super::{RingError, RingId, MAX_IDS_PER_NODE};

fn at(v: u8) -> RingId {
    let mut id = RingId::MIN;
    id.0[0] = v;
    id
}

fn node(name: &str, group: u32, ids: &[u8], alive: bool, incarnation: u64) -> RouteNode {
    RouteNode {
        name: name.to_string(),
        addr: format!("10.0.0.{}:7000", name.len()),
        group,
        ids: ids.iter().map(|v| at(*v)).collect(),
        alive,
        leaving: false,
        incarnation,
    }
}

#[test]
fn json_shape_is_the_documented_one() -> Result<(), RingError> {
    let table = RouteTable::new(7, vec![node("n1", 0, &[0x80], true, 3)]);
    let json = table.to_json()?;
    let id = format!("80{}", "0".repeat(62));
    assert_eq!(
        json,
        format!(
            "{{\"version\":7,\"nodes\":[{{\"name\":\"n1\",\"addr\":\"10.0.0.2:7000\",\
             \"group\":0,\"ids\":[\"{id}\"],\"alive\":true,\"incarnation\":3}}]}}"
        )
    );
    assert_eq!(RouteTable::from_json(&json)?, table);
    Ok(())
}

#[test]
fn from_json_normalizes_and_ignores_unknown_fields() -> Result<(), RingError> {
    let json = r#"{"version":2,"future":1,"nodes":[
        {"name":"b","addr":"x:1","group":1,"ids":[],"alive":true,"incarnation":1,"zone":"z"},
        {"name":"a","addr":"x:2","group":1,"ids":[],"alive":true,"incarnation":1},
        {"name":"b","addr":"x:3","group":1,"ids":[],"alive":true,"incarnation":2}]}"#;
    let table = RouteTable::from_json(json)?;
    let names: Vec<(&str, &str)> = table
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.addr.as_str()))
        .collect();
    assert_eq!(names, vec![("a", "x:2"), ("b", "x:3")]);
    Ok(())
}

#[test]
fn from_json_refuses_bad_input() {
    for bad in [
        "",
        "[]",
        r#"{"version":1}"#,
        r#"{"version":-1,"nodes":[]}"#,
        r#"{"version":1,"nodes":[{"name":"a","addr":"x","group":0,"ids":["AB"],"alive":true,"incarnation":0}]}"#,
    ] {
        assert!(
            matches!(
                RouteTable::from_json(bad),
                Err(RingError::BadRouteTable { .. })
            ),
            "{bad:?} was accepted"
        );
    }
}

#[test]
fn from_json_enforces_limits() -> Result<(), RingError> {
    let ids = vec![at(1); MAX_IDS_PER_NODE as usize + 1];
    let mut big = node("a", 0, &[], true, 0);
    big.ids = ids;
    let json = RouteTable::new(1, vec![big]).to_json()?;
    assert_eq!(
        RouteTable::from_json(&json),
        Err(RingError::TooManyIds {
            count: u64::from(MAX_IDS_PER_NODE) + 1,
            max: MAX_IDS_PER_NODE
        })
    );
    let many: Vec<RouteNode> = (0..=MAX_ROUTE_NODES)
        .map(|i| node(&format!("n{i}"), 0, &[], true, 0))
        .collect();
    let json = RouteTable {
        version: 1,
        nodes: many,
    }
    .to_json()?;
    assert_eq!(
        RouteTable::from_json(&json),
        Err(RingError::TooManyNodes {
            count: u64::from(MAX_ROUTE_NODES) + 1,
            max: MAX_ROUTE_NODES
        })
    );
    Ok(())
}

#[test]
fn merge_keeps_the_higher_incarnation_and_version() {
    let mut a = RouteTable::new(
        5,
        vec![node("n1", 0, &[1], true, 2), node("n2", 0, &[2], true, 1)],
    );
    let b = RouteTable::new(
        3,
        vec![node("n1", 0, &[9], true, 1), node("n3", 1, &[3], true, 0)],
    );
    a.merge(&b);
    assert_eq!(a.version, 5);
    let summary: Vec<(&str, u64)> = a
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.incarnation))
        .collect();
    assert_eq!(summary, vec![("n1", 2), ("n2", 1), ("n3", 0)]);
    assert_eq!(a.node("n1").map(|n| n.ids.clone()), Some(vec![at(1)]));
}

#[test]
fn merge_at_equal_incarnation_prefers_dead() {
    let alive = RouteTable::new(1, vec![node("n1", 0, &[1], true, 4)]);
    let dead = RouteTable::new(1, vec![node("n1", 0, &[1], false, 4)]);
    let mut x = alive.clone();
    x.merge(&dead);
    let mut y = dead.clone();
    y.merge(&alive);
    assert_eq!(x, dead);
    assert_eq!(y, dead);
    // A refutation (higher incarnation, alive) beats the report.
    let back = RouteTable::new(1, vec![node("n1", 0, &[1], true, 5)]);
    x.merge(&back);
    assert_eq!(x, back);
}

#[test]
fn rings_and_owner_skip_dead_nodes() {
    let table = RouteTable::new(
        1,
        vec![
            node("a", 0, &[100], true, 0),
            node("b", 0, &[200], false, 0),
            node("c", 0, &[50], true, 0),
            node("d", 1, &[10], true, 0),
            node("e", 2, &[10], false, 0),
        ],
    );
    let rings = table.rings();
    assert_eq!(rings.keys().copied().collect::<Vec<u32>>(), vec![0, 1]);
    let owner = |group, key: u8| table.owner(group, &at(key).0).map(|n| n.name.as_str());
    assert_eq!(owner(0, 150), Some("c"), "b is dead, wraps to c's 50");
    assert_eq!(owner(0, 60), Some("a"));
    assert_eq!(owner(0, 50), Some("c"));
    assert_eq!(owner(1, 250), Some("d"));
    assert_eq!(owner(2, 1), None);
    assert_eq!(owner(3, 1), None);
}

#[test]
fn owner_resolves_a_shared_id_like_the_ring() {
    let table = RouteTable::new(
        1,
        vec![node("b", 0, &[100], true, 0), node("a", 0, &[100], true, 0)],
    );
    assert_eq!(
        table.owner(0, &at(90).0).map(|n| n.name.as_str()),
        Some("a")
    );
    let ring = table.rings().remove(&0).unwrap_or_default();
    assert_eq!(ring.shadowed().len(), 1);
}

#[test]
fn moves_between_tables_follow_names_not_positions() {
    let before = RouteTable::new(
        1,
        vec![node("a", 0, &[100], true, 0), node("c", 0, &[200], true, 0)],
    );
    // "b" sorts between "a" and "c", shifting c's position.
    let mut after = before.clone();
    after.merge(&RouteTable::new(2, vec![node("b", 0, &[150], true, 0)]));
    let moves = before.moves_to(&after, 0);
    assert_eq!(moves.len(), 1);
    let m = &moves[0];
    assert_eq!((m.from.as_str(), m.to.as_str()), ("c", "b"));
    assert_eq!((m.range.start_excl, m.range.end_incl), (at(100), at(150)));
    assert!(before.moves_to(&after, 1).is_empty());
}
