//! [`Routing`]: a route table with its rings built once, so finding a key's owner is a
//! binary search over one group's ring IDs instead of a pass over every ID in the table
//! (`RouteTable::owner`, which gives the same answers). The node builds one per table it
//! receives and routes every request of every connection with it.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{GroupRing, RouteNode, RouteTable};
use crate::wire::KeyId;

/// A route table and its rings (alive nodes only, numbered by their place in the table).
#[derive(Debug, Clone)]
pub struct Routing {
    table: Arc<RouteTable>,
    rings: Arc<BTreeMap<u32, GroupRing>>,
}

impl Routing {
    pub fn new(table: Arc<RouteTable>) -> Routing {
        let rings = Arc::new(table.rings());
        Routing { table, rings }
    }

    /// The table.
    pub fn table(&self) -> &Arc<RouteTable> {
        &self.table
    }

    /// Whether this was built from `table` (the same allocation).
    pub fn is_of(&self, table: &Arc<RouteTable>) -> bool {
        Arc::ptr_eq(&self.table, table)
    }

    /// The alive node owning `key` in `group` (as `RouteTable::owner`).
    pub fn owner(&self, group: u32, key: &KeyId) -> Option<&RouteNode> {
        let ix = self.rings.get(&group)?.owner(key)?;
        self.table.nodes.get(ix.0 as usize)
    }
}

/// Who owns a key, and the table that names the nodes: by a pass over the table
/// ([`RouteTable`], for code that holds only a table) or by its rings ([`Routing`], for
/// every request's path).
pub trait OwnerLookup {
    /// The alive node owning `key` in `group`.
    fn owner_of(&self, group: u32, key: &KeyId) -> Option<&RouteNode>;
    /// The table.
    fn route_table(&self) -> &RouteTable;
}

impl OwnerLookup for RouteTable {
    fn owner_of(&self, group: u32, key: &KeyId) -> Option<&RouteNode> {
        self.owner(group, key)
    }

    fn route_table(&self) -> &RouteTable {
        self
    }
}

impl OwnerLookup for Routing {
    fn owner_of(&self, group: u32, key: &KeyId) -> Option<&RouteNode> {
        self.owner(group, key)
    }

    fn route_table(&self) -> &RouteTable {
        &self.table
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{RingId, RouteNode};

    fn node(name: &str, group: u32, ids: &[u8], alive: bool) -> RouteNode {
        RouteNode {
            name: name.into(),
            addr: format!("{name}:1"),
            group,
            ids: ids
                .iter()
                .map(|b| {
                    let mut id = [*b; 32];
                    id[31] = b.wrapping_mul(7);
                    RingId(id)
                })
                .collect(),
            alive,
            leaving: false,
            incarnation: 1,
        }
    }

    #[test]
    fn owners_match_the_table_scan_for_every_key_and_group() {
        let table = Arc::new(RouteTable::new(
            3,
            vec![
                node("a", 1, &[10, 200, 90], true),
                node("b", 1, &[50, 150], true),
                node("c", 1, &[120, 250], false),
                node("d", 2, &[5, 128], true),
                node("e", 2, &[64], true),
                node("f", 3, &[1], false),
            ],
        ));
        let routing = Routing::new(table.clone());
        assert!(routing.is_of(&table));
        for g in 0..5 {
            for b in 0..=255u8 {
                for last in [0u8, 128, 255] {
                    let mut key = [b; 32];
                    key[31] = last;
                    let want = table.owner(g, &key).map(|n| &n.name);
                    assert_eq!(
                        routing.owner(g, &key).map(|n| &n.name),
                        want,
                        "{g} {b} {last}"
                    );
                }
            }
        }
    }
}
