//! Index files: absent (fine), damaged, disagreeing with their blob, covering a prefix.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ringblob_engine::format::index_file::{IndexEntry, IndexFile};
use ringblob_engine::{Config, Engine, Key, WriteOptions};
use serde_json::Value;

use crate::fixture::{blobs, build, config, flip, inspect, name, records, s};

fn index_of(blob: &Path) -> PathBuf {
    blob.with_extension("index")
}

fn load(path: &Path) -> Result<IndexFile> {
    Ok(IndexFile::decode(&fs::read(path)?, "test")?)
}

#[test]
fn deleted_index_is_not_corruption() -> Result<()> {
    let dir = build()?;
    let first = blobs(dir.path())?.into_iter().next().context("no blob")?;
    fs::remove_file(index_of(&first))?;
    let run = inspect(dir.path(), &["verify", "--json", s(dir.path())])?;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.problems()?, []);
    let summary = inspect(dir.path(), &["summary", "--json", s(dir.path())])?;
    assert_eq!(summary.code, 0);
    let line = summary.json()?.into_iter().next().context("no line")?;
    assert_eq!(
        line.get("file").and_then(Value::as_str),
        Some(name(&first).as_str())
    );
    assert_eq!(line.get("index_present"), Some(&Value::Bool(false)));
    assert_eq!(line.get("index_checksum_ok"), Some(&Value::Null));
    Ok(())
}

#[test]
fn corrupt_index_file_is_bad_index_file() -> Result<()> {
    let dir = build()?;
    let first = blobs(dir.path())?.into_iter().next().context("no blob")?;
    let ix = index_of(&first);
    flip(&ix, 20)?;
    let run = inspect(dir.path(), &["verify", "--json", s(dir.path())])?;
    assert_eq!(run.code, 1);
    assert_eq!(
        run.problems()?,
        [("bad_index_file".to_string(), name(&ix), 0)]
    );
    let summary = inspect(dir.path(), &["summary", "--json", s(dir.path())])?;
    assert_eq!(summary.code, 1);
    let line = summary.json()?.into_iter().next().context("no line")?;
    assert_eq!(line.get("index_present"), Some(&Value::Bool(true)));
    assert_eq!(line.get("index_checksum_ok"), Some(&Value::Bool(false)));
    // An entries-area flip fails the entries CRC, reported at the entries' offset.
    let dir = build()?;
    let ix = index_of(&blobs(dir.path())?.into_iter().next().context("no blob")?);
    flip(&ix, 45)?;
    let run = inspect(dir.path(), &["verify", "--json", s(dir.path())])?;
    assert_eq!(
        run.problems()?,
        [("bad_index_file".to_string(), name(&ix), 40)]
    );
    Ok(())
}

#[test]
fn merged_entries_miss_a_record() -> Result<()> {
    let dir = build()?;
    let first = blobs(dir.path())?.into_iter().next().context("no blob")?;
    let ix_path = index_of(&first);
    let mut ix = load(&ix_path)?;
    let second = ix.entries.remove(1);
    let e0 = ix.entries.first_mut().context("entry 0")?;
    e0.record_len += second.record_len;
    fs::write(&ix_path, ix.encode())?;
    let run = inspect(dir.path(), &["verify", "--json", s(dir.path())])?;
    assert_eq!(run.code, 1);
    assert_eq!(
        run.problems()?,
        [
            ("index_entry_mismatch".to_string(), name(&ix_path), 40),
            (
                "record_missing_from_index".to_string(),
                name(&first),
                second.offset
            ),
        ]
    );
    Ok(())
}

#[test]
fn split_entry_points_at_nothing() -> Result<()> {
    let dir = build()?;
    let first = blobs(dir.path())?.into_iter().next().context("no blob")?;
    let ix_path = index_of(&first);
    let mut ix = load(&ix_path)?;
    let e0 = *ix.entries.first().context("entry 0")?;
    let head = IndexEntry {
        record_len: 88,
        ..e0
    };
    let rest = IndexEntry {
        offset: e0.offset + 88,
        record_len: e0.record_len - 88,
        key: Key([9; 32]),
        ..e0
    };
    ix.entries.splice(0..1, [head, rest]);
    fs::write(&ix_path, ix.encode())?;
    let run = inspect(dir.path(), &["verify", "--json", s(dir.path())])?;
    assert_eq!(run.code, 1);
    assert_eq!(
        run.problems()?,
        [
            ("index_entry_mismatch".to_string(), name(&ix_path), 40),
            (
                "index_entry_points_at_nothing".to_string(),
                name(&ix_path),
                88
            ),
        ]
    );
    let line = run.json()?.into_iter().nth(1).context("line")?;
    assert_eq!(
        line.get("blob_offset").and_then(Value::as_u64),
        Some(e0.offset + 88)
    );
    Ok(())
}

#[test]
fn checkpoint_covering_a_prefix_is_information() -> Result<()> {
    let dir = build()?;
    let last = blobs(dir.path())?.into_iter().last().context("no blob")?;
    let ix_path = index_of(&last);
    let old = fs::read(&ix_path)?;
    let covered = load(&ix_path)?.covered_len;
    // A second session appends without rotating (a larger limit), as if it then crashed
    // before writing its checkpoint: the old index file is put back.
    let engine = Engine::open(
        dir.path(),
        Config {
            max_blob_size: 1 << 20,
            ..config()
        },
    )?;
    for i in 0..3 {
        let k = Key::from_name(b"", format!("late-{i}").as_bytes());
        engine.write(&k, b"after the checkpoint", WriteOptions::default())?;
    }
    engine.close()?;
    fs::write(&ix_path, old)?;
    assert_eq!(blobs(dir.path())?.last(), Some(&last), "no rotation");
    let run = inspect(dir.path(), &["verify", "--json", s(dir.path())])?;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        run.problems()?,
        [("index_covers_prefix".to_string(), name(&last), covered)]
    );
    let line = run.json()?.into_iter().next().context("line")?;
    assert_eq!(line.get("severity").and_then(Value::as_str), Some("info"));
    let total_records = records(&last)?.len();
    let summary = inspect(dir.path(), &["summary", "--json", s(&last)])?;
    let t = summary.total()?;
    assert_eq!(
        t.get("records").and_then(Value::as_u64),
        Some(total_records as u64)
    );
    Ok(())
}

#[test]
fn orphan_index_file_is_information() -> Result<()> {
    let dir = build()?;
    let ghost = dir.path().join("data-00000099.index");
    let first = blobs(dir.path())?.into_iter().next().context("no blob")?;
    fs::copy(index_of(&first), &ghost)?;
    let run = inspect(dir.path(), &["verify", "--json", s(dir.path())])?;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        run.problems()?,
        [("orphan_index_file".to_string(), name(&ghost), 0)]
    );
    Ok(())
}
