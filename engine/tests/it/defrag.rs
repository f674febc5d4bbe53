//! Online defragmentation: space comes back, live values and removals survive it (and a
//! crash at any point of it), and readers and writers keep going.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use ringblob_engine::io::{Device, MemDevice};
use ringblob_engine::{Config, DefragOptions, Durability, Error, IndexMode, WriteOptions};

use crate::support::{key, open_mem, read_all, value};

fn config() -> Config {
    Config {
        max_blob_size: 64 << 10,
        max_blob_records: 40,
        frame_len: 4096,
        defrag_interval: None,
        ..Config::default()
    }
}

fn all_now() -> DefragOptions {
    DefragOptions {
        min_garbage_ratio: 0.0,
        max_bytes_per_sec: 0,
    }
}

fn blob_count(dev: &MemDevice) -> usize {
    dev.list()
        .unwrap_or_default()
        .iter()
        .filter(|n| n.ends_with(".blob"))
        .count()
}

/// 100 keys written 3 times each, 10 removed; returns the expected final values.
fn churn(e: &ringblob_engine::Engine) -> Vec<(u64, Option<Vec<u8>>)> {
    for round in 0..3u64 {
        for i in 0..100u64 {
            assert!(e
                .write(&key(i), &value(i, round, 300), WriteOptions::default())
                .is_ok());
        }
    }
    for i in 0..10 {
        assert!(e.remove(&key(i)).is_ok());
    }
    (0..100)
        .map(|i| (i, if i < 10 { None } else { Some(value(i, 2, 300)) }))
        .collect()
}

fn check(e: &ringblob_engine::Engine, want: &[(u64, Option<Vec<u8>>)], label: &str) {
    for (i, v) in want {
        match (read_all(e, &key(*i)), v) {
            (Ok(got), Some(v)) => assert!(got == *v, "{label}: key {i} has the wrong value"),
            (Err(Error::NotFound(_)), None) => {}
            (got, v) => panic!(
                "{label}: key {i}: got {:?}, want {:?}",
                got.map(|g| g.len()),
                v.as_ref().map(Vec::len)
            ),
        }
    }
}

#[test]
fn defrag_reclaims_superseded_space_and_keeps_every_live_value() {
    let dev = MemDevice::new();
    let e = open_mem(&dev, config());
    let want = churn(&e);
    assert!(e.rotate().is_ok());
    let before = e.stats();
    let blobs_before = blob_count(&dev);
    let reclaimable = before.reclaimable_bytes;
    assert!(reclaimable > 0);
    let report = e
        .defrag_with(all_now())
        .unwrap_or_else(|err| panic!("defrag: {err}"));
    assert!(!report.blobs_rewritten.is_empty());
    // Only live values move: at most the 90 live keys (blobs holding nothing but live
    // values are not rewritten).
    assert!((1..=90).contains(&report.records_copied), "{report:?}");
    let after = e.stats();
    assert!(
        after.bytes_on_disk < before.bytes_on_disk,
        "{} >= {}",
        after.bytes_on_disk,
        before.bytes_on_disk
    );
    assert!(blob_count(&dev) < blobs_before);
    assert_eq!(after.defrag.runs, 1);
    check(&e, &want, "after defrag");
    drop(e);
    let e = open_mem(&dev, config());
    check(&e, &want, "after reopen");
    assert_eq!(e.stats().keys, 90);
}

#[test]
fn a_tombstone_survives_while_an_older_blob_holds_its_key() {
    let dev = MemDevice::new();
    let e = open_mem(&dev, config());
    // Key 1's value sits in blob 1, which is mostly live and not small (so not rewritten);
    // its tombstone sits in a later blob full of garbage, which is rewritten.
    assert!(e
        .write(&key(1), b"old value", WriteOptions::default())
        .is_ok());
    for i in 100..130 {
        assert!(e
            .write(&key(i), &value(i, 0, 300), WriteOptions::default())
            .is_ok());
    }
    assert!(e.rotate().is_ok());
    assert!(e.remove(&key(1)).is_ok());
    for round in 0..5 {
        assert!(e
            .write(&key(200), &value(200, round, 500), WriteOptions::default())
            .is_ok());
    }
    // Key 2 removed and written again: its tombstone must not come back over the new value.
    assert!(e.write(&key(2), b"first", WriteOptions::default()).is_ok());
    assert!(e.remove(&key(2)).is_ok());
    assert!(e.rotate().is_ok());
    assert!(e.write(&key(2), b"second", WriteOptions::default()).is_ok());
    assert!(e.rotate().is_ok());
    let opts = DefragOptions {
        min_garbage_ratio: 0.5,
        max_bytes_per_sec: 0,
    };
    let report = e.defrag_with(opts).unwrap_or_else(|err| panic!("{err}"));
    assert!(report.tombstones_kept >= 1, "{report:?}");
    assert!(matches!(read_all(&e, &key(1)), Err(Error::NotFound(_))));
    assert_eq!(read_all(&e, &key(2)).ok().as_deref(), Some(&b"second"[..]));
    drop(e);
    let e = open_mem(&dev, config());
    assert!(
        matches!(read_all(&e, &key(1)), Err(Error::NotFound(_))),
        "removed key came back"
    );
    assert_eq!(read_all(&e, &key(2)).ok().as_deref(), Some(&b"second"[..]));
    for i in 100..130 {
        assert_eq!(read_all(&e, &key(i)).ok(), Some(value(i, 0, 300)));
    }
}

#[test]
fn reads_and_writes_continue_during_defrag() {
    let dev = MemDevice::new();
    let e = Arc::new(open_mem(&dev, config()));
    let want = churn(&e);
    assert!(e.rotate().is_ok());
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (e, stop, reads, want) = (e.clone(), stop.clone(), reads.clone(), want.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                check(&e, &want[10..40], "during defrag");
                reads.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (e, stop, written) = (e.clone(), stop.clone(), written.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let k = 1000 + n % 50;
                assert!(e
                    .write(&key(k), &value(k, n, 200), WriteOptions::default())
                    .is_ok());
                n += 1;
                written.fetch_add(1, Ordering::SeqCst);
            }
            n
        })
    };
    // Defragment repeatedly until both threads have done real work alongside it.
    let mut runs = 0;
    while runs < 3 || reads.load(Ordering::SeqCst) < 5 || written.load(Ordering::SeqCst) < 5 {
        assert!(e.defrag_with(all_now()).is_ok());
        runs += 1;
        assert!(
            runs < 10_000,
            "reader made no progress during defragmentation"
        );
    }
    stop.store(true, Ordering::SeqCst);
    assert!(reader.join().is_ok());
    let writes = writer.join().unwrap_or(0);
    assert!(reads.load(Ordering::SeqCst) > 0 && writes > 0);
    check(&e, &want, "after concurrent defrag");
    let last = writes - 1;
    assert_eq!(
        read_all(&e, &key(1000 + last % 50)).ok(),
        Some(value(1000 + last % 50, last, 200))
    );
}

#[test]
fn defrag_refuses_when_the_disk_is_too_full_and_when_already_running() {
    let dev = MemDevice::new();
    let e = open_mem(&dev, config());
    churn(&e);
    assert!(e.rotate().is_ok());
    dev.set_free_space(Some(1 << 10));
    let r = e.defrag_with(all_now());
    assert!(
        matches!(r, Err(Error::NoSpace { available, .. }) if available == 1 << 10),
        "{r:?}"
    );
    assert!(e
        .stats()
        .defrag
        .last_error
        .is_some_and(|m| m.contains("free space")));
    dev.set_free_space(None);
    // A slow (throttled) defragmentation in another thread: a second one is refused.
    let e = Arc::new(e);
    let slow = {
        let e = e.clone();
        std::thread::spawn(move || {
            e.defrag_with(DefragOptions {
                min_garbage_ratio: 0.0,
                max_bytes_per_sec: 20_000,
            })
        })
    };
    let mut waited = 0;
    while !e.stats().defrag.running {
        std::thread::sleep(std::time::Duration::from_millis(1));
        waited += 1;
        assert!(
            waited < 10_000,
            "the throttled defragmentation never started"
        );
    }
    assert!(matches!(e.defrag_with(all_now()), Err(Error::Busy)));
    assert!(slow
        .join()
        .is_ok_and(|r| r.is_ok_and(|r| r.bytes_copied > 0)));
}

/// A nearly full disk (64 KiB free): a defragmentation with little to copy (everything
/// removed) asks only for that, and one run at the default threshold also reclaims the blob
/// being written.
#[test]
fn a_full_disk_is_defragmented_when_there_is_nothing_to_copy() {
    let dev = MemDevice::new();
    let e = open_mem(&dev, config());
    for i in 0..100u64 {
        assert!(e
            .write(&key(i), &value(i, 0, 300), WriteOptions::default())
            .is_ok());
    }
    for i in 0..100u64 {
        assert!(e.remove(&key(i)).is_ok());
    }
    dev.set_free_space(Some(64 << 10));
    let r = e.defrag_with(DefragOptions {
        min_garbage_ratio: 0.5,
        max_bytes_per_sec: 0,
    });
    let r = r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.records_copied, 0, "{r:?}");
    assert!(
        r.bytes_reclaimed > 30_000,
        "the active blob's garbage came back: {r:?}"
    );
    assert!(r.note.is_none());
    for i in 0..100u64 {
        assert!(read_all(&e, &key(i)).is_err(), "key {i} came back");
    }
    let again = e.defrag_with(all_now()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        again
            .note
            .as_deref()
            .is_some_and(|n| n.contains("nothing to reclaim")),
        "{again:?}"
    );
}

#[test]
fn a_crash_at_any_sync_point_of_a_defrag_loses_nothing_and_resurrects_nothing() {
    let dev = MemDevice::new();
    let e = open_mem(&dev, config());
    let want = churn(&e);
    assert!(e.rotate().is_ok());
    assert!(e.sync().is_ok());
    let images: Arc<Mutex<Vec<MemDevice>>> = Arc::default();
    {
        let images = images.clone();
        dev.on_sync(move |d| images.lock().push(d.crash_image()));
    }
    let report = e.defrag_with(all_now());
    assert!(report.is_ok_and(|r| !r.blobs_rewritten.is_empty()));
    let images = std::mem::take(&mut *images.lock());
    assert!(
        images.len() >= 3,
        "a defrag has several sync points, saw {}",
        images.len()
    );
    for (n, image) in images.iter().enumerate() {
        let e = open_mem(image, config());
        check(&e, &want, &format!("crash at defrag sync point {n}"));
    }
}

#[test]
fn durable_writes_during_defrag_stay_durable() {
    let dev = MemDevice::new();
    let e = open_mem(&dev, config());
    churn(&e);
    assert!(e.rotate().is_ok());
    assert!(e.defrag_with(all_now()).is_ok());
    assert!(e
        .write(
            &key(5000),
            b"after",
            WriteOptions::durability(Durability::Sync)
        )
        .is_ok());
    let image = dev.crash_image();
    let e2 = open_mem(&image, config());
    assert_eq!(
        read_all(&e2, &key(5000)).ok().as_deref(),
        Some(&b"after"[..])
    );
}

#[test]
fn small_sealed_blobs_are_merged_even_without_garbage() {
    let dev = MemDevice::new();
    let e = open_mem(&dev, config());
    let opts = WriteOptions::durability(Durability::None);
    for i in 0..10u64 {
        assert!(e.write(&key(i), &value(i, 0, 300), opts).is_ok());
        if i % 2 == 1 {
            assert!(e.rotate().is_ok());
        }
    }
    // Five small sealed blobs with no garbage at all, plus the active one.
    assert_eq!(blob_count(&dev), 6);
    let threshold = DefragOptions {
        min_garbage_ratio: 0.5,
        max_bytes_per_sec: 0,
    };
    let report = e.defrag_with(threshold);
    assert_eq!(report.map(|r| r.blobs_rewritten.len()).ok(), Some(5));
    assert_eq!(blob_count(&dev), 1, "merged into the active blob");
    for i in 0..10u64 {
        assert_eq!(read_all(&e, &key(i)).ok(), Some(value(i, 0, 300)));
    }
    // One small blob alone is left as it is.
    assert!(e.rotate().is_ok());
    assert_eq!(
        e.defrag_with(threshold)
            .map(|r| r.blobs_rewritten.len())
            .ok(),
        Some(0)
    );
}

/// An iteration that a defragmentation overtakes (the blobs it had yet to visit are
/// rewritten and retired) still yields every live value, each once: the mover and repair
/// rely on it to hand over whole key ranges.
#[test]
fn iteration_overtaken_by_defrag_yields_every_live_value_once() {
    for mode in [IndexMode::Sorted, IndexMode::Memory] {
        let dev = MemDevice::new();
        let e = open_mem(
            &dev,
            Config {
                index: mode,
                ..config()
            },
        );
        let want = churn(&e);
        assert!(e.rotate().is_ok());
        let mut it = e.iterate();
        let mut seen = vec![];
        match it.next() {
            Some(Ok(m)) => seen.push(m.key),
            other => panic!("{mode:?}: first entry: {other:?}"),
        }
        let report = e.defrag_with(all_now());
        assert!(
            report.is_ok_and(|r| r.blobs_rewritten.len() > 1),
            "{mode:?}: defrag rewrote too little to test anything"
        );
        for m in it {
            match m {
                Ok(m) => seen.push(m.key),
                Err(err) => panic!("{mode:?}: iteration failed: {err}"),
            }
        }
        let mut live: Vec<_> = want
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(i, _)| key(*i))
            .collect();
        live.sort();
        let listed = seen.len();
        seen.sort();
        seen.dedup();
        assert_eq!(listed, seen.len(), "{mode:?}: a value was listed twice");
        assert_eq!(seen, live, "{mode:?}: iteration missed or invented keys");
    }
}
