//! Sealed blobs' sorted indexes on a real directory are read through a read-only map (a
//! lookup copies no page with `pread`): every key is found with its value, misses stay
//! misses, and in no-wait mode (`io::nowait`) the same lookups read pages with `pread`
//! instead and agree. A sorted index cut short behind its map answers an error for the
//! keys on the lost pages instead of ending the process.

use ringblob_engine::io::nowait::without_waiting;
use ringblob_engine::{Config, Engine, IndexMode};

use crate::support::{key, read_all, small_config, value};

const KEYS: u64 = 2000;

/// A store of `KEYS` values of 300 bytes, all in sealed blobs with sorted indexes, reopened
/// (so the indexes are mapped).
fn sealed_and_reopened(dir: &std::path::Path) -> Engine {
    let config = Config {
        index: IndexMode::Sorted,
        ..small_config()
    };
    let e = Engine::open(dir, config.clone()).unwrap_or_else(|e| panic!("{e}"));
    for i in 0..KEYS {
        e.write(&key(i), &value(i, 1, 300), Default::default())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    e.rotate().unwrap_or_else(|e| panic!("{e}"));
    e.close().unwrap_or_else(|e| panic!("{e}"));
    Engine::open(dir, config).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn lookups_through_the_mapped_sorted_index_agree_with_reads_that_pread_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let e = sealed_and_reopened(dir.path());
    let blobs = e.stats().blobs;
    assert!(blobs > 10, "the keys are in sealed blobs ({blobs} blobs)");
    let sorted = std::fs::read_dir(dir.path())
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|f| f.file_name().to_string_lossy().ends_with(".sorted"))
                .count()
        })
        .unwrap_or(0);
    assert!(sorted > 10, "sealed with sorted indexes ({sorted})");
    for i in 0..KEYS {
        let got = read_all(&e, &key(i)).unwrap_or_else(|err| panic!("key {i}: {err}"));
        assert_eq!(got, value(i, 1, 300), "key {i}");
        let (again, refused) = without_waiting(|| e.lookup(&key(i)).map(|m| m.timestamp_ns));
        if !refused {
            let mapped = e.lookup(&key(i)).map(|m| m.timestamp_ns);
            assert_eq!(again.ok(), mapped.ok(), "key {i}: pread and map agree");
        }
    }
    for i in KEYS..KEYS + 500 {
        assert!(e.lookup(&key(i)).is_err(), "key {i} was never written");
    }
}

#[test]
fn a_sorted_index_cut_short_behind_its_map_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let e = sealed_and_reopened(dir.path());
    // Every sorted index cut to its first page by another process, under the open maps.
    let mut cut = 0;
    for f in std::fs::read_dir(dir.path()).unwrap_or_else(|e| panic!("{e}")) {
        let path = f.unwrap_or_else(|e| panic!("{e}")).path();
        if path.to_string_lossy().ends_with(".sorted") {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap_or_else(|e| panic!("{e}"));
            file.set_len(4096).unwrap_or_else(|e| panic!("{e}"));
            cut += 1;
        }
    }
    assert!(cut > 10, "sealed with sorted indexes ({cut})");
    let mut failed = 0;
    for i in 0..KEYS {
        match read_all(&e, &key(i)) {
            Ok(got) => assert_eq!(got, value(i, 1, 300), "key {i}: never wrong bytes"),
            Err(_) => failed += 1,
        }
    }
    assert!(failed > 0, "keys on the cut pages answer an error");
}
