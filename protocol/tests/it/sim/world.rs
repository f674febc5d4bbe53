//! The simulated world: an event queue in simulated milliseconds, a network with delays,
//! drops, duplicates and partitions, nodes that crash and restart, and clients that write
//! and remove at quorum through the route tables.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use ringblob_backends::{Backend, Error as BackendError, Removal};
use ringblob_engine::{Key, WriteOptions};
use ringblob_protocol::cluster::local::Record;
use ringblob_protocol::cluster::{
    Cluster, ClusterConfig, ClusterError, ClusterTimer, Effect, IncomingRanges, Phase, Quorum,
    Restart, TransferProgress, WriteQuorum,
};
use ringblob_protocol::ring::{RingId, RouteTable};
use ringblob_protocol::wire::KeyId;

use super::disk::{FaultSwitch, SimDisk};
use super::handover::Stream;

pub const GROUPS: u32 = 3;
pub const IDS_PER_NODE: u32 = 16;
pub const QUORUM: usize = 2;
pub const CLIENT: &str = "client";
/// How long ranges taken over are read through (the node's default `handover_read_secs`).
pub const HANDOVER_READ_MS: u64 = 6 * 3600 * 1000;
/// The column every client write stores beside the value (column 0), with the same bytes
/// and version: a remove of the key must take both, also where one of them arrives by a
/// hand-over after the remove.
pub const SECOND_COLUMN: u16 = 0xFFFE;

/// A hand-over stream's message, named so its answer finds the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamRef {
    pub node: usize,
    pub epoch: u32,
    pub transfer: u64,
    pub seq: u64,
}

/// What a hand-over stream sends to the new owner.
#[derive(Clone, Debug)]
pub enum Copied {
    Value {
        key: Key,
        column: u16,
        record: Record,
    },
    Remove(Removal),
}

/// What travels on the simulated network.
#[derive(Clone, Debug)]
pub enum Msg {
    Cluster(Vec<u8>),
    /// A client's write (or remove) of `key` at version `ts`, to group `group`'s owner.
    Write {
        req: u64,
        key: KeyId,
        ts: u64,
        group: u32,
        remove: bool,
    },
    WriteAck {
        req: u64,
        group: u32,
        ok: bool,
    },
    Copy {
        stream: StreamRef,
        copied: Copied,
    },
    /// `None`: refused (not the owner, not serving, or a backend error).
    CopyAck {
        stream: StreamRef,
        stored: Option<bool>,
    },
}

#[derive(Clone, Debug)]
pub enum Event {
    Deliver {
        from: String,
        to: String,
        msg: Msg,
    },
    Timer {
        node: usize,
        epoch: u32,
        timer: ClusterTimer,
    },
    Restart {
        node: usize,
    },
    Heal,
    /// The node's disk works again.
    DiskHeal {
        node: usize,
    },
    /// The operator cancels the node's leave (`undrain`), if it is still leaving.
    Stay {
        node: usize,
    },
}

/// What a node keeps across crashes besides its backend.
#[derive(Default)]
pub struct Disk {
    pub ids: Vec<RingId>,
    pub table: Option<RouteTable>,
    pub progress: Vec<Vec<u8>>,
}

pub struct SimNode {
    pub name: String,
    pub addr: String,
    pub group: u32,
    pub cluster: Option<Cluster>,
    /// Changes at every start and stop: timers and answers of an older life are ignored.
    pub epoch: u32,
    /// The node's store: survives crashes.
    pub backend: Arc<dyn Backend>,
    /// Makes the node's disk full or failing.
    pub faults: FaultSwitch,
    pub disk: Disk,
    pub left: bool,
    /// Running hand-over streams by transfer id (lost in a crash).
    pub streams: HashMap<u64, Stream>,
    /// No stream starts before this (after a failure, as the node's `RETRY_AFTER`).
    pub retry_at: u64,
    /// Was down while the clients wrote.
    pub missed_writes: bool,
    /// How far this node's clock is off the simulated time (ns; either way).
    pub skew_ns: i64,
    /// Ranges taken over recently, read through to their previous owner (lost in a crash,
    /// rebuilt at the start as the node does).
    pub incoming: IncomingRanges,
    /// The route table the node served last (the node's `routes` channel): the "before" of
    /// the next change.
    pub last_table: Option<RouteTable>,
}

struct PendingWrite {
    key: KeyId,
    ts: u64,
    remove: bool,
    issued_ms: u64,
    acks: WriteQuorum,
}

/// An operation acknowledged at quorum on a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acked {
    /// Its version, from the coordinating node's clock.
    pub ts: u64,
    pub removed: bool,
    /// When the client issued it and when the quorum answered (simulated ms).
    pub issued_ms: u64,
    pub acked_ms: u64,
    /// The groups that had acknowledged it when the quorum was met (bit g: group g).
    pub groups: u8,
}

/// What happened during a run.
#[derive(Debug, Default)]
pub struct Stats {
    pub crashes: u32,
    pub joins: u32,
    pub leaves: u32,
    /// Leaves cancelled before they ended (`undrain`).
    pub stays: u32,
    pub partitions: u32,
    /// Ranges whose read-through ended early: their previous owner was done.
    pub handovers_confirmed: u64,
    pub copies_stored: u64,
    pub removes_acked: u64,
    pub stream_failures: u64,
    pub duplicates: u64,
    pub disks_full: u32,
    pub disks_failing: u32,
    /// Group answers older than acknowledged while the copy was still in a transfer.
    pub lags_in_flight: u64,
}

pub struct Sim {
    pub rng: StdRng,
    pub now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Event>,
    pub nodes: Vec<SimNode>,
    by_addr: HashMap<String, usize>,
    pub drop_rate: f64,
    pub dup_rate: f64,
    pub partition: Option<BTreeSet<String>>,
    /// When nodes next ask previous owners whether their hand-overs are done.
    pub next_handover_check: u64,
    /// Reads during the chaos: (answered by a quorum, older than acknowledged).
    pub chaos_reads: (u64, Vec<String>),
    /// Groups that acknowledged a write and answered a later read with something older
    /// (`live_reads.rs`; counted, not failed).
    pub group_lags: Vec<String>,
    /// Groups that acknowledged a write and answered a later read `NOT_FOUND` while one of
    /// their live nodes held that version (in a transfer or not): the read-through chain
    /// missed the node holding the key (`live_reads.rs`).
    pub group_misses: Vec<String>,
    keys: Vec<KeyId>,
    pending: HashMap<u64, PendingWrite>,
    /// The newest acknowledged operation of each key.
    pub acked: BTreeMap<KeyId, Acked>,
    /// Every acknowledged operation, in the order of their acknowledgements.
    pub history: Vec<(KeyId, Acked)>,
    /// Real time at the start of the run (ns): simulated time 0 on a clock without skew.
    clock_base: u64,
    /// Each node's clock is off by up to this much either way (set before adding nodes).
    pub max_skew_ms: u64,
    next_req: u64,
    pub errors: Vec<String>,
    /// Test knob: the hand-over loses every 7th copy, to show the checks catch lost data.
    pub broken_movement: bool,
    pub stats: Stats,
    pub nodes_per_group: u32,
}

impl Sim {
    pub fn new(seed: u64, keys: usize) -> Sim {
        let mut rng = StdRng::seed_from_u64(seed);
        let keys = (0..keys)
            .map(|_| {
                let mut key = [0u8; 32];
                rng.fill_bytes(&mut key);
                key
            })
            .collect();
        Sim {
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            nodes: Vec::new(),
            by_addr: HashMap::new(),
            drop_rate: 0.0,
            dup_rate: 0.0,
            partition: None,
            next_handover_check: 0,
            chaos_reads: (0, Vec::new()),
            group_lags: Vec::new(),
            group_misses: Vec::new(),
            keys,
            pending: HashMap::new(),
            acked: BTreeMap::new(),
            history: Vec::new(),
            clock_base: versions_start(),
            max_skew_ms: 0,
            next_req: 0,
            errors: Vec::new(),
            broken_movement: false,
            stats: Stats::default(),
            nodes_per_group: 18,
        }
    }

    pub fn at(&mut self, delay_ms: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((self.now + delay_ms, self.seq)));
        self.events.insert(self.seq, event);
    }

    /// Runs events up to `until`; calls `tick` every 20 ms of simulated time.
    pub fn run_until(&mut self, until: u64, tick: &mut dyn FnMut(&mut Sim)) {
        let mut next_tick = self.now;
        loop {
            let next_event = self.queue.peek().map(|Reverse((t, _))| *t);
            if next_tick <= until && next_event.is_none_or(|t| next_tick <= t) {
                self.now = next_tick;
                tick(self);
                self.pump_streams();
                self.check_handovers();
                next_tick += 20;
                continue;
            }
            match self.queue.peek() {
                Some(Reverse((t, _))) if *t <= until => {}
                _ => break,
            }
            let Some(Reverse((t, seq))) = self.queue.pop() else {
                break;
            };
            self.now = t;
            if let Some(event) = self.events.remove(&seq) {
                self.handle(event);
            }
        }
        self.now = until;
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver { from, to, msg } => self.deliver(&from, &to, msg),
            Event::Timer { node, epoch, timer } => {
                if self.epoch_of(node) == Some(epoch) {
                    self.drive(node, |c| c.handle_timer(timer));
                }
            }
            Event::Restart { node } => self.restart(node),
            Event::Heal => self.partition = None,
            Event::DiskHeal { node } => self.heal_disk(node),
            Event::Stay { node } => self.stay(node),
        }
    }

    /// Cancels a leave still under way (a node that left, or is down, is not asked).
    fn stay(&mut self, node: usize) {
        let leaving = self.nodes.get(node).is_some_and(|n| {
            !n.left
                && n.cluster
                    .as_ref()
                    .is_some_and(|c| c.phase() == ringblob_protocol::cluster::Phase::Leaving)
        });
        if leaving {
            self.stats.stays += 1;
            self.drive(node, |c| c.stay());
        }
    }

    /// Makes a node's disk work again.
    pub fn heal_disk(&mut self, node: usize) {
        if let Some(n) = self.nodes.get(node) {
            let mut f = n.faults.lock();
            f.full = false;
            f.error_rate = 0.0;
        }
    }

    pub fn epoch_of(&self, node: usize) -> Option<u32> {
        self.nodes.get(node).map(|n| n.epoch)
    }

    // ---- nodes ------------------------------------------------------------------------

    fn config(&mut self, node: usize, seeds: Vec<String>) -> Option<ClusterConfig> {
        let expected = GROUPS * self.nodes_per_group;
        let n = self.nodes.get(node)?;
        let mut config = ClusterConfig::new(&n.name, &n.addr, n.group, expected);
        config.seeds = seeds;
        config.ids_per_node = IDS_PER_NODE;
        config.rng_seed = self.rng.next_u64();
        config.route_sync_interval = Duration::from_millis(300);
        Some(config)
    }

    pub fn add_node(&mut self, group: u32) -> usize {
        let ix = self.nodes.len();
        let name = format!("n{ix:03}-g{group}");
        let addr = format!("10.0.{group}.{ix}:7000");
        self.by_addr.insert(addr.clone(), ix);
        let (disk, faults) = SimDisk::new(self.rng.next_u64());
        let max_skew = i64::try_from(self.max_skew_ms).unwrap_or(0) * 1_000_000;
        let skew_ns = self.rng.gen_range(-max_skew..=max_skew);
        self.nodes.push(SimNode {
            name,
            addr,
            group,
            cluster: None,
            epoch: 0,
            backend: Arc::new(disk),
            faults,
            disk: Disk::default(),
            left: false,
            streams: HashMap::new(),
            retry_at: 0,
            missed_writes: false,
            skew_ns,
            incoming: IncomingRanges::new(HANDOVER_READ_MS),
            last_table: None,
        });
        ix
    }

    /// Seeds: up to three random live nodes.
    fn seeds(&mut self, except: usize) -> Vec<String> {
        let live: Vec<String> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| *i != except && n.cluster.is_some())
            .map(|(_, n)| n.addr.clone())
            .collect();
        let mut seeds = Vec::new();
        for _ in 0..3.min(live.len()) {
            if let Some(pick) = live.get(self.rng.gen_range(0..live.len())) {
                seeds.push(pick.clone());
            }
        }
        seeds
    }

    pub fn boot(&mut self, node: usize) {
        let seeds = self.seeds(node);
        let Some(config) = self.config(node, seeds) else {
            return;
        };
        let restart = self.nodes.get(node).map(|n| Restart {
            ids: n.disk.ids.clone(),
            table: n.disk.table.clone(),
            transfers: n
                .disk
                .progress
                .iter()
                .filter_map(|bytes| TransferProgress::decode(bytes).ok())
                .collect(),
        });
        match Cluster::start(config, restart) {
            Ok((cluster, effects)) => {
                let now = self.now;
                if let Some(n) = self.nodes.get_mut(node) {
                    // As the node: keys written while it was away are read through.
                    n.incoming = IncomingRanges::new(HANDOVER_READ_MS);
                    n.incoming.rejoined(cluster.route_table(), &n.name, now);
                    n.last_table = Some(cluster.route_table().clone());
                    n.cluster = Some(cluster);
                    n.epoch += 1;
                    n.streams.clear();
                }
                self.apply(node, effects);
            }
            Err(e) => self.errors.push(format!("starting node {node}: {e}")),
        }
    }

    pub fn crash(&mut self, node: usize, down_ms: u64) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.cluster = None;
            n.epoch += 1;
            n.streams.clear();
            n.missed_writes = true;
        }
        self.stats.crashes += 1;
        self.at(down_ms, Event::Restart { node });
    }

    pub fn restart(&mut self, node: usize) {
        let down = self
            .nodes
            .get(node)
            .is_some_and(|n| n.cluster.is_none() && !n.left);
        if down {
            self.boot(node);
        }
    }

    /// Feeds one input to a node's state machine and carries out the effects.
    pub fn drive<F>(&mut self, node: usize, input: F)
    where
        F: FnOnce(&mut Cluster) -> Result<Vec<Effect>, ClusterError>,
    {
        let Some(cluster) = self.nodes.get_mut(node).and_then(|n| n.cluster.as_mut()) else {
            return;
        };
        match input(cluster) {
            Ok(effects) => self.apply(node, effects),
            Err(e) => self.errors.push(format!("node {node}: {e}")),
        }
    }

    fn apply(&mut self, node: usize, effects: Vec<Effect>) {
        let Some(n) = self.nodes.get(node) else {
            return;
        };
        let (addr, epoch) = (n.addr.clone(), n.epoch);
        for effect in effects {
            match effect {
                Effect::Send { to, bytes } => self.send(&addr, &to, Msg::Cluster(bytes)),
                Effect::Schedule { after, timer } => {
                    let ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
                    self.at(ms, Event::Timer { node, epoch, timer });
                }
                Effect::RouteTableChanged(table) => {
                    let now = self.now;
                    if let Some(n) = self.nodes.get_mut(node) {
                        if let Some(before) = &n.last_table {
                            n.incoming.table_changed(before, &table, &n.name, now);
                        }
                        n.last_table = Some(table.clone());
                        n.disk.table = Some(table);
                    }
                }
                Effect::IdsChosen(ids) => {
                    if let Some(n) = self.nodes.get_mut(node) {
                        n.disk.ids = ids;
                    }
                }
                Effect::TransfersChanged => self.cancel_dropped_streams(node),
                Effect::Left => {
                    if let Some(n) = self.nodes.get_mut(node) {
                        n.left = true;
                        n.cluster = None;
                        n.epoch += 1;
                        n.streams.clear();
                    }
                }
                _ => {}
            }
        }
        self.persist_progress(node);
    }

    /// Stops the streams of transfers the plan no longer has (as the node's driver does).
    fn cancel_dropped_streams(&mut self, node: usize) {
        let Some(n) = self.nodes.get_mut(node) else {
            return;
        };
        let Some(cluster) = &n.cluster else {
            return;
        };
        let ids: BTreeSet<u64> = cluster.transfers().iter().map(|t| t.id).collect();
        n.streams.retain(|id, _| ids.contains(id));
    }

    /// Writes every pending transfer's progress record to the node's disk.
    fn persist_progress(&mut self, node: usize) {
        let Some(n) = self.nodes.get_mut(node) else {
            return;
        };
        if let Some(cluster) = &n.cluster {
            n.disk.progress = cluster
                .transfers()
                .iter()
                .filter_map(|t| t.progress().encode().ok())
                .collect();
        }
    }

    pub fn is_up(&self, node: usize) -> bool {
        self.nodes
            .get(node)
            .and_then(|n| n.cluster.as_ref())
            .is_some_and(|c| c.phase() == Phase::Active)
    }

    /// True if the node's own table makes it the owner of `key` in its group.
    pub fn owns(&self, node: usize, key: &KeyId) -> bool {
        let Some(n) = self.nodes.get(node) else {
            return false;
        };
        n.cluster.as_ref().is_some_and(|c| {
            c.phase() == Phase::Active
                && c.route_table()
                    .owner(n.group, key)
                    .is_some_and(|o| o.name == n.name)
        })
    }

    // ---- network ----------------------------------------------------------------------

    /// Whether a partition separates the nodes at `a` and `b`.
    pub fn cut_off(&self, a: &str, b: &str) -> bool {
        self.partition
            .as_ref()
            .is_some_and(|side| side.contains(a) != side.contains(b))
    }

    pub fn send(&mut self, from: &str, to: &str, msg: Msg) {
        if from != CLIENT && to != CLIENT && self.cut_off(from, to) {
            return;
        }
        if self.rng.gen_bool(self.drop_rate) {
            return;
        }
        let copies = match self.rng.gen_bool(self.dup_rate) {
            true => 2,
            false => 1,
        };
        self.stats.duplicates += copies - 1;
        for _ in 0..copies {
            let delay = self.rng.gen_range(1..=25);
            let (from, to) = (from.to_string(), to.to_string());
            let msg = msg.clone();
            self.at(delay, Event::Deliver { from, to, msg });
        }
    }

    fn deliver(&mut self, from: &str, to: &str, msg: Msg) {
        if to == CLIENT {
            if let Msg::WriteAck { req, group, ok } = msg {
                self.write_acked(req, group, ok);
            }
            return;
        }
        let Some(&node) = self.by_addr.get(to) else {
            return;
        };
        if self.nodes.get(node).is_none_or(|n| n.cluster.is_none()) {
            return;
        }
        match msg {
            Msg::Cluster(bytes) => self.drive(node, |c| c.handle_message(&bytes)),
            Msg::Write {
                req,
                key,
                ts,
                group,
                remove,
            } => {
                let ok = self.owns(node, &key) && self.store_client_op(node, key, ts, remove);
                self.send(to, from, Msg::WriteAck { req, group, ok });
            }
            Msg::Copy { stream, copied } => {
                let stored = self.accept(node, copied);
                self.send(to, from, Msg::CopyAck { stream, stored });
            }
            Msg::CopyAck { stream, stored } => self.copy_acked(stream, stored),
            Msg::WriteAck { .. } => {}
        }
    }

    /// A client write or remove at version `ts`, as the node stores a versioned write: an
    /// older one than what the node holds is answered as landed and superseded. A write
    /// stores the value and, beside it, [`SECOND_COLUMN`] (as an object's name record is
    /// written beside its value); a remove removes the whole key, as a client's does.
    fn store_client_op(&mut self, node: usize, key: KeyId, ts: u64, remove: bool) -> bool {
        let Some(n) = self.nodes.get(node) else {
            return false;
        };
        let opts = WriteOptions::copy_if_newer(ts);
        let done = match remove {
            true => n.backend.remove(&Key(key), opts),
            false => n
                .backend
                .write_column(&Key(key), 0, &value_of(ts), opts)
                .and_then(|_| {
                    n.backend
                        .write_column(&Key(key), SECOND_COLUMN, &value_of(ts), opts)
                })
                .map(|_| ()),
        };
        match done {
            Ok(()) | Err(BackendError::NotNewer { .. }) | Err(BackendError::NotFound(_)) => true,
            // A full or failing disk: not acknowledged.
            Err(_) => false,
        }
    }

    // ---- clients ----------------------------------------------------------------------

    /// The time on `node`'s clock (ns since the epoch), sub-millisecond digits drawn at
    /// random: two nodes' clocks never tick together.
    fn clock_of(&mut self, node: usize) -> u64 {
        let skew = self.nodes.get(node).map_or(0, |n| n.skew_ns);
        let now = self.clock_base as i128 + i128::from(self.now) * 1_000_000 + i128::from(skew);
        u64::try_from(now).unwrap_or(0) + self.rng.gen_range(0..1_000_000)
    }

    /// One client write (or, one time in five, a remove) at quorum, coordinated by a random
    /// live node: its table routes it, its clock decides the version, once.
    pub fn client_write(&mut self) {
        let Some((coordinator, table)) = self.random_table() else {
            return;
        };
        let Some(&key) = self.keys.get(self.rng.gen_range(0..self.keys.len().max(1))) else {
            return;
        };
        let remove = self.rng.gen_bool(0.2);
        let ts = self.clock_of(coordinator);
        self.next_req += 1;
        let req = self.next_req;
        for group in 0..GROUPS {
            if let Some(owner) = table.owner(group, &key) {
                let to = owner.addr.clone();
                let msg = Msg::Write {
                    req,
                    key,
                    ts,
                    group,
                    remove,
                };
                self.send(CLIENT, &to, msg);
            }
        }
        let acks = WriteQuorum::new(GROUPS as usize, Quorum::Majority);
        let write = PendingWrite {
            key,
            ts,
            remove,
            issued_ms: self.now,
            acks,
        };
        self.pending.insert(req, write);
    }

    fn write_acked(&mut self, req: u64, group: u32, ok: bool) {
        let Some(write) = self.pending.get_mut(&req) else {
            return;
        };
        if ok {
            write.acks.ack(group);
        }
        if write.acks.met() {
            let done = Acked {
                ts: write.ts,
                removed: write.remove,
                issued_ms: write.issued_ms,
                acked_ms: self.now,
                groups: write.acks.acked().fold(0u8, |m, g| m | (1 << g)),
            };
            let key = write.key;
            self.pending.remove(&req);
            self.history.push((key, done));
            self.stats.removes_acked += u64::from(done.removed);
            let best = self.acked.entry(key).or_insert(done);
            if done.ts > best.ts {
                *best = done;
            }
        }
    }

    pub fn random_table(&mut self) -> Option<(usize, RouteTable)> {
        let live: Vec<usize> = (0..self.nodes.len()).filter(|i| self.is_up(*i)).collect();
        let pick = *live.get(self.rng.gen_range(0..live.len().max(1)))?;
        let n = self.nodes.get(pick)?;
        n.cluster.as_ref().map(|c| (pick, c.route_table().clone()))
    }
}

/// Simulated time 0 on the nodes' clocks: the real time the run began (the only real time a
/// run reads). Versions only ever compare with each other, except in the backends' remove
/// retention, which counts back from the real clock: versions near it keep removes
/// remembered for the run as they are in a real cluster.
fn versions_start() -> u64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX / 2)
}

/// The bytes a client writes at version `ts`.
pub fn value_of(ts: u64) -> [u8; 8] {
    ts.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes()
}
