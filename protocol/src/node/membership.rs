//! The node's cluster shell: runs the [`Cluster`] state machine over a UDP socket bound to
//! the node's own address, fires its timers, keeps its IDs and last route table in the data
//! directory (`ring.ids`, `routes.json`), and publishes the route table requests are routed
//! by.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tokio::net::UdpSocket;

use crate::cluster::seal::Sealer;
use tokio::sync::{mpsc, watch};

use super::handover::Handovers;
use super::mover::{MoveEvent, Mover};
use super::repairer::{RepairCounters, Repairer};
use super::transfer_backoff::{worth_a_warning, TransferBackoff};
use crate::cluster::{
    Cluster, ClusterConfig, ClusterTimer, Effect, Restart, TransferProgress,
    MAX_CLUSTER_MESSAGE_LEN, MAX_PROGRESS_LEN,
};
use crate::ring::{decode_ids_file, encode_ids_file, RouteTable};
use crate::wire::LeaveAsk;

/// What `stat` shows of data movement.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct MoveStatus {
    /// Outgoing transfers still pending: target node and the fraction of the key space left.
    pub pending: Vec<PendingMove>,
    pub records_sent: u64,
    /// Records the new owner refused as not newer than its own (`NOT_NEWER`).
    pub records_skipped: u64,
    /// Remembered removes handed to new owners.
    pub removes_sent: u64,
    /// Records dropped here once their new owner held them.
    pub records_dropped: u64,
    pub bytes_sent: u64,
    pub failures: u64,
    /// Why the last transfer that failed failed, until a transfer moves on again.
    pub last_failure: Option<String>,
    /// A leave asked for (`LEAVE`): "requested" until the group's ring has settled, "leaving"
    /// while ranges are handed over, then "left".
    pub leave: Option<&'static str>,
    /// The process stops once the leave is done.
    pub stop_when_left: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PendingMove {
    pub to: String,
    pub fraction_left: f64,
}

/// Shared with `stat`.
pub type MoveStatusCell = Arc<Mutex<MoveStatus>>;

/// The route table the node serves and routes by; `None` outside a cluster.
pub type Routes = watch::Receiver<Option<Arc<RouteTable>>>;

/// Where a node keeps its cluster state.
#[derive(Debug, Clone)]
pub struct ClusterFiles {
    dir: PathBuf,
}

const IDS_FILE: &str = "ring.ids";
const ROUTES_FILE: &str = "routes.json";
const TRANSFERS_FILE: &str = "transfers.bin";

impl ClusterFiles {
    pub fn new(dir: &Path) -> Self {
        ClusterFiles {
            dir: dir.to_path_buf(),
        }
    }

    /// What a restart resumes from: saved IDs and route table (`None` on first start).
    /// A damaged IDs file is an error: choosing new IDs would silently move every key.
    pub fn load_restart(&self) -> io::Result<Option<Restart>> {
        let ids = match std::fs::read(self.dir.join(IDS_FILE)) {
            Ok(b) => decode_ids_file(&b).map_err(|e| invalid(IDS_FILE, e))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let table = match std::fs::read_to_string(self.dir.join(ROUTES_FILE)) {
            Ok(text) => match RouteTable::from_json(&text) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(error = %e, "saved route table unreadable; relearning it");
                    None
                }
            },
            Err(_) => None,
        };
        Ok(Some(Restart {
            ids,
            table,
            transfers: self.load_transfers(),
        }))
    }

    /// Saved transfer progress records; an unreadable file is logged and ignored (the
    /// route-table change that planned them plans them again).
    fn load_transfers(&self) -> Vec<TransferProgress> {
        let Ok(bytes) = std::fs::read(self.dir.join(TRANSFERS_FILE)) else {
            return Vec::new();
        };
        match decode_transfers(&bytes) {
            Some(t) => t,
            None => {
                tracing::warn!("saved transfer progress unreadable; ignoring it");
                Vec::new()
            }
        }
    }

    fn save_transfers(&self, records: &[TransferProgress]) -> io::Result<()> {
        let mut out = Vec::new();
        out.extend_from_slice(&(records.len() as u32).to_le_bytes());
        for r in records {
            let bytes = r.encode().map_err(|e| invalid(TRANSFERS_FILE, e))?;
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(&bytes);
        }
        write_durably(&self.dir, TRANSFERS_FILE, &out)
    }

    fn save_ids(&self, ids: &[crate::ring::RingId]) -> io::Result<()> {
        let bytes = encode_ids_file(ids).map_err(|e| invalid(IDS_FILE, e))?;
        write_durably(&self.dir, IDS_FILE, &bytes)
    }

    fn save_routes(&self, table: &RouteTable) -> io::Result<()> {
        let text = table.to_json().map_err(|e| invalid(ROUTES_FILE, e))?;
        write_durably(&self.dir, ROUTES_FILE, text.as_bytes())
    }
}

/// `u32 count`, then per record `u32 len` and the record (`docs/PROTOCOL.md` §15.9). Bounded:
/// lengths are checked against what is left and the record limit before use.
fn decode_transfers(bytes: &[u8]) -> Option<Vec<TransferProgress>> {
    let mut rest = bytes;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = (rest.get(..n)?, rest.get(n..)?);
        rest = tail;
        Some(head)
    };
    let count = u32::from_le_bytes(take(4)?.try_into().ok()?);
    let mut out = Vec::new();
    for _ in 0..count {
        let len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        if len > MAX_PROGRESS_LEN {
            return None;
        }
        out.push(TransferProgress::decode(take(len)?).ok()?);
    }
    Some(out)
}

fn invalid(file: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{file}: {e}"))
}

/// Temp file, fsync, rename, directory fsync.
fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

/// What carries out the state machine's data work.
pub struct Workers {
    pub mover: Arc<Mover>,
    pub repairer: Arc<Repairer>,
    /// Ranges taken over recently, read through to their previous owner.
    pub handovers: Arc<Handovers>,
    /// Whether this node's older records are quarantined (`quarantine.rs`).
    pub quarantine: Arc<super::Quarantine>,
    /// The cluster secret that seals membership datagrams (none: unsealed).
    pub access: Arc<super::access::Access>,
}

/// A running cluster shell.
pub struct Membership {
    pub routes: Routes,
    /// Data movement, for `stat`.
    pub moves: MoveStatusCell,
    /// Repair between groups, for `stat`.
    pub repair: Arc<RepairCounters>,
    /// Ranges taken over recently (for reads during hand-over).
    pub handovers: Arc<Handovers>,
    /// Whether this node's older records are quarantined.
    pub quarantine: Arc<super::Quarantine>,
    /// Asks the shell to leave the cluster, or to cancel that (`LEAVE`).
    pub leave: mpsc::UnboundedSender<LeaveAsk>,
    /// Becomes true when a leave that asked to stop the process is done.
    pub stop_now: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Membership {
    /// Binds UDP on `config.addr`, starts the state machine (resuming from `files`) and runs
    /// it until `stop` turns true.
    pub async fn start(
        config: ClusterConfig,
        files: ClusterFiles,
        workers: Workers,
        stop: watch::Receiver<bool>,
    ) -> io::Result<Membership> {
        let socket = UdpSocket::bind(config.bind.as_ref().unwrap_or(&config.addr)).await?;
        let restart = files.load_restart()?;
        let (cluster, effects) =
            Cluster::start(config, restart).map_err(|e| invalid("cluster", e))?;
        let (routes_tx, routes) = watch::channel(Some(Arc::new(cluster.route_table().clone())));
        let (stop_now_tx, stop_now) = watch::channel(false);
        // Keys written while this node was away are read through from their owners then
        // (a first start owns nothing that anyone else had).
        workers
            .handovers
            .rejoined(cluster.route_table(), &cluster.me().name);
        let (timers, timer_rx) = mpsc::unbounded_channel();
        let (moved, moved_rx) = mpsc::unbounded_channel();
        let moves = MoveStatusCell::default();
        let repair = workers.repairer.counters.clone();
        let Workers {
            mover,
            repairer,
            handovers,
            quarantine,
            access,
        } = workers;
        let mut shell = Shell {
            cluster,
            socket,
            files,
            routes: routes_tx,
            timers,
            mover,
            repairer,
            moved,
            running: HashMap::new(),
            backoff: TransferBackoff::default(),
            handover_log: super::handover_log::HandoverLog::default(),
            moves: moves.clone(),
            handovers: handovers.clone(),
            access,
            sealer: Sealer::default(),
            dropped: 0,
            stop_now: stop_now_tx,
        };
        shell.apply(effects).await?;
        shell.sync_transfers()?;
        let (leave, leave_rx) = mpsc::unbounded_channel();
        let check = super::handover_check::HandoverCheck {
            handovers: handovers.clone(),
            routes: routes.clone(),
            me: shell.cluster.me().name.clone(),
            security: shell.mover.security(),
        };
        tokio::spawn(check.run(stop.clone()));
        let task = tokio::spawn(shell.run(timer_rx, moved_rx, leave_rx, stop));
        Ok(Membership {
            routes,
            moves,
            repair,
            handovers,
            quarantine,
            leave,
            stop_now,
            task,
        })
    }

    /// Waits for the shell to stop.
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

struct Shell {
    cluster: Cluster,
    socket: UdpSocket,
    files: ClusterFiles,
    routes: watch::Sender<Option<Arc<RouteTable>>>,
    timers: mpsc::UnboundedSender<ClusterTimer>,
    mover: Arc<Mover>,
    repairer: Arc<Repairer>,
    moved: mpsc::UnboundedSender<MoveEvent>,
    /// Transfers being streamed, by id, with the flag that stops them.
    running: HashMap<u64, Arc<AtomicBool>>,
    /// When transfers that failed are tried again.
    backoff: TransferBackoff,
    /// One summary line per hand-over (`handover_log.rs`).
    handover_log: super::handover_log::HandoverLog,
    moves: MoveStatusCell,
    handovers: Arc<Handovers>,
    /// The cluster secret: datagrams are sealed and checked with it (`cluster::seal`).
    access: Arc<super::access::Access>,
    sealer: Sealer,
    /// Datagrams dropped for a bad seal (logged at powers of two).
    dropped: u64,
    /// Set when a leave that asked to stop the process is done.
    stop_now: watch::Sender<bool>,
}

impl Shell {
    /// The cluster message in a received datagram: as it is without a cluster secret; with
    /// one, only from a datagram whose seal holds (others are dropped and counted).
    fn unseal<'d>(&mut self, datagram: &'d [u8], from: SocketAddr) -> Option<&'d [u8]> {
        let keys = self.access.cluster_macs();
        if keys.is_empty() {
            return Some(datagram);
        }
        match self.sealer.open(&keys, datagram, super::now_ns()) {
            Ok(message) => Some(message),
            Err(why) => {
                self.dropped += 1;
                if self.dropped.is_power_of_two() {
                    tracing::warn!(%from, %why, dropped = self.dropped, "cluster datagram dropped");
                }
                None
            }
        }
    }

    async fn run(
        mut self,
        mut timer_rx: mpsc::UnboundedReceiver<ClusterTimer>,
        mut moved_rx: mpsc::UnboundedReceiver<MoveEvent>,
        mut leave_rx: mpsc::UnboundedReceiver<LeaveAsk>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut buf = vec![0u8; MAX_CLUSTER_MESSAGE_LEN];
        loop {
            let effects = tokio::select! {
                _ = stop.changed() => {
                    self.running.values().for_each(|c| c.store(true, Ordering::Relaxed));
                    return;
                }
                Some(event) = moved_rx.recv() => self.on_moved(event),
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, from)) => match self.unseal(buf.get(..n).unwrap_or(&[]), from) {
                        Some(message) => self.cluster.handle_message(message),
                        None => continue,
                    },
                    Err(e) => {
                        tracing::debug!(error = %e, "cluster socket receive failed");
                        continue;
                    }
                },
                Some(t) = timer_rx.recv() => self.cluster.handle_timer(t),
                Some(ask) = leave_rx.recv() => match ask {
                    LeaveAsk::Cancel => self.cancel_leave(),
                    LeaveAsk::Stop => self.start_leave(true),
                    LeaveAsk::Drain => self.start_leave(false),
                    LeaveAsk::Status => continue,
                },
            };
            match effects {
                Ok(effects) => {
                    if let Err(e) = self.apply(effects).await {
                        tracing::error!(error = %e, "cluster state could not be saved");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "cluster message refused"),
            }
            self.note_leave_started();
        }
    }

    /// A leave that waited for the ring to settle has started: "requested" becomes
    /// "leaving".
    fn note_leave_started(&self) {
        if self.cluster.phase() != crate::cluster::Phase::Leaving {
            return;
        }
        let mut st = self.moves.lock();
        if st.leave == Some("requested") {
            st.leave = Some("leaving");
            tracing::info!("leaving the cluster: handing every range to the rest of the group");
        }
    }

    async fn apply(&mut self, effects: Vec<Effect>) -> io::Result<()> {
        for effect in effects {
            match effect {
                Effect::Send { to, bytes } => self.send(&to, &bytes).await,
                Effect::Schedule { after, timer } => {
                    let tx = self.timers.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(after).await;
                        let _ = tx.send(timer);
                    });
                }
                Effect::MemberUp(m) => {
                    tracing::info!(member = %m.name, addr = %m.addr, group = m.group, "member up")
                }
                Effect::MemberDown(m) => {
                    tracing::warn!(member = %m.name, addr = %m.addr, group = m.group, "member down")
                }
                Effect::RouteTableChanged(table) => {
                    self.files.save_routes(&table)?;
                    let table = Arc::new(table);
                    let before = self.routes.borrow().clone();
                    if let Some(before) = before {
                        let me = self.cluster.me().name;
                        self.handovers.table_changed(&before, &table, &me);
                        // Before the table is served: no part routed by it may find them.
                        let (tables, group) = ((before, table.clone()), self.cluster.me().group);
                        self.mover.drop_gained_uploads(tables, &me, group).await;
                    }
                    // The transfers this table calls for are planned already: `stat` shows
                    // them before the table is served, so a node that reads this table
                    // and then finds no transfer to it pending knows it has everything
                    // (`handover_check.rs`).
                    self.update_status();
                    let _ = self.routes.send(Some(table));
                }
                Effect::IdsChosen(ids) => self.files.save_ids(&ids)?,
                Effect::TransfersChanged => self.sync_transfers()?,
                Effect::Repair(tasks) => {
                    let table = Arc::new(self.cluster.route_table().clone());
                    self.repairer.start(tasks, table);
                }
                Effect::Left => {
                    let stop = {
                        let mut st = self.moves.lock();
                        st.leave = Some("left");
                        st.stop_when_left
                    };
                    tracing::info!(stop, "left the cluster: every range handed over");
                    if stop {
                        let _ = self.stop_now.send(true);
                    }
                }
            }
        }
        Ok(())
    }

    /// A leave asked for by `LEAVE`: the node gives up its ranges (the state machine's
    /// graceful leave); asked again, it only adds "stop when done".
    fn start_leave(
        &mut self,
        stop_when_left: bool,
    ) -> Result<Vec<Effect>, crate::cluster::ClusterError> {
        let (first, left) = {
            let mut st = self.moves.lock();
            st.stop_when_left |= stop_when_left;
            let first = st.leave.is_none();
            if first {
                st.leave = Some("requested");
            }
            (first, st.leave == Some("left") && st.stop_when_left)
        };
        if left {
            let _ = self.stop_now.send(true);
        }
        if !first {
            return Ok(Vec::new());
        }
        tracing::info!(
            stop_when_left,
            "leave requested: it starts once the group's ring has settled"
        );
        self.cluster.leave()
    }

    /// An `undrain`: the node stays (its ranges come back to it; the transfers of the leave
    /// stop). The status was already reset by the request (`NodeInfo::leave_json`).
    fn cancel_leave(&mut self) -> Result<Vec<Effect>, crate::cluster::ClusterError> {
        let effects = self.cluster.stay();
        match &effects {
            Ok(_) => tracing::info!("leave cancelled: the node takes its ranges back"),
            Err(e) => {
                tracing::warn!(error = %e, "leave not cancelled");
                self.moves.lock().leave = Some("left");
            }
        }
        effects
    }

    /// Starts transfers the plan has and no task runs, stops tasks the plan dropped, and
    /// saves the plan's progress records.
    fn sync_transfers(&mut self) -> io::Result<()> {
        let transfers = self.cluster.transfers().to_vec();
        self.running.retain(|id, cancel| {
            let keep = transfers.iter().any(|t| t.id == *id);
            if !keep {
                cancel.store(true, Ordering::Relaxed);
            }
            keep
        });
        self.backoff
            .retain(|id| transfers.iter().any(|t| t.id == id));
        let table = self.cluster.route_table().clone();
        let now = std::time::Instant::now();
        for t in &transfers {
            if self.running.contains_key(&t.id) || self.backoff.waiting(t.id, now) {
                continue;
            }
            let Some(addr) = table.node(&t.to).map(|n| n.addr.clone()) else {
                continue;
            };
            tracing::debug!(to = %t.to, fraction = t.range.fraction(), "handing a key range over");
            self.handover_log.started(&t.to, &self.mover.counters);
            let cancel = Arc::new(AtomicBool::new(false));
            self.running.insert(t.id, cancel.clone());
            self.mover
                .start(t.clone(), addr, self.moved.clone(), cancel);
        }
        self.update_status();
        self.handover_log
            .left(transfers.len(), &self.mover.counters);
        let records: Vec<TransferProgress> = transfers.iter().map(|t| t.progress()).collect();
        self.files.save_transfers(&records)
    }

    fn update_status(&self) {
        let mut st = self.moves.lock();
        st.pending = self
            .cluster
            .transfers()
            .iter()
            .map(|t| super::membership::PendingMove {
                to: t.to.clone(),
                fraction_left: t.remaining().map_or(0.0, |r| r.fraction()),
            })
            .collect();
        st.records_sent = self.mover.counters.records_sent.load(Ordering::Relaxed);
        st.records_skipped = self.mover.counters.records_skipped.load(Ordering::Relaxed);
        st.removes_sent = self.mover.counters.removes_sent.load(Ordering::Relaxed);
        st.records_dropped = self.mover.counters.records_dropped.load(Ordering::Relaxed);
        st.bytes_sent = self.mover.counters.bytes_sent.load(Ordering::Relaxed);
    }

    /// A transfer task reported: tell the state machine; retry a failed one shortly.
    fn on_moved(&mut self, event: MoveEvent) -> Result<Vec<Effect>, crate::cluster::ClusterError> {
        match event {
            MoveEvent::Progress { id, cursor } => {
                self.moved_on(id);
                let effects = self.cluster.transfer_progress(id, cursor);
                self.after_move();
                effects
            }
            MoveEvent::Retry => Ok(vec![Effect::TransfersChanged]),
            MoveEvent::Done { id } => {
                self.running.remove(&id);
                self.moved_on(id);
                tracing::debug!(id, "key range handed over");
                let effects = self.cluster.transfer_done(id);
                self.after_move();
                let pending = self.cluster.transfers().len();
                self.handover_log.left(pending, &self.mover.counters);
                effects
            }
            MoveEvent::Failed { id, why } => {
                let (in_a_row, wait) = self.backoff.failed(id, std::time::Instant::now());
                let retry_in_secs = wait.as_secs();
                if worth_a_warning(in_a_row) {
                    tracing::warn!(id, error = %why, failures_in_a_row = in_a_row, retry_in_secs,
                        "handing a key range over failed; retrying");
                } else {
                    tracing::debug!(id, error = %why, failures_in_a_row = in_a_row, retry_in_secs,
                        "handing a key range over failed; retrying");
                }
                self.handover_log.failed();
                self.running.remove(&id);
                let mut st = self.moves.lock();
                st.failures += 1;
                st.last_failure = Some(why.to_string());
                drop(st);
                let tx = self.moved.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    let _ = tx.send(MoveEvent::Retry);
                });
                Ok(Vec::new())
            }
        }
    }

    /// Transfer `id` moved on: its failures are forgotten, and no failure stands.
    fn moved_on(&mut self, id: u64) {
        self.backoff.moved_on(id);
        self.moves.lock().last_failure = None;
    }

    fn after_move(&mut self) {
        self.update_status();
        let records: Vec<TransferProgress> = self
            .cluster
            .transfers()
            .iter()
            .map(|t| t.progress())
            .collect();
        if let Err(e) = self.files.save_transfers(&records) {
            tracing::error!(error = %e, "transfer progress not saved");
        }
    }

    async fn send(&mut self, to: &str, bytes: &[u8]) {
        let addr: Option<SocketAddr> = match to.parse() {
            Ok(a) => Some(a),
            Err(_) => tokio::net::lookup_host(to)
                .await
                .ok()
                .and_then(|mut a| a.next()),
        };
        match addr {
            Some(a) => {
                let keys = self.access.cluster_macs();
                let sealed;
                let bytes = match keys.first() {
                    Some(key) => {
                        let me = self.cluster.me().name.clone();
                        sealed = self.sealer.seal(key, &me, bytes, super::now_ns());
                        &sealed[..]
                    }
                    None => bytes,
                };
                if let Err(e) = self.socket.send_to(bytes, a).await {
                    tracing::debug!(to, error = %e, "cluster message not sent");
                }
            }
            None => tracing::debug!(to, "cluster member address does not resolve"),
        }
    }
}
