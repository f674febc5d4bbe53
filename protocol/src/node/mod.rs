//! The node server: accepts connections, serves requests from a [`Backend`], shuts down
//! gracefully (stop accepting, finish in-flight batches, sync the backend).

pub mod access;
pub mod admin;
pub(crate) mod admin_guard;
mod admin_listener;
#[cfg(test)]
mod ask_elsewhere_tests;
mod connection;
mod copy;
mod dispatch;
mod forward;
mod greeting;
mod handover;
mod handover_check;
mod handover_log;
mod handover_remove;
mod hints;
mod info;
#[cfg(test)]
mod inline_tests;
mod lanes;
mod list;
mod local_reads;
mod membership;
pub mod metrics;
mod mover;
mod output;
mod piece_pool;
mod quarantine;
mod read_stream;
mod read_window;
mod repairer;
mod reply_budget;
mod status_map;
pub mod subscriptions;
mod task_error;
mod timed_stream;
mod transfer_backoff;
mod versions;
mod watch_changes;
mod watching;
mod write_chunks;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ringblob_backends::{AsyncBackend, Backend};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

pub use crate::cluster::local::value_meta;
pub use forward::{route, Route};
pub use handover::Handovers;
pub use info::{cpu_secs as process_cpu_secs, Counters, NodeInfo};
pub use local_reads::ValueHere;
pub use membership::{ClusterFiles, Membership, MoveStatus, MoveStatusCell, Routes, Workers};
pub use mover::Mover;
pub use quarantine::Quarantine;
pub use repairer::{RepairCounters, Repairer};
pub use status_map::status_of;
pub use task_error::TaskError;
pub use versions::{now_ns, Budget};

use crate::wire::{IDLE_TIMEOUT, MAX_CONNECTIONS, READ_TIMEOUT};

/// Most connection lanes a node may run.
const MAX_LANES: usize = 1024;

/// Connection lanes by default: half the cores, at least one — the other half left to the
/// blocking pool's disk reads, the shared sync, the cluster's tasks and the clients of a
/// shared machine (measured on two cores: ARCHITECTURE.md, "Connection lanes").
pub fn default_lanes() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// Node settings.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub name: String,
    pub group: u32,
    pub max_connections: usize,
    /// Client connections are served on this many single-threaded runtimes of their own,
    /// each connection on one (`lanes.rs`); 0: on the process's shared tokio workers.
    pub connection_lanes: usize,
    /// A connection with nothing in flight is closed after this long.
    pub idle_timeout: Duration,
    /// A frame that has started arriving must be complete within this long (slow-loris guard).
    pub read_timeout: Duration,
    /// A connection must complete its HANDSHAKE within this long of connecting.
    pub handshake_timeout: Duration,
    /// A connection whose replies make no progress for this long (the client reads nothing)
    /// is closed.
    pub write_timeout: Duration,
    /// Reply bytes all connections together may hold before they are written: a batch
    /// waits for its share before it is served.
    pub max_reply_memory: usize,
    /// Cap on concurrent blocking backend calls.
    pub max_blocking_calls: usize,
    /// Streaming uploads untouched this long are reclaimed.
    pub upload_timeout: Duration,
    /// How long shutdown waits for connections to finish in-flight work.
    pub shutdown_grace: Duration,
    /// A request forwarded to its owner fails `TIMEOUT` if the owner has not answered
    /// within this (plus the transfer time of a large payload, see `forward.rs`).
    pub owner_timeout: Duration,
    /// The clock difference between nodes tolerated by forwarded deadlines.
    pub max_clock_skew: Duration,
    /// Access keys and the cluster secret (`access.rs`); the default requires nothing.
    pub access: Arc<access::Access>,
    /// TLS on the listener (`None`: plaintext).
    pub tls: Option<crate::tls::TlsServer>,
    /// TLS for this node's connections to other nodes (its certificate as the client's
    /// identity, for mutual TLS).
    pub peer_tls: Option<crate::tls::TlsClient>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            name: "ringblob-node".into(),
            group: 1,
            max_connections: MAX_CONNECTIONS,
            connection_lanes: default_lanes(),
            idle_timeout: IDLE_TIMEOUT,
            read_timeout: READ_TIMEOUT,
            handshake_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            max_reply_memory: 512 << 20,
            // Measured: more blocking threads than ~4 per core only add context switches.
            max_blocking_calls: std::thread::available_parallelism().map_or(8, |n| 4 * n.get()),
            upload_timeout: Duration::from_secs(24 * 3600),
            shutdown_grace: Duration::from_secs(10),
            owner_timeout: Duration::from_secs(1),
            max_clock_skew: Duration::from_millis(500),
            access: Arc::default(),
            tls: None,
            peer_tls: None,
        }
    }
}

/// A node setting outside its allowed range (the message names it and the range).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSetting(pub String);

impl NodeConfig {
    /// Checks every setting against its allowed range.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if !(1..=100_000).contains(&self.max_connections) {
            return Err(InvalidSetting(format!(
                "max_connections {} not in 1..=100000",
                self.max_connections
            )));
        }
        if self.connection_lanes > MAX_LANES {
            return Err(InvalidSetting(format!(
                "connection_lanes {} not in 0..={MAX_LANES}",
                self.connection_lanes
            )));
        }
        if !((1 << 20)..=(1 << 40)).contains(&self.max_reply_memory) {
            return Err(InvalidSetting(format!(
                "max_reply_memory {} not in 1 MiB..=1 TiB",
                self.max_reply_memory
            )));
        }
        if !(1..=4096).contains(&self.max_blocking_calls) {
            return Err(InvalidSetting(format!(
                "max_blocking_calls {} not in 1..=4096",
                self.max_blocking_calls
            )));
        }
        for (name, d) in [
            ("idle_timeout", self.idle_timeout),
            ("read_timeout", self.read_timeout),
            ("handshake_timeout", self.handshake_timeout),
            ("write_timeout", self.write_timeout),
            ("upload_timeout", self.upload_timeout),
            ("owner_timeout", self.owner_timeout),
        ] {
            if d.is_zero() {
                return Err(InvalidSetting(format!("{name} must be above zero")));
            }
        }
        if self.owner_timeout > Duration::from_secs(600) {
            return Err(InvalidSetting("owner_timeout above 600 s".into()));
        }
        if self.max_clock_skew > Duration::from_secs(60) {
            return Err(InvalidSetting("max_clock_skew above 60 s".into()));
        }
        Ok(())
    }

    /// What this node proves to its peers: the cluster secret, if it has one.
    pub fn peer_security(&self) -> crate::client::ClientSecurity {
        crate::client::ClientSecurity {
            credentials: self.access.peer_credentials(),
            tls: self.peer_tls.clone(),
        }
    }

    /// The budget of a request this node forwards.
    pub fn budget(&self) -> Budget {
        Budget {
            owner_timeout: self.owner_timeout,
            max_clock_skew: self.max_clock_skew,
        }
    }
}

/// A node: its backend, settings and identity.
pub struct Node {
    pub backend: AsyncBackend,
    pub config: NodeConfig,
    pub info: NodeInfo,
    /// Connections to the other nodes requests are forwarded to.
    pub peers: forward::Peers,
    /// Ranges taken over recently, whose reads fall back to their previous owner.
    pub handovers: Arc<Handovers>,
    /// Hinted changes held here for owners that did not answer (`hints.rs`).
    pub hints: hints::Hints,
    /// Reply bytes built and not written yet, bounded node-wide (`reply_budget.rs`).
    pub reply_budget: reply_budget::ReplyBudget,
    /// Requests counted and timed; the rest read when scraped (`metrics.rs`).
    pub metrics: Arc<metrics::Metrics>,
}

/// What a cluster member's node shares with its membership shell.
type ClusterParts = (
    Routes,
    MoveStatusCell,
    Arc<RepairCounters>,
    Arc<Quarantine>,
    tokio::sync::mpsc::UnboundedSender<crate::wire::LeaveAsk>,
);

impl Node {
    /// A node on its own (not in a cluster): it serves every key it is asked for.
    pub fn new(backend: Arc<dyn Backend>, config: NodeConfig, addr: SocketAddr) -> Arc<Node> {
        Self::build(backend, config, addr, None, Arc::default())
    }

    /// A cluster member: requests for keys other nodes own (by `routes`) are forwarded.
    pub fn in_cluster(
        backend: Arc<dyn Backend>,
        config: NodeConfig,
        addr: SocketAddr,
        membership: &Membership,
    ) -> Arc<Node> {
        let cluster = (
            membership.routes.clone(),
            membership.moves.clone(),
            membership.repair.clone(),
            membership.quarantine.clone(),
            membership.leave.clone(),
        );
        let handovers = membership.handovers.clone();
        Self::build(backend, config, addr, Some(cluster), handovers)
    }

    fn build(
        backend: Arc<dyn Backend>,
        config: NodeConfig,
        addr: SocketAddr,
        cluster: Option<ClusterParts>,
        handovers: Arc<Handovers>,
    ) -> Arc<Node> {
        let mut info = NodeInfo::new(config.name.clone(), addr, config.group);
        info.handovers = handovers.clone();
        if let Some((routes, moves, repair, quarantine, leave)) = cluster {
            info.routes = Some(routes);
            info.moves = Some(moves);
            info.repair = Some(repair);
            info.quarantine = quarantine;
            info.leave = Some(leave);
        }
        let backend = AsyncBackend::new(backend, config.max_blocking_calls);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let b = backend.clone();
            info.start_defrag = Some(Box::new(move || {
                let b = b.clone();
                rt.spawn(async move {
                    match b.run(|b| b.defrag()).await {
                        Ok(r) => tracing::info!(?r, "defragmentation finished"),
                        Err(e) => tracing::warn!(error = %e, "defragmentation failed"),
                    }
                });
            }));
        }
        // Fails only if two metrics share a name: a bug every test would meet at once.
        let metrics = Arc::new(
            metrics::Metrics::new().unwrap_or_else(|e| panic!("metrics definitions: {e}")),
        );
        let peers = forward::Peers::new(&config.name, config.budget(), config.peer_security())
            .with_metrics(metrics.clone());
        let reply_budget = reply_budget::ReplyBudget::new(config.max_reply_memory);
        Arc::new(Node {
            metrics,
            reply_budget,
            backend,
            config,
            info,
            peers,
            handovers,
            hints: hints::Hints::default(),
        })
    }
}

/// Serves `listener` until `shutdown` completes; then stops accepting, lets connections
/// finish what they are serving (up to `shutdown_grace`), and syncs the backend.
pub async fn run(
    listener: TcpListener,
    node: Arc<Node>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(node.config.max_connections));
    let lane_count = node.config.connection_lanes;
    let handshakes = lanes::handshake_runtimes(lane_count, node.config.tls.is_some());
    let lanes = lanes::Lanes::start(lane_count, handshakes)?;
    node.info
        .counters
        .connection_lanes
        .store(lane_count as u64, std::sync::atomic::Ordering::Relaxed);
    let mut tasks = JoinSet::new();
    tasks.spawn(reclaim_uploads(node.clone(), stop_rx.clone()));
    if node.info.routes.is_some() {
        tasks.spawn(hints::run(node.clone(), stop_rx.clone()));
    }
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let c = &node.info.counters;
                    match slots.clone().try_acquire_owned() {
                        Ok(permit) => {
                            c.connections_total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            c.connections_open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let (n, rx) = (node.clone(), stop_rx.clone());
                            spawn_connection(&mut tasks, &lanes, n, stream, rx, permit);
                        }
                        Err(_) => {
                            c.connections_refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            tasks.spawn(connection::refuse(stream));
                        }
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tracing::info!("shutting down: no new connections; finishing in-flight requests");
    let _ = stop_tx.send(true);
    drop(listener);
    let drained = tokio::time::timeout(node.config.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        tracing::warn!("connections still busy after the grace period; closing them");
    }
    // The lanes' threads are joined off the runtime (their runtimes end on their own).
    let _ = tokio::task::spawn_blocking(move || drop(lanes)).await;
    match node.backend.run(|b| b.sync()).await {
        Ok(()) => tracing::info!("backend synced; node stopped"),
        Err(e) => tracing::error!(error = %e, "final backend sync failed"),
    }
    Ok(())
}

/// Starts serving an accepted connection: on the shared runtime without lanes, else on the
/// next lane — with TLS, after its handshake on the next handshake runtime.
fn spawn_connection(
    tasks: &mut JoinSet<()>,
    lanes: &lanes::Lanes,
    node: Arc<Node>,
    tcp: tokio::net::TcpStream,
    stop: watch::Receiver<bool>,
    slot: tokio::sync::OwnedSemaphorePermit,
) {
    match (lanes.next_handle(), lanes.next_handshake()) {
        (None, _) => {
            tasks.spawn(serve_counted(node, Ok(tcp), stop, slot));
        }
        (Some(lane), Some(tls)) => {
            tasks.spawn(secure_then_serve_on((tls, lane), node, tcp, stop, slot));
        }
        // Registered again with the lane's own reactor, there.
        (Some(lane), None) => {
            tasks.spawn_on(serve_counted(node, Err(tcp.into_std()), stop, slot), &lane);
        }
    }
}

/// Serves one accepted connection (a stream still to be registered with this runtime's
/// reactor when it comes from another), then counts it closed and frees its slot.
async fn serve_counted(
    node: Arc<Node>,
    stream: Result<tokio::net::TcpStream, std::io::Result<std::net::TcpStream>>,
    stop: watch::Receiver<bool>,
    slot: tokio::sync::OwnedSemaphorePermit,
) {
    let stream = stream.or_else(|std| std.and_then(tokio::net::TcpStream::from_std));
    match stream {
        Ok(stream) => connection::serve(node.clone(), stream, stop).await,
        Err(e) => tracing::warn!(error = %e, "an accepted connection could not be served"),
    }
    count_closed(&node, slot);
}

/// Completes a connection's TLS handshake on the runtime `tls`, then serves it on `lane`,
/// its socket registered with each one's reactor in turn (`tls::MovableTcp`); then counts
/// it closed. This task, on the shared runtime, waits for both, so a graceful stop drains
/// the connection.
async fn secure_then_serve_on(
    (tls, lane): (tokio::runtime::Handle, tokio::runtime::Handle),
    node: Arc<Node>,
    tcp: tokio::net::TcpStream,
    stop: watch::Receiver<bool>,
    slot: tokio::sync::OwnedSemaphorePermit,
) {
    let accepted = connection::Accepted::now(&tcp);
    let tcp = tcp.into_std();
    let n = node.clone();
    let secured = tls.spawn(async move {
        let tcp = match tcp.and_then(tokio::net::TcpStream::from_std) {
            Ok(tcp) => tcp,
            Err(e) => {
                tracing::warn!(error = %e, "an accepted connection could not be served");
                return None;
            }
        };
        connection::secure(&n, tcp, &accepted).await
    });
    if let Ok(Some(mut stream)) = secured.await {
        let n = node.clone();
        let served = lane.spawn(async move {
            if let crate::tls::Stream::Server(s) = &mut stream {
                if let Err(e) = s.get_mut().0.rehome() {
                    tracing::warn!(error = %e, "a TLS connection could not be moved to its lane");
                    return;
                }
            }
            connection::serve_stream(n, stream, accepted, stop).await
        });
        if let Err(e) = served.await {
            tracing::warn!(error = %e, "a connection's task on its lane failed");
        }
    }
    count_closed(&node, slot);
}

/// A connection ended: one fewer open, its slot free.
fn count_closed(node: &Node, slot: tokio::sync::OwnedSemaphorePermit) {
    let open = &node.info.counters.connections_open;
    open.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    drop(slot);
}

/// Periodically removes streaming uploads nobody touched for `upload_timeout`.
async fn reclaim_uploads(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    let every =
        (node.config.upload_timeout / 10).clamp(Duration::from_secs(1), Duration::from_secs(600));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let max_age = node.config.upload_timeout;
        match node.backend.run(move |b| b.reclaim_uploads(max_age)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(uploads = n, "reclaimed stale uploads"),
            Err(e) => tracing::warn!(error = %e, "reclaiming uploads failed"),
        }
    }
}
