//! Golden fixture of on-disk format v1 (`engine/tests/fixtures/v1/`, see its README.md):
//! a data directory written once by `examples/write_v1_fixture.rs` and committed. Every
//! later engine must open it and read back every value byte for byte, and the format
//! decoders must still decode it. The committed files are never opened by the engine
//! (which takes a `LOCK` and may write index checkpoints): it works on a copy.

use std::fs;
use std::path::{Path, PathBuf};

use ringblob_engine::format::blob_header::{BlobHeader, BLOB_HEADER_LEN, FORMAT_VERSION};
use ringblob_engine::format::frames::{extract_range, RecordPlace};
use ringblob_engine::format::index_file::{IndexFile, INDEX_VERSION};
use ringblob_engine::format::record::{
    FrameTable, RecordHeader, FLAG_COMPRESSED, FLAG_TOMBSTONE, RECORD_HEADER_LEN,
};
use ringblob_engine::{Config, Engine, Error, Key, Range};
use sha2::{Digest, Sha256};

/// The fixture's files: name, length and SHA-256. A change here means the fixture changed:
/// that is only right if it was deliberately regenerated (see its README.md).
const FILES: [(&str, u64, &str); 4] = [
    (
        "data-00000001.blob",
        12_118,
        "32651809ab36f3b0acb1791d34ae574af90f9761f60fc88a28b2b39e9510aaad",
    ),
    (
        "data-00000001.index",
        328,
        "89e9de75f3bc83ef685abda1b38c56b2b13a52d1f1d954b4c2610ef26caeda3d",
    ),
    (
        "data-00000002.blob",
        5_390,
        "c9d9b0495b136f21d0dc0b471dd99987e95f9baf084d355f42ae40f9deab9a82",
    ),
    (
        "data-00000002.index",
        184,
        "31a5e70af0ab53978edab2711761d8c08406ee294d65d27624bc8aa720b4831e",
    ),
];

const FRAME_LEN: u32 = 4096;

/// One record of the fixture, in log order.
struct Rec {
    name: &'static str,
    /// `(seed, len)` of the value; `None` for a tombstone.
    value: Option<(usize, usize)>,
    compressed: bool,
}

const fn put(name: &'static str, seed: usize, len: usize) -> Rec {
    Rec {
        name,
        value: Some((seed, len)),
        compressed: false,
    }
}

/// The records of blob 1, then of blob 2, exactly as the generator wrote them.
const BLOB_1: [Rec; 6] = [
    put("small", 1, 100),
    put("empty", 0, 0),
    put("multi-frame", 2, 10_000),
    Rec {
        compressed: true,
        ..put("compressed", 3, 12_000)
    },
    put("overwritten", 4, 50),
    put("removed", 6, 30),
];
const BLOB_2: [Rec; 3] = [
    put("overwritten", 5, 70),
    Rec {
        name: "removed",
        value: None,
        compressed: false,
    },
    put("second-blob", 7, 5000),
];

/// The live keys after replay: name, value `(seed, len)` and the blob holding it.
const LIVE: [(&str, (usize, usize), u32); 6] = [
    ("small", (1, 100), 1),
    ("empty", (0, 0), 1),
    ("multi-frame", (2, 10_000), 1),
    ("compressed", (3, 12_000), 1),
    ("overwritten", (5, 70), 2),
    ("second-blob", (7, 5000), 2),
];

/// Value bytes: `value[i] = (i * 7 + seed) % 251`.
fn value((seed, len): (usize, usize)) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + seed) % 251) as u8).collect()
}

fn key(name: &str) -> Key {
    Key::from_name(b"fixture", name.as_bytes())
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1")
}

fn read(path: &Path) -> Vec<u8> {
    match fs::read(path) {
        Ok(b) => b,
        Err(e) => panic!("reading {}: {e}", path.display()),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A writable copy of the fixture's data files in a fresh temporary directory.
fn copy_fixture() -> tempfile::TempDir {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    for (name, _, _) in FILES {
        // Read and write rather than fs::copy: the copy must be writable even if the
        // checkout is read-only.
        let bytes = read(&fixture_dir().join(name));
        if let Err(e) = fs::write(dir.path().join(name), bytes) {
            panic!("copying {name}: {e}");
        }
    }
    dir
}

fn open(dir: &Path) -> Engine {
    let config = Config {
        defrag_interval: None,
        ..Config::default()
    };
    match Engine::open(dir, config) {
        Ok(e) => e,
        Err(e) => panic!("opening the v1 fixture: {e}"),
    }
}

fn read_range(e: &Engine, name: &str, range: Range) -> Vec<u8> {
    match e.read(&key(name), range) {
        Ok(v) => v,
        Err(err) => panic!("{name} {range:?}: {err}"),
    }
}

#[test]
fn fixture_v1_files_are_unchanged() {
    let dir = fixture_dir();
    let mut names: Vec<String> = match fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) => panic!("listing {}: {e}", dir.display()),
    };
    names.sort();
    let mut want: Vec<String> = FILES.iter().map(|(n, _, _)| n.to_string()).collect();
    want.push("README.md".into());
    want.sort();
    assert_eq!(names, want, "the fixture directory holds unexpected files");
    for (name, len, sha) in FILES {
        let bytes = read(&dir.join(name));
        assert_eq!(bytes.len() as u64, len, "{name}: length changed");
        assert_eq!(sha256_hex(&bytes), sha, "{name}: bytes changed");
    }
}

/// Every live key reads back whole and in ranges (across frame boundaries, raw and
/// compressed); lookups report the size and CRC-32 of the value; the removed key is gone.
fn check_contents(e: &Engine, label: &str) {
    for (name, spec, blob) in LIVE {
        let want = value(spec);
        let got = read_range(e, name, Range::all());
        assert!(got == want, "{label}: {name} reads back different bytes");
        let meta = match e.lookup(&key(name)) {
            Ok(m) => m,
            Err(err) => panic!("{label}: lookup {name}: {err}"),
        };
        assert_eq!(meta.size, want.len() as u64, "{label}: {name} size");
        assert_eq!(
            meta.checksum,
            crc32fast::hash(&want),
            "{label}: {name} checksum"
        );
        assert_eq!(meta.blob, blob, "{label}: {name} blob");
        assert_eq!(meta.column, 0, "{label}: {name} column");
        let len = want.len() as u64;
        let ranges = [
            (0, 1),
            (4000, 200),
            (4090, 4200),
            (4095, 2),
            (8191, 2),
            (8192, 100_000),
            (len / 2, len),
            (len, 10),
        ];
        for (offset, size) in ranges {
            if offset > len {
                continue;
            }
            let from = offset as usize;
            let to = (offset + size).min(len) as usize;
            let got = read_range(e, name, Range::new(offset, size));
            assert!(
                got == want[from..to],
                "{label}: {name} range {offset}+{size} reads back different bytes"
            );
        }
        assert!(
            matches!(
                e.read(&key(name), Range::new(len + 1, 1)),
                Err(Error::RangeOutOfBounds { .. })
            ),
            "{label}: {name} read past the end"
        );
    }
    let gone = key("removed");
    assert!(
        matches!(e.read(&gone, Range::all()), Err(Error::NotFound(_))),
        "{label}: removed key reads"
    );
    assert!(
        matches!(e.lookup(&gone), Err(Error::NotFound(_))),
        "{label}: removed key looks up"
    );
    let mut listed: Vec<Key> = e
        .iterate()
        .map(|m| match m {
            Ok(m) => m.key,
            Err(err) => panic!("{label}: iterate: {err}"),
        })
        .collect();
    listed.sort();
    let mut want: Vec<Key> = LIVE.iter().map(|(n, _, _)| key(n)).collect();
    want.sort();
    assert_eq!(listed, want, "{label}: iterated keys");
    let s = e.stats();
    assert_eq!(
        (s.keys, s.blobs, s.active_blob),
        (6, 2, 2),
        "{label}: stats"
    );
    assert_eq!(s.poisoned, None, "{label}");
}

#[test]
fn fixture_v1_reads_back_with_the_current_engine() {
    let dir = copy_fixture();
    let e = open(dir.path());
    check_contents(&e, "first open");
    if let Err(err) = e.close() {
        panic!("close: {err}");
    }
    // Whatever the first open and close wrote, the copy still opens and reads the same.
    let e = open(dir.path());
    check_contents(&e, "reopen");
    if let Err(err) = e.close() {
        panic!("close: {err}");
    }
}

#[test]
fn fixture_v1_removed_key_stays_removed() {
    let dir = copy_fixture();
    let e = open(dir.path());
    assert!(matches!(e.remove(&key("removed")), Err(Error::NotFound(_))));
    assert!(matches!(
        e.read(&key("never-written"), Range::all()),
        Err(Error::NotFound(_))
    ));
    if let Err(err) = e.close() {
        panic!("close: {err}");
    }
}

/// The committed bytes, read directly: blob headers and index files are version 1, the
/// index entries tile each blob and name the records the generator wrote, and every record
/// decodes (header, frame table, frames) to the expected value.
#[test]
fn fixture_v1_decodes_with_the_format_decoders() {
    assert_eq!(
        (FORMAT_VERSION, INDEX_VERSION),
        (3, 1),
        "this build writes blob format 3"
    );
    let dir = fixture_dir();
    let blobs: [(u32, &[Rec]); 2] = [(1, &BLOB_1), (2, &BLOB_2)];
    for (id, recs) in blobs {
        let blob_name = format!("data-{id:08}.blob");
        let index_name = format!("data-{id:08}.index");
        let blob = read(&dir.join(&blob_name));
        let index = read(&dir.join(&index_name));

        assert_eq!(
            blob[8..12],
            1u32.to_le_bytes(),
            "{blob_name}: version field"
        );
        let header = match BlobHeader::decode(&blob, &blob_name) {
            Ok(h) => h,
            Err(e) => panic!("{blob_name}: {e}"),
        };
        let v1 = BlobHeader {
            version: 1,
            ..BlobHeader::new(id)
        };
        assert_eq!(header, v1, "{blob_name}: header");

        assert_eq!(
            index[8..12],
            1u32.to_le_bytes(),
            "{index_name}: version field"
        );
        let idx = match IndexFile::decode(&index, &index_name) {
            Ok(i) => i,
            Err(e) => panic!("{index_name}: {e}"),
        };
        assert_eq!(idx.blob_id, id, "{index_name}: blob id");
        assert_eq!(
            idx.covered_len,
            blob.len() as u64,
            "{index_name}: covers the whole blob"
        );
        assert_eq!(idx.entries.len(), recs.len(), "{index_name}: entries");
        assert_eq!(
            idx.entries.first().map(|e| e.offset),
            Some(BLOB_HEADER_LEN as u64)
        );

        for (entry, rec) in idx.entries.iter().zip(recs) {
            let at = format!("{blob_name} @{} ({})", entry.offset, rec.name);
            assert_eq!(entry.key, key(rec.name), "{at}: key");
            let off = entry.offset as usize;
            let end = off + entry.record_len as usize;
            let bytes = &blob[off..end];
            let h = match RecordHeader::decode(bytes, id, entry.offset) {
                Ok(h) => h,
                Err(e) => panic!("{at}: {e}"),
            };
            assert_eq!(h.key, entry.key, "{at}: header key");
            assert_eq!(h.record_len(), u64::from(entry.record_len), "{at}: length");
            assert_eq!(h.flags, entry.flags, "{at}: index flags");
            assert_eq!(h.column, 0, "{at}: column");
            assert_eq!(h.frame_len, FRAME_LEN, "{at}: frame_len");
            let Some(spec) = rec.value else {
                assert_eq!(h.flags, FLAG_TOMBSTONE, "{at}: tombstone flags");
                assert_eq!(
                    (h.value_len, h.stored_len, h.frame_count, h.value_crc),
                    (0, 0, 0, 0),
                    "{at}: tombstone fields"
                );
                assert_eq!(entry.record_len as usize, RECORD_HEADER_LEN);
                continue;
            };
            let want = value(spec);
            let flags = if rec.compressed { FLAG_COMPRESSED } else { 0 };
            assert_eq!(h.flags, flags, "{at}: flags");
            assert_eq!(h.value_len, want.len() as u64, "{at}: value_len");
            assert_eq!(
                h.frame_count as usize,
                want.len().div_ceil(FRAME_LEN as usize),
                "{at}: frame_count"
            );
            assert_eq!(h.value_crc, crc32fast::hash(&want), "{at}: value_crc");

            let table_end = RECORD_HEADER_LEN + h.table_len();
            let table = match FrameTable::decode(
                &h,
                &bytes[RECORD_HEADER_LEN..table_end],
                id,
                entry.offset,
            ) {
                Ok(t) => t,
                Err(e) => panic!("{at}: frame table: {e}"),
            };
            assert!(
                table.frames.iter().all(|f| f.compressed == rec.compressed),
                "{at}: every frame is {}",
                if rec.compressed { "compressed" } else { "raw" }
            );
            let place = RecordPlace {
                blob: id,
                offset: entry.offset,
            };
            let mut got = Vec::new();
            let whole = (0, h.value_len);
            if let Err(e) =
                extract_range(&h, &table, 0, &bytes[table_end..], whole, place, &mut got)
            {
                panic!("{at}: frames: {e}");
            }
            assert!(got == want, "{at}: decoded value differs");
        }
    }
}
