//! [`RepairTask`]: which ranges a node compares with which peer of another group.
//!
//! Every group holds a replica of every key. A node's ranges in its own group are cut
//! where the owner changes in each other group, so each piece has one peer to compare
//! digest trees with ([`DigestTree`](super::DigestTree)); the differing sub-ranges are then
//! copied both ways, newest timestamp winning.

use super::split::split_by_owner;
use crate::ring::{KeyRange, NodeIx, RouteTable};

/// Compare `range` with `peer` (of group `peer_group`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RepairTask {
    /// Keys owned by this node in its group and by `peer` in `peer_group`.
    pub range: KeyRange,
    /// The peer's name (its address is in the route table).
    pub peer: String,
    /// The peer's group.
    pub peer_group: u32,
}

/// The repair tasks of node `me` in `table`: its ranges, cut by every other group's owners.
pub fn repair_tasks(table: &RouteTable, me: &str) -> Vec<RepairTask> {
    let Some((ix, node)) = (0u32..).zip(&table.nodes).find(|(_, n)| n.name == me) else {
        return Vec::new();
    };
    let rings = table.rings();
    let Some(mine) = rings.get(&node.group) else {
        return Vec::new();
    };
    let mut tasks = Vec::new();
    for range in mine.ranges_of(NodeIx(ix)) {
        for (group, ring) in rings.iter().filter(|(g, _)| **g != node.group) {
            for (piece, owner) in split_by_owner(&range, ring) {
                let peer = usize::try_from(owner.0)
                    .ok()
                    .and_then(|at| table.nodes.get(at));
                if let Some(peer) = peer {
                    tasks.push(RepairTask {
                        range: piece,
                        peer: peer.name.clone(),
                        peer_group: *group,
                    });
                }
            }
        }
    }
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{RingId, RouteNode};

    fn at(v: u8) -> RingId {
        let mut id = RingId::MIN;
        if let Some(b) = id.0.first_mut() {
            *b = v;
        }
        id
    }

    fn node(name: &str, group: u32, ids: &[u8]) -> RouteNode {
        RouteNode {
            name: name.into(),
            addr: format!("{name}:1"),
            group,
            ids: ids.iter().map(|v| at(*v)).collect(),
            alive: true,
            leaving: false,
            incarnation: 1,
        }
    }

    #[test]
    fn ranges_are_cut_by_the_other_groups_owners() {
        let table = RouteTable::new(
            1,
            vec![
                node("a", 0, &[100]),
                node("b", 0, &[200]),
                node("x", 1, &[150]),
                node("y", 1, &[250]),
            ],
        );
        let tasks = repair_tasks(&table, "b");
        let got: Vec<(KeyRange, &str)> = tasks.iter().map(|t| (t.range, t.peer.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (KeyRange::new(at(100), at(150)), "x"),
                (KeyRange::new(at(150), at(200)), "y"),
            ]
        );
        assert!(repair_tasks(&table, "nobody").is_empty());
    }
}
