//! Fixtures and helpers: a data directory written by the engine, a runner for the binary
//! that snapshots the directory around every run, and a plain record walker.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{bail, ensure, Context, Result};
use ringblob_engine::format::record::RecordHeader;
use ringblob_engine::{Config, Durability, Engine, Key, WriteOptions};
use serde_json::Value;
use tempfile::TempDir;

pub const SMALL: usize = 40;
pub const BIG: usize = 10;
pub const COMP: usize = 10;
pub const OVERWRITTEN: std::ops::Range<usize> = 0..10;
pub const REMOVED: std::ops::Range<usize> = 10..15;
/// Namespace of the compressed values (exercises `dump --namespace`).
pub const COMP_NS: &str = "photos";

pub fn config() -> Config {
    Config {
        max_blob_size: 64 << 10,
        frame_len: 4096,
        durability: Durability::None,
        ..Config::default()
    }
}

pub fn key(ns: &str, name: &str) -> Key {
    Key::from_name(ns.as_bytes(), name.as_bytes())
}

pub fn small(i: usize, round: u32) -> Vec<u8> {
    let text = format!("small value {i} round {round}; ");
    text.repeat(8)
        .into_bytes()
        .into_iter()
        .take(50 + 2 * i)
        .collect()
}

/// Incompressible, and free of zero bytes (a zeroed page must change what it hits).
pub fn big(i: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (i as u64 + 1);
    (0..20_000 + 37 * i)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x as u8).max(1)
        })
        .collect()
}

pub fn comp(i: usize) -> Vec<u8> {
    format!("compressible value number {i} ")
        .repeat(800)
        .into_bytes()
}

/// Writes the standard mix and closes the engine: 40 small values, 10 multi-frame raw
/// values, 10 multi-frame compressed values, small 0..10 overwritten, small 10..15 removed.
pub fn build() -> Result<TempDir> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(dir.path(), config())?;
    let raw = WriteOptions::default();
    let packed = WriteOptions {
        compress: Some(true),
        ..WriteOptions::default()
    };
    for i in 0..BIG {
        engine.write(&key("", &format!("big-{i}")), &big(i), raw)?;
        engine.write(&key(COMP_NS, &format!("comp-{i}")), &comp(i), packed)?;
        for s in 4 * i..4 * i + 4 {
            engine.write(&key("", &format!("small-{s}")), &small(s, 0), raw)?;
        }
    }
    for i in OVERWRITTEN {
        engine.write(&key("", &format!("small-{i}")), &small(i, 1), raw)?;
    }
    for i in REMOVED {
        engine.remove(&key("", &format!("small-{i}")))?;
    }
    engine.close()?;
    Ok(dir)
}

/// Blob files of `dir`, in id order.
pub fn blobs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "blob"))
        .collect();
    v.sort();
    Ok(v)
}

pub fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A record of a healthy blob file, found by walking headers (independent of the tool).
#[derive(Debug, Clone, Copy)]
pub struct Rec {
    pub offset: u64,
    pub h: RecordHeader,
}

impl Rec {
    pub fn end(&self) -> u64 {
        self.offset + self.h.record_len()
    }
}

pub fn records(path: &Path) -> Result<Vec<Rec>> {
    let bytes = fs::read(path)?;
    let mut at = 32usize;
    let mut out = Vec::new();
    while at < bytes.len() {
        let h = RecordHeader::decode(bytes.get(at..).unwrap_or(&[]), 0, at as u64)?;
        out.push(Rec {
            offset: at as u64,
            h,
        });
        at += h.record_len() as usize;
    }
    ensure!(at == bytes.len(), "records do not tile {}", path.display());
    Ok(out)
}

/// Flips bits of the byte at `at`.
pub fn flip(path: &Path, at: u64) -> Result<()> {
    let mut b = fs::read(path)?;
    let byte = b.get_mut(at as usize).context("flip past the end")?;
    *byte ^= 0x5A;
    fs::write(path, b)?;
    Ok(())
}

type Snapshot = BTreeMap<String, (Vec<u8>, SystemTime)>;

fn snapshot(dir: &Path) -> Result<Snapshot> {
    let mut s = Snapshot::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let meta = e.metadata()?;
        if meta.is_file() {
            let name = e.file_name().to_string_lossy().into_owned();
            s.insert(name, (fs::read(e.path())?, meta.modified()?));
        }
    }
    Ok(s)
}

/// What a run of the binary produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub bytes: Vec<u8>,
}

impl Run {
    pub fn json(&self) -> Result<Vec<Value>> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).with_context(|| format!("not JSON: {l}")))
            .collect()
    }

    /// `(kind, file, offset)` of every problem line of `verify --json`.
    pub fn problems(&self) -> Result<Vec<(String, String, u64)>> {
        let mut out = Vec::new();
        for v in self.json()? {
            if v.get("total").is_some() {
                continue;
            }
            let s = |f: &str| v.get(f).and_then(Value::as_str).unwrap_or("").to_string();
            let offset = v.get("offset").and_then(Value::as_u64).context("offset")?;
            out.push((s("kind"), s("file"), offset));
        }
        Ok(out)
    }

    /// The line with `"total": true`.
    pub fn total(&self) -> Result<Value> {
        let t = self.json()?.into_iter().find(|v| v.get("total").is_some());
        t.context("no total line")
    }
}

/// Runs `blob-inspect ARGS`; `watch` is the data directory, which must not change.
pub fn inspect(watch: &Path, args: &[&str]) -> Result<Run> {
    let before = snapshot(watch)?;
    let out = Command::new(env!("CARGO_BIN_EXE_blob-inspect"))
        .args(args)
        .output()?;
    let after = snapshot(watch)?;
    if before != after {
        bail!("blob-inspect {args:?} changed {}", watch.display());
    }
    Ok(Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        bytes: out.stdout,
    })
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap_or("")
}
