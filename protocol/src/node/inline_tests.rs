//! Serving inline (`dispatch::Serving::Inline`, no-wait mode) against serving on the pool:
//! the same replies, byte for byte, while values are overwritten, removed and defragmented
//! underneath; and durable writes served inline acknowledged only once synced.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ringblob_backends::{AsyncBackend, Backend, BlobBackend};
use ringblob_engine::{Config, IoKind};

use super::dispatch::{serve_batch, Served, Serving};
use super::NodeInfo;
use crate::wire::{
    decode_frame, Durability, Frame, KeyId, ReadRequest, Reply, Request, WriteMode, WriteRequest,
    READ_TO_END,
};

const KEYS: u8 = 64;

pub(super) fn frame(req: &Request, key: KeyId) -> Frame {
    let mut buf = BytesMut::new();
    req.encode(1, key, 0, &mut buf)
        .unwrap_or_else(|e| panic!("{e}"));
    decode_frame(&mut buf)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no frame"))
}

pub(super) fn read(key: KeyId) -> Frame {
    let r = ReadRequest::range(0, 0, READ_TO_END);
    frame(&Request::Read(r), key)
}

pub(super) fn write(key: KeyId, data: Vec<u8>, durability: Durability) -> Frame {
    let w = WriteRequest {
        mode: WriteMode::Whole,
        compress: false,
        durability,
        column: 0,
        if_newer: None,
        version: None,
        deadline_ns: None,
        data: Bytes::from(data),
    };
    frame(&Request::Write(w), key)
}

pub(super) fn key(i: u8) -> KeyId {
    let mut k = [i; 32];
    k[31] = 0x5a;
    k
}

/// A value that says which key and round wrote it, in every byte group, and has a length
/// that depends on both: a reply mixing two versions, or cut short, cannot pass for one.
pub(super) fn value(i: u8, round: u32) -> Vec<u8> {
    let len = 200 + (usize::from(i) * 37 + round as usize * 101) % 3000;
    let tag = [i, round as u8, (round >> 8) as u8, 0xA5];
    tag.iter().copied().cycle().take(len).collect()
}

fn is_a_version_of(data: &[u8], i: u8) -> bool {
    if data.len() < 4 || data[0] != i || data[3] != 0xA5 {
        return false;
    }
    let round = u32::from(data[1]) | u32::from(data[2]) << 8;
    data == value(i, round).as_slice()
}

pub(super) fn replies(served: Served) -> Vec<Reply> {
    let mut buf = BytesMut::from(served.chunks.concat().as_slice());
    let mut out = Vec::new();
    while let Some(f) = decode_frame(&mut buf).unwrap_or_else(|e| panic!("{e}")) {
        out.push(Reply::decode(&f).unwrap_or_else(|e| panic!("{e}")));
    }
    out
}

pub(super) fn open(dir: &std::path::Path) -> Arc<BlobBackend> {
    open_with(dir, IoKind::Pread)
}

fn open_with(dir: &std::path::Path, io: IoKind) -> Arc<BlobBackend> {
    let config = Config {
        max_blob_size: 64 << 10,
        write_buffer_size: 16 << 10,
        io,
        ..Config::default()
    };
    Arc::new(BlobBackend::open(dir, config).unwrap_or_else(|e| panic!("{e}")))
}

fn serve(b: &dyn Backend, info: &NodeInfo, frames: Vec<Frame>, how: Serving) -> Served {
    serve_batch(b, info, frames, &|_, _| false, (usize::MAX, how))
}

/// One READ of key `i`, inline (with the pool for what inline refused) or on the pool.
fn read_one(b: &dyn Backend, info: &NodeInfo, i: u8, how: Serving) -> Option<Vec<u8>> {
    let mut served = serve(b, info, vec![read(key(i))], how);
    if !served.rest.is_empty() {
        assert_eq!(how, Serving::Inline);
        served = serve(b, info, served.rest, Serving::Pool);
    }
    match replies(served).pop() {
        Some(Reply::ReadPart { data, more: false }) => Some(data.to_vec()),
        Some(Reply::Error { status, .. }) if matches!(status.name(), "NOT_FOUND" | "REMOVED") => {
            None
        }
        other => panic!("key {i}: {other:?}"),
    }
}

#[test]
fn inline_and_pool_reads_agree_while_values_change_underneath() {
    reads_agree_while_values_change(IoKind::Pread);
}

/// With memory maps, reads inline go through `RWF_NOWAIT` and those on the pool through
/// the map: the same bytes either way.
#[test]
fn inline_and_pool_reads_agree_over_memory_maps() {
    reads_agree_while_values_change(IoKind::Mmap);
}

fn reads_agree_while_values_change(io: IoKind) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let b = open_with(dir.path(), io);
    let info = NodeInfo::new(
        "t".into(),
        "127.0.0.1:1".parse().unwrap_or_else(|e| panic!("{e}")),
        1,
    );
    for i in 0..KEYS {
        let w = write(key(i), value(i, 0), Durability::None);
        assert_eq!(
            serve(b.as_ref(), &info, vec![w], Serving::Pool)
                .outcomes
                .len(),
            1
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let changer = {
        let (b, stop) = (b.clone(), stop.clone());
        std::thread::spawn(move || {
            let info = NodeInfo::new(
                "c".into(),
                "127.0.0.1:1".parse().unwrap_or_else(|e| panic!("{e}")),
                1,
            );
            let mut round = 1u32;
            while !stop.load(Ordering::Relaxed) {
                for i in 0..KEYS {
                    let how = if round.is_multiple_of(2) {
                        Serving::Pool
                    } else {
                        Serving::Inline
                    };
                    let f = if (u32::from(i) + round).is_multiple_of(7) {
                        let r = crate::wire::RemoveRequest {
                            durability: Durability::None,
                            column: None,
                            if_newer: None,
                            version: None,
                            deadline_ns: None,
                        };
                        frame(&Request::Remove(r), key(i))
                    } else {
                        write(key(i), value(i, round), Durability::None)
                    };
                    let served = serve(b.as_ref(), &info, vec![f], how);
                    if !served.rest.is_empty() {
                        serve(b.as_ref(), &info, served.rest, Serving::Pool);
                    }
                }
                // The engine's own upkeep may be defragmenting too (then this one waits or
                // is refused as busy).
                if round.is_multiple_of(5) {
                    let _ = b.defrag();
                }
                round += 1;
            }
            round
        })
    };
    let mut inline_served = 0;
    for pass in 0..200 {
        for i in 0..KEYS {
            let how = if pass % 2 == 0 {
                Serving::Inline
            } else {
                Serving::Pool
            };
            if let Some(data) = read_one(b.as_ref(), &info, i, how) {
                assert!(
                    is_a_version_of(&data, i),
                    "key {i} ({how:?}): a mixed or torn value"
                );
                inline_served += usize::from(how == Serving::Inline);
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = changer
        .join()
        .unwrap_or_else(|_| panic!("changer panicked"));
    assert!(
        rounds > 2,
        "the values changed underneath ({rounds} rounds)"
    );
    assert!(inline_served > 0);
    // Settled: the same bytes inline as on the pool, for every key.
    for i in 0..KEYS {
        let pool = read_one(b.as_ref(), &info, i, Serving::Pool);
        let inline = read_one(b.as_ref(), &info, i, Serving::Inline);
        assert_eq!(inline, pool, "key {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_writes_served_inline_wait_for_a_shared_sync() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let blob = open(dir.path());
    let syncs = |b: &BlobBackend| b.stats().ok().and_then(|s| s.syncs).unwrap_or_default();
    let before = syncs(&blob);
    let backend = AsyncBackend::new(blob.clone(), 8);
    let info = Arc::new(NodeInfo::new(
        "t".into(),
        "127.0.0.1:1".parse().unwrap_or_else(|e| panic!("{e}")),
        1,
    ));
    let mut tasks = Vec::new();
    for i in 0..KEYS {
        let (backend, info) = (backend.clone(), info.clone());
        tasks.push(tokio::spawn(async move {
            let w = write(key(i), value(i, 1), Durability::Batch);
            let b = backend.backend().clone();
            let mut served = serve(b.as_ref(), &info, vec![w], Serving::Inline);
            if !served.rest.is_empty() {
                // Refused inline (the write buffer was full): the pool syncs by itself.
                let served = serve(b.as_ref(), &info, served.rest, Serving::Pool);
                return (false, replies(served));
            }
            assert!(served.needs_sync(), "a durable write waits for a sync");
            assert!(served.chunks.is_empty(), "no reply before the sync");
            served.settle(backend.sync_after_writes(1).await);
            (true, replies(served))
        }));
    }
    let mut inline = 0;
    for t in tasks {
        let (was_inline, r) = t.await.unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(r.as_slice(), [Reply::Write(_)]), "{r:?}");
        inline += usize::from(was_inline);
    }
    assert!(inline > 0, "some durable writes were served inline");
    let synced = syncs(&blob) - before;
    assert!((1..=u64::from(KEYS)).contains(&synced), "{synced} syncs");
    // Acknowledged means synced: everything is there after reopening.
    drop(backend);
    drop(blob);
    let reopened = open(dir.path());
    for i in 0..KEYS {
        let got = read_one(reopened.as_ref(), &info, i, Serving::Pool);
        assert_eq!(got, Some(value(i, 1)), "key {i}");
    }
}
