//! Golden fixture of on-disk format v2 (`engine/tests/fixtures/v2/`, see its README.md):
//! columns, column and key removes, sorted index files. Read back in both index modes from a
//! copy (the engine takes a `LOCK` and writes files).

use std::fs;
use std::path::{Path, PathBuf};

use ringblob_engine::format::blob_header::BlobHeader;
use ringblob_engine::format::record::FLAG_TOMBSTONE;
use ringblob_engine::format::sorted_index::decode_all;
use ringblob_engine::{Config, Engine, Error, IndexMode, Key, Range};
use sha2::{Digest, Sha256};

const FILES: [(&str, &str); 7] = [
    (
        "data-00000001.blob",
        "3531b0cd8e41765e5ec5485a050a78c400584a4d217a2de4e69144e8696eb5a4",
    ),
    (
        "data-00000001.index",
        "ff389fff0644ae1200ab70df4055bbca4b70f396bfd6c547944cf3e4b7a17e48",
    ),
    (
        "data-00000001.sorted",
        "bed83d4ccabf57053f066ab8ef5a9efdb8f83c111c66b79514702d86e8d0358c",
    ),
    (
        "data-00000002.blob",
        "f2c48def1aaf7e821071cc982cecef94cdf234a8a0f2c0e88bdbfc9c9c88acd8",
    ),
    (
        "data-00000002.index",
        "18eb1aede68c81adbb2a0c61c5281833931bbd1a1d363033f66540b2acbdfe41",
    ),
    (
        "data-00000002.sorted",
        "d222479d9823c807682e03a30c819060a60e9224bed04c4f0a16f682989c2961",
    ),
    (
        "data-00000003.blob",
        "a19f9b8ce233bb43d6c8f4ee425ec8ae755e5fb133dd091848e980887e48905c",
    ),
];

/// Live (name, column, (seed, len)).
const LIVE: [(&str, u16, (usize, usize)); 8] = [
    ("photo", 0, (1, 9000)),
    ("photo", 1, (11, 45)),
    ("photo", 2, (3, 6000)),
    ("plain", 0, (4, 100)),
    ("column-removed", 0, (5, 50)),
    ("overwritten", 0, (10, 70)),
    ("second", 1, (12, 80)),
    ("third", 0, (13, 500)),
];

/// Removed (name, column).
const GONE: [(&str, u16); 3] = [
    ("column-removed", 1),
    ("key-removed", 0),
    ("key-removed", 2),
];

fn value((seed, len): (usize, usize)) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + seed) % 251) as u8).collect()
}

fn key(name: &str) -> Key {
    Key::from_name(b"fixture", name.as_bytes())
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v2")
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
    Engine::open(dir, config).unwrap_or_else(|e| panic!("opening the v2 fixture: {e}"))
}

#[test]
fn fixture_v2_files_are_unchanged() {
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
    for (name, column, spec) in LIVE {
        let want = value(spec);
        let got = e.read_column(&key(name), column, Range::all());
        assert!(
            got.as_ref().ok() == Some(&want),
            "{label}: {name}/{column} reads back different bytes"
        );
        let part = e.read_column(&key(name), column, Range::new(3, 4000));
        let end = want.len().min(4003);
        assert!(
            part.ok().as_deref() == want.get(3.min(want.len())..end),
            "{label}: {name}/{column} range"
        );
        let meta = e.lookup_column(&key(name), column);
        assert_eq!(
            meta.map(|m| (m.size, m.column)).ok(),
            Some((want.len() as u64, column)),
            "{label}: {name}/{column} lookup"
        );
    }
    for (name, column) in GONE {
        let r = e.read_column(&key(name), column, Range::all());
        assert!(
            matches!(r, Err(Error::NotFound(_))),
            "{label}: {name}/{column} still reads"
        );
    }
    let photo: Vec<u16> = e
        .columns(&key("photo"))
        .unwrap_or_default()
        .iter()
        .map(|m| m.column)
        .collect();
    assert_eq!(photo, [0, 1, 2], "{label}: photo's columns");
    assert!(
        e.columns(&key("key-removed")).is_ok_and(|c| c.is_empty()),
        "{label}: key-removed has columns"
    );
    let mut listed: Vec<(Key, u16)> = e
        .iterate()
        .map(|m| {
            m.map(|m| (m.key, m.column))
                .unwrap_or_else(|err| panic!("{label}: iterate: {err}"))
        })
        .collect();
    listed.sort();
    let mut want: Vec<(Key, u16)> = LIVE.iter().map(|(n, c, _)| (key(n), *c)).collect();
    want.sort();
    assert_eq!(listed, want, "{label}: iteration");
    assert_eq!(e.stats().keys, 8, "{label}: live (key, column) pairs");
}

#[test]
fn fixture_v2_reads_back_in_both_index_modes_and_after_reopen() {
    for mode in [IndexMode::Sorted, IndexMode::Memory] {
        let dir = copy_fixture();
        let e = open(dir.path(), mode);
        check_contents(&e, &format!("{mode:?}, first open"));
        assert!(e.close().is_ok());
        let e = open(dir.path(), mode);
        check_contents(&e, &format!("{mode:?}, reopen"));
    }
}

#[test]
fn fixture_v2_removing_a_key_removes_every_column() {
    let dir = copy_fixture();
    let e = open(dir.path(), IndexMode::Sorted);
    assert!(e.remove(&key("photo")).is_ok());
    assert!(e.columns(&key("photo")).is_ok_and(|c| c.is_empty()));
    assert!(matches!(e.remove(&key("photo")), Err(Error::NotFound(_))));
    assert!(matches!(
        e.remove(&key("key-removed")),
        Err(Error::NotFound(_))
    ));
    assert_eq!(e.stats().keys, 5);
}

/// The committed sorted indexes decode with the format decoders and list the newest record
/// of every (key, column) of their blob.
#[test]
fn fixture_v2_sorted_indexes_decode() {
    for (id, entries, tombstones) in [(1u32, 9usize, 0usize), (2, 6, 3)] {
        let name = format!("data-{id:08}.sorted");
        let bytes = read(&fixture_dir().join(&name));
        let (h, tail, list) = decode_all(&bytes, &name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((h.blob_id, list.len()), (id, entries), "{name}");
        assert_eq!(
            list.iter()
                .filter(|e| e.flags & FLAG_TOMBSTONE != 0)
                .count(),
            tombstones,
            "{name}"
        );
        let blob = read(&fixture_dir().join(format!("data-{id:08}.blob")));
        assert_eq!(h.covered_len, blob.len() as u64, "{name}");
        assert_eq!(
            BlobHeader::decode(&blob, &name).map(|b| b.version).ok(),
            Some(2)
        );
        if id == 2 {
            // Blob 2 superseded overwritten (10 bytes of value + header), column-removed/1,
            // key-removed/0 and /2, photo/1 in blob 1.
            let row = tail.superseded.first().copied();
            assert_eq!(row.map(|r| (r.blob, r.values)), Some((1, 5)), "{name}");
        }
    }
}
