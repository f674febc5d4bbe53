//! Replicated reads during the chaos, answered as nodes answer them: the owner a client's
//! table names serves from its backend, and a key it has nothing for in a range it took
//! over recently is read through from the previous owner (the shipping
//! [`IncomingRanges`](ringblob_protocol::cluster::IncomingRanges) decisions), or is
//! `UNAVAILABLE` if that owner is down. The read weighs the groups' answers with
//! [`ReplicatedRead`]. While data moves:
//! - writes go to 2 of 3 groups and reads ask all 3, so a read that hears from 2 groups must
//!   see every write acknowledged before it was issued (a run fails otherwise);
//! - a group that acknowledged a write and answers something older later is counted
//!   (`group_lags`): the owner should have it, or read it through from the previous owner
//!   (chained while hops allow). It happens while route tables disagree (two nodes each
//!   believe they own a range), and when every copy is on a down node or still in a
//!   transfer from a node off the read-through chain.

use ringblob_engine::{Key, Range};
use ringblob_protocol::cluster::{GroupAnswer, ReadStep, ReadThrough, ReplicatedRead};
use ringblob_protocol::ring::RingId;
use ringblob_protocol::wire::{KeyId, MAX_FORWARD_HOPS};

use rand::Rng;

use super::reads::lookup;
use super::world::{Sim, SimNode, GROUPS, QUORUM};

impl Sim {
    /// Reads one acknowledged key at quorum now; counts it, and notes a read that heard
    /// from a quorum of groups yet answered older than an acknowledged write.
    pub fn client_read(&mut self) {
        if self.acked.is_empty() {
            return;
        }
        // Keys still on the move (in a range some transfer has yet to send) when there are
        // any: reads of those need the read-through.
        let moving = self.keys_on_the_move();
        let key = match moving.is_empty() {
            false => moving.get(self.rng.gen_range(0..moving.len())).copied(),
            true => {
                let at = self.rng.gen_range(0..self.acked.len());
                self.acked.keys().nth(at).copied()
            }
        };
        let Some((key, acked)) = key.and_then(|k| self.acked.get(&k).map(|a| (k, *a))) else {
            return;
        };
        let Some((_, table)) = self.random_table() else {
            return;
        };
        let mut answered = 0;
        let mut answers = Vec::new();
        let mut servers = Vec::new();
        for g in 0..GROUPS {
            let owner = table.owner(g, &key).map(|o| o.name.clone());
            let (answer, server) = match owner {
                Some(name) => self.node_answer(&name, &key),
                None => (GroupAnswer::Failed("no owner".into()), None),
            };
            answered += usize::from(matches!(
                answer,
                GroupAnswer::Value { .. } | GroupAnswer::Removed { .. } | GroupAnswer::NotFound(_)
            ));
            answers.push((g, answer));
            servers.push((g, server));
        }
        // Each group that acknowledged the write answers it (or something newer) whenever
        // it answers at all: a group's owner that moved on has handed it over or reads it
        // through.
        for (g, answer) in &answers {
            if acked.groups & (1 << g) == 0 {
                continue;
            }
            let behind = match answer {
                GroupAnswer::Value { timestamp_ns, .. } => *timestamp_ns < acked.ts,
                GroupAnswer::Removed { at, .. } => *at < acked.ts,
                GroupAnswer::NotFound(_) => !acked.removed,
                _ => false,
            };
            // A copy on a node that is down now (it died past its grace before handing it
            // over) comes back by repair, later; one still on its way to the owner — from a
            // node that is neither the owner nor on its read-through chain, after the range
            // moved twice and a node restarted — arrives with the transfer. Anything else
            // is a lag.
            // Whether node `n` holds the acknowledged write (or something newer).
            let holds = |n: &SimNode| {
                n.backend
                    .lookup_column(&Key(key), 0)
                    .is_ok_and(|m| m.timestamp_ns >= acked.ts)
            };
            let settled_holder = self.nodes.iter().any(|n| {
                n.group == *g
                    && n.cluster.as_ref().is_some_and(|c| {
                        !c.transfers()
                            .iter()
                            .any(|t| t.remaining().is_some_and(|r| r.contains(&key)))
                    })
                    && holds(n)
            });
            // A miss: nothing answered while a live node of the group held the write.
            let missed = behind
                && matches!(answer, GroupAnswer::NotFound(_))
                && self
                    .nodes
                    .iter()
                    .any(|n| n.group == *g && n.cluster.is_some() && holds(n));
            if missed {
                self.group_misses.push(format!(
                    "at {} ms group {g}, which acknowledged {acked:?} of {}, answered \
                     NOT_FOUND (served by {:?}) while one of its nodes held it",
                    self.now,
                    RingId(key),
                    servers.iter().find(|(s, _)| s == g).and_then(|(_, s)| *s)
                ));
            }
            if behind && !settled_holder {
                self.stats.lags_in_flight += 1;
            }
            if behind && settled_holder {
                self.group_lags.push(format!(
                    "at {} ms group {g}, which acknowledged {acked:?} of {}, answered {answer:?} \
                     (served by {:?})",
                    self.now,
                    RingId(key),
                    servers.iter().find(|(s, _)| s == g).and_then(|(_, s)| *s)
                ));
            }
        }
        if answered < QUORUM {
            return;
        }
        self.chaos_reads.0 += 1;
        let seen = self.weigh(&key, answers, &servers);
        let fine = match seen {
            Some(Seen::Value(v)) => v >= acked.ts,
            Some(Seen::Removed(at)) => at >= acked.ts,
            Some(Seen::Absent) => acked.removed,
            None => true,
        };
        if !fine {
            self.chaos_reads.1.push(format!(
                "at {} ms a read of {} answered {seen:?}, but {acked:?} was acknowledged",
                self.now,
                RingId(key)
            ));
        }
    }

    /// Acknowledged keys in the part of a range a live node has yet to hand over.
    fn keys_on_the_move(&self) -> Vec<KeyId> {
        let ranges: Vec<_> = self
            .nodes
            .iter()
            .filter_map(|n| n.cluster.as_ref())
            .flat_map(|c| c.transfers().iter().filter_map(|t| t.remaining()))
            .collect();
        if ranges.is_empty() {
            return Vec::new();
        }
        self.acked
            .keys()
            .filter(|k| ranges.iter().any(|r| r.contains(k)))
            .copied()
            .collect()
    }

    /// What the named node answers to a lookup of `key`, and which node served it. A node
    /// whose own table names another owner forwards the request there, up to
    /// `MAX_FORWARD_HOPS` times, as the node's routing (`forward::route`) does.
    fn node_answer(&self, name: &str, key: &KeyId) -> (GroupAnswer<String>, Option<usize>) {
        let Some(mut ix) = self.live_node(name) else {
            return (GroupAnswer::Failed("timeout".into()), None);
        };
        let mut hops = 0u8;
        loop {
            let owner = self.nodes.get(ix).and_then(|n| {
                let table = n.cluster.as_ref()?.route_table();
                Some(table.owner(n.group, key)?.name.clone())
            });
            let here = self.nodes.get(ix).map(|n| n.name.clone());
            match owner {
                Some(o) if Some(&o) != here.as_ref() => {
                    if hops >= MAX_FORWARD_HOPS {
                        return (GroupAnswer::Failed("too many hops".into()), None);
                    }
                    hops += 1;
                    match self.live_node(&o).filter(|p| !self.cut(ix, *p)) {
                        Some(p) => ix = p,
                        None => return (GroupAnswer::Failed("owner unreachable".into()), None),
                    }
                }
                _ => break,
            }
        }
        self.serve_or_read_through(ix, key, hops)
    }

    /// Serves a lookup at node `ix`; with nothing here, in a range taken over recently, asks
    /// the previous owner (`LOCAL`, hops + 1), which may read through in turn while the hops
    /// allow (`connection.rs`, `reads_through`).
    fn serve_or_read_through(
        &self,
        mut ix: usize,
        key: &KeyId,
        mut hops: u8,
    ) -> (GroupAnswer<String>, Option<usize>) {
        let mut local = false;
        loop {
            let Some(n) = self.nodes.get(ix) else {
                return (GroupAnswer::Failed("timeout".into()), None);
            };
            let here = lookup(n.backend.as_ref(), &Key(*key));
            if !matches!(here, GroupAnswer::NotFound(_)) || hops >= MAX_FORWARD_HOPS {
                return (here, Some(ix));
            }
            let Some(table) = n.cluster.as_ref().map(|c| c.route_table()) else {
                return (here, Some(ix));
            };
            // The owner reads through to the previous owner; a node asked with `LOCAL` (a
            // read through, chained) follows the data, as the node does (`reads_through`).
            let next = match local {
                false => n.incoming.previous_owner(key, table, self.now),
                true => n.incoming.holder(key, table, &n.name, self.now),
            };
            match next {
                None => return (here, Some(ix)),
                Some(ReadThrough::Down(_)) => {
                    return (GroupAnswer::Unavailable("previous owner down".into()), None)
                }
                Some(ReadThrough::Ask { name: prev, .. }) => {
                    match self.live_node(&prev).filter(|p| !self.cut(ix, *p)) {
                        Some(p) => {
                            ix = p;
                            hops += 1;
                            local = true;
                        }
                        None => {
                            let why = "previous owner unreachable".into();
                            return (GroupAnswer::Failed(why), None);
                        }
                    }
                }
            }
        }
    }

    /// The index of the running node called `name`.
    pub fn live_node(&self, name: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.name == name && n.cluster.is_some())
    }

    /// Whether a partition separates two nodes.
    fn cut(&self, a: usize, b: usize) -> bool {
        let (Some(a), Some(b)) = (self.nodes.get(a), self.nodes.get(b)) else {
            return true;
        };
        self.partition
            .as_ref()
            .is_some_and(|side| side.contains(&a.addr) != side.contains(&b.addr))
    }

    /// Runs the replicated read's decisions over the answers (no read repair here).
    fn weigh(
        &self,
        key: &KeyId,
        answers: Vec<(u32, GroupAnswer<String>)>,
        servers: &[(u32, Option<usize>)],
    ) -> Option<Seen> {
        let mut read = ReplicatedRead::new(answers);
        loop {
            match read.next_step() {
                ReadStep::ReadFrom { group } => {
                    let server = servers
                        .iter()
                        .find(|(g, _)| *g == group)
                        .and_then(|(_, s)| *s);
                    let b = server
                        .and_then(|s| self.nodes.get(s))
                        .map(|n| n.backend.clone());
                    match b.map(|b| b.read_column(&Key(*key), 0, Range::all())) {
                        Some(Ok(value)) => {
                            let done = read.read_ok(group, crc32fast::hash(&value));
                            return Some(Seen::Value(done.timestamp_ns));
                        }
                        Some(Err(e)) => read.read_failed(group, e.to_string(), false),
                        None => read.read_failed(group, "gone".into(), false),
                    }
                }
                ReadStep::Removed { at, .. } => return Some(Seen::Removed(at)),
                ReadStep::Failed(Some(e)) if e == "not found" => return Some(Seen::Absent),
                ReadStep::Failed(_) => return None,
            }
        }
    }
}

/// What a read answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Value(u64),
    Removed(u64),
    Absent,
}
