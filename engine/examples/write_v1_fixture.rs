//! Writes the on-disk format v1 golden fixture (`engine/tests/fixtures/v1/`).
//!
//! ```sh
//! cargo run -p ringblob-engine --example write_v1_fixture -- engine/tests/fixtures/v1
//! ```
//!
//! The engine writes a fresh data directory in a temporary directory; the four data files
//! (`data-00000001.blob`, `data-00000001.index`, `data-00000002.blob`,
//! `data-00000002.index`) are then copied into the target directory, overwriting what is
//! there, and their SHA-256 are printed. Record timestamps are the wall clock, so every run
//! produces different bytes: the committed fixture was written once, and regenerating it
//! means updating the hashes in `engine/tests/it/fixtures.rs`. Keys and values are described
//! in the fixture's README.md; `engine/tests/it/fixtures.rs` holds the same table.

use std::error::Error as StdError;
use std::fs;
use std::path::{Path, PathBuf};

use ringblob_engine::{Config, Durability, Engine, Key, WriteOptions};
use sha2::{Digest, Sha256};

type Res<T> = Result<T, Box<dyn StdError>>;

/// Namespace of every fixture key.
const NAMESPACE: &[u8] = b"fixture";

/// The files the fixture consists of (besides its README.md).
const FILES: [&str; 4] = [
    "data-00000001.blob",
    "data-00000001.index",
    "data-00000002.blob",
    "data-00000002.index",
];

/// Value bytes: `value[i] = (i * 7 + seed) % 251`.
fn value(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + seed) % 251) as u8).collect()
}

fn key(name: &str) -> Key {
    Key::from_name(NAMESPACE, name.as_bytes())
}

fn raw() -> WriteOptions {
    WriteOptions {
        compress: Some(false),
        durability: Some(Durability::Sync),
        ..WriteOptions::default()
    }
}

fn compressed() -> WriteOptions {
    WriteOptions {
        compress: Some(true),
        ..raw()
    }
}

/// Writes the fixture's data directory into `dir` (empty) and closes the engine.
fn write_fixture(dir: &Path) -> Res<()> {
    let config = Config {
        frame_len: 4096,
        defrag_interval: None,
        ..Config::default()
    };
    let engine = Engine::open(dir, config)?;
    // Blob 1.
    engine.write(&key("small"), &value(1, 100), raw())?;
    engine.write(&key("empty"), &[], raw())?;
    engine.write(&key("multi-frame"), &value(2, 10_000), raw())?;
    engine.write(&key("compressed"), &value(3, 12_000), compressed())?;
    engine.write(&key("overwritten"), &value(4, 50), raw())?;
    engine.write(&key("removed"), &value(6, 30), raw())?;
    // Seals blob 1 (fdatasync and its index file) and starts blob 2.
    engine.rotate()?;
    // Blob 2.
    engine.write(&key("overwritten"), &value(5, 70), raw())?;
    engine.remove_with(&key("removed"), Durability::Sync)?;
    engine.write(&key("second-blob"), &value(7, 5000), raw())?;
    // Close writes blob 2's index checkpoint.
    engine.close()?;
    Ok(())
}

fn main() -> Res<()> {
    let target: PathBuf = match std::env::args_os().nth(1) {
        Some(t) => t.into(),
        None => return Err("usage: write_v1_fixture TARGET_DIR".into()),
    };
    let scratch = tempfile::tempdir()?;
    write_fixture(scratch.path())?;

    let mut made: Vec<String> = fs::read_dir(scratch.path())?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    made.sort();
    let mut want: Vec<String> = FILES.iter().map(|f| f.to_string()).collect();
    want.push("LOCK".into());
    want.sort();
    if made != want {
        return Err(format!("the engine wrote {made:?}, expected {want:?}").into());
    }

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
