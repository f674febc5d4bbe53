//! Sealed blobs' sorted indexes on a real directory are read through a read-only map (a
//! lookup copies no page with `pread`): every key is found with its value, misses stay
//! misses, and in no-wait mode (`io::nowait`) the same lookups read pages with `pread`
//! instead and agree.

use ringblob_engine::io::nowait::without_waiting;
use ringblob_engine::{Config, Engine, IndexMode};

use crate::support::{key, read_all, small_config, value};

const KEYS: u64 = 2000;

#[test]
fn lookups_through_the_mapped_sorted_index_agree_with_reads_that_pread_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = Config {
        index: IndexMode::Sorted,
        ..small_config()
    };
    let e = Engine::open(dir.path(), config.clone()).unwrap_or_else(|e| panic!("{e}"));
    for i in 0..KEYS {
        e.write(&key(i), &value(i, 1, 300), Default::default())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    e.rotate().unwrap_or_else(|e| panic!("{e}"));
    e.close().unwrap_or_else(|e| panic!("{e}"));
    let e = Engine::open(dir.path(), config).unwrap_or_else(|e| panic!("{e}"));
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
