//! A seeded, deterministic simulation of the cluster logic (`ringblob_protocol::cluster`):
//! 54 nodes in 3 replica groups on a simulated network with delays, drops and partitions,
//! random joins, graceful leaves, crashes and restarts, and clients writing at quorum (2 of
//! the 3 groups) through the route tables. Each node's store is an in-memory map
//! key → (timestamp, value) that survives its crashes, as a disk would.
//!
//! After the chaos stops the simulator checks, each within a bounded simulated time:
//! 1. every live node holds the same route table, listing exactly the live nodes as alive;
//! 2. every transfer finished, and every record a live node holds is on its owner in its
//!    group with a timestamp at least as new (movement lost nothing);
//! 3. every acknowledged write is readable at quorum from the owners;
//! 4. after one round of repair (digest trees, then copying the differing sub-ranges),
//!    every group's owner holds every acknowledged write, including nodes that were down
//!    while it was written.
//!
//! Repair runs only at the end, so it cannot hide a movement bug from check 2. A failure
//! names its seed; `RINGBLOB_SIM_SEED=N cargo test -p ringblob-protocol --test it sim`
//! replays it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use ringblob_protocol::cluster::{
    depth_for, Cluster, ClusterConfig, ClusterTimer, DigestEntry, DigestTree, Effect, Phase,
    Restart, TransferProgress,
};
use ringblob_protocol::ring::{KeyRange, RingId, RouteTable};
use ringblob_protocol::wire::KeyId;

const GROUPS: u32 = 3;
const NODES_PER_GROUP: u32 = 18;
const IDS_PER_NODE: u32 = 16;
const KEYS: usize = 1500;
const QUORUM: usize = 2;
const BOOT_MS: u64 = 20_000;
const CHAOS_MS: u64 = 40_000;
const CONVERGE_LIMIT_MS: u64 = 60_000;
const MOVE_LIMIT_MS: u64 = 60_000;
const CHUNK_KEYS: usize = 32;
const CHUNK_RETRY_MS: u64 = 300;
const CLIENT: &str = "client";

type Stored = (u64, u64); // (timestamp, value)

/// What travels on the simulated network.
#[derive(Clone, Debug)]
enum Msg {
    Cluster(Vec<u8>),
    Write {
        req: u64,
        key: KeyId,
        ts: u64,
        group: u32,
    },
    WriteAck {
        req: u64,
        group: u32,
        ok: bool,
    },
    Chunk {
        transfer: u64,
        from: String,
        records: Vec<(KeyId, Stored)>,
        last: KeyId,
    },
    ChunkAck {
        transfer: u64,
        last: KeyId,
        ok: bool,
    },
}

#[derive(Clone, Debug)]
enum Event {
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
}

/// What a node keeps across crashes.
#[derive(Default)]
struct Disk {
    store: BTreeMap<KeyId, Stored>,
    ids: Vec<RingId>,
    table: Option<RouteTable>,
    progress: Vec<Vec<u8>>,
}

struct SimNode {
    name: String,
    addr: String,
    group: u32,
    cluster: Option<Cluster>,
    epoch: u32,
    disk: Disk,
    left: bool,
    /// transfer id → (last key of the chunk in flight, when it was sent).
    in_flight: HashMap<u64, (KeyId, u64)>,
    /// Was down while the clients wrote.
    missed_writes: bool,
}

struct PendingWrite {
    key: KeyId,
    ts: u64,
    acks: BTreeSet<u32>,
}

struct Sim {
    rng: StdRng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Event>,
    nodes: Vec<SimNode>,
    by_addr: HashMap<String, usize>,
    drop_rate: f64,
    partition: Option<BTreeSet<String>>,
    keys: Vec<KeyId>,
    pending: HashMap<u64, PendingWrite>,
    acked: BTreeMap<KeyId, u64>,
    next_ts: u64,
    errors: u64,
    broken_movement: bool,
    stats: Stats,
}

/// What happened during a run.
#[derive(Debug, Default)]
struct Stats {
    crashes: u32,
    joins: u32,
    leaves: u32,
    partitions: u32,
    chunks_stored: u64,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = StdRng::seed_from_u64(seed);
        let keys = (0..KEYS)
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
            partition: None,
            keys,
            pending: HashMap::new(),
            acked: BTreeMap::new(),
            next_ts: 1,
            errors: 0,
            broken_movement: std::env::var("RINGBLOB_SIM_BREAK_MOVEMENT").is_ok(),
            stats: Stats::default(),
        }
    }

    fn at(&mut self, delay_ms: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((self.now + delay_ms, self.seq)));
        self.events.insert(self.seq, event);
    }

    /// Runs events up to `until`; calls `tick` every 20 ms of simulated time.
    fn run_until(&mut self, until: u64, tick: &mut dyn FnMut(&mut Sim)) {
        let mut next_tick = self.now;
        loop {
            let next_event = self.queue.peek().map(|Reverse((t, _))| *t);
            if next_tick <= until && next_event.is_none_or(|t| next_tick <= t) {
                self.now = next_tick;
                tick(self);
                self.pump_transfers();
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
                let current = self.nodes.get(node).map(|n| n.epoch);
                if current == Some(epoch) {
                    self.drive(node, |c| c.handle_timer(timer));
                }
            }
            Event::Restart { node } => self.restart(node),
            Event::Heal => self.partition = None,
        }
    }

    // ---- nodes ------------------------------------------------------------------------

    fn config(&mut self, node: usize, seeds: Vec<String>) -> Option<ClusterConfig> {
        let n = self.nodes.get(node)?;
        let mut config = ClusterConfig::new(&n.name, &n.addr, n.group, GROUPS * NODES_PER_GROUP);
        config.seeds = seeds;
        config.ids_per_node = IDS_PER_NODE;
        config.rng_seed = self.rng.next_u64();
        config.route_sync_interval = Duration::from_millis(300);
        Some(config)
    }

    fn add_node(&mut self, group: u32) -> usize {
        let ix = self.nodes.len();
        let name = format!("n{ix:03}-g{group}");
        let addr = format!("10.0.{group}.{ix}:7000");
        self.by_addr.insert(addr.clone(), ix);
        self.nodes.push(SimNode {
            name,
            addr,
            group,
            cluster: None,
            epoch: 0,
            disk: Disk::default(),
            left: false,
            in_flight: HashMap::new(),
            missed_writes: false,
        });
        ix
    }

    /// Seeds: the first node and up to two random live ones.
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

    fn boot(&mut self, node: usize) {
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
                if let Some(n) = self.nodes.get_mut(node) {
                    n.cluster = Some(cluster);
                    n.epoch += 1;
                    n.in_flight.clear();
                }
                self.apply(node, effects);
            }
            Err(_) => self.errors += 1,
        }
    }

    fn crash(&mut self, node: usize, down_ms: u64) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.cluster = None;
            n.epoch += 1;
            n.missed_writes = true;
        }
        self.stats.crashes += 1;
        self.at(down_ms, Event::Restart { node });
    }

    fn restart(&mut self, node: usize) {
        let down = self
            .nodes
            .get(node)
            .is_some_and(|n| n.cluster.is_none() && !n.left);
        if down {
            self.boot(node);
        }
    }

    /// Feeds one input to a node's state machine and carries out the effects.
    fn drive<F>(&mut self, node: usize, input: F)
    where
        F: FnOnce(&mut Cluster) -> Result<Vec<Effect>, ringblob_protocol::cluster::ClusterError>,
    {
        let Some(cluster) = self.nodes.get_mut(node).and_then(|n| n.cluster.as_mut()) else {
            return;
        };
        match input(cluster) {
            Ok(effects) => self.apply(node, effects),
            Err(_) => self.errors += 1,
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
                    if let Some(n) = self.nodes.get_mut(node) {
                        n.disk.table = Some(table);
                    }
                }
                Effect::IdsChosen(ids) => {
                    if let Some(n) = self.nodes.get_mut(node) {
                        n.disk.ids = ids;
                    }
                }
                Effect::Left => {
                    if let Some(n) = self.nodes.get_mut(node) {
                        n.left = true;
                        n.cluster = None;
                        n.epoch += 1;
                    }
                }
                _ => {}
            }
        }
        self.persist_progress(node);
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

    // ---- network ----------------------------------------------------------------------

    fn send(&mut self, from: &str, to: &str, msg: Msg) {
        if let Some(side) = &self.partition {
            if from != CLIENT && to != CLIENT && side.contains(from) != side.contains(to) {
                return;
            }
        }
        if self.rng.gen_bool(self.drop_rate) {
            return;
        }
        let delay = self.rng.gen_range(1..=25);
        let (from, to) = (from.to_string(), to.to_string());
        self.at(delay, Event::Deliver { from, to, msg });
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
            } => {
                let ok = self.owns(node, &key) && self.store(node, key, (ts, value_of(ts)));
                self.send(to, from, Msg::WriteAck { req, group, ok });
            }
            Msg::Chunk {
                transfer,
                from,
                records,
                last,
            } => {
                let ok = records.iter().all(|(key, _)| self.owns(node, key));
                if ok {
                    self.stats.chunks_stored += 1;
                    for (key, stored) in records {
                        self.store(node, key, stored);
                    }
                }
                self.send(to, &from, Msg::ChunkAck { transfer, last, ok });
            }
            Msg::ChunkAck { transfer, last, ok } => self.chunk_acked(node, transfer, last, ok),
            Msg::WriteAck { .. } => {}
        }
    }

    /// True if the node's own table makes it the owner of `key` in its group.
    fn owns(&self, node: usize, key: &KeyId) -> bool {
        let Some(n) = self.nodes.get(node) else {
            return false;
        };
        let Some(cluster) = &n.cluster else {
            return false;
        };
        cluster.phase() == Phase::Active
            && cluster
                .route_table()
                .owner(n.group, key)
                .is_some_and(|o| o.name == n.name)
    }

    /// Last writer wins; true.
    fn store(&mut self, node: usize, key: KeyId, stored: Stored) -> bool {
        if let Some(n) = self.nodes.get_mut(node) {
            let slot = n.disk.store.entry(key).or_insert(stored);
            if stored.0 > slot.0 {
                *slot = stored;
            }
        }
        true
    }

    // ---- transfers --------------------------------------------------------------------

    /// Sends the next chunk of every transfer without one in flight (or whose chunk is
    /// overdue); finishes transfers with nothing left.
    fn pump_transfers(&mut self) {
        for node in 0..self.nodes.len() {
            let Some(n) = self.nodes.get(node) else {
                continue;
            };
            let Some(cluster) = &n.cluster else {
                continue;
            };
            let transfers = cluster.transfers().to_vec();
            for t in transfers {
                let busy = self
                    .nodes
                    .get(node)
                    .and_then(|n| n.in_flight.get(&t.id))
                    .is_some_and(|(_, sent)| self.now < sent + CHUNK_RETRY_MS);
                if !busy {
                    self.send_chunk(node, &t);
                }
            }
        }
    }

    fn send_chunk(&mut self, node: usize, t: &ringblob_protocol::cluster::Transfer) {
        let Some(n) = self.nodes.get(node) else {
            return;
        };
        let Some(rest) = t.remaining() else {
            return;
        };
        let records: Vec<(KeyId, Stored)> =
            keys_in(&n.disk.store, &rest).take(CHUNK_KEYS).collect();
        let Some(&(last, _)) = records.last() else {
            let id = t.id;
            self.drive(node, |c| c.transfer_done(id));
            return;
        };
        let Some(cluster) = &n.cluster else {
            return;
        };
        let Some(to) = cluster.route_table().node(&t.to).map(|o| o.addr.clone()) else {
            return;
        };
        let from = n.addr.clone();
        let records = match self.broken_movement {
            true => records.into_iter().skip(1).collect(),
            false => records,
        };
        if let Some(n) = self.nodes.get_mut(node) {
            n.in_flight.insert(t.id, (last, self.now));
        }
        let transfer = t.id;
        self.send(
            &from,
            &to,
            Msg::Chunk {
                transfer,
                from: from.clone(),
                records,
                last,
            },
        );
    }

    fn chunk_acked(&mut self, node: usize, transfer: u64, last: KeyId, ok: bool) {
        let Some(n) = self.nodes.get_mut(node) else {
            return;
        };
        if n.in_flight.get(&transfer).map(|(k, _)| *k) != Some(last) {
            return;
        }
        n.in_flight.remove(&transfer);
        if ok {
            self.drive(node, |c| c.transfer_progress(transfer, last));
        }
    }

    // ---- clients ----------------------------------------------------------------------

    /// One client write at quorum, routed by a random live node's table.
    fn client_write(&mut self) {
        let Some(table) = self.random_table() else {
            return;
        };
        let Some(&key) = self.keys.get(self.rng.gen_range(0..KEYS)) else {
            return;
        };
        let (req, ts) = (self.next_ts, self.next_ts);
        self.next_ts += 1;
        for group in 0..GROUPS {
            if let Some(owner) = table.owner(group, &key) {
                let to = owner.addr.clone();
                self.send(
                    CLIENT,
                    &to,
                    Msg::Write {
                        req,
                        key,
                        ts,
                        group,
                    },
                );
            }
        }
        let acks = BTreeSet::new();
        self.pending.insert(req, PendingWrite { key, ts, acks });
    }

    fn write_acked(&mut self, req: u64, group: u32, ok: bool) {
        let Some(write) = self.pending.get_mut(&req) else {
            return;
        };
        if ok {
            write.acks.insert(group);
        }
        if write.acks.len() >= QUORUM {
            let (key, ts) = (write.key, write.ts);
            self.pending.remove(&req);
            let best = self.acked.entry(key).or_insert(ts);
            *best = (*best).max(ts);
        }
    }

    fn random_table(&mut self) -> Option<RouteTable> {
        let live: Vec<usize> = (0..self.nodes.len()).filter(|i| self.is_up(*i)).collect();
        let pick = *live.get(self.rng.gen_range(0..live.len().max(1)))?;
        let n = self.nodes.get(pick)?;
        n.cluster.as_ref().map(|c| c.route_table().clone())
    }

    fn is_up(&self, node: usize) -> bool {
        self.nodes
            .get(node)
            .and_then(|n| n.cluster.as_ref())
            .is_some_and(|c| c.phase() == Phase::Active)
    }
}

fn value_of(ts: u64) -> u64 {
    ts.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The stored records of `range`, in the range's order.
fn keys_in<'a>(
    store: &'a BTreeMap<KeyId, Stored>,
    range: &KeyRange,
) -> Box<dyn Iterator<Item = (KeyId, Stored)> + 'a> {
    let (start, end) = (range.start_excl.0, range.end_incl.0);
    let copy = |(k, v): (&KeyId, &Stored)| (*k, *v);
    use std::ops::Bound::{Excluded, Included, Unbounded};
    if start < end {
        Box::new(store.range((Excluded(start), Included(end))).map(copy))
    } else {
        let high = store.range((Excluded(start), Unbounded)).map(copy);
        let low = store.range((Unbounded, Included(end))).map(copy);
        Box::new(high.chain(low))
    }
}

// ---- the scenario -------------------------------------------------------------------

/// What one run measured.
struct Report {
    acked: usize,
    converged_ms: u64,
    moved_ms: u64,
    repaired_keys: usize,
    missed_nodes: usize,
    stats: Stats,
}

fn run(seed: u64) -> Result<Report, String> {
    let mut sim = Sim::new(seed);
    bootstrap(&mut sim);
    sim.drop_rate = 0.02;
    let chaos_end = sim.now + CHAOS_MS;
    let mut next_chaos = sim.now + 1000;
    sim.run_until(chaos_end, &mut |s| {
        s.client_write();
        if s.now >= next_chaos {
            chaos_step(s);
            next_chaos = s.now + s.rng.gen_range(500..2500);
        }
    });
    // The chaos stops: restart everyone, heal, no more drops or writes.
    sim.drop_rate = 0.0;
    sim.partition = None;
    for node in 0..sim.nodes.len() {
        sim.restart(node);
    }
    let start = sim.now;
    let converged_ms = wait_for(&mut sim, CONVERGE_LIMIT_MS, tables_agree).ok_or_else(|| {
        format!(
            "route tables did not converge: {}",
            table_disagreement(&sim)
        )
    })? - start;
    let start = sim.now;
    let moved_ms = wait_for(&mut sim, MOVE_LIMIT_MS, movement_done)
        .ok_or_else(|| "transfers did not finish".to_string())?
        - start;
    check_tables(&sim)?;
    check_movement(&sim)?;
    check_quorum_reads(&sim)?;
    let repaired_keys = repair_all(&mut sim);
    check_every_owner(&sim)?;
    let missed_nodes = sim.nodes.iter().filter(|n| n.missed_writes).count();
    if sim.errors > 0 {
        println!("sim seed {seed}: {} inputs returned errors", sim.errors);
    }
    let stats = std::mem::take(&mut sim.stats);
    if stats.crashes == 0 || stats.joins == 0 || stats.chunks_stored == 0 {
        return Err(format!(
            "the chaos was too mild to test anything: {stats:?}"
        ));
    }
    Ok(Report {
        stats,
        acked: sim.acked.len(),
        converged_ms,
        moved_ms,
        repaired_keys,
        missed_nodes,
    })
}

/// Starts the cluster one node at a time and lets it settle.
fn bootstrap(sim: &mut Sim) {
    for i in 0..GROUPS * NODES_PER_GROUP {
        let node = sim.add_node(i % GROUPS);
        sim.boot(node);
        let until = sim.now + 250;
        sim.run_until(until, &mut |_| {});
    }
    let until = sim.now + BOOT_MS;
    sim.run_until(until, &mut |_| {});
}

/// One random fault or membership change.
fn chaos_step(sim: &mut Sim) {
    let up: Vec<usize> = (0..sim.nodes.len()).filter(|i| sim.is_up(*i)).collect();
    let down = sim
        .nodes
        .iter()
        .filter(|n| n.cluster.is_none() && !n.left)
        .count();
    let Some(&victim) = up.get(sim.rng.gen_range(0..up.len().max(1))) else {
        return;
    };
    match sim.rng.gen_range(0..10) {
        0..=3 if down < 4 => {
            let down_ms = sim.rng.gen_range(1_000..15_000);
            sim.crash(victim, down_ms);
        }
        4 | 5 if sim.stats.joins < 6 => {
            sim.stats.joins += 1;
            let group = sim.rng.gen_range(0..GROUPS);
            let node = sim.add_node(group);
            sim.boot(node);
        }
        6 if sim.stats.leaves < 3 => {
            sim.stats.leaves += 1;
            sim.drive(victim, |c| c.leave());
        }
        7 if sim.stats.partitions < 3 && sim.partition.is_none() => {
            sim.stats.partitions += 1;
            let side: BTreeSet<String> = sim
                .nodes
                .iter()
                .filter(|_| sim.rng.gen_bool(0.3))
                .map(|n| n.addr.clone())
                .collect();
            sim.partition = Some(side);
            let heal_ms = sim.rng.gen_range(2_000..8_000);
            sim.at(heal_ms, Event::Heal);
        }
        _ => {}
    }
}

/// Runs until `done` holds (checked every 500 ms); the time it held, or `None` at the limit.
fn wait_for(sim: &mut Sim, limit_ms: u64, done: fn(&Sim) -> bool) -> Option<u64> {
    let end = sim.now + limit_ms;
    while sim.now < end {
        if done(sim) {
            return Some(sim.now);
        }
        let until = sim.now + 500;
        sim.run_until(until, &mut |_| {});
    }
    done(sim).then_some(sim.now)
}

fn live_tables(sim: &Sim) -> Vec<(&SimNode, &RouteTable)> {
    sim.nodes
        .iter()
        .filter_map(|n| n.cluster.as_ref().map(|c| (n, c.route_table())))
        .collect()
}

/// Every live node holds the same nodes (versions may differ), alive exactly when live.
fn tables_agree(sim: &Sim) -> bool {
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

fn table_disagreement(sim: &Sim) -> String {
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

fn movement_done(sim: &Sim) -> bool {
    sim.nodes.iter().all(|n| {
        n.cluster
            .as_ref()
            .is_none_or(|c| c.transfers().is_empty() && c.phase() != Phase::Leaving)
    })
}

fn check_tables(sim: &Sim) -> Result<(), String> {
    let tables = live_tables(sim);
    for (node, table) in &tables {
        let ids = table.node(&node.name).map(|n| n.ids.len()).unwrap_or(0);
        if ids != IDS_PER_NODE as usize {
            return Err(format!("{} holds {ids} ids in its table", node.name));
        }
    }
    Ok(())
}

/// The final table (all live nodes agree on it).
fn final_table(sim: &Sim) -> Result<RouteTable, String> {
    live_tables(sim)
        .first()
        .map(|(_, t)| (*t).clone())
        .ok_or_else(|| "no live node".to_string())
}

fn node_named<'a>(sim: &'a Sim, name: &str) -> Option<&'a SimNode> {
    sim.nodes
        .iter()
        .find(|n| n.name == name && n.cluster.is_some())
}

/// Every record a live node holds is on its group's owner, at least as new.
fn check_movement(sim: &Sim) -> Result<(), String> {
    let table = final_table(sim)?;
    for node in sim.nodes.iter().filter(|n| n.cluster.is_some()) {
        for (key, (ts, _)) in &node.disk.store {
            let owner = table
                .owner(node.group, key)
                .and_then(|o| node_named(sim, &o.name))
                .ok_or_else(|| format!("group {} has no live owner", node.group))?;
            let held = owner.disk.store.get(key).map(|s| s.0);
            if held.is_none_or(|t| t < *ts) {
                return Err(format!(
                    "movement lost a record: {} holds {} @{ts}, its owner {} has {held:?}",
                    node.name,
                    RingId(*key),
                    owner.name
                ));
            }
        }
    }
    Ok(())
}

/// How many groups' owners hold `key` at `ts` or newer.
fn holders(sim: &Sim, table: &RouteTable, key: &KeyId, ts: u64) -> usize {
    (0..GROUPS)
        .filter_map(|g| table.owner(g, key))
        .filter_map(|o| node_named(sim, &o.name))
        .filter(|n| n.disk.store.get(key).is_some_and(|s| s.0 >= ts))
        .count()
}

fn check_quorum_reads(sim: &Sim) -> Result<(), String> {
    let table = final_table(sim)?;
    for (key, ts) in &sim.acked {
        let found = holders(sim, &table, key, *ts);
        if found < QUORUM {
            return Err(format!(
                "acknowledged write {} @{ts} is on {found} owners, quorum is {QUORUM}",
                RingId(*key)
            ));
        }
    }
    Ok(())
}

fn check_every_owner(sim: &Sim) -> Result<(), String> {
    let table = final_table(sim)?;
    for (key, ts) in &sim.acked {
        let found = holders(sim, &table, key, *ts);
        if found != GROUPS as usize {
            return Err(format!(
                "after repair, write {} @{ts} is on {found} of {GROUPS} owners",
                RingId(*key)
            ));
        }
    }
    Ok(())
}

fn digest_entries(store: &BTreeMap<KeyId, Stored>, range: &KeyRange) -> Vec<DigestEntry> {
    keys_in(store, range)
        .map(|(key, (ts, value))| DigestEntry {
            key,
            column: 0,
            timestamp_ns: ts,
            checksum: (value >> 32) as u32,
        })
        .collect()
}

/// One round of repair over every live node's tasks; the number of records copied.
fn repair_all(sim: &mut Sim) -> usize {
    let mut copied = 0;
    let live: Vec<usize> = (0..sim.nodes.len()).filter(|i| sim.is_up(*i)).collect();
    for node in live {
        let tasks = match sim.nodes.get(node).and_then(|n| n.cluster.as_ref()) {
            Some(c) => c.repair_tasks(),
            None => continue,
        };
        for task in tasks {
            let Some(peer) = sim.nodes.iter().position(|n| n.name == task.peer) else {
                continue;
            };
            copied += repair_range(sim, node, peer, &task.range);
        }
    }
    copied
}

/// Compares `range` on two nodes by digest trees and copies the differing records both
/// ways, newest timestamp winning.
fn repair_range(sim: &mut Sim, a: usize, b: usize, range: &KeyRange) -> usize {
    let (Some(na), Some(nb)) = (sim.nodes.get(a), sim.nodes.get(b)) else {
        return 0;
    };
    let (ea, eb) = (
        digest_entries(&na.disk.store, range),
        digest_entries(&nb.disk.store, range),
    );
    let depth = depth_for(ea.len().max(eb.len()));
    let (ta, tb) = (
        DigestTree::build(*range, depth, &ea),
        DigestTree::build(*range, depth, &eb),
    );
    let Ok(differing) = ta.diff(&tb) else {
        return 0;
    };
    let mut copies: Vec<(usize, KeyId, Stored)> = Vec::new();
    for sub in &differing {
        let from_a: Vec<(KeyId, Stored)> = keys_in(&na.disk.store, sub).collect();
        let from_b: Vec<(KeyId, Stored)> = keys_in(&nb.disk.store, sub).collect();
        copies.extend(from_a.into_iter().map(|(k, s)| (b, k, s)));
        copies.extend(from_b.into_iter().map(|(k, s)| (a, k, s)));
    }
    let mut changed = 0;
    for (to, key, stored) in copies {
        let before = sim
            .nodes
            .get(to)
            .and_then(|n| n.disk.store.get(&key).copied());
        sim.store(to, key, stored);
        let after = sim
            .nodes
            .get(to)
            .and_then(|n| n.disk.store.get(&key).copied());
        changed += usize::from(before != after);
    }
    changed
}

fn seeds_to_run() -> Vec<u64> {
    match std::env::var("RINGBLOB_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => vec![seed],
        None => vec![1, 2, 3],
    }
}

#[test]
fn sim_cluster_survives_chaos() {
    for seed in seeds_to_run() {
        let started = std::time::Instant::now();
        match run(seed) {
            Ok(r) => println!(
                "sim seed {seed}: {} acknowledged keys, tables converged in {} ms, moves done \
                 {} ms later, repair copied {} records ({} nodes missed writes); {:?}; {:.1} s",
                r.acked,
                r.converged_ms,
                r.moved_ms,
                r.repaired_keys,
                r.missed_nodes,
                r.stats,
                started.elapsed().as_secs_f64()
            ),
            Err(why) => panic!(
                "cluster simulation failed with seed {seed} \
                 (replay: RINGBLOB_SIM_SEED={seed}): {why}"
            ),
        }
    }
}

/// Each group's nodes' shares of its ring, from the first live table.
fn group_shares(sim: &Sim) -> BTreeMap<u32, Vec<(String, f64)>> {
    let Some((_, table)) = live_tables(sim).into_iter().next() else {
        return BTreeMap::new();
    };
    let mut out: BTreeMap<u32, Vec<(String, f64)>> = BTreeMap::new();
    for (group, ring) in table.rings() {
        for (ix, share) in ring.shares() {
            let name = usize::try_from(ix.0)
                .ok()
                .and_then(|i| table.nodes.get(i))
                .map_or_else(String::new, |n| n.name.clone());
            out.entry(group).or_default().push((name, share));
        }
    }
    out
}

fn balanced(sim: &Sim) -> bool {
    let factor = ringblob_protocol::cluster::BALANCE_FACTOR;
    tables_agree(sim)
        && movement_done(sim)
        && group_shares(sim).values().all(|shares| {
            let mean = 1.0 / shares.len() as f64;
            shares
                .iter()
                .all(|(_, s)| *s * factor >= mean && *s <= mean * factor)
        })
}

/// Groups of 3, 6 and 10 nodes whose nodes all start at the same moment (each choosing IDs
/// against a ring without the others) end with every node's share within 1.25x of the mean,
/// the shipping cluster logic re-choosing IDs and handing data over until they do.
#[test]
fn sim_concurrent_joins_end_balanced() {
    for seed in seeds_to_run() {
        let mut sim = Sim::new(seed);
        let first = sim.add_node(1);
        sim.boot(first);
        let until = sim.now + 250;
        sim.run_until(until, &mut |_| {});
        let mut rest = Vec::new();
        for (group, size) in [(1u32, 3usize), (2, 6), (3, 10)] {
            let already = usize::from(group == 1);
            for _ in already..size {
                rest.push(sim.add_node(group));
            }
        }
        // All at once: no simulated time passes between these boots.
        for node in rest {
            sim.boot(node);
        }
        let until = sim.now + 5_000;
        sim.run_until(until, &mut |_| {});
        let before = group_shares(&sim);
        let done = wait_for(&mut sim, 180_000, balanced);
        assert!(
            done.is_some(),
            "seed {seed} (replay: RINGBLOB_SIM_SEED={seed}): rings not balanced: {:?} \
             (after the joins: {before:?})",
            group_shares(&sim)
        );
        let spread = |s: &BTreeMap<u32, Vec<(String, f64)>>| -> Vec<(u32, f64, f64)> {
            s.iter()
                .map(|(g, v)| {
                    let lo = v.iter().map(|x| x.1).fold(1.0, f64::min);
                    let hi = v.iter().map(|x| x.1).fold(0.0, f64::max);
                    (*g, lo, hi)
                })
                .collect()
        };
        println!(
            "sim seed {seed}: concurrent joins (group, min share, max share) {:?} -> {:?} \
             balanced at {} ms",
            spread(&before),
            spread(&group_shares(&sim)),
            done.unwrap_or(0)
        );
    }
}

/// Whether every live node's table shows `name` alive.
fn seen_alive_everywhere(sim: &Sim, name: &str) -> bool {
    live_tables(sim)
        .iter()
        .all(|(_, t)| t.node(name).is_some_and(|n| n.alive))
}

/// A member that stops answering keeps its ranges (its route-table entry stays alive) for
/// the grace period after SWIM declares it down, and loses them once the grace is over; one
/// that comes back within the grace never loses them.
#[test]
fn sim_a_down_node_keeps_its_ranges_for_the_grace_period() {
    let grace = ringblob_protocol::cluster::DEFAULT_DOWN_GRACE.as_millis() as u64;
    for seed in seeds_to_run() {
        let mut sim = Sim::new(seed);
        for _ in 0..3 {
            let node = sim.add_node(1);
            sim.boot(node);
            let until = sim.now + 500;
            sim.run_until(until, &mut |_| {});
        }
        let until = sim.now + 5_000;
        sim.run_until(until, &mut |_| {});
        let name = sim.nodes[2].name.clone();
        assert!(tables_agree(&sim) && seen_alive_everywhere(&sim, &name));
        // Down for less than SWIM's detection plus the grace: never marked dead.
        sim.crash(2, grace);
        let until = sim.now + grace - 1_000;
        sim.run_until(until, &mut |_| {});
        let live: Vec<String> = live_tables(&sim)
            .iter()
            .map(|(n, _)| n.name.clone())
            .collect();
        assert!(
            seen_alive_everywhere(&sim, &name),
            "seed {seed}: {name} marked dead within the grace period (live {live:?})"
        );
        let until = sim.now + 10_000;
        sim.run_until(until, &mut |_| {});
        assert!(
            seen_alive_everywhere(&sim, &name),
            "seed {seed}: back in time"
        );
        // Down for good: marked dead once SWIM's detection and the grace are over.
        sim.crash(2, 1_000_000);
        let until = sim.now + grace + 20_000;
        sim.run_until(until, &mut |_| {});
        let dead = live_tables(&sim)
            .iter()
            .all(|(_, t)| t.node(&name).is_some_and(|n| !n.alive));
        assert!(
            dead,
            "seed {seed}: {name} still owns its ranges after the grace period"
        );
    }
}
