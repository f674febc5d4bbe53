//! Taking a node out of service on purpose: `ringblob node drain` makes a node of a
//! three-node group hand every range to the other two while a client reads every key
//! continuously with replicated reads (group 1, falling over to group 2: no read fails);
//! the drained node then holds nothing, its group alone serves every key again, and
//! `ringblob node leave` stops its process. (Within group 1 alone, a key whose range is in
//! flight may answer `UNAVAILABLE` briefly while the other nodes learn the new ring: the
//! group-1-only reads are counted and printed, not required to be zero; README.)

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringblob_protocol::client::{PutOptions, Quorum};

use super::member::{self, Member};
use super::{client, converge, key, keys_on, movement_done, value};

const KEYS: u64 = 300;

fn cli(remote: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ringblob"))
        .args(["--remote", remote, "--timeout", "10"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ringblob: {e}"))
}

#[test]
fn a_drained_node_hands_every_key_over_while_every_read_succeeds() {
    let _serial = member::serial();
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    // Slow enough that the drain takes a while and reads meet it half done.
    let slow = "rebalance_mb_per_sec = 1\n";
    let mut a = Member::new("d1", 1, root.path(), None).with_config(slow);
    a.start();
    let mut b = Member::new("d2", 1, root.path(), Some(&a.addr)).with_config(slow);
    b.start();
    let mut c = Member::new("d3", 1, root.path(), Some(&a.addr)).with_config(slow);
    c.start();
    let mut e = Member::new("e1", 2, root.path(), Some(&a.addr)).with_config(slow);
    e.start();
    rt.block_on(async {
        converge(&[&a, &b, &c, &e], 4).await;
        movement_done(&[&a, &b, &c, &e]).await;
        let w = client(&a.addr).await;
        for i in 0..KEYS {
            let put = w.put_groups(
                key(i),
                0,
                value(i),
                PutOptions::default(),
                &[1, 2],
                Quorum::All,
            );
            assert!(put.await.is_ok(), "key {i}");
        }
        assert!(keys_on(&c).await > 0, "the node to drain owns keys");
    });

    // A reader going round every key through d1 for as long as the drain lasts.
    let stop = Arc::new(AtomicBool::new(false));
    let (reads, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let from_group_2 = Arc::new(AtomicU64::new(0));
    let reader = {
        let (stop, reads, failures) = (stop.clone(), reads.clone(), failures.clone());
        let from_group_2 = from_group_2.clone();
        let addr = a.addr.clone();
        rt.spawn(async move {
            let r = client(&addr).await;
            let mut first_failure = None;
            while !stop.load(Ordering::Relaxed) {
                for i in 0..KEYS {
                    let got = r.get_groups(key(i), 0, &[1, 2]).await;
                    reads.fetch_add(1, Ordering::Relaxed);
                    match got {
                        Ok(g) if g.value == value(i) => {
                            if g.group == 2 {
                                from_group_2.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        other => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            let what = other.map(|g| (g.group, g.value.len()));
                            first_failure.get_or_insert(format!("key {i}: {what:?}"));
                        }
                    }
                }
            }
            first_failure
        })
    };
    let drained = cli(&a.addr, &["node", "drain", &c.addr, "--wait"]);
    assert!(
        drained.status.success(),
        "{}",
        String::from_utf8_lossy(&drained.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&drained.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&drained.stdout)));
    assert_eq!(report["state"], "left", "{report}");
    // One more full round after the drain finished.
    let after = reads.load(Ordering::Relaxed);
    while reads.load(Ordering::Relaxed) < after + KEYS {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let first_failure = rt.block_on(reader).unwrap_or_else(|e| panic!("{e}"));
    let (reads, failures) = (
        reads.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed),
    );
    let fell_over = from_group_2.load(Ordering::Relaxed);
    println!(
        "drain: {reads} replicated reads, {failures} failed, {fell_over} answered by group 2; status {report}"
    );
    assert_eq!(
        failures, 0,
        "reads failed during the drain: {first_failure:?}"
    );
    assert!(reads >= 2 * KEYS);

    rt.block_on(async {
        assert_eq!(keys_on(&c).await, 0, "the drained node still holds keys");
        movement_done(&[&a, &b]).await;
        for via in [&a, &b] {
            let r = client(&via.addr).await.in_group(1);
            for i in 0..KEYS {
                let got = r.get_column(key(i), 0, 0, None).await;
                assert_eq!(got.ok(), Some(value(i)), "key {i} through {}", via.name);
            }
        }
    });
    // The status is readable, and `leave` stops the drained node's process.
    let status = cli(&c.addr, &["node", "status"]);
    assert!(status.status.success());
    let left = cli(&a.addr, &["node", "leave", &c.addr]);
    assert!(
        left.status.success(),
        "{}",
        String::from_utf8_lossy(&left.stderr)
    );
    assert_eq!(
        c.exited_within(Duration::from_secs(30)),
        Some(0),
        "the node stopped cleanly after leaving"
    );
}
