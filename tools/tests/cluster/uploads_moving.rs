//! A streamed write whose key moves to another node mid-way. The upload lives on the node
//! that owned the key at the `PREPARE`; when the owner is drained between two parts, the
//! next part reaches the new owner, which has no upload. The client reports that as a lost
//! upload (not a malformed request), nothing is stored, and a write whose source can be
//! read again starts over on the new owner and succeeds.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringblob_protocol::client::{restarting, Client, ClientConfig, PutOptions};
use tokio::io::AsyncWriteExt;

use super::member::{self, Member};
use super::{config, converge, key, movement_done};

const PART: usize = 64 << 10;
const SIZE: usize = 4 * PART;

fn data() -> Bytes {
    Bytes::from((0..SIZE).map(|i| (i % 253) as u8).collect::<Vec<u8>>())
}

/// The first key `member` owns in group 1, by `via`'s route table.
async fn key_owned_by(via: &Client, member: &Member) -> [u8; 32] {
    let table = via.route_table().await.unwrap_or_else(|e| panic!("{e}"));
    (0..10_000)
        .map(key)
        .find(|k| table.owner(1, k).is_some_and(|n| n.addr == member.addr))
        .unwrap_or_else(|| panic!("{} owns none of 10,000 keys", member.name))
}

#[test]
fn a_streamed_write_whose_owner_is_drained_mid_way_starts_over_on_the_new_owner() {
    let _serial = member::serial();
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let mut a = Member::new("u1", 1, root.path(), None);
    a.start();
    let mut b = Member::new("u2", 1, root.path(), Some(&a.addr));
    b.start();
    let small_parts = ClientConfig {
        part_size: PART,
        ..config()
    };
    let c = rt.block_on(async {
        converge(&[&a, &b], 2).await;
        movement_done(&[&a, &b]).await;
        let c = Client::connect(&a.addr, small_parts)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Arc::new(c.in_group(1))
    });
    let k = rt.block_on(key_owned_by(&c, &b));

    // The first attempt reads a pipe the test feeds: two parts, then (after the drain) the rest.
    let (mut feed, pipe) = tokio::io::duplex(SIZE);
    let acked = Arc::new(AtomicU64::new(0));
    let attempts = Arc::new(AtomicU32::new(0));
    let put = {
        let (c, acked, attempts) = (c.clone(), acked.clone(), attempts.clone());
        let mut pipe = Some(pipe);
        rt.spawn(async move {
            restarting(|| {
                let (c, acked) = (c.clone(), acked.clone());
                let first = pipe.take();
                attempts.fetch_add(1, Ordering::Relaxed);
                async move {
                    let hint = (Some(SIZE as u64), PutOptions::default());
                    let seen = |n| acked.store(n, Ordering::Relaxed);
                    match first {
                        Some(mut pipe) => c.put_stream(k, 0, &mut pipe, hint, seen).await,
                        None => {
                            let all = data();
                            c.put_stream(k, 0, &mut &all[..], hint, seen).await
                        }
                    }
                }
            })
            .await
        })
    };
    rt.block_on(async {
        feed.write_all(&data()[..2 * PART])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while acked.load(Ordering::Relaxed) < PART as u64 {
            assert!(
                Instant::now() < deadline,
                "the first part was never acknowledged"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });

    // The key's owner leaves: its ranges (and the key) go to `a`; its staged upload stays.
    let drained = std::process::Command::new(env!("CARGO_BIN_EXE_ringblob"))
        .args(["--remote", &a.addr, "--timeout", "30"])
        .args(["node", "drain", &b.addr, "--wait"])
        .output()
        .unwrap_or_else(|e| panic!("ringblob: {e}"));
    assert!(
        drained.status.success(),
        "{}",
        String::from_utf8_lossy(&drained.stderr)
    );
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let table = c.route_table().await.unwrap_or_else(|e| panic!("{e}"));
            if table.owner(1, &k).is_some_and(|n| n.addr == a.addr) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the key never moved to {}",
                a.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        feed.write_all(&data()[2 * PART..])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        drop(feed);
    });

    let stored = rt
        .block_on(put)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("the write failed: {e}"));
    assert_eq!(stored, SIZE as u64);
    assert_eq!(
        attempts.load(Ordering::Relaxed),
        2,
        "the first attempt lost its upload and the write started over once"
    );
    rt.block_on(async {
        let got = c.get(k, 0, None).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(
            got == data(),
            "the value read back differs from the one written"
        );
        let meta = c.lookup(k).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(meta.size, SIZE as u64);
    });
}
