//! Taking a node out of service on purpose, within one group of three and with no other group
//! to fall over to: `ringblob node drain` makes a node hand every range to the other two
//! while clients read every key continuously through a staying node and through the
//! draining node itself — no read fails (the new owners read keys not yet handed over
//! through the leaving node, which the route table marks *leaving*, not dead); the drained
//! node then holds nothing, the others serve every key, and `ringblob node leave` stops its
//! process. `ringblob node undrain` cancels a drain half way: the node takes its ranges back,
//! and no read fails either.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringblob_protocol::client::PutOptions;

use super::member::{self, Member};
use super::{client, converge, json, key, keys_on, movement_done};

/// 120 values of 64 KiB handed over at 1 MB/s: a third of them takes seconds to move.
const KEYS: u64 = 120;

fn big(i: u64) -> Bytes {
    Bytes::from(vec![(i % 251) as u8; 64 << 10])
}

fn cli(remote: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ringblob"))
        .args(["--remote", remote, "--timeout", "10"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ringblob: {e}"))
}

/// `child`'s output once it exits, which it must within `limit`.
fn wait_with_deadline(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("ringblob: {e}"))
}

fn report(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The value of the sample `name` (no labels) in `m`'s `/metrics`.
fn metric(m: &Member, name: &str) -> f64 {
    use std::io::{Read, Write};
    let admin = m
        .admin
        .clone()
        .unwrap_or_else(|| panic!("{}: no admin line", m.name));
    let mut s = std::net::TcpStream::connect(&admin).unwrap_or_else(|e| panic!("{e}"));
    let req = format!("GET /metrics HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut text = String::new();
    s.read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("{e}"));
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

/// A group of three (`rebalance_mb_per_sec = 1`) holding [`KEYS`] values.
fn group_of_three(root: &std::path::Path, rt: &tokio::runtime::Runtime) -> [Member; 3] {
    let slow = "rebalance_mb_per_sec = 1\n";
    let mut a = Member::new("d1", 1, root, None).with_config(slow);
    a.start();
    let mut b = Member::new("d2", 1, root, Some(&a.addr)).with_config(slow);
    b.start();
    let mut c = Member::new("d3", 1, root, Some(&a.addr)).with_config(slow);
    c.start();
    rt.block_on(async {
        // Not waiting for the group's first balancing rounds to settle: a drain may meet
        // one, and must still lose no read.
        converge(&[&a, &b, &c], 3).await;
        movement_done(&[&a, &b, &c]).await;
        let w = client(&a.addr).await.in_group(1);
        for i in 0..KEYS {
            let put = w.put(key(i), big(i), PutOptions::default()).await;
            assert!(put.is_ok(), "key {i}: {put:?}");
        }
        assert!(keys_on(&c).await > 0, "the node to drain owns keys");
    });
    [a, b, c]
}

/// Clients going round every key, in group 1 alone, through each of `via`.
struct Readers {
    stop: Arc<AtomicBool>,
    reads: Arc<AtomicU64>,
    /// Wrong answers: a value other than the one written, or `NOT_FOUND`.
    failures: Arc<AtomicU64>,
    /// `UNAVAILABLE` answers (retryable: the answer is not known, never a wrong one).
    unavailables: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Option<String>>>,
}

impl Readers {
    fn start(rt: &tokio::runtime::Runtime, via: &[&str]) -> Readers {
        let stop = Arc::new(AtomicBool::new(false));
        let (reads, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let unavailables = Arc::new(AtomicU64::new(0));
        let tasks = via
            .iter()
            .map(|addr| {
                let (stop, reads, failures) = (stop.clone(), reads.clone(), failures.clone());
                let unavailables = unavailables.clone();
                let addr = addr.to_string();
                rt.spawn(async move {
                    let r = client(&addr).await.in_group(1);
                    let mut first_failure = None;
                    while !stop.load(Ordering::Relaxed) {
                        for i in 0..KEYS {
                            // Every other read pinned to the version looked up, as the
                            // HTTP gateway reads.
                            let got = match i % 2 {
                                0 => r.get_column(key(i), 0, 0, None).await,
                                _ => pinned_read(&r, key(i)).await,
                            };
                            reads.fetch_add(1, Ordering::Relaxed);
                            let unavailable =
                                matches!(&got, Err(e) if e.to_string().starts_with("UNAVAILABLE"));
                            if unavailable {
                                unavailables.fetch_add(1, Ordering::Relaxed);
                            } else if got.as_ref().ok() != Some(&big(i)) {
                                failures.fetch_add(1, Ordering::Relaxed);
                                let what = got.map(|v| v.len()).map_err(|e| e.to_string());
                                first_failure
                                    .get_or_insert(format!("key {i} through {addr}: {what:?}"));
                            }
                        }
                    }
                    first_failure
                })
            })
            .collect();
        Readers {
            stop,
            reads,
            failures,
            unavailables,
            tasks,
        }
    }

    /// Lets every reader finish one more round, stops them, and asserts none failed.
    fn finish(self, rt: &tokio::runtime::Runtime, what: &str) {
        let after = self.reads.load(Ordering::Relaxed);
        let more = KEYS * self.tasks.len() as u64;
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.reads.load(Ordering::Relaxed) < after + more {
            assert!(Instant::now() < deadline, "readers stalled");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop.store(true, Ordering::Relaxed);
        let failures: Vec<String> = self
            .tasks
            .into_iter()
            .filter_map(|t| rt.block_on(t).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        let (reads, failed) = (
            self.reads.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
        );
        let unavailable = self.unavailables.load(Ordering::Relaxed);
        println!(
            "{what}: {reads} reads in group 1 alone, {failed} wrong, {unavailable} UNAVAILABLE"
        );
        assert_eq!(failed, 0, "wrong answers during the {what}: {failures:?}");
        assert_eq!(unavailable, 0, "reads UNAVAILABLE during the {what}");
        assert!(reads >= 2 * KEYS);
    }
}

/// A `LOOKUP`, then a `READ` of the version it reported (`IF_VERSION`).
async fn pinned_read(
    r: &ringblob_protocol::client::Client,
    k: [u8; 32],
) -> Result<Bytes, ringblob_protocol::client::ClientError> {
    let meta = r.lookup_column(k, 0).await?;
    let mut req = ringblob_protocol::wire::ReadRequest::range(0, 0, meta.size);
    req.if_version = Some(meta.timestamp_ns);
    let mut out = Vec::new();
    r.read_request_to(k, req, &mut out).await?;
    Ok(Bytes::from(out))
}

#[test]
fn a_drained_node_hands_every_key_over_while_every_read_in_its_group_succeeds() {
    let _serial = member::serial();
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let [a, b, mut c] = group_of_three(root.path(), &rt);

    let readers = Readers::start(&rt, &[&a.addr, &c.addr]);
    let started = report(&cli(&a.addr, &["node", "drain", &c.addr]));
    assert!(
        matches!(started["state"].as_str(), Some("requested" | "leaving")),
        "{started}"
    );
    // Progress shows in STAT while the drain runs.
    let during = rt.block_on(async { json(&client(&c.addr).await, false).await });
    let leave = &during["cluster"]["rebalancing"]["leave"];
    assert!(
        matches!(leave.as_str(), Some("requested" | "leaving" | "left")),
        "{during}"
    );
    // And in /metrics.
    let state = metric(&c, "ringblob_leave_state");
    assert!((1.0..=3.0).contains(&state), "leave_state {state}");
    let drained = report(&cli(&a.addr, &["node", "drain", &c.addr, "--wait"]));
    assert_eq!(drained["state"], "left", "{drained}");
    // Nothing left is 0, not -0 (a sum of no fractions; `--wait` printed "-0.0 %").
    assert_eq!(drained["fraction_left"].to_string(), "0.0", "{drained}");
    assert!(drained["records_sent"].as_u64() > Some(0), "{drained}");
    assert_eq!(metric(&c, "ringblob_leave_state"), 3.0);
    assert_eq!(metric(&c, "ringblob_rebalance_transfers_pending"), 0.0);
    assert!(metric(&c, "ringblob_rebalance_records_sent_total") > 0.0);
    readers.finish(&rt, "drain");

    rt.block_on(async {
        assert_eq!(keys_on(&c).await, 0, "the drained node still holds keys");
        movement_done(&[&a, &b]).await;
        for via in [&a, &b] {
            let r = client(&via.addr).await.in_group(1);
            for i in 0..KEYS {
                let got = r.get_column(key(i), 0, 0, None).await;
                assert_eq!(got.ok(), Some(big(i)), "key {i} through {}", via.name);
            }
        }
    });
    // Cancelling a finished drain is refused: the node has left.
    let undrain = cli(&a.addr, &["node", "undrain", &c.addr]);
    assert!(!undrain.status.success(), "undrain after the node left");
    assert!(
        String::from_utf8_lossy(&undrain.stderr).contains("already left"),
        "{}",
        String::from_utf8_lossy(&undrain.stderr)
    );
    // The status is readable, and `leave` stops the drained node's process.
    let status = report(&cli(&c.addr, &["node", "status"]));
    assert_eq!(status["state"], "left", "{status}");
    report(&cli(&a.addr, &["node", "leave", &c.addr]));
    assert_eq!(
        c.exited_within(Duration::from_secs(30)),
        Some(0),
        "the node stopped cleanly after leaving"
    );
    // Its entry says it left having handed everything over (no IDs): the new owners do
    // not wait for it, so a key nobody wrote is NOT_FOUND in its group — not UNAVAILABLE
    // ("down and has not handed it over") for the rest of the read-through window.
    rt.block_on(async {
        let routes = json(&client(&a.addr).await, true).await;
        let d3 = routes["nodes"]
            .as_array()
            .and_then(|ns| ns.iter().find(|n| n["name"] == "d3").cloned());
        let left = d3.as_ref().is_some_and(|n| {
            n["alive"] == false && n["ids"].as_array().is_some_and(|ids| ids.is_empty())
        });
        assert!(left, "d3 in the table: {d3:?}");
        for via in [&a, &b] {
            let r = client(&via.addr).await.in_group(1);
            for i in KEYS..KEYS + 60 {
                let got = r.get_column(key(i), 0, 0, None).await;
                assert!(
                    matches!(&got, Err(e) if e.is_not_found()),
                    "absent key {i} through {}: {got:?}",
                    via.name
                );
            }
        }
    });
}

#[test]
fn an_undrained_node_takes_its_ranges_back_while_every_read_succeeds() {
    let _serial = member::serial();
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let [a, b, c] = group_of_three(root.path(), &rt);
    let held = rt.block_on(keys_on(&c));

    let readers = Readers::start(&rt, &[&a.addr, &c.addr]);
    // A `drain --wait` watches the drain; the undrain ends it (exit 1), it does not wait on.
    let watching = std::process::Command::new(env!("CARGO_BIN_EXE_ringblob"))
        .args([
            "--remote",
            &a.addr,
            "--timeout",
            "10",
            "node",
            "drain",
            &c.addr,
            "--wait",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("ringblob: {e}"));
    // Half way: some records handed over, not all.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = report(&cli(&c.addr, &["node", "status"]));
        if st["records_sent"].as_u64() > Some(0) {
            assert_eq!(st["state"], "leaving", "the drain ended too soon: {st}");
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {st}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let cancelled = report(&cli(&a.addr, &["node", "undrain", &c.addr]));
    assert_eq!(cancelled["state"], "none", "{cancelled}");
    let watched = wait_with_deadline(watching, Duration::from_secs(30));
    let said = String::from_utf8_lossy(&watched.stderr);
    assert_eq!(watched.status.code(), Some(1), "{said}");
    assert!(said.contains("the drain was cancelled"), "{said}");

    rt.block_on(async {
        // The node is alive in every table again, and its ranges come back to it.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut alive = 0;
            for m in [&a, &b, &c] {
                let routes = json(&client(&m.addr).await, true).await;
                let me = routes["nodes"].as_array().and_then(|ns| {
                    ns.iter()
                        .find(|n| n["name"] == "d3")
                        .map(|n| n["alive"] == true)
                });
                alive += usize::from(me == Some(true));
            }
            if alive == 3 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "d3 is not alive everywhere again"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        movement_done(&[&a, &b, &c]).await;
        assert_eq!(
            keys_on(&c).await,
            held,
            "the undrained node holds its keys again"
        );
    });
    readers.finish(&rt, "undrain");
    let status = report(&cli(&c.addr, &["node", "status"]));
    assert_eq!(status["state"], "none", "{status}");
}
