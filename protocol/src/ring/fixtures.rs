//! Small rings for tests: positions by their first byte, route-table nodes by name.

use super::{RingId, RouteNode, RouteTable};

/// The ring position whose first byte is `v` (the rest zero).
pub(crate) fn at(v: u8) -> RingId {
    let mut id = RingId::MIN;
    id.0[0] = v;
    id
}

/// An alive node of group 1 named `name` (address `name:1`) holding the IDs `at(ids…)`.
pub(crate) fn node(name: &str, ids: &[u8]) -> RouteNode {
    RouteNode {
        name: name.into(),
        addr: format!("{name}:1"),
        group: 1,
        ids: ids.iter().map(|v| at(*v)).collect(),
        alive: true,
        leaving: false,
        incarnation: 0,
    }
}

/// Node `c` joins `a` (ID 0x80) and `b` (ID 0xff) with ID 0x40, taking (0xff…, 0x40…]
/// from `a`: the tables before and after.
pub(crate) fn c_joins() -> (RouteTable, RouteTable) {
    let before = RouteTable::new(1, vec![node("a", &[0x80]), node("b", &[0xff])]);
    let after = RouteTable::new(
        2,
        vec![node("a", &[0x80]), node("b", &[0xff]), node("c", &[0x40])],
    );
    (before, after)
}
