//! Keys over hundreds of sealed blobs in sorted mode: one key overwritten in every blob (more
//! copies than its slots in the key locator hold), keys of their own in each, removals,
//! defragmentation and reopens — every read answers with the newest record.

use ringblob_engine::io::MemDevice;
use ringblob_engine::{Config, DefragOptions, Engine, Error, IndexMode, WriteOptions};

use crate::support::{key, open_mem, read_all, value};

const BLOBS: u64 = 300;
/// Written in every blob.
const HOT: u64 = 1_000_000;

fn config() -> Config {
    Config {
        index: IndexMode::Sorted,
        max_blob_records: 1_000,
        defrag_interval: None,
        ..Config::default()
    }
}

fn write(e: &Engine, k: u64, v: u64) {
    if let Err(err) = e.write(&key(k), &value(k, v, 40), WriteOptions::default()) {
        panic!("write {k}: {err}");
    }
}

/// Checks every key: `HOT` holds `hot` (or is gone), key `b * 10 + i` holds version `b`
/// unless `removed(b)`.
fn check(e: &Engine, hot: Option<u64>, removed: impl Fn(u64) -> bool) {
    match (read_all(e, &key(HOT)), hot) {
        (Ok(v), Some(want)) => assert_eq!(v, value(HOT, want, 40), "hot key"),
        (Err(Error::NotFound(_)), None) => {}
        (got, want) => panic!("hot key: got {:?}, want {want:?}", got.map(|v| v.len())),
    }
    for b in 0..BLOBS {
        for i in 0..10 {
            let k = b * 10 + i;
            match read_all(e, &key(k)) {
                Ok(v) if !removed(b) => assert_eq!(v, value(k, b, 40), "key {k}"),
                Err(Error::NotFound(_)) if removed(b) => {}
                other => panic!(
                    "key {k}: {:?} (removed: {})",
                    other.map(|v| v.len()),
                    removed(b)
                ),
            }
        }
    }
}

#[test]
fn reads_over_hundreds_of_sealed_blobs_find_the_newest_record() {
    let dev = MemDevice::new();
    let mut e = open_mem(&dev, config());
    for b in 0..BLOBS {
        for i in 0..10 {
            write(&e, b * 10 + i, b);
        }
        write(&e, HOT, b);
        if let Err(err) = e.rotate() {
            panic!("rotate: {err}");
        }
    }
    check(&e, Some(BLOBS - 1), |_| false);
    // Remove the keys of every third blob (tombstones land in newer blobs).
    for b in (0..BLOBS).step_by(3) {
        for i in 0..10 {
            if let Err(err) = e.remove(&key(b * 10 + i)) {
                panic!("remove: {err}");
            }
        }
        if b.is_multiple_of(30) {
            if let Err(err) = e.rotate() {
                panic!("rotate: {err}");
            }
        }
    }
    let removed = |b: u64| b.is_multiple_of(3);
    check(&e, Some(BLOBS - 1), removed);
    drop(e);
    e = open_mem(&dev, config());
    check(&e, Some(BLOBS - 1), removed);
    let all = DefragOptions {
        min_garbage_ratio: 0.0,
        max_bytes_per_sec: 0,
    };
    if let Err(err) = e.defrag_with(all) {
        panic!("defrag: {err}");
    }
    check(&e, Some(BLOBS - 1), removed);
    if let Err(err) = e.remove(&key(HOT)) {
        panic!("remove: {err}");
    }
    if let Err(err) = e.rotate() {
        panic!("rotate: {err}");
    }
    check(&e, None, removed);
    drop(e);
    e = open_mem(&dev, config());
    check(&e, None, removed);
}

/// Enough keys per blob that the key locator grows into more tables than it keeps and is
/// rebuilt (`rotate` rebuilds it when it needs it), then mostly retired by defragmentation
/// and rebuilt again: every read stays right throughout.
#[test]
fn reads_stay_right_while_the_key_locator_grows_and_is_rebuilt() {
    const PER_BLOB: u64 = 1_000;
    const GROWN: u64 = 40;
    let dev = MemDevice::new();
    let e = open_mem(&dev, config());
    let check_blob = |e: &Engine, b: u64, live: bool| {
        for i in 0..PER_BLOB {
            let k = 10_000_000 + b * PER_BLOB + i;
            match read_all(e, &key(k)) {
                Ok(v) if live => assert_eq!(v, value(k, b, 40), "key {k}"),
                Err(Error::NotFound(_)) if !live => {}
                other => panic!("key {k}: {:?} (live: {live})", other.map(|v| v.len())),
            }
        }
    };
    for b in 0..GROWN {
        for i in 0..PER_BLOB {
            write(&e, 10_000_000 + b * PER_BLOB + i, b);
        }
        if let Err(err) = e.rotate() {
            panic!("rotate: {err}");
        }
        check_blob(&e, b, true);
        check_blob(&e, b / 2, true);
    }
    // Remove three blobs' keys in four: defragmentation retires their blobs.
    for b in (0..GROWN).filter(|b| b % 4 != 0) {
        for i in 0..PER_BLOB {
            if let Err(err) = e.remove(&key(10_000_000 + b * PER_BLOB + i)) {
                panic!("remove: {err}");
            }
        }
    }
    if let Err(err) = e.rotate() {
        panic!("rotate: {err}");
    }
    let all = DefragOptions {
        min_garbage_ratio: 0.0,
        max_bytes_per_sec: 0,
    };
    if let Err(err) = e.defrag_with(all) {
        panic!("defrag: {err}");
    }
    write(&e, 1, 1);
    if let Err(err) = e.rotate() {
        panic!("rotate: {err}");
    }
    for b in 0..GROWN {
        check_blob(&e, b, b % 4 == 0);
    }
}
