//! Sorted index mode under concurrency: blobs are sealed (keys leave memory for sorted
//! indexes) and defragmented while readers look up keys just written and writers overwrite
//! and remove; no reader may ever miss a live key or see a removed one.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ringblob_engine::io::MemDevice;
use ringblob_engine::{Config, DefragOptions, Durability, Error, IndexMode, WriteOptions};

use crate::support::{key, open_mem, read_all, value};

#[test]
fn readers_never_miss_a_key_while_blobs_are_sealed_and_defragmented() {
    let dev = MemDevice::new();
    let config = Config {
        max_blob_size: 32 << 10,
        max_blob_records: 16,
        frame_len: 4096,
        defrag_interval: None,
        index: IndexMode::Sorted,
        ..Config::default()
    };
    let e = Arc::new(open_mem(&dev, config));
    let quick = WriteOptions::durability(Durability::None);
    // Keys 0..200 stay live with version 0 throughout, over an older version 9 in an older
    // blob (a reader racing a defragmentation must never fall back to it); keys 1000.. are
    // churned.
    for i in 0..200u64 {
        assert!(e.write(&key(i), &value(i, 9, 100), quick).is_ok());
    }
    assert!(e.rotate().is_ok());
    for i in 0..200u64 {
        assert!(e.write(&key(i), &value(i, 0, 100), quick).is_ok());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (e, stop, written) = (e.clone(), stop.clone(), written.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let k = 1000 + n % 64;
                assert!(e.write(&key(k), &value(k, n, 150), quick).is_ok());
                if n.is_multiple_of(5) {
                    let _ = e.remove(&key(1000 + (n / 5) % 64));
                }
                n += 1;
                written.store(n, Ordering::SeqCst);
            }
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (e, stop) = (e.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = r;
                while !stop.load(Ordering::SeqCst) {
                    let k = i % 200;
                    let got = read_all(&e, &key(k));
                    assert_eq!(
                        got.ok(),
                        Some(value(k, 0, 100)),
                        "live key {k} missed or read stale"
                    );
                    i += 1;
                }
            })
        })
        .collect();
    let all = DefragOptions {
        min_garbage_ratio: 0.0,
        max_bytes_per_sec: 0,
    };
    let mut rounds = 0;
    let busy = |w: &std::thread::JoinHandle<()>| !w.is_finished();
    let failed = |rs: &[std::thread::JoinHandle<()>]| rs.iter().any(|r| r.is_finished());
    while (rounds < 20 || written.load(Ordering::SeqCst) < 2000)
        && busy(&writer)
        && !failed(&readers)
    {
        assert!(e.rotate().is_ok());
        match e.defrag_with(all) {
            Ok(_) | Err(Error::Busy) => {}
            Err(err) => panic!("defrag: {err}"),
        }
        rounds += 1;
        assert!(rounds < 100_000, "writer made no progress");
    }
    stop.store(true, Ordering::SeqCst);
    assert!(writer.join().is_ok(), "writer panicked");
    for r in readers {
        assert!(r.join().is_ok(), "a reader missed a live key");
    }
    for i in 0..200u64 {
        assert_eq!(read_all(&e, &key(i)).ok(), Some(value(i, 0, 100)));
    }
}
