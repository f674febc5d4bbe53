//! `ringblob-node`: serves a storage backend over the ringblob protocol.
//!
//! `ringblob-node --data-dir ./data` works with no config file. Every option can also come
//! from a TOML file (`--config FILE`); flags given on the command line win.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ringblob_backends::{open_backend, BackendConfig, BackendKind, BlobOptions};
use ringblob_protocol::cluster::ClusterConfig;
use ringblob_protocol::node::access::Access;
use ringblob_protocol::node::admin::AdminState;
use ringblob_protocol::node::{
    self, ClusterFiles, Handovers, Membership, Mover, Node, NodeConfig, Quarantine, Repairer,
    Workers,
};
use ringblob_protocol::tls::{TlsClient, TlsServer};
use serde::Deserialize;

/// Serve a ringblob backend.
#[derive(Parser, Debug)]
#[command(name = "ringblob-node", version = ringblob_tools::VERSION, about)]
struct Cli {
    /// Data directory (created if missing) [default: ./data]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to listen on (IP or host name, and port; port 0 picks a free one)
    /// [default: 127.0.0.1:1025]
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// The address other nodes and clients are told to reach this node at (IP or host name,
    /// and port) [default: the listen address; required when listening on 0.0.0.0 or ::]
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<String>,
    /// HTTP admin listener (/metrics, /health, /ready), or `off` [default: 127.0.0.1 and the
    /// listen port + 10000, e.g. 127.0.0.1:11025; a free port when that one is taken or past
    /// 65535, logged as `admin interface on`]
    #[arg(long, value_name = "ADDR|off")]
    admin_listen: Option<String>,
    /// HTTP gateway (GET/HEAD/PUT/DELETE /NAMESPACE/NAME, listings; docs/HTTP.md) on this
    /// address [default: off]. Beyond loopback on a node with access keys it serves HTTPS
    /// with the node's certificate (or needs --insecure)
    #[arg(long, value_name = "ADDR")]
    http_listen: Option<String>,
    /// Groups that must store a gateway write: one, quorum or all [default: quorum]. Every
    /// write goes to every group of the route table; reads ask this node's group first
    #[arg(long, value_name = "W")]
    http_write_quorum: Option<String>,
    /// Log lines as text or as one JSON object per line (stderr). What is logged is chosen
    /// with RUST_LOG, e.g. `RUST_LOG=info` (the default), `RUST_LOG=debug`,
    /// `RUST_LOG=info,ringblob_protocol::node=debug`
    #[arg(long, value_enum, env = "RINGBLOB_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    /// Storage backend: blob, fs or mem [default: blob]
    #[arg(long)]
    backend: Option<BackendKind>,
    /// TOML configuration file
    #[arg(long)]
    config: Option<PathBuf>,
    /// Replica group this node serves [default: 1]
    #[arg(long)]
    group: Option<u32>,
    /// Node name reported in handshakes and stat; unique in the cluster [default: node@ADDR]
    #[arg(long)]
    name: Option<String>,
    /// Address (host:port) of a cluster member to join through; repeat for more. Without
    /// seeds (and none in the config file) the node starts a cluster of its own.
    #[arg(long = "seed", value_name = "ADDR")]
    seeds: Vec<String>,
    /// Listen on a non-loopback address with no access keys and no TLS (docs/SECURITY.md):
    /// anyone who can reach it can read and change everything. A warning is logged at every
    /// start.
    #[arg(long)]
    insecure: bool,
    /// The access keys file (made with `ringblob-node keys add`) [default: DATA_DIR/keys.json].
    /// With at least one key (or a cluster secret) every connection must authenticate.
    /// Reloaded on SIGHUP.
    #[arg(long, value_name = "FILE")]
    keys_file: Option<PathBuf>,
    /// File with the cluster secret nodes prove to each other (one 64-hex-digit secret per
    /// line: the first is used, all are accepted; `ringblob-node keys cluster-secret`
    /// makes one). Reloaded on SIGHUP.
    #[arg(long, value_name = "FILE")]
    cluster_secret_file: Option<PathBuf>,
    /// TLS certificate chain (PEM) of the listener; with --tls-key, every connection to
    /// this node is TLS, and this node's connections to other nodes too.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA (PEM) client certificates must chain to: every client (and every other node)
    /// must present one (mutual TLS).
    #[arg(long, value_name = "FILE")]
    tls_client_ca: Option<PathBuf>,
    /// CA (PEM) the other nodes' certificates must chain to [default: --tls-client-ca]
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// The name other nodes' certificates are checked for [default: the host of their
    /// address]
    #[arg(long, value_name = "NAME")]
    tls_peer_name: Option<String>,
    #[command(subcommand)]
    command: Option<NodeCommand>,
}

/// Commands besides serving.
#[derive(clap::Subcommand, Debug)]
enum NodeCommand {
    /// Manage the access keys this node accepts (docs/SECURITY.md).
    Keys {
        #[command(subcommand)]
        cmd: ringblob_tools::node_keys::KeysCommand,
    },
}

/// The TOML file: every field optional.
#[derive(Deserialize, Debug, Default)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    /// As `--insecure`.
    insecure: Option<bool>,
    /// As `--keys-file`.
    keys_file: Option<PathBuf>,
    /// As `--cluster-secret-file`.
    cluster_secret_file: Option<PathBuf>,
    /// As `--tls-cert`.
    tls_cert: Option<PathBuf>,
    /// As `--tls-key`.
    tls_key: Option<PathBuf>,
    /// As `--tls-client-ca`.
    tls_client_ca: Option<PathBuf>,
    /// As `--tls-ca`.
    tls_ca: Option<PathBuf>,
    /// As `--tls-peer-name`.
    tls_peer_name: Option<String>,
    data_dir: Option<PathBuf>,
    listen: Option<String>,
    /// As `--advertise`.
    advertise: Option<String>,
    /// As `--admin-listen`.
    admin_listen: Option<String>,
    /// As `--http-listen`.
    http_listen: Option<String>,
    /// As `--http-write-quorum`.
    http_write_quorum: Option<String>,
    backend: Option<BackendKind>,
    group: Option<u32>,
    name: Option<String>,
    max_connections: Option<usize>,
    /// Serve client connections on this many single-threaded runtimes (0: the shared
    /// workers) [default: half the cores, at least 1].
    connection_lanes: Option<usize>,
    idle_timeout_secs: Option<u64>,
    read_timeout_secs: Option<u64>,
    /// A connection must send its HANDSHAKE within this, seconds [default: 10].
    handshake_timeout_secs: Option<u64>,
    /// A connection whose replies make no progress this long is closed, seconds [default: 30].
    write_timeout_secs: Option<u64>,
    /// Reply bytes all connections may hold unwritten, MiB [default: 512].
    max_reply_memory_mb: Option<usize>,
    upload_timeout_secs: Option<u64>,
    max_blocking_calls: Option<usize>,
    /// Cluster members to join through.
    seeds: Option<Vec<String>>,
    /// Rate limit of handing key ranges to new owners, MB/s (0: unthrottled) [default: 64].
    rebalance_mb_per_sec: Option<u64>,
    /// Compare ranges with the other groups this often, seconds (0: never) [default: 60].
    repair_interval_secs: Option<u64>,
    /// Remember removes this long for copies and repair, seconds [default: 172800].
    remove_retention_secs: Option<u64>,
    /// After a ring change, read keys not yet handed over from their previous owner for
    /// this long, seconds (0: never) [default: 21600; at most remove_retention_secs].
    handover_read_secs: Option<u64>,
    /// A request forwarded to its owner fails TIMEOUT after this long, milliseconds, plus
    /// the transfer time of a large payload at 16 MiB/s [default: 1000].
    owner_timeout_ms: Option<u64>,
    /// Clock difference between nodes tolerated by forwarded deadlines, milliseconds
    /// [default: 500].
    max_clock_skew_ms: Option<u64>,
    /// A node that stops answering keeps its ranges this long before they move to the next
    /// node of its group, seconds (0: at once); meanwhile its writes are hinted [default: 30].
    down_grace_secs: Option<u64>,
    blob: Option<BlobOptions>,
}

fn load_file(path: Option<&PathBuf>) -> anyhow::Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

struct Settings {
    data_dir: PathBuf,
    listen: SocketAddr,
    advertise: Option<SocketAddr>,
    /// The admin listener's address, and whether it was configured (else a default, which
    /// falls back to a free port instead of failing the start).
    admin: Option<(SocketAddr, bool)>,
    /// The HTTP gateway's address, if it has one, and its write quorum.
    http: Option<SocketAddr>,
    http_write_quorum: ringblob_protocol::client::Quorum,
    backend: BackendConfig,
    node: NodeConfig,
    seeds: Vec<String>,
    rebalance_bytes_per_sec: u64,
    repair_interval_secs: u64,
    handover_read_secs: u64,
    down_grace_secs: u64,
}

/// Protected mode: a node with no access keys (and no cluster secret) listens beyond
/// loopback only when told `--insecure`, and then says so at every start.
fn protected_mode(listen: SocketAddr, insecure: bool, secured: bool) -> anyhow::Result<()> {
    if listen.ip().is_loopback() || secured {
        return Ok(());
    }
    if !insecure {
        anyhow::bail!(
            "refusing to listen on {listen} with no access keys: anyone who can reach the port \
             could read, change and remove everything. Add a key (ringblob-node keys add \
             --role admin --data-dir DIR; clients then pass --key ID:SECRET) and a cluster \
             secret for the nodes (--cluster-secret-file), or listen on loopback \
             (127.0.0.1), or pass --insecure (or insecure = true in the config file) on a \
             network only trusted hosts reach (docs/SECURITY.md)"
        );
    }
    tracing::warn!(
        %listen,
        "insecure: listening beyond loopback with no authentication and no encryption; \
         anyone who can reach this port can read and change everything"
    );
    Ok(())
}

/// `HOST:PORT` (an IP or a host name) as one socket address: the first the name resolves to.
fn resolve(value: &str, what: &str) -> anyhow::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    value
        .to_socket_addrs()
        .with_context(|| format!("{what} {value:?}: not HOST:PORT, or the host does not resolve"))?
        .next()
        .with_context(|| format!("{what} {value:?}: the host resolves to no address"))
}

/// The address this node is known by: `--advertise` (its port 0 meaning the listener's),
/// else the listener's — never an unspecified address, which reaches nobody.
fn advertised(advertise: Option<SocketAddr>, local: SocketAddr) -> anyhow::Result<SocketAddr> {
    match advertise {
        Some(a) if a.ip().is_unspecified() => anyhow::bail!(
            "advertise {a}: an unspecified address reaches nobody; give the IP or host name \
             other nodes and clients reach this node at"
        ),
        Some(a) if a.port() == 0 => Ok(SocketAddr::new(a.ip(), local.port())),
        Some(a) => Ok(a),
        None if local.ip().is_unspecified() => anyhow::bail!(
            "listening on {local} without --advertise: other nodes and clients would be told \
             {local}, which reaches nobody. Pass --advertise IP:{port} (or advertise = \
             \"IP:{port}\" in the config file) with the address they reach this node at",
            port = local.port()
        ),
        None => Ok(local),
    }
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`): text, or one JSON object per line.
fn init_logs(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

/// Where the admin listener goes (`None`: off). Beyond loopback on a node that requires
/// keys, `/metrics` takes an admin key, so such a listener needs TLS (the node's certificate)
/// unless told `--insecure`.
fn admin_addr(
    value: Option<&str>,
    listen: SocketAddr,
    (insecure, required, tls): (bool, bool, bool),
) -> anyhow::Result<Option<(SocketAddr, bool)>> {
    let (addr, explicit) = match value {
        Some("off") => return Ok(None),
        Some(v) => {
            let a = v.parse::<SocketAddr>().with_context(|| {
                format!("admin_listen {v:?} is not an address (IP:PORT) or off")
            })?;
            (a, true)
        }
        None => {
            let port = listen
                .port()
                .checked_add(10_000)
                .filter(|_| listen.port() != 0);
            (SocketAddr::from(([127, 0, 0, 1], port.unwrap_or(0))), false)
        }
    };
    if !addr.ip().is_loopback() && required && !tls && !insecure {
        anyhow::bail!(
            "refusing an admin listener on {addr} without TLS: beyond loopback, /metrics needs \
             an admin key, which must not cross the network in clear. Configure tls_cert and \
             tls_key (the admin listener then serves HTTPS with them), keep it on loopback \
             (admin_listen = \"127.0.0.1:PORT\"), or pass --insecure"
        );
    }
    Ok(Some((addr, explicit)))
}

/// Where the HTTP gateway goes (`None`: off). Beyond loopback it needs the node's own
/// protection: access keys (whose secrets then need TLS, or `--insecure`), or `--insecure`.
fn http_addr(
    value: Option<&str>,
    (insecure, required, tls): (bool, bool, bool),
) -> anyhow::Result<Option<SocketAddr>> {
    let Some(v) = value.filter(|v| *v != "off") else {
        return Ok(None);
    };
    let addr = v
        .parse::<SocketAddr>()
        .with_context(|| format!("http_listen {v:?} is not an address (IP:PORT) or off"))?;
    if addr.ip().is_loopback() || insecure {
        return Ok(Some(addr));
    }
    if !required {
        anyhow::bail!(
            "refusing an HTTP gateway on {addr} with no access keys: anyone who can connect              could read and change everything. Add keys (ringblob-node keys add), keep it on              loopback (http_listen = \"127.0.0.1:PORT\"), or pass --insecure"
        );
    }
    if !tls {
        anyhow::bail!(
            "refusing an HTTP gateway on {addr} without TLS: requests carry access key              secrets, which must not cross the network in clear. Configure tls_cert and              tls_key (the gateway then serves HTTPS with them), or pass --insecure"
        );
    }
    Ok(Some(addr))
}

/// The admin listener on `tcp`: HTTPS with the node's certificate beyond loopback (when the
/// node has one), else plain HTTP; `/metrics` guarded by the node's keys beyond loopback on
/// a node that requires keys.
fn admin_listener(
    tcp: tokio::net::TcpListener,
    node: &NodeConfig,
) -> anyhow::Result<(node::admin::AdminListener, AdminState)> {
    let beyond_loopback = !tcp.local_addr()?.ip().is_loopback();
    let state = match beyond_loopback && node.access.required() {
        true => AdminState::guarded(node.access.clone()),
        false => AdminState::default(),
    };
    let listener = match (&node.tls, beyond_loopback) {
        (Some(tls), true) => node::admin::AdminListener::tls(tcp, tls.clone())?,
        _ => node::admin::AdminListener::plain(tcp)?,
    };
    Ok((listener, state))
}

/// Binds the admin listener; a default address that is taken falls back to a free port.
async fn bind_admin((at, explicit): (SocketAddr, bool)) -> anyhow::Result<tokio::net::TcpListener> {
    match tokio::net::TcpListener::bind(at).await {
        Ok(l) => Ok(l),
        Err(e) if !explicit => {
            tracing::warn!(%at, error = %e, "default admin address taken; using a free port (set admin_listen)");
            let any = SocketAddr::new(at.ip(), 0);
            tokio::net::TcpListener::bind(any)
                .await
                .with_context(|| format!("binding the admin listener {any}"))
        }
        Err(e) => Err(e).with_context(|| format!("binding the admin listener {at} (admin_listen)")),
    }
}

/// The listener's TLS and the TLS of this node's connections to its peers: both from the
/// node's certificate (also its client certificate for mutual TLS between nodes).
fn tls_settings(
    cli: &Cli,
    file: &FileConfig,
) -> anyhow::Result<(Option<TlsServer>, Option<TlsClient>)> {
    let pick = |a: &Option<PathBuf>, b: &Option<PathBuf>| a.clone().or_else(|| b.clone());
    let cert = pick(&cli.tls_cert, &file.tls_cert);
    let key = pick(&cli.tls_key, &file.tls_key);
    let client_ca = pick(&cli.tls_client_ca, &file.tls_client_ca);
    let (cert, key) = match (cert, key) {
        (Some(c), Some(k)) => (c, k),
        (None, None) if client_ca.is_none() => return Ok((None, None)),
        _ => anyhow::bail!("TLS needs both tls_cert and tls_key (and tls_client_ca needs them)"),
    };
    let server = TlsServer::load(&cert, &key, client_ca.as_deref()).context("TLS listener")?;
    let peer_ca = pick(&cli.tls_ca, &file.tls_ca).or(client_ca);
    let peer_name = cli
        .tls_peer_name
        .clone()
        .or_else(|| file.tls_peer_name.clone());
    let peers = TlsClient::load(peer_ca.as_deref(), Some((&cert, &key)), peer_name)
        .context("TLS to other nodes")?;
    Ok((Some(server), Some(peers)))
}

fn settings(cli: Cli) -> anyhow::Result<Settings> {
    let file = load_file(cli.config.as_ref())?;
    let listen = match cli.listen.clone().or(file.listen.clone()) {
        Some(l) => resolve(&l, "listen")?,
        None => SocketAddr::from(([127, 0, 0, 1], 1025)),
    };
    let advertise = cli
        .advertise
        .clone()
        .or(file.advertise.clone())
        .map(|a| resolve(&a, "advertise"))
        .transpose()?;
    let data_dir = cli
        .data_dir
        .clone()
        .or(file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from("./data"));
    let keys_path = cli
        .keys_file
        .clone()
        .or(file.keys_file.clone())
        .unwrap_or_else(|| data_dir.join(ringblob_protocol::auth::KEYS_FILE));
    let secret_path = cli
        .cluster_secret_file
        .clone()
        .or(file.cluster_secret_file.clone());
    let access = Access::open(Some(keys_path), secret_path).context("loading access keys")?;
    let (tls, peer_tls) = tls_settings(&cli, &file)?;
    let insecure = cli.insecure || file.insecure.unwrap_or(false);
    protected_mode(listen, insecure, access.required() || tls.is_some())?;
    let admin_value = cli.admin_listen.clone().or(file.admin_listen.clone());
    let admin = admin_addr(
        admin_value.as_deref(),
        listen,
        (insecure, access.required(), tls.is_some()),
    )?;
    let http_value = cli.http_listen.clone().or(file.http_listen.clone());
    let http = http_addr(
        http_value.as_deref(),
        (insecure, access.required(), tls.is_some()),
    )?;
    let http_write_quorum = match cli.http_write_quorum.or(file.http_write_quorum) {
        Some(w) => w.parse().with_context(|| "http_write_quorum")?,
        None => ringblob_protocol::client::Quorum::Majority,
    };
    let defaults = NodeConfig::default();
    let secs = |v: Option<u64>, d: Duration| v.map_or(d, Duration::from_secs);
    let node = NodeConfig {
        name: cli.name.or(file.name).unwrap_or_default(),
        group: cli.group.or(file.group).unwrap_or(1),
        max_connections: file.max_connections.unwrap_or(defaults.max_connections),
        connection_lanes: file.connection_lanes.unwrap_or(defaults.connection_lanes),
        idle_timeout: secs(file.idle_timeout_secs, defaults.idle_timeout),
        read_timeout: secs(file.read_timeout_secs, defaults.read_timeout),
        handshake_timeout: secs(file.handshake_timeout_secs, defaults.handshake_timeout),
        write_timeout: secs(file.write_timeout_secs, defaults.write_timeout),
        max_reply_memory: file
            .max_reply_memory_mb
            .map_or(defaults.max_reply_memory, |mb| mb.saturating_mul(1 << 20)),
        upload_timeout: secs(file.upload_timeout_secs, defaults.upload_timeout),
        max_blocking_calls: file
            .max_blocking_calls
            .unwrap_or(defaults.max_blocking_calls),
        owner_timeout: file
            .owner_timeout_ms
            .map_or(defaults.owner_timeout, Duration::from_millis),
        max_clock_skew: file
            .max_clock_skew_ms
            .map_or(defaults.max_clock_skew, Duration::from_millis),
        access: Arc::new(access),
        tls,
        peer_tls,
        ..defaults
    };
    let backend = BackendConfig {
        backend: cli.backend.or(file.backend).unwrap_or_default(),
        blob: file.blob.unwrap_or_default(),
        remove_retention_secs: file
            .remove_retention_secs
            .unwrap_or(BackendConfig::default().remove_retention_secs),
    };
    node.validate()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    backend
        .blob
        .engine_config()
        .context("invalid [blob] configuration")?;
    let handover_read_secs = file.handover_read_secs.unwrap_or(21_600);
    if handover_read_secs > backend.remove_retention_secs {
        anyhow::bail!(
            "invalid configuration: handover_read_secs ({handover_read_secs}) must not exceed \
             remove_retention_secs ({}): a read through to a previous owner must never outlive \
             the memory of a remove made here",
            backend.remove_retention_secs
        );
    }
    let seeds = if cli.seeds.is_empty() {
        file.seeds.unwrap_or_default()
    } else {
        cli.seeds
    };
    Ok(Settings {
        data_dir,
        listen,
        advertise,
        admin,
        http,
        http_write_quorum,
        backend,
        node,
        seeds,
        rebalance_bytes_per_sec: file.rebalance_mb_per_sec.unwrap_or(64) << 20,
        repair_interval_secs: file.repair_interval_secs.unwrap_or(60),
        handover_read_secs,
        down_grace_secs: file
            .down_grace_secs
            .unwrap_or(ringblob_protocol::cluster::DEFAULT_DOWN_GRACE.as_secs()),
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; only SIGINT stops the node");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn serve(s: Settings) -> anyhow::Result<()> {
    // Bind first: a taken port must not leave a freshly created data directory behind.
    let listener = tokio::net::TcpListener::bind(s.listen)
        .await
        .with_context(|| format!("binding {}", s.listen))?;
    let mut admin = AdminState::default();
    let (admin_stop, admin_stopped) = tokio::sync::watch::channel(false);
    if let Some(at) = s.admin {
        let tcp = bind_admin(at).await?;
        let local = tcp.local_addr()?;
        let (admin_listener, state) = admin_listener(tcp, &s.node)?;
        admin = state;
        tracing::info!("admin interface on {local} (/metrics, /health, /ready)");
        let mut stopped = admin_stopped.clone();
        let until = async move {
            let _ = stopped.wait_for(|v| *v).await;
        };
        tokio::spawn(node::admin::serve(admin_listener, admin.clone(), until));
    }
    let http_tcp = match s.http {
        Some(at) => Some(
            tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("binding the HTTP gateway {at} (http_listen)"))?,
        ),
        None => None,
    };
    std::fs::create_dir_all(&s.data_dir)
        .with_context(|| format!("creating {}", s.data_dir.display()))?;
    let (cfg, dir) = (s.backend.clone(), s.data_dir.clone());
    let backend = tokio::task::spawn_blocking(move || open_backend(&cfg, &dir))
        .await?
        .with_context(|| {
            format!(
                "opening the {:?} backend in {}",
                s.backend.backend,
                s.data_dir.display()
            )
        })?;
    // Names written with values are indexed so they can be listed (LIST).
    let backend: Arc<dyn ringblob_backends::Backend> =
        ringblob_backends::names::NamedBackend::open(backend);
    let local = listener.local_addr()?;
    let addr = advertised(s.advertise, local)?;
    let mut config = s.node.clone();
    if config.name.is_empty() {
        config.name = remembered_name(&s.data_dir, addr)?;
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let retention = Duration::from_secs(s.backend.remove_retention_secs);
    let quarantine = Arc::new(
        Quarantine::at_start(&s.data_dir, retention)
            .with_context(|| format!("reading the quarantine state in {}", s.data_dir.display()))?,
    );
    tokio::spawn(mark_alive(quarantine.clone(), retention, stopped.clone()));
    let workers = Workers {
        mover: Arc::new(Mover::new(
            backend.clone(),
            s.rebalance_bytes_per_sec,
            &config.name,
            quarantine.clone(),
            config.peer_security(),
        )),
        repairer: Arc::new(Repairer::new(
            backend.clone(),
            &config.name,
            quarantine.clone(),
            config.peer_security(),
        )),
        handovers: Arc::new(Handovers::new(Duration::from_secs(s.handover_read_secs))),
        quarantine,
        access: config.access.clone(),
    };
    tokio::spawn(reload_on_sighup(config.access.clone()));
    let (keys, secrets) = config.access.counts();
    if config.access.required() {
        tracing::info!(keys, cluster_secrets = secrets, "authentication required");
    }
    if let Some(tls) = &config.tls {
        tracing::info!(?tls, "TLS on every connection");
    }
    if keys > 0 && secrets == 0 && !s.seeds.is_empty() {
        tracing::warn!(
            "access keys but no cluster secret: the other nodes cannot forward to, hand ranges \
             to or repair this node; give every node the same --cluster-secret-file"
        );
    }
    let open_tls = config.tls.as_ref().is_some_and(|t| !t.is_mutual());
    if open_tls && !config.access.required() {
        tracing::warn!(
            "TLS without access keys or client certificates: anyone who can connect can read \
             and change everything, over an encrypted link"
        );
    }
    let membership = join_cluster(&config, (addr, local), &s, workers, stopped).await?;
    let node = Node::in_cluster(backend, config, addr, &membership);
    admin.set(node.clone());
    if let Some(tcp) = http_tcp {
        start_gateway(tcp, &node, s.http_write_quorum, admin_stopped.clone())?;
    }
    tracing::info!(
        "listening on {addr} (bound to {local}; backend {:?}, data dir {}, group {}, seeds {:?})",
        s.backend.backend,
        s.data_dir.display(),
        node.config.group,
        s.seeds
    );
    // SIGTERM/SIGINT, or a LEAVE that asked to stop once every range was handed over.
    let mut stop_now = membership.stop_now.clone();
    let shutdown = async move {
        tokio::select! {
            _ = shutdown_signal() => {}
            left = stop_now.wait_for(|v| *v) => match left {
                Ok(_) => tracing::info!("left the cluster as asked: stopping"),
                Err(_) => std::future::pending::<()>().await,
            },
        }
    };
    node::run(listener, node, shutdown).await?;
    let _ = stop.send(true);
    let _ = admin_stop.send(true);
    membership.join().await;
    Ok(())
}

/// Serves the HTTP gateway on `tcp` (HTTPS with the node's certificate beyond loopback,
/// when it has one) until `stopped` turns true.
fn start_gateway(
    tcp: tokio::net::TcpListener,
    node: &Arc<Node>,
    w: ringblob_protocol::client::Quorum,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let local = tcp.local_addr()?;
    let listener = match (&node.config.tls, local.ip().is_loopback()) {
        (Some(tls), false) => node::admin::AdminListener::tls(tcp, tls.clone())?,
        _ => node::admin::AdminListener::plain(tcp)?,
    };
    let base = ringblob_protocol::client::ClientConfig {
        security: ringblob_protocol::client::ClientSecurity {
            tls: node.config.peer_security().tls,
            ..Default::default()
        },
        ..Default::default()
    };
    let gateway = ringblob_protocol::gateway::Gateway::new(
        node.info.addr.to_string(),
        base,
        node.config.access.clone(),
    )
    .with_groups(node.config.group, w)
    .with_local(node.clone());
    tracing::info!("HTTP gateway on {local}");
    let until = async move {
        let _ = stopped.wait_for(|v| *v).await;
    };
    tokio::spawn(ringblob_protocol::gateway::serve(
        listener,
        Arc::new(gateway),
        until,
    ));
    Ok(())
}

/// Reloads the keys file and the cluster secret on every SIGHUP (connections stay; those of
/// a removed key close).
async fn reload_on_sighup(access: Arc<Access>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGHUP; keys are not reloaded");
            return;
        }
    };
    while hup.recv().await.is_some() {
        match access.reload() {
            Ok((keys, secrets)) => {
                tracing::info!(
                    keys,
                    cluster_secrets = secrets,
                    "SIGHUP: access keys reloaded"
                )
            }
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: access keys not reloaded; the old ones stay")
            }
        }
    }
}

/// Notes in the data directory that the node is alive, often enough for a restart to tell
/// whether it was away longer than the remove retention (`Quarantine`).
async fn mark_alive(
    quarantine: Arc<Quarantine>,
    retention: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let every = Quarantine::mark_every(retention);
    loop {
        let q = quarantine.clone();
        match tokio::task::spawn_blocking(move || q.mark_alive()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "noting the node alive failed"),
            Err(e) => tracing::warn!(error = %e, "noting the node alive failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Starts membership: cluster messages over UDP on the node's own address, ring IDs and the
/// last route table kept in the data directory. A node without seeds is a cluster of one.
async fn join_cluster(
    config: &NodeConfig,
    (addr, local): (SocketAddr, SocketAddr),
    s: &Settings,
    workers: Workers,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Membership> {
    let mut cluster = ClusterConfig::new(&config.name, &addr.to_string(), config.group, 16);
    // UDP on the listener's address and port, told to others as the advertised one.
    cluster.bind = (addr != local).then(|| local.to_string());
    cluster.seeds = s.seeds.clone();
    cluster.rng_seed = rng_seed(&config.name);
    cluster.repair_interval = (s.repair_interval_secs > 0)
        .then(|| std::time::Duration::from_secs(s.repair_interval_secs));
    cluster.down_grace = Duration::from_secs(s.down_grace_secs);
    Membership::start(cluster, ClusterFiles::new(&s.data_dir), workers, stopped)
        .await
        .with_context(|| format!("starting cluster membership on udp {addr}"))
}

/// A node started without `--name` keeps the name it was first given (`node@ADDR`, saved
/// as `node.name` in the data directory): the cluster knows it, and its ring IDs, by name,
/// even when it restarts on another address.
fn remembered_name(dir: &std::path::Path, addr: SocketAddr) -> anyhow::Result<String> {
    let path = dir.join("node.name");
    match std::fs::read_to_string(&path) {
        Ok(name) if !name.trim().is_empty() => return Ok(name.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let name = format!("node@{addr}");
    std::fs::write(&path, &name).with_context(|| format!("writing {}", path.display()))?;
    Ok(name)
}

/// A seed for the node's random choices (ring IDs, gossip peers): different per node and
/// per start.
fn rng_seed(name: &str) -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one((name, std::process::id()))
}

fn main() {
    ringblob_tools::alloc_tuning::fix_mmap_threshold();
    let mut cli = Cli::parse();
    init_logs(cli.log_format);
    if let Some(NodeCommand::Keys { cmd }) = cli.command.take() {
        if let Err(e) = ringblob_tools::node_keys::run(cmd, &mut std::io::stdout()) {
            eprintln!("ringblob-node keys: {e:#}");
            std::process::exit(1);
        }
        return;
    }
    let result = settings(cli).and_then(|s| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        rt.block_on(serve(s))
    });
    if let Err(e) = result {
        tracing::error!("{e:#}");
        eprintln!("ringblob-node: {e:#}");
        std::process::exit(1);
    }
}
