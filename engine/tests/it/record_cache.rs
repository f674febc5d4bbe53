//! The record cache (small records kept in memory, by place): reads answered from it and
//! from the file give the same bytes, also while values are overwritten, removed, sealed
//! and defragmented (their records move and their blobs are retired), and a read never
//! answers older than the newest write acknowledged before it began.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ringblob_engine::io::MemDevice;
use ringblob_engine::{Config, DefragOptions, Durability, Error, Key, WriteOptions};

use crate::support::{key, open_mem, read_all, value};

const KEYS: u64 = 48;
/// A round number meaning "removed" in the acknowledged table.
const REMOVED: u64 = u64::MAX;

fn config(cache_bytes: u64) -> Config {
    Config {
        max_blob_size: 32 << 10,
        max_blob_records: 24,
        frame_len: 4096,
        defrag_interval: None,
        record_cache_bytes: cache_bytes,
        ..Config::default()
    }
}

/// Round `n`'s value of key `k`: the round, then bytes of the key and round.
fn versioned(k: u64, n: u64) -> Vec<u8> {
    let mut v = n.to_le_bytes().to_vec();
    v.extend(value(k, n, 112));
    v
}

/// The round `v` says it is of, if it is a whole value of key `k`.
fn round_of(k: u64, v: &[u8]) -> Option<u64> {
    let n = u64::from_le_bytes(v.get(..8)?.try_into().ok()?);
    (versioned(k, n) == v).then_some(n)
}

/// Per key: the newest round acknowledged ([`REMOVED`] after a remove), and whether a
/// remove is under way.
struct Acked {
    round: AtomicU64,
    removing: AtomicBool,
}

/// One reader: every read is a whole value of its key, of a round no older than the one
/// acknowledged before the read began; absent only if a remove was acknowledged or under
/// way while it ran.
fn read_checked(e: &ringblob_engine::Engine, acked: &[Acked], k: u64) {
    let slot = &acked[k as usize];
    let removing_before = slot.removing.load(Ordering::SeqCst);
    let before = slot.round.load(Ordering::SeqCst);
    let got = read_all(e, &key(k));
    let after = slot.round.load(Ordering::SeqCst);
    let removing = removing_before || slot.removing.load(Ordering::SeqCst);
    match got {
        Ok(v) => {
            let r = round_of(k, &v);
            assert!(r.is_some(), "key {k}: a torn or foreign value");
            if before != REMOVED {
                assert!(
                    r >= Some(before),
                    "key {k}: round {r:?} read after round {before} was acknowledged"
                );
            }
        }
        Err(Error::NotFound(_)) => assert!(
            before == REMOVED || after != before || removing,
            "key {k}: not found after round {before} was acknowledged, with no remove since"
        ),
        Err(e) => panic!("key {k}: {e}"),
    }
}

#[test]
fn cached_reads_never_answer_older_than_acknowledged_while_records_move() {
    let dev = MemDevice::new();
    let e = Arc::new(open_mem(&dev, config(1 << 20)));
    let quick = WriteOptions::durability(Durability::None);
    let acked: Arc<Vec<Acked>> = Arc::new(
        (0..KEYS)
            .map(|_| Acked {
                round: AtomicU64::new(0),
                removing: AtomicBool::new(false),
            })
            .collect(),
    );
    for k in 0..KEYS {
        assert!(e.write(&key(k), &versioned(k, 0), quick).is_ok());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (e, stop, acked) = (e.clone(), stop.clone(), acked.clone());
        std::thread::spawn(move || {
            let mut n = 1u64;
            while !stop.load(Ordering::SeqCst) && n < 200_000 {
                let k = n % KEYS;
                let slot = &acked[k as usize];
                if n.is_multiple_of(7) {
                    slot.removing.store(true, Ordering::SeqCst);
                    match e.remove(&key(k)) {
                        Ok(_) | Err(Error::NotFound(_)) => {}
                        Err(err) => panic!("remove: {err}"),
                    }
                    slot.round.store(REMOVED, Ordering::SeqCst);
                    slot.removing.store(false, Ordering::SeqCst);
                } else {
                    assert!(e.write(&key(k), &versioned(k, n), quick).is_ok());
                    slot.round.store(n, Ordering::SeqCst);
                }
                n += 1;
            }
        })
    };
    let readers: Vec<_> = (0..2u64)
        .map(|r| {
            let (e, stop, acked) = (e.clone(), stop.clone(), acked.clone());
            std::thread::spawn(move || {
                let mut i = r;
                while !stop.load(Ordering::SeqCst) {
                    // Most reads on a few hot keys, so the cache answers many of them.
                    let k = if i.is_multiple_of(4) { i % KEYS } else { i % 4 };
                    read_checked(&e, &acked, k);
                    i += 1;
                }
            })
        })
        .collect();
    let all = DefragOptions {
        min_garbage_ratio: 0.0,
        max_bytes_per_sec: 0,
    };
    for _ in 0..40 {
        assert!(e.rotate().is_ok());
        match e.defrag_with(all) {
            Ok(_) | Err(Error::Busy) => {}
            Err(err) => panic!("defrag: {err}"),
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        if writer.is_finished() || readers.iter().any(|r| r.is_finished()) {
            break;
        }
    }
    stop.store(true, Ordering::SeqCst);
    assert!(writer.join().is_ok(), "writer panicked");
    for r in readers {
        assert!(
            r.join().is_ok(),
            "a reader saw a torn, foreign or stale value"
        );
    }
    let cache = e.stats().record_cache;
    assert!(cache.hits > 0 && cache.misses > 0, "{cache:?}");
    assert!(cache.bytes <= cache.capacity, "{cache:?}");
}

/// What every key reads as, by one engine.
fn snapshot(e: &ringblob_engine::Engine) -> Vec<Option<Vec<u8>>> {
    (0..KEYS).map(|k| read_all(e, &key(k)).ok()).collect()
}

#[test]
fn the_same_store_reads_the_same_with_and_without_the_cache() {
    let dev = MemDevice::new();
    let quick = WriteOptions::durability(Durability::None);
    let e = open_mem(&dev, config(1 << 20));
    for n in 0..(KEYS * 6) {
        let k: Key = key(n % KEYS);
        assert!(e.write(&k, &value(n % KEYS, n, 120), quick).is_ok());
        if n.is_multiple_of(5) {
            assert!(e.remove(&key((n / 5) % KEYS)).is_ok());
        }
        // Reads between the writes fill the cache with records that then move.
        let _ = snapshot(&e);
    }
    assert!(e.rotate().is_ok());
    let cached = snapshot(&e);
    assert_eq!(cached, snapshot(&e), "a second cached read differs");
    assert!(e.stats().record_cache.hits > 0);
    let sync = e.sync();
    assert!(sync.is_ok(), "{sync:?}");
    drop(e);
    let plain = open_mem(&dev, config(0));
    assert_eq!(snapshot(&plain), cached, "the file and the cache disagree");
    assert_eq!(plain.stats().record_cache.entries, 0);
}
