//! Writes the on-disk format v2 golden fixture (`engine/tests/fixtures/v2/`): columns,
//! column and key removes, and sorted index files.
//!
//! ```sh
//! cargo run -p ringblob-engine --example write_v2_fixture -- engine/tests/fixtures/v2
//! ```
//!
//! As for v1, the engine writes into a temporary directory, the data files are copied into the
//! target and their SHA-256 printed; timestamps make every run different, so the committed
//! fixture was written once and `engine/tests/it/fixtures_v2.rs` pins its hashes. Keys and
//! values are listed in the fixture's README.md and in that test.

use std::error::Error as StdError;
use std::fs;
use std::path::{Path, PathBuf};

use ringblob_engine::{Config, Durability, Engine, IndexMode, Key, WriteOptions};
use sha2::{Digest, Sha256};

type Res<T> = Result<T, Box<dyn StdError>>;

/// The files the fixture consists of (besides its README.md).
const FILES: [&str; 7] = [
    "data-00000001.blob",
    "data-00000001.index",
    "data-00000001.sorted",
    "data-00000002.blob",
    "data-00000002.index",
    "data-00000002.sorted",
    "data-00000003.blob",
];

/// Value bytes: `value[i] = (i * 7 + seed) % 251`.
fn value(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + seed) % 251) as u8).collect()
}

fn key(name: &str) -> Key {
    Key::from_name(b"fixture", name.as_bytes())
}

fn opts(compress: bool) -> WriteOptions {
    WriteOptions {
        compress: Some(compress),
        durability: Some(Durability::Sync),
        ..WriteOptions::default()
    }
}

fn put(e: &Engine, name: &str, column: u16, seed: usize, len: usize, compress: bool) -> Res<()> {
    Ok(e.write_column(&key(name), column, &value(seed, len), opts(compress))?)
}

/// Writes the fixture's data directory into `dir` (empty) and closes the engine.
fn write_fixture(dir: &Path) -> Res<()> {
    let config = Config {
        frame_len: 4096,
        defrag_interval: None,
        index: IndexMode::Sorted,
        ..Config::default()
    };
    let e = Engine::open(dir, config)?;
    // Blob 1.
    put(&e, "photo", 0, 1, 9000, false)?;
    put(&e, "photo", 1, 2, 40, false)?;
    put(&e, "photo", 2, 3, 6000, true)?;
    put(&e, "plain", 0, 4, 100, false)?;
    put(&e, "column-removed", 0, 5, 50, false)?;
    put(&e, "column-removed", 1, 6, 60, false)?;
    put(&e, "key-removed", 0, 7, 20, false)?;
    put(&e, "key-removed", 2, 8, 30, false)?;
    put(&e, "overwritten", 0, 9, 10, false)?;
    e.rotate()?;
    // Blob 2.
    put(&e, "overwritten", 0, 10, 70, false)?;
    e.remove_column(&key("column-removed"), 1, Durability::Sync)?;
    e.remove_with(&key("key-removed"), Durability::Sync)?;
    put(&e, "photo", 1, 11, 45, false)?;
    put(&e, "second", 1, 12, 80, false)?;
    e.rotate()?;
    // Blob 3, the active one. Close writes its index checkpoint, which the fixture leaves out
    // (see FILES), so opening the fixture scans the active blob.
    put(&e, "third", 0, 13, 500, false)?;
    e.sync()?;
    drop(e);
    Ok(())
}

fn main() -> Res<()> {
    let target: PathBuf = match std::env::args_os().nth(1) {
        Some(t) => t.into(),
        None => return Err("usage: write_v2_fixture TARGET_DIR".into()),
    };
    let scratch = tempfile::tempdir()?;
    write_fixture(scratch.path())?;
    fs::create_dir_all(&target)?;
    for name in FILES {
        let bytes = fs::read(scratch.path().join(name))?;
        fs::write(target.join(name), &bytes)?;
        let hash: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        println!("{name} {} bytes sha256 {hash}", bytes.len());
    }
    Ok(())
}
