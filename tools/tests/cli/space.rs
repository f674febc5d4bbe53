//! Space that comes back: garbage in the blob being written is reclaimed on demand (the
//! blob is sealed and rewritten), the data directory shrinks, and removed keys stay removed
//! after the defragmentation and after `kill -9` and a restart.

use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use ringblob_engine::Key;
use ringblob_protocol::client::{Client, ClientConfig};

use crate::node_process::NodeProcess;

fn or_panic<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn key(i: u64) -> [u8; 32] {
    Key::from_name(b"space", &i.to_le_bytes()).0
}

fn value(i: u64, round: u64) -> Bytes {
    Bytes::from(vec![(i * 3 + round) as u8; 20_000])
}

/// Bytes of every file under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for e in or_panic(std::fs::read_dir(dir)).flatten() {
        let Ok(meta) = e.metadata() else { continue };
        total += if meta.is_dir() {
            dir_bytes(&e.path())
        } else {
            meta.len()
        };
    }
    total
}

async fn check(c: &Client) {
    for i in 0..150 {
        let got = c.get(key(i), 0, None).await;
        if i % 2 == 0 {
            assert!(
                matches!(&got, Err(e) if e.is_not_found()),
                "removed key {i} is back: {:?}",
                got.map(|v| v.len())
            );
        } else {
            assert_eq!(or_panic(got), value(i, 2), "key {i}");
        }
    }
}

#[test]
fn defrag_reclaims_garbage_in_the_active_blob_and_removed_keys_stay_removed() {
    let dir = or_panic(tempfile::tempdir());
    let data = dir.path().join("data");
    let rt = or_panic(tokio::runtime::Runtime::new());
    let node = NodeProcess::start(&data, &[]);
    let addr = node.addr.clone();
    let before = rt.block_on(async {
        let c = or_panic(Client::connect(&addr, ClientConfig::default()).await);
        for round in 0..3 {
            for i in 0..150 {
                or_panic(c.put(key(i), value(i, round), Default::default()).await);
            }
        }
        for i in (0..150).step_by(2) {
            or_panic(c.remove(key(i), Default::default()).await);
        }
        let stat = or_panic(c.stat_value().await);
        let reclaimable = stat["backend"]["reclaimable_bytes"].as_u64().unwrap_or(0);
        assert!(
            reclaimable > 5_000_000,
            "stat says what can come back: {stat}"
        );
        dir_bytes(&data)
    });
    // Through the CLI, as an operator would.
    let out = or_panic(
        Command::new(env!("CARGO_BIN_EXE_ringblob"))
            .args(["--remote", &addr, "defrag", "--wait"])
            .output(),
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}");
    let after = dir_bytes(&data);
    assert!(
        after * 2 < before,
        "the data directory went from {before} to {after} bytes: {report}"
    );
    rt.block_on(async {
        let c = or_panic(Client::connect(&addr, ClientConfig::default()).await);
        check(&c).await;
        // Nothing left to do now, and the report says why.
        let again = or_panic(c.defrag_report(true).await);
        let note = again["note"].as_str().unwrap_or_default();
        assert!(!note.is_empty(), "{again}");
    });
    node.kill9();
    let node = NodeProcess::start(&data, &[]);
    rt.block_on(async {
        let c = or_panic(Client::connect(&node.addr, ClientConfig::default()).await);
        check(&c).await;
    });
}
