//! A whole group restarted without `--seed` (all three killed, started again with their data
//! directories alone) forms one membership again through the members its saved route table
//! names: a node joining through any one of them is then seen by all, and every key reads
//! back through every node.

use std::time::Duration;

use bytes::Bytes;
use ringblob_protocol::client::PutOptions;

use super::member::{self, Member};
use super::{client, converge, key, movement_done};

const KEYS: u64 = 200;

#[test]
fn a_group_restarted_without_seeds_finds_itself_and_takes_a_join() {
    let _serial = member::serial();
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let mut nodes = Member::start_group(["w1", "w2", "w3"], 1, root.path(), "");
    rt.block_on(async {
        let all: Vec<&Member> = nodes.iter().collect();
        converge(&all, 3).await;
        movement_done(&all).await;
        let w = client(&nodes[0].addr).await.in_group(1);
        for i in 0..KEYS {
            let v = Bytes::from(format!("value {i}"));
            let put = w.put(key(i), v, PutOptions::default()).await;
            assert!(put.is_ok(), "key {i}: {put:?}");
        }
    });
    for n in &mut nodes {
        n.kill9();
    }
    std::thread::sleep(Duration::from_millis(500));
    for n in &mut nodes {
        n.seed = None;
        n.start();
    }
    let mut joiner = Member::new("w4", 1, root.path(), Some(&nodes[1].addr));
    joiner.start();
    rt.block_on(async {
        let all: Vec<&Member> = nodes.iter().chain([&joiner]).collect();
        converge(&all, 4).await;
        movement_done(&all).await;
        for via in &all {
            let r = client(&via.addr).await.in_group(1);
            for i in 0..KEYS {
                let got = r.get_column(key(i), 0, 0, None).await;
                let want = Bytes::from(format!("value {i}"));
                assert_eq!(got.ok(), Some(want), "key {i} through {}", via.name);
            }
        }
    });
}
