//! The invariants a run must end with, each checked on the nodes' real backends.

use std::collections::{BTreeMap, BTreeSet};

use ringblob_backends::{Backend, IterRequest, MAX_ITER_LIMIT};
use ringblob_engine::Key;
use ringblob_protocol::cluster::Phase;
use ringblob_protocol::ring::{RingId, RouteTable};
use ringblob_protocol::wire::KeyId;

use super::world::{value_of, Acked, Sim, SimNode, GROUPS, IDS_PER_NODE, QUORUM};

/// What a node knows of a key: its value's version, and the newest remove it remembers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Known {
    pub value: Option<u64>,
    pub removed: Option<u64>,
}

impl Known {
    /// The newest version of either kind.
    pub fn newest(&self) -> Option<u64> {
        self.value.max(self.removed)
    }
}

pub fn known(b: &dyn Backend, key: &KeyId) -> Known {
    let value = b.lookup_column(&Key(*key), 0).ok().map(|m| m.timestamp_ns);
    let removed = b.removes_in(&Key(*key), &Key(*key)).ok().and_then(|rs| {
        rs.iter()
            .filter(|r| r.column == 0)
            .map(|r| r.timestamp_ns)
            .max()
    });
    Known { value, removed }
}

pub fn live_tables(sim: &Sim) -> Vec<(&SimNode, &RouteTable)> {
    sim.nodes
        .iter()
        .filter_map(|n| n.cluster.as_ref().map(|c| (n, c.route_table())))
        .collect()
}

/// Every live node holds the same nodes (versions may differ), alive exactly when live.
pub fn tables_agree(sim: &Sim) -> bool {
    let tables = live_tables(sim);
    let Some((_, first)) = tables.first() else {
        return false;
    };
    let same = tables.iter().all(|(_, t)| t.nodes == first.nodes);
    let alive: BTreeSet<&str> = first
        .nodes
        .iter()
        .filter(|n| n.alive)
        .map(|n| n.name.as_str())
        .collect();
    let live: BTreeSet<&str> = tables.iter().map(|(n, _)| n.name.as_str()).collect();
    same && alive == live
}

pub fn table_disagreement(sim: &Sim) -> String {
    let tables = live_tables(sim);
    let distinct: BTreeSet<Vec<(String, u64, bool)>> = tables
        .iter()
        .map(|(_, t)| {
            t.nodes
                .iter()
                .map(|n| (n.name.clone(), n.incarnation, n.alive))
                .collect()
        })
        .collect();
    format!(
        "{} live nodes, {} distinct tables",
        tables.len(),
        distinct.len()
    )
}

pub fn movement_done(sim: &Sim) -> bool {
    sim.nodes.iter().all(|n| {
        n.cluster
            .as_ref()
            .is_none_or(|c| c.transfers().is_empty() && c.phase() != Phase::Leaving)
    })
}

pub fn check_tables(sim: &Sim) -> Result<(), String> {
    for (node, table) in live_tables(sim) {
        let ids = table.node(&node.name).map(|n| n.ids.len()).unwrap_or(0);
        if ids != IDS_PER_NODE as usize {
            return Err(format!("{} holds {ids} ids in its table", node.name));
        }
    }
    Ok(())
}

/// The final table (all live nodes agree on it).
pub fn final_table(sim: &Sim) -> Result<RouteTable, String> {
    live_tables(sim)
        .first()
        .map(|(_, t)| (*t).clone())
        .ok_or_else(|| "no live node".to_string())
}

/// The running node called `name`.
pub fn node_named<'a>(sim: &'a Sim, name: &str) -> Option<&'a SimNode> {
    sim.live_node(name).and_then(|i| sim.nodes.get(i))
}

/// Every value a live node's backend holds, with its version.
fn values_of(n: &SimNode) -> Result<Vec<(KeyId, u64, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut req = IterRequest::all(MAX_ITER_LIMIT);
    loop {
        let page = n.backend.iterate(&req).map_err(|e| e.to_string())?;
        for m in &page.entries {
            let value = n
                .backend
                .read_column(&m.key, m.column, ringblob_engine::Range::all())
                .map_err(|e| format!("{} reading {}: {e}", n.name, m.key))?;
            out.push((m.key.0, m.timestamp_ns, value));
        }
        match page.next_after {
            Some(p) => {
                req.after = Some(p);
                req.from = p.key;
            }
            None => return Ok(out),
        }
    }
}

/// Every value a live node holds is on its group's owner, at least as new (movement lost
/// nothing), and holds the bytes written at its version (nothing was mixed up).
pub fn check_movement(sim: &Sim) -> Result<(), String> {
    let table = final_table(sim)?;
    for node in sim.nodes.iter().filter(|n| n.cluster.is_some()) {
        for (key, ts, value) in values_of(node)? {
            if value != value_of(ts) {
                return Err(format!(
                    "{} holds {} @{ts} with bytes of another version",
                    node.name,
                    RingId(key)
                ));
            }
            let owner = table
                .owner(node.group, &key)
                .and_then(|o| node_named(sim, &o.name))
                .ok_or_else(|| format!("group {} has no live owner", node.group))?;
            let held = known(owner.backend.as_ref(), &key);
            if held.newest().is_none_or(|t| t < ts) {
                return Err(format!(
                    "movement lost a record: {} holds {} @{ts}, its owner {} has {held:?}",
                    node.name,
                    RingId(key),
                    owner.name
                ));
            }
        }
    }
    Ok(())
}

/// How many groups' owners know `key` at `ts` or newer (a value or a remove).
fn holders(sim: &Sim, table: &RouteTable, key: &KeyId, ts: u64) -> usize {
    (0..GROUPS)
        .filter_map(|g| table.owner(g, key))
        .filter_map(|o| node_named(sim, &o.name))
        .filter(|n| {
            known(n.backend.as_ref(), key)
                .newest()
                .is_some_and(|t| t >= ts)
        })
        .count()
}

/// What each group's owner knows of `key`, for failure messages.
fn owners_view(sim: &Sim, table: &RouteTable, key: &KeyId) -> String {
    let mut out = Vec::new();
    for g in 0..GROUPS {
        let owner = table.owner(g, key).map(|o| o.name.clone());
        let held = owner
            .as_deref()
            .and_then(|o| node_named(sim, o))
            .map(|n| known(n.backend.as_ref(), key));
        out.push(format!("group {g}: {owner:?} {held:?}"));
    }
    out.join("; ")
}

/// Every acknowledged write and remove is known at quorum by the owners.
pub fn check_quorum(sim: &Sim) -> Result<(), String> {
    let table = final_table(sim)?;
    for (key, acked) in &sim.acked {
        let found = holders(sim, &table, key, acked.ts);
        if found < QUORUM {
            return Err(format!(
                "acknowledged {acked:?} of {} is on {found} owners, quorum is {QUORUM}",
                RingId(*key)
            ));
        }
    }
    Ok(())
}

/// Before repair: the owner of every group that acknowledged a write or remove knows it (or
/// something newer) — movement carried every acknowledged change to its group's new owner.
pub fn check_acking_groups(sim: &Sim) -> Result<(), String> {
    let table = final_table(sim)?;
    for (key, acked) in &sim.acked {
        for g in (0..GROUPS).filter(|g| acked.groups & (1 << g) != 0) {
            let owner = table
                .owner(g, key)
                .and_then(|o| node_named(sim, &o.name))
                .ok_or_else(|| format!("group {g} has no live owner"))?;
            let held = known(owner.backend.as_ref(), key);
            if held.newest().is_none_or(|t| t < acked.ts) {
                return Err(format!(
                    "group {g} acknowledged {acked:?} of {}, but its owner {} has {held:?}",
                    RingId(*key),
                    owner.name
                ));
            }
        }
    }
    Ok(())
}

/// After repair, every group's owner answers every acknowledged operation or something
/// newer: for a write, its value at that version or newer, or nothing if a newer remove of
/// the key is known; for a remove, no value older than it. (Repair compares values: a group
/// that missed a remove of a key nobody holds any more is not told, and needs not be — it
/// answers the key as absent either way.)
pub fn check_every_owner(sim: &Sim) -> Result<(), String> {
    let table = final_table(sim)?;
    for (key, acked) in &sim.acked {
        let owners: Vec<Known> = (0..GROUPS)
            .filter_map(|g| table.owner(g, key))
            .filter_map(|o| node_named(sim, &o.name))
            .map(|n| known(n.backend.as_ref(), key))
            .collect();
        let removed_later = owners.iter().filter_map(|k| k.removed).max();
        let answers = |k: &Known| match (k.value, acked.removed) {
            (Some(v), _) => v >= acked.ts && (v > acked.ts || !acked.removed),
            (None, true) => true,
            (None, false) => removed_later.is_some_and(|r| r > acked.ts),
        };
        let found = owners.iter().filter(|k| answers(k)).count();
        if found != GROUPS as usize {
            return Err(format!(
                "after repair, {acked:?} of {} is answered by {found} of {GROUPS} owners: {}",
                RingId(*key),
                owners_view(sim, &table, key)
            ));
        }
    }
    Ok(())
}

/// No live node holds a value older than an acknowledged remove of its key.
pub fn check_removed_stay_removed(sim: &Sim) -> Result<(), String> {
    for node in sim.nodes.iter().filter(|n| n.cluster.is_some()) {
        for (key, ts, _) in values_of(node)? {
            let Some(acked) = sim.acked.get(&key) else {
                continue;
            };
            if acked.removed && ts < acked.ts {
                return Err(format!(
                    "{} holds {} @{ts}, removed at {} (acknowledged)",
                    node.name,
                    RingId(key),
                    acked.ts
                ));
            }
        }
    }
    Ok(())
}

/// Last writer wins by the coordinators' clocks. With every clock within `S` of true time,
/// an operation issued more than `2·S` after an earlier one on the same key was
/// acknowledged gets a newer version, so it (or something newer) is what reads return.
/// Checks that for every such pair; returns how many pairs closer than that were ordered
/// by the clocks against their real-time order (allowed, and what skew costs).
pub fn check_real_time_order(sim: &Sim) -> Result<u64, String> {
    let window = 2 * sim.max_skew_ms;
    let mut by_key: BTreeMap<KeyId, Vec<Acked>> = BTreeMap::new();
    for (key, op) in &sim.history {
        by_key.entry(*key).or_default().push(*op);
    }
    let mut reordered = 0;
    for (key, ops) in &by_key {
        for a in ops {
            for b in ops.iter().filter(|b| b.issued_ms > a.acked_ms) {
                if b.ts > a.ts {
                    continue;
                }
                if b.issued_ms > a.acked_ms + window {
                    return Err(format!(
                        "{} : {b:?} was issued more than 2 x {} ms after {a:?} was acknowledged, \
                         yet got an older version",
                        RingId(*key),
                        sim.max_skew_ms
                    ));
                }
                reordered += 1;
            }
        }
    }
    Ok(reordered)
}
