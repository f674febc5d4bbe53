//! SIGKILL of a real node during `sync` writes: every acknowledged write survives.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ringblob_engine::Key;
use ringblob_protocol::client::{Client, ClientConfig, PutOptions, Target};
use ringblob_protocol::wire::{Durability, Reply, Request, WriteRequest};

use crate::node_process::NodeProcess;

fn key(i: u64) -> [u8; 32] {
    Key::from_name(b"kill9", &i.to_le_bytes()).0
}

fn value(i: u64) -> Bytes {
    Bytes::from(vec![(i % 251) as u8; 100 + (i % 7) as usize * 1000])
}

#[test]
fn sigkill_during_sync_writes_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let mut next = 0u64;
    for cycle in 0..5u64 {
        let node = NodeProcess::start(dir.path(), &[]);
        let addr = node.addr.clone();
        let writer = {
            let acked = acked.clone();
            let start = next;
            rt.spawn(async move {
                let Ok(c) = Client::connect(&addr, ClientConfig::default()).await else {
                    return;
                };
                let sync = PutOptions {
                    compress: false,
                    durability: Durability::Sync,
                    ..PutOptions::default()
                };
                for i in start.. {
                    if c.put(key(i), value(i), sync).await.is_err() {
                        return;
                    }
                    if let Ok(mut a) = acked.lock() {
                        a.push(i);
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_millis(150 + cycle * 37));
        node.kill9();
        let _ = rt.block_on(writer);
        next += 1_000_000;
        let node = NodeProcess::start(dir.path(), &[]);
        let list = acked.lock().map(|a| a.clone()).unwrap_or_default();
        assert!(!list.is_empty());
        rt.block_on(assert_held(&node.addr, &list, cycle));
        assert_eq!(node.terminate(), Some(0));
    }
}

/// Every key of `list` reads back its value from the node at `addr`, restarted after kill
/// number `cycle`.
async fn assert_held(addr: &str, list: &[u64], cycle: u64) {
    let c = Client::connect(addr, ClientConfig::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for &i in list {
        match c.get(key(i), 0, None).await {
            Ok(v) => assert!(v == value(i), "key {i} differs after kill {cycle}"),
            Err(e) => panic!("acknowledged key {i} lost after kill {cycle}: {e}"),
        }
    }
}

/// Pipelined `batch` writers: four connections, each sending sixteen durable writes in one
/// write at a time (`call_together`), so the node serves them inline in batches of sixteen
/// and its sync rounds gather (`backends::shared_sync`): a write is acknowledged only after
/// a sync that started after it, gathered or not.
#[test]
fn sigkill_during_pipelined_batch_writes_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    for cycle in 0..5u64 {
        let node = NodeProcess::start(dir.path(), &[]);
        let writers: Vec<_> = (0..4u64)
            .map(|conn| {
                let (addr, acked) = (node.addr.clone(), acked.clone());
                // Keys of this cycle and connection: 10^9 apart per cycle.
                let start = cycle * 1_000_000_000 + conn * 100_000_000;
                rt.spawn(pipelined_writer(addr, start, acked))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(400 + cycle * 53));
        node.kill9();
        for w in writers {
            let _ = rt.block_on(w);
        }
        let node = NodeProcess::start(dir.path(), &[]);
        let list = acked.lock().map(|a| a.clone()).unwrap_or_default();
        assert!(list.len() > 64, "only {} writes acknowledged", list.len());
        rt.block_on(assert_held(&node.addr, &list, cycle));
        assert_eq!(node.terminate(), Some(0));
    }
}

/// Writes keys `start..` sixteen at a time, in one write each time, until the node is gone;
/// notes every write acknowledged.
async fn pipelined_writer(addr: String, start: u64, acked: Arc<Mutex<Vec<u64>>>) {
    let Ok(c) = Client::connect(&addr, ClientConfig::default()).await else {
        return;
    };
    for first in (start..).step_by(16) {
        let reqs: Vec<(Request, Target)> = (first..first + 16)
            .map(|i| {
                let mut w = WriteRequest::whole(value(i));
                w.durability = Durability::Batch;
                (Request::Write(w), Target::from(key(i)))
            })
            .collect();
        let Ok(replies) = c.call_together(&reqs).await else {
            return;
        };
        for (i, reply) in (first..).zip(replies) {
            let ok = reply.is_ok_and(|r| !r.iter().any(|r| matches!(r, Reply::Error { .. })));
            if !ok {
                return;
            }
            if let Ok(mut a) = acked.lock() {
                a.push(i);
            }
        }
    }
}
