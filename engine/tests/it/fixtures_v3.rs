//! Golden fixture of on-disk format v3 (`engine/tests/fixtures/v3/`, see its README.md):
//! patch records. Read back in both index modes, after reopen and after defragmentation
//! (which copies patches whole), from a copy (the engine takes a `LOCK` and writes files).

use std::fs;
use std::path::{Path, PathBuf};

use ringblob_engine::format::blob_header::BlobHeader;
use ringblob_engine::format::record::RecordHeader;
use ringblob_engine::{Config, DefragOptions, Engine, IndexMode, Key, Range};
use sha2::{Digest, Sha256};

const FILES: [(&str, &str); 4] = [
    (
        "data-00000001.blob",
        "8c84b16617310ecf3135ce9b0d1e5b3995629715587983308061d4b8394fead4",
    ),
    (
        "data-00000001.index",
        "9d7ff21a9a103d5a37ddf584da529827ed7cee112e99d8ca04bf581077fc188f",
    ),
    (
        "data-00000001.sorted",
        "01f3f6926389936251b547a0873aa6e302038392e7391effb585e6a21e54d5da",
    ),
    (
        "data-00000002.blob",
        "bfbbd1af15ebfc5e3920e4e4846b4fdd7d72fd626ccf5764b5f90ed80344348e",
    ),
];

fn value(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + seed) % 251) as u8).collect()
}

fn key(name: &str) -> Key {
    Key::from_name(b"fixture", name.as_bytes())
}

/// The live values the fixture holds.
fn expected() -> [(&'static str, Vec<u8>); 2] {
    let mut log = value(1, 10_000);
    log.extend(value(2, 3000));
    log[100..150].copy_from_slice(&value(3, 50));
    log.extend(value(6, 500));
    log.extend(value(7, 100));
    let mut doc = value(4, 9000);
    doc.extend(value(5, 5000));
    [("log", log), ("doc", doc)]
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v3")
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn copy_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    for (name, _) in FILES {
        let bytes = read(&fixture_dir().join(name));
        fs::write(dir.path().join(name), bytes).unwrap_or_else(|e| panic!("copy {name}: {e}"));
    }
    dir
}

fn open(dir: &Path, index: IndexMode) -> Engine {
    let config = Config {
        defrag_interval: None,
        index,
        ..Config::default()
    };
    Engine::open(dir, config).unwrap_or_else(|e| panic!("opening the v3 fixture: {e}"))
}

#[test]
fn fixture_v3_files_are_unchanged() {
    for (name, sha) in FILES {
        let bytes = read(&fixture_dir().join(name));
        let got: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, sha, "{name}: bytes changed");
    }
}

fn check_contents(e: &Engine, label: &str) {
    for (name, want) in expected() {
        let got = e.read(&key(name), Range::all());
        assert!(
            got.as_ref().ok() == Some(&want),
            "{label}: {name} reads back different bytes"
        );
        let part = e.read(&key(name), Range::new(8000, 4500));
        assert!(
            part.ok().as_deref() == Some(&want[8000..12_500]),
            "{label}: {name} range"
        );
        let meta = e.lookup(&key(name));
        assert_eq!(
            meta.map(|m| (m.size, m.checksum)).ok(),
            Some((want.len() as u64, ringblob_engine::format::crc32(&want))),
            "{label}: {name} lookup"
        );
    }
}

#[test]
fn fixture_v3_reads_back_in_both_index_modes_after_reopen_and_defrag() {
    for mode in [IndexMode::Sorted, IndexMode::Memory] {
        let dir = copy_fixture();
        let e = open(dir.path(), mode);
        check_contents(&e, &format!("{mode:?}, first open"));
        assert!(e.close().is_ok());
        let e = open(dir.path(), mode);
        check_contents(&e, &format!("{mode:?}, reopen"));
        let all = DefragOptions {
            min_garbage_ratio: 0.0,
            max_bytes_per_sec: 0,
        };
        let report = e.defrag_with(all);
        assert!(
            // Blob 1 (sealed); the active blob's garbage is reclaimed too (it is sealed first).
            report
                .as_ref()
                .is_ok_and(|r| r.blobs_rewritten.first() == Some(&1)),
            "{mode:?}: {report:?}"
        );
        check_contents(&e, &format!("{mode:?}, after defragmentation"));
        assert!(e.close().is_ok());
        let e = open(dir.path(), mode);
        check_contents(&e, &format!("{mode:?}, reopen after defragmentation"));
    }
}

/// The committed blobs are version 3 and hold the patch records the README lists.
#[test]
fn fixture_v3_records_are_the_listed_patches() {
    for (name, patches) in [
        ("data-00000001.blob", vec![false, true, true, false, true]),
        ("data-00000002.blob", vec![false, true]),
    ] {
        let bytes = read(&fixture_dir().join(name));
        let h = BlobHeader::decode(&bytes, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(h.version, 3, "{name}");
        let mut at = 32usize;
        let mut seen = Vec::new();
        while at < bytes.len() {
            let r = RecordHeader::decode(&bytes[at..], 0, at as u64)
                .unwrap_or_else(|e| panic!("{name} at {at}: {e}"));
            seen.push(r.is_patch());
            at += r.record_len() as usize;
        }
        assert_eq!(seen, patches, "{name}");
    }
}
