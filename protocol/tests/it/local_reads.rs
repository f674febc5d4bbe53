//! `Node::value_here`, the in-process read behind the HTTP gateway's whole GETs: what it
//! answers (the value, described by its own record — version and CRC equal to a lookup's —
//! and the name record) and what it leaves to a client (nothing stored, removed, too large,
//! whether the name record or only the value says so).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use ringblob_backends::names::{NameRecord, NAME_COLUMN};
use ringblob_backends::{Backend, BlobBackend, MemBackend};
use ringblob_engine::{Config, Key, WriteOptions};
use ringblob_protocol::node::{Node, NodeConfig};

fn or_panic<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn node_over(backend: Arc<dyn Backend>) -> Arc<Node> {
    let addr = or_panic("127.0.0.1:9".parse());
    Node::new(backend, NodeConfig::default(), addr)
}

/// Stores `value` under `name` with a name record saying `recorded_size`; returns the key.
fn store(b: &dyn Backend, name: &str, value: &[u8], recorded_size: u64) -> Key {
    let record = NameRecord {
        content_type: "image/jpeg".into(),
        ..NameRecord::new("photos", name.as_bytes(), recorded_size)
    };
    let key = record.key();
    or_panic(b.write_column(&key, 0, value, WriteOptions::default()));
    let bytes = or_panic(record.encode());
    or_panic(b.write_column(&key, NAME_COLUMN, &bytes, WriteOptions::default()));
    key
}

async fn answers_small_values_and_leaves_the_rest(b: Arc<dyn Backend>) {
    let node = node_over(b.clone());
    let value: Vec<u8> = (0..70_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let key = store(b.as_ref(), "a.jpg", &value, value.len() as u64);
    let before = node.info.counters.requests.load(Ordering::Relaxed);

    let Some(here) = node.value_here(None, key.0, 1 << 20).await else {
        panic!("a small value of a key the node owns is read here");
    };
    assert!(here.data == value);
    let meta = or_panic(b.lookup_column(&key, 0));
    assert_eq!(
        (here.timestamp_ns, here.crc),
        (meta.timestamp_ns, meta.checksum)
    );
    assert_eq!(here.crc, crc32fast::hash(&value));
    let record = here.record.unwrap_or_default();
    assert_eq!(
        (record.name, record.content_type),
        (b"a.jpg".to_vec(), "image/jpeg".into())
    );
    let counted = node.info.counters.requests.load(Ordering::Relaxed) - before;
    assert_eq!(
        counted, 2,
        "the two reads are counted as a connection's are"
    );

    // Over the bound: by the value itself, or by its name record before the value is read.
    assert!(node.value_here(None, key.0, 69_999).await.is_none());
    let big = store(b.as_ref(), "b.jpg", b"small now", 5 << 20);
    assert!(node.value_here(None, big.0, 1 << 20).await.is_none());
    assert!(node.value_here(None, big.0, 8 << 20).await.is_some());

    // A value without a name record is still answered; nothing stored, or removed, is not.
    let bare = Key([7; 32]);
    or_panic(b.write_column(&bare, 0, b"bare", WriteOptions::default()));
    let got = node.value_here(None, bare.0, 1 << 20).await;
    assert!(got.is_some_and(|v| v.data[..] == b"bare"[..] && v.record.is_none()));
    assert!(node.value_here(None, [9; 32], 1 << 20).await.is_none());
    or_panic(b.remove(&key, WriteOptions::default()));
    assert!(node.value_here(None, key.0, 1 << 20).await.is_none());
}

#[tokio::test]
async fn a_blob_node_answers_small_values_here_and_leaves_the_rest() {
    let dir = or_panic(tempfile::tempdir());
    let b = or_panic(BlobBackend::open(dir.path(), Config::default()));
    answers_small_values_and_leaves_the_rest(Arc::new(b)).await;
}

#[tokio::test]
async fn a_memory_node_answers_small_values_here_and_leaves_the_rest() {
    answers_small_values_and_leaves_the_rest(Arc::new(MemBackend::open_memory())).await;
}
