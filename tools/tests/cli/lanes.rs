//! Connection lanes in a real node process: with `connection_lanes = 3` every lane's thread
//! serves connections, writes made through them (durable ones woken from the shared sync's
//! thread) survive a graceful stop, and a node without the setting starts its default lanes.
//! With TLS, the handshakes' CPU is spent off the lanes and the connections are then served
//! on them.

use bytes::Bytes;
use ringblob_engine::Key;
use ringblob_protocol::client::{Client, ClientConfig, PutOptions};
use ringblob_protocol::wire::Durability;

use crate::node_process::NodeProcess;

const CONNECTIONS: u32 = 6;
const KEYS: u32 = 100;

fn or_panic<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn key(c: u32, i: u32) -> [u8; 32] {
    Key::from_name(b"lanes", format!("c{c}-k{i}").as_bytes()).0
}

fn value(c: u32, i: u32) -> Bytes {
    Bytes::from(vec![(c * 31 + i) as u8; 200 + i as usize])
}

/// The threads of process `pid`: each one's name and its `/proc` directory.
fn threads(pid: u32) -> Vec<(String, std::path::PathBuf)> {
    or_panic(std::fs::read_dir(format!("/proc/{pid}/task")))
        .filter_map(|t| t.ok().map(|t| t.path()))
        .filter_map(|t| {
            let name = std::fs::read_to_string(t.join("comm")).ok()?;
            Some((name.trim().to_string(), t))
        })
        .collect()
}

/// The node's lane threads: how often each went to sleep waiting for work (a lane that
/// served connections did so tens of times or more; an idle one once or twice).
fn lane_sleeps(pid: u32) -> Vec<u64> {
    threads(pid)
        .into_iter()
        .filter(|(name, _)| name.starts_with("ringblob-lane-"))
        .map(|(_, t)| {
            std::fs::read_to_string(t.join("status"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0)
        })
        .collect()
}

async fn write_and_read(addr: String, c: u32) {
    let client = or_panic(Client::connect(&addr, ClientConfig::default()).await);
    let durability = if c.is_multiple_of(2) {
        Durability::Batch
    } else {
        Durability::None
    };
    let opts = PutOptions {
        compress: false,
        durability,
        ..PutOptions::default()
    };
    for i in 0..KEYS {
        or_panic(client.put(key(c, i), value(c, i), opts).await);
        assert_eq!(
            client.get(key(c, i), 0, None).await.ok(),
            Some(value(c, i)),
            "c{c}-k{i} read back on its connection"
        );
    }
}

#[test]
fn every_lane_serves_connections_and_their_writes_survive_a_stop() {
    let dir = or_panic(tempfile::tempdir());
    let config = dir.path().join("node.toml");
    or_panic(std::fs::write(&config, "connection_lanes = 3\n"));
    let data = dir.path().join("data");
    let config_arg = config.to_str().unwrap_or_default();
    let node = NodeProcess::start(&data, &["--config", config_arg]);
    let rt = or_panic(tokio::runtime::Runtime::new());
    rt.block_on(async {
        let clients: Vec<_> = (0..CONNECTIONS)
            .map(|c| tokio::spawn(write_and_read(node.addr.clone(), c)))
            .collect();
        for c in clients {
            or_panic(c.await);
        }
    });
    let stat = rt.block_on(async {
        let client = or_panic(Client::connect(&node.addr, ClientConfig::default()).await);
        or_panic(client.stat_value().await)
    });
    assert_eq!(
        stat["connection_lanes"], 3,
        "STAT says how many lanes serve"
    );
    let sleeps = lane_sleeps(node.child.id());
    assert_eq!(sleeps.len(), 3, "three lanes: {sleeps:?}");
    assert!(
        sleeps.iter().all(|&n| n > 5),
        "every lane served connections: {sleeps:?}"
    );
    assert_eq!(node.terminate(), Some(0), "a graceful stop");

    // Without the setting: the default lanes, and everything written before.
    let node = NodeProcess::start(&data, &[]);
    let default = ringblob_protocol::node::default_lanes();
    // The node logs `listening on` just before it starts serving (and its lanes).
    let started = std::time::Instant::now();
    while lane_sleeps(node.child.id()).len() != default
        && started.elapsed() < std::time::Duration::from_secs(10)
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(lane_sleeps(node.child.id()).len(), default);
    rt.block_on(async {
        let client = or_panic(Client::connect(&node.addr, ClientConfig::default()).await);
        for c in 0..CONNECTIONS {
            for i in 0..KEYS {
                let got = client.get(key(c, i), 0, None).await.ok();
                assert_eq!(got, Some(value(c, i)), "c{c}-k{i} after the restart");
            }
        }
    });
    assert_eq!(node.terminate(), Some(0));
}

/// CPU clock ticks (user + system) each thread of `pid` has used, with its name.
fn thread_ticks(pid: u32) -> Vec<(String, u64)> {
    threads(pid)
        .into_iter()
        .filter_map(|(name, t)| {
            let stat = std::fs::read_to_string(t.join("stat")).ok()?;
            // Fields after the name's closing parenthesis: state is the first, utime the
            // 12th and stime the 13th (proc(5) fields 14 and 15).
            let after = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = after.split_whitespace().collect();
            let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
            Some((name, ticks(11)? + ticks(12)?))
        })
        .collect()
}

/// Ticks of the lane threads, of the TLS handshake threads, and how many of those there are.
fn lane_and_handshake_ticks(pid: u32) -> (u64, u64, usize) {
    let threads = thread_ticks(pid);
    let sum = |prefix: &str| {
        let of = threads.iter().filter(|(name, _)| name.starts_with(prefix));
        (of.clone().map(|(_, t)| t).sum(), of.count())
    };
    let (lanes, _) = sum("ringblob-lane-");
    let (handshakes, count) = sum("ringblob-tls-");
    (lanes, handshakes, count)
}

#[test]
fn tls_handshakes_run_off_the_lanes_and_their_connections_on_them() {
    const HANDSHAKES: u32 = 400;
    let dir = or_panic(tempfile::tempdir());
    let (node, config) = tls_node(dir.path(), 1);
    let pid = node.child.id();
    // The node logs `listening on` just before it starts serving (and its threads).
    let started = std::time::Instant::now();
    while lane_and_handshake_ticks(pid).2 == 0
        && started.elapsed() < std::time::Duration::from_secs(10)
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let before = lane_and_handshake_ticks(pid);
    assert!(before.2 >= 1, "the node runs a thread for TLS handshakes");
    let rt = or_panic(tokio::runtime::Runtime::new());
    rt.block_on(async {
        // Each connection: a TLS handshake and the ringblob handshake; every tenth also a
        // write and a read.
        for c in 0..HANDSHAKES {
            let client = or_panic(Client::connect(&node.addr, config.clone()).await);
            if !c.is_multiple_of(10) {
                continue;
            }
            let opts = PutOptions {
                compress: false,
                ..PutOptions::default()
            };
            or_panic(client.put(key(c, 0), value(c, 0), opts).await);
            let got = client.get(key(c, 0), 0, None).await.ok();
            assert_eq!(got, Some(value(c, 0)), "connection {c} read its write back");
        }
    });
    let after = lane_and_handshake_ticks(pid);
    let (lane, tls) = (after.0 - before.0, after.1 - before.1);
    eprintln!("CPU ticks during {HANDSHAKES} TLS connections: lane {lane}, TLS threads {tls}");
    // Each server handshake costs the node most of a millisecond of CPU on these VMs; the
    // lane only moves the bytes of the requests it serves.
    assert!(
        tls >= 10,
        "{HANDSHAKES} handshakes cost the TLS threads {tls} ticks"
    );
    assert!(
        lane * 2 < tls,
        "the lane used {lane} ticks against {tls} on the TLS threads: handshakes on the lane?"
    );
    assert_eq!(node.terminate(), Some(0), "a graceful stop");
}

/// A node over `dir` serving TLS with a certificate from a fresh CA, with
/// `connection_lanes = lanes` and no access keys; and a client configuration that trusts it.
pub(crate) fn tls_node(
    dir: &std::path::Path,
    lanes: usize,
) -> (
    crate::node_process::NodeProcess,
    ringblob_protocol::client::ClientConfig,
) {
    let ca = crate::certs::Ca::new(dir, "ca");
    let cert = ca.issue(dir, "node", false);
    let config = dir.join("node.toml");
    or_panic(std::fs::write(
        &config,
        format!("connection_lanes = {lanes}\n"),
    ));
    let path = |p: &std::path::Path| p.to_str().unwrap_or_default().to_string();
    let args = [
        "--config".to_string(),
        path(&config),
        "--tls-cert".to_string(),
        path(&cert.cert),
        "--tls-key".to_string(),
        path(&cert.key),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let node = crate::node_process::NodeProcess::start(&dir.join("data"), &args);
    let tls = or_panic(ringblob_protocol::tls::TlsClient::load(
        Some(&ca.pem),
        None,
        None,
    ));
    let client = ringblob_protocol::client::ClientConfig {
        security: ringblob_protocol::client::ClientSecurity {
            credentials: Default::default(),
            tls: Some(tls),
        },
        ..ringblob_protocol::client::ClientConfig::default()
    };
    (node, client)
}
