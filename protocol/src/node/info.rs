//! What a node knows about itself: name, address, group, counters; the STAT and ROUTE_LIST
//! replies and the handshake answer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ringblob_backends::Backend;
use serde_json::json;

use crate::wire::LeaveAsk;

/// Counters a node keeps.
#[derive(Default)]
pub struct Counters {
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_refused: AtomicU64,
    pub requests: AtomicU64,
    pub bad_frames: AtomicU64,
    /// Requests refused `UNAUTHORIZED` (no key, role or namespace).
    pub unauthorized: AtomicU64,
    /// Requests sent on to the key's owner.
    pub forwarded: AtomicU64,
    /// Reads of keys not yet handed over, asked of their previous owner.
    pub handover_reads: AtomicU64,
    /// Hinted changes taken here for an owner that did not answer (`hints.rs`).
    pub hinted: AtomicU64,
    /// Keys whose hinted changes were handed to their owner.
    pub hints_replayed: AtomicU64,
    /// Keys with hinted changes held here now, for their owners.
    pub hints_held: AtomicU64,
    /// Requests served inline on the runtime thread (`dispatch::Serving::Inline`).
    pub served_inline: AtomicU64,
    /// Inline batches that met a request refused for waiting (a disk read, a buffer to
    /// write out, a held key lock): it and the rest went to the blocking pool.
    pub inline_refused: AtomicU64,
    /// Single-threaded runtimes serving client connections (`lanes.rs`; 0: the shared
    /// workers), set when the node starts serving.
    pub connection_lanes: AtomicU64,
}

/// Identity and counters of a node.
pub struct NodeInfo {
    pub name: String,
    pub addr: SocketAddr,
    pub group: u32,
    pub started: Instant,
    pub counters: Counters,
    /// Starts a defragmentation in the background (DEFRAG without WAIT).
    pub start_defrag: Option<Box<dyn Fn() + Send + Sync>>,
    /// The cluster's route table (`None`: a single node, not in a cluster).
    pub routes: Option<super::membership::Routes>,
    /// Data movement after ring changes (`None` outside a cluster).
    pub moves: Option<super::membership::MoveStatusCell>,
    /// Repair between groups (`None` outside a cluster).
    pub repair: Option<std::sync::Arc<super::repairer::RepairCounters>>,
    /// Records older than a quarantine are not served (`quarantine.rs`).
    pub quarantine: std::sync::Arc<super::quarantine::Quarantine>,
    /// Asks the cluster shell to leave (`LEAVE`; `None` outside a cluster).
    pub leave: Option<tokio::sync::mpsc::UnboundedSender<LeaveAsk>>,
    /// The ranges this node took over recently (read through; `ITERATE`'s `MOVING`).
    pub handovers: std::sync::Arc<super::handover::Handovers>,
    /// Subscriptions (`WATCH`, `subscriptions.rs`).
    pub watches: std::sync::Arc<super::subscriptions::WatchHub>,
    /// The current route table with its rings, built once per table (`routing`). A leaf
    /// lock, held only to compare and clone.
    routing: parking_lot::Mutex<Option<crate::ring::Routing>>,
}

fn load(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// The process's peak resident set size (VmHWM), 0 where /proc is unavailable.
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kib| kib.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// CPU time this process has used, user and system, in seconds (`/proc/self/stat` fields
/// 14 and 15, in the kernel's `USER_HZ` = 100 ticks per second).
pub fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is parenthesized and may contain spaces.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}

impl NodeInfo {
    pub fn new(name: String, addr: SocketAddr, group: u32) -> Self {
        NodeInfo {
            name,
            addr,
            group,
            started: Instant::now(),
            counters: Counters::default(),
            start_defrag: None,
            routes: None,
            moves: None,
            repair: None,
            quarantine: std::sync::Arc::default(),
            leave: None,
            watches: std::sync::Arc::default(),
            handovers: std::sync::Arc::default(),
            routing: parking_lot::Mutex::new(None),
        }
    }

    /// The cluster part of STAT: this node's view of its peers (`null` outside a cluster).
    pub fn cluster_json(&self) -> serde_json::Value {
        let Some(t) = self.route_table() else {
            return serde_json::Value::Null;
        };
        let alive = t.nodes.iter().filter(|n| n.alive).count();
        let groups: std::collections::BTreeSet<u32> = t.nodes.iter().map(|n| n.group).collect();
        json!({
            "route_version": t.version,
            "nodes": t.nodes.len(),
            "nodes_alive": alive,
            "groups": groups,
            "rebalancing": self.moves.as_ref().map(|m| m.lock().clone()),
            "repair": self.repair.as_ref().map(|r| json!({
                "rounds": load(&r.rounds),
                "ranges_in_sync": load(&r.ranges_in_sync),
                "records_compared": load(&r.records_compared),
                "records_pushed": load(&r.records_pushed),
                "removes_pushed": load(&r.removes_pushed),
                "quarantine_dropped": load(&r.quarantine_dropped),
                "failures": load(&r.failures),
            })),
        })
    }

    /// The current route table, if the node is in a cluster.
    pub fn route_table(&self) -> Option<std::sync::Arc<crate::ring::RouteTable>> {
        self.routes.as_ref().and_then(|r| r.borrow().clone())
    }

    /// The current route table with its rings (for routing requests), if in a cluster.
    pub fn routing(&self) -> Option<crate::ring::Routing> {
        let table = self.route_table()?;
        let mut cached = self.routing.lock();
        match cached.as_ref() {
            Some(r) if r.is_of(&table) => Some(r.clone()),
            _ => {
                let r = crate::ring::Routing::new(table);
                *cached = Some(r.clone());
                Some(r)
            }
        }
    }

    /// STAT: a JSON object.
    pub fn stat_json(&self, b: &dyn Backend) -> String {
        let backend = match b.stats() {
            Ok(s) => serde_json::to_value(s).unwrap_or_default(),
            Err(e) => json!({ "error": e.to_string() }),
        };
        let c = &self.counters;
        json!({
            "node": self.name,
            "addr": self.addr.to_string(),
            "group": self.group,
            "uptime_secs": self.started.elapsed().as_secs(),
            "connections_open": load(&c.connections_open),
            "connections_total": load(&c.connections_total),
            "connections_refused": load(&c.connections_refused),
            "requests": load(&c.requests),
            "bad_frames": load(&c.bad_frames),
            "unauthorized": load(&c.unauthorized),
            "forwarded": load(&c.forwarded),
            "handover_reads": load(&c.handover_reads),
            "served_inline": load(&c.served_inline),
            "inline_refused": load(&c.inline_refused),
            "connection_lanes": load(&c.connection_lanes),
            "quarantined_before_ns": self.quarantine.before(),
            "quarantined": self.quarantine.before().is_some(),
            "hints": {
                "taken": load(&c.hinted),
                "replayed": load(&c.hints_replayed),
                "held": load(&c.hints_held),
            },
            "watches": self.watches.stat_json(),
            "peak_rss_bytes": peak_rss_bytes(),
            "cpu_secs": cpu_secs(),
            "backend": backend,
            "cluster": self.cluster_json(),
        })
        .to_string()
    }

    /// LEAVE: passes `ask` to the shell (unless it only asks for the status), then says
    /// where the leave stands: `state` none, requested, leaving or left; transfers still
    /// pending. A cancel takes effect at once here (`state` none), and is refused once the
    /// node has left.
    pub fn leave_json(&self, ask: LeaveAsk) -> Result<String, String> {
        let Some(tx) = &self.leave else {
            return Err("this node is not in a cluster: there is nothing to leave".into());
        };
        if ask == LeaveAsk::Cancel {
            if let Some(moves) = &self.moves {
                let mut st = moves.lock();
                if st.leave == Some("left") {
                    return Err("the node has already left the cluster: nothing to cancel; \
                                restart it to join again"
                        .into());
                }
                st.leave = None;
                st.stop_when_left = false;
            }
        }
        if ask != LeaveAsk::Status && tx.send(ask).is_err() {
            return Err("the cluster shell has stopped".into());
        }
        let st = self
            .moves
            .as_ref()
            .map(|m| m.lock().clone())
            .unwrap_or_default();
        let state = match (st.leave, ask) {
            (Some(s), _) => s,
            (None, LeaveAsk::Status | LeaveAsk::Cancel) => "none",
            (None, LeaveAsk::Drain | LeaveAsk::Stop) => "requested",
        };
        Ok(json!({
            "node": self.name,
            "state": state,
            "stop_when_left": st.stop_when_left || ask == LeaveAsk::Stop,
            "transfers_pending": st.pending.len(),
            // A fold from +0.0: `Sum` of no f64 is -0.0, shown as "-0.0 %".
            "fraction_left": st.pending.iter().fold(0.0, |sum, p| sum + p.fraction_left),
            "records_sent": st.records_sent,
            "bytes_sent": st.bytes_sent,
            // Why the last failed transfer failed, while no transfer has moved on since
            // (a drain stalled on a full disk says so here).
            "last_error": st.last_failure,
        })
        .to_string())
    }

    /// ROUTE_LIST: the route table (`docs/PROTOCOL.md` §15.5). A node outside a cluster is
    /// a table of itself alone, with no ring IDs: it owns its group's whole ring.
    pub fn routes_json(&self) -> String {
        if let Some(text) = self.route_table().and_then(|t| t.to_json().ok()) {
            return text;
        }
        json!({
            "version": 0,
            "nodes": [{
                "name": self.name,
                "addr": self.addr.to_string(),
                "group": self.group,
                "ids": [],
                "alive": true,
                "incarnation": 0,
            }],
        })
        .to_string()
    }
}
