//! Writes the on-disk format v3 golden fixture (`engine/tests/fixtures/v3/`): patch records
//! made by appends and writes at an offset, raw and compressed, and a write into a value
//! whose newest record is sealed (written whole into the active blob).
//!
//! ```sh
//! cargo run -p ringblob-engine --example write_v3_fixture -- engine/tests/fixtures/v3
//! ```
//!
//! As for v1 and v2, the engine writes into a temporary directory, the data files are copied
//! into the target and their SHA-256 printed; timestamps make every run different, so the
//! committed fixture was written once and `engine/tests/it/fixtures_v3.rs` pins its hashes.

use std::error::Error as StdError;
use std::fs;
use std::path::{Path, PathBuf};

use ringblob_engine::{Config, Durability, Engine, IndexMode, Key, WriteOptions};
use sha2::{Digest, Sha256};

type Res<T> = Result<T, Box<dyn StdError>>;

/// The files the fixture consists of (besides its README.md).
const FILES: [&str; 4] = [
    "data-00000001.blob",
    "data-00000001.index",
    "data-00000001.sorted",
    "data-00000002.blob",
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

/// Writes the fixture's data directory into `dir` (empty) and drops the engine.
fn write_fixture(dir: &Path) -> Res<()> {
    let config = Config {
        frame_len: 4096,
        defrag_interval: None,
        index: IndexMode::Sorted,
        ..Config::default()
    };
    let e = Engine::open(dir, config)?;
    let (log, doc) = (key("log"), key("doc"));
    // Blob 1: a value, then two patches of it; a compressed value and a compressed patch.
    e.write_column(&log, 0, &value(1, 10_000), opts(false))?;
    e.append_column(&log, 0, &value(2, 3000), opts(false))?;
    e.write_at_column(&log, 0, 100, &value(3, 50), opts(false))?;
    e.write_column(&doc, 0, &value(4, 9000), opts(true))?;
    e.append_column(&doc, 0, &value(5, 5000), opts(true))?;
    e.rotate()?;
    // Blob 2, the active one: "log"'s newest record is sealed, so this append writes it
    // whole; the next one patches that. Close would write an index checkpoint, which the
    // fixture leaves out, so opening it scans the active blob.
    e.append_column(&log, 0, &value(6, 500), opts(false))?;
    e.append_column(&log, 0, &value(7, 100), opts(false))?;
    e.sync()?;
    drop(e);
    Ok(())
}

fn main() -> Res<()> {
    let target: PathBuf = match std::env::args_os().nth(1) {
        Some(t) => t.into(),
        None => return Err("usage: write_v3_fixture TARGET_DIR".into()),
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
