//! [`RouteTable`]: every node of the cluster with its address, group, ring IDs and
//! liveness — the `ROUTE_LIST` reply's JSON payload — and the merge rule gossip uses.
//!
//! Merging keeps, per node name, the entry with the highest incarnation; at equal
//! incarnation a dead entry beats a leaving one, which beats an alive one, and any remaining tie is broken by the
//! other fields, so merge is a join on a total order: commutative, associative and
//! idempotent, and every node that has seen the same tables holds the same table.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{moved_ranges, GroupRing, KeyRange, NodeIx, RingError, RingId, MAX_IDS_PER_NODE};
use crate::wire::KeyId;

/// Most nodes a route table may list.
pub const MAX_ROUTE_NODES: u32 = 4096;

/// One node as the cluster knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteNode {
    /// The node's unique name; the key entries are merged on.
    pub name: String,
    /// Where to connect, `host:port`.
    pub addr: String,
    /// The replica group the node belongs to.
    pub group: u32,
    /// The node's ring IDs in its group.
    pub ids: Vec<RingId>,
    /// False once the node is known to have failed or left, or while it is leaving: it owns
    /// nothing.
    pub alive: bool,
    /// Not alive but still serving: the node is handing its ranges to the rest of its group
    /// (a drain). It owns nothing, but reads of the keys it has not handed over yet are
    /// asked of it (`docs/PROTOCOL.md` §15.10). Meaningless while `alive`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub leaving: bool,
    /// Raised by the node itself whenever it changes its entry (or refutes a report of its
    /// death); orders entries of the same name.
    pub incarnation: u64,
}

impl RouteNode {
    /// How far past alive the entry is, the tie-breaker at equal incarnation: 0 alive,
    /// 1 leaving, 2 dead (failed or left).
    pub fn liveness_rank(&self) -> u8 {
        match (self.alive, self.leaving) {
            (true, _) => 0,
            (false, true) => 1,
            (false, false) => 2,
        }
    }

    /// Whether the node still answers for keys it held: alive, or leaving (handing over).
    pub fn reachable(&self) -> bool {
        self.alive || self.leaving
    }

    /// Whether the node left the cluster after handing every range over (a finished drain):
    /// its own entry then says dead with no IDs, at an incarnation past the one it left at.
    /// A node that died (SWIM's verdict, or a crash while leaving) keeps its IDs.
    pub fn has_left(&self) -> bool {
        !self.alive && !self.leaving && self.ids.is_empty()
    }

    /// The merge order of entries with the same name (see the module docs).
    fn precedence(&self) -> (u64, u8, &str, u32, &[RingId], bool) {
        (
            self.incarnation,
            self.liveness_rank(),
            &self.addr,
            self.group,
            &self.ids,
            self.leaving,
        )
    }
}

/// A key range that changes owner between two route tables, owners by name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteMove {
    /// The keys that move.
    pub range: KeyRange,
    /// Their owner in the older table.
    pub from: String,
    /// Their owner in the newer table.
    pub to: String,
}

/// The cluster's membership. In normal form (after [`RouteTable::new`],
/// [`RouteTable::merge`], [`RouteTable::normalize`] or [`RouteTable::from_json`]) `nodes`
/// is sorted by name with one entry per name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTable {
    /// The highest table version either side of every merge had seen; a hint for clients
    /// deciding whether to refetch. Entries are ordered by their incarnations, not by this.
    pub version: u64,
    /// The nodes, sorted by name in normal form.
    pub nodes: Vec<RouteNode>,
}

impl RouteTable {
    /// A table in normal form.
    pub fn new(version: u64, nodes: Vec<RouteNode>) -> RouteTable {
        RouteTable {
            version,
            nodes: newest_per_name(nodes),
        }
    }

    /// Sorts the nodes by name, keeping the winning entry of each name.
    pub fn normalize(&mut self) {
        self.nodes = newest_per_name(std::mem::take(&mut self.nodes));
    }

    /// Takes in what `other` knows: per name the winning entry, the higher version.
    pub fn merge(&mut self, other: &RouteTable) {
        let mine = std::mem::take(&mut self.nodes);
        self.nodes = newest_per_name(mine.into_iter().chain(other.nodes.iter().cloned()));
        self.version = self.version.max(other.version);
    }

    /// The entry named `name`.
    pub fn node(&self, name: &str) -> Option<&RouteNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The ring of every group with at least one alive node, nodes numbered by their
    /// position in `nodes` ([`NodeIx`]`(i)` is `nodes[i]`). Dead nodes own nothing. The
    /// numbering changes when a node is added before others, so compare rings of two tables
    /// with [`RouteTable::moves_to`], not by their indices.
    pub fn rings(&self) -> BTreeMap<u32, GroupRing> {
        self.rings_numbered(|ix, _| Some(ix))
    }

    /// The alive node owning `key` in `group`: the same answer as
    /// `self.rings()[&group].owner(key)`, by one pass over the table.
    pub fn owner(&self, group: u32, key: &KeyId) -> Option<&RouteNode> {
        self.owner_skipping(group, key, |_| false)
    }

    /// The node that would own `key` in `group` if the alive nodes for which `skip` is true
    /// were gone too: the next node clockwise (hinted hand-off, `docs/PROTOCOL.md` §9.2).
    pub fn owner_skipping(
        &self,
        group: u32,
        key: &KeyId,
        skip: impl Fn(&RouteNode) -> bool,
    ) -> Option<&RouteNode> {
        let key = RingId(*key);
        let mut successor: Option<(RingId, u32)> = None;
        let mut smallest: Option<(RingId, u32)> = None;
        for (ix, node) in (0u32..).zip(&self.nodes) {
            if !node.alive || node.group != group || skip(node) {
                continue;
            }
            for id in &node.ids {
                if *id >= key {
                    keep_min(&mut successor, (*id, ix));
                }
                keep_min(&mut smallest, (*id, ix));
            }
        }
        let (_, ix) = successor.or(smallest)?;
        self.nodes.get(usize::try_from(ix).ok()?)
    }

    /// The ranges of `group` whose owner differs between this table and `after`, by name.
    pub fn moves_to(&self, after: &RouteTable, group: u32) -> Vec<RouteMove> {
        let names: Vec<&str> = self
            .nodes
            .iter()
            .chain(&after.nodes)
            .map(|n| n.name.as_str())
            .collect::<BTreeSet<&str>>()
            .into_iter()
            .collect();
        let number = |_: u32, node: &RouteNode| {
            let at = names.binary_search(&node.name.as_str()).ok()?;
            u32::try_from(at).ok()
        };
        let empty = GroupRing::default();
        let (before_rings, after_rings) =
            (self.rings_numbered(number), after.rings_numbered(number));
        let before = before_rings.get(&group).unwrap_or(&empty);
        let after = after_rings.get(&group).unwrap_or(&empty);
        let name = |ix: NodeIx| {
            let at = usize::try_from(ix.0).ok();
            at.and_then(|at| names.get(at)).map(|n| n.to_string())
        };
        moved_ranges(before, after)
            .into_iter()
            .filter_map(|m| {
                Some(RouteMove {
                    range: m.range,
                    from: name(m.from)?,
                    to: name(m.to)?,
                })
            })
            .collect()
    }

    /// The rings of the alive nodes, numbered by `number(position, node)` (`None` leaves
    /// the node out).
    fn rings_numbered<F>(&self, number: F) -> BTreeMap<u32, GroupRing>
    where
        F: Fn(u32, &RouteNode) -> Option<u32>,
    {
        let mut groups: BTreeMap<u32, Vec<(NodeIx, &[RingId])>> = BTreeMap::new();
        for (ix, node) in (0u32..).zip(&self.nodes) {
            if let (true, Some(num)) = (node.alive, number(ix, node)) {
                let entry = (NodeIx(num), node.ids.as_slice());
                groups.entry(node.group).or_default().push(entry);
            }
        }
        groups
            .into_iter()
            .map(|(group, nodes)| {
                let nodes = nodes.into_iter().map(|(ix, ids)| (ix, ids.iter().copied()));
                (group, GroupRing::new(nodes))
            })
            .collect()
    }

    /// The JSON form (`docs/PROTOCOL.md`, "Ring and ownership").
    pub fn to_json(&self) -> Result<String, RingError> {
        serde_json::to_string(self).map_err(|e| RingError::BadRouteTable {
            message: e.to_string(),
        })
    }

    /// Parses the JSON form, checks the limits ([`MAX_ROUTE_NODES`],
    /// [`MAX_IDS_PER_NODE`]) and returns the table in normal form. Unknown fields are
    /// ignored, so later versions may add some.
    pub fn from_json(text: &str) -> Result<RouteTable, RingError> {
        let table: RouteTable =
            serde_json::from_str(text).map_err(|e| RingError::BadRouteTable {
                message: e.to_string(),
            })?;
        let count = u64::try_from(table.nodes.len()).unwrap_or(u64::MAX);
        if count > u64::from(MAX_ROUTE_NODES) {
            return Err(RingError::TooManyNodes {
                count,
                max: MAX_ROUTE_NODES,
            });
        }
        if let Some(node) = table
            .nodes
            .iter()
            .find(|n| n.ids.len() > MAX_IDS_PER_NODE as usize)
        {
            return Err(RingError::TooManyIds {
                count: u64::try_from(node.ids.len()).unwrap_or(u64::MAX),
                max: MAX_IDS_PER_NODE,
            });
        }
        Ok(RouteTable::new(table.version, table.nodes))
    }
}

/// The nodes sorted by name, one winning entry per name.
fn newest_per_name(nodes: impl IntoIterator<Item = RouteNode>) -> Vec<RouteNode> {
    let mut by_name: BTreeMap<String, RouteNode> = BTreeMap::new();
    for node in nodes {
        match by_name.entry(node.name.clone()) {
            Entry::Vacant(slot) => {
                slot.insert(node);
            }
            Entry::Occupied(mut slot) => {
                if node.precedence() > slot.get().precedence() {
                    slot.insert(node);
                }
            }
        }
    }
    by_name.into_values().collect()
}

/// Replaces `slot` with `candidate` if it is empty or larger.
fn keep_min<T: Ord>(slot: &mut Option<T>, candidate: T) {
    match slot {
        Some(held) if *held <= candidate => {}
        _ => *slot = Some(candidate),
    }
}
