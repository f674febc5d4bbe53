//! `dump`: exact bytes for live values, old versions by offset, and clear refusals.

use std::fs;

use anyhow::{Context, Result};
use ringblob_engine::format::record::RECORD_HEADER_LEN;
use serde_json::Value;

use crate::fixture::{big, blobs, build, comp, flip, inspect, key, records, s, small, COMP_NS};

#[test]
fn dump_by_key_and_id_returns_the_exact_live_bytes() -> Result<()> {
    let dir = build()?;
    let d = s(dir.path());
    let run = inspect(dir.path(), &["dump", d, "--key", "small-3"])?;
    assert_eq!(
        (run.code, run.bytes.clone()),
        (0, small(3, 1)),
        "the overwrite wins"
    );
    let run = inspect(dir.path(), &["dump", d, "--key", "small-30"])?;
    assert_eq!(run.bytes, small(30, 0));
    let run = inspect(
        dir.path(),
        &["dump", d, "--key", "comp-4", "--namespace", COMP_NS],
    )?;
    assert_eq!((run.code, run.bytes == comp(4)), (0, true), "decompressed");
    let hex = key("", "big-7").to_hex();
    let run = inspect(dir.path(), &["dump", d, "--id", &hex, "--column", "0"])?;
    assert_eq!((run.code, run.bytes == big(7)), (0, true));
    Ok(())
}

#[test]
fn dump_to_a_file_and_report_json() -> Result<()> {
    let dir = build()?;
    let out_dir = tempfile::tempdir()?;
    let out = out_dir.path().join("value.bin");
    let args = [
        "dump",
        s(dir.path()),
        "--key",
        "big-2",
        "-o",
        s(&out),
        "--json",
    ];
    let run = inspect(dir.path(), &args)?;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(fs::read(&out)?, big(2));
    let line = run.json()?.into_iter().next().context("json line")?;
    let n = big(2).len() as u64;
    assert_eq!(line.get("bytes_written").and_then(Value::as_u64), Some(n));
    assert_eq!(
        line.get("key").and_then(Value::as_str),
        Some(key("", "big-2").to_hex().as_str())
    );
    Ok(())
}

#[test]
fn dump_by_offset_reads_superseded_versions() -> Result<()> {
    let dir = build()?;
    let target = key("", "small-5");
    let mut found = None;
    for f in blobs(dir.path())? {
        if let Some(r) = records(&f)?.into_iter().find(|r| r.h.key == target) {
            found = Some((f, r));
            break;
        }
    }
    let (file, rec) = found.context("first version of small-5")?;
    let off = rec.offset.to_string();
    let run = inspect(dir.path(), &["dump", s(&file), "--offset", &off])?;
    assert_eq!(
        (run.code, run.bytes.clone()),
        (0, small(5, 0)),
        "the old version"
    );
    let id = file
        .file_stem()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("data-"))
        .and_then(|n| n.parse::<u32>().ok())
        .context("blob id")?
        .to_string();
    let run = inspect(
        dir.path(),
        &["dump", s(dir.path()), "--offset", &off, "--blob", &id],
    )?;
    assert_eq!(run.bytes, small(5, 0));
    let run = inspect(dir.path(), &["dump", s(dir.path()), "--offset", &off])?;
    assert_eq!(run.code, 2, "a directory needs --blob");
    let run = inspect(
        dir.path(),
        &["dump", s(&file), "--offset", &(rec.offset + 1).to_string()],
    )?;
    assert_eq!(run.code, 1, "not a record start: {}", run.stderr);
    assert!(run.bytes.is_empty());
    Ok(())
}

#[test]
fn dump_refuses_removed_unknown_and_inside_the_data_directory() -> Result<()> {
    let dir = build()?;
    let d = s(dir.path());
    let run = inspect(dir.path(), &["dump", d, "--key", "small-12"])?;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("removed"), "{}", run.stderr);
    let run = inspect(dir.path(), &["dump", d, "--key", "never-written"])?;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("not found"), "{}", run.stderr);
    let run = inspect(
        dir.path(),
        &["dump", d, "--key", "small-3", "--column", "4"],
    )?;
    assert_eq!(run.code, 2);
    // The runner checks the directory is unchanged: nothing was created in it.
    let inside = dir.path().join("out.bin");
    let run = inspect(
        dir.path(),
        &["dump", d, "--key", "small-3", "-o", s(&inside)],
    )?;
    assert_eq!(run.code, 2, "{}", run.stderr);
    Ok(())
}

#[test]
fn dump_of_a_damaged_value_exits_1_and_leaves_no_output_file() -> Result<()> {
    let dir = build()?;
    let target = key("", "big-1");
    let mut found = None;
    for f in blobs(dir.path())? {
        if let Some(r) = records(&f)?.into_iter().find(|r| r.h.key == target) {
            found = Some((f, r));
        }
    }
    let (file, rec) = found.context("big-1")?;
    let last_frame = rec.end() - 10;
    assert!(last_frame > rec.offset + RECORD_HEADER_LEN as u64);
    flip(&file, last_frame)?;
    let out_dir = tempfile::tempdir()?;
    let out = out_dir.path().join("value.bin");
    let off = rec.offset.to_string();
    let run = inspect(
        dir.path(),
        &["dump", s(&file), "--offset", &off, "-o", s(&out)],
    )?;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("damaged"), "{}", run.stderr);
    assert!(!out.exists(), "the partial output is removed");
    Ok(())
}

/// A key's columns live side by side (a value and its name record): neither supersedes the
/// other in the summary, and `dump --key` gives the value unless `--column` names another.
#[test]
fn a_keys_columns_are_separate_records_for_summary_and_dump() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let engine = ringblob_engine::Engine::open(dir.path(), crate::fixture::config())?;
    let (k, opts) = (key("", "named"), ringblob_engine::WriteOptions::default());
    engine.write_column(&k, 0, b"the value", opts)?;
    engine.write_column(&k, 65534, b"its name record", opts)?;
    engine.write_column(&k, 7, b"an old column 7", opts)?;
    engine.write_column(&k, 7, b"column 7", opts)?;
    engine.close()?;
    let d = s(dir.path());
    let run = inspect(dir.path(), &["summary", "--json", d])?;
    let total = run.total()?;
    let count = |f: &str| total.get(f).and_then(Value::as_u64);
    assert_eq!(
        (count("live"), count("superseded"), count("keys")),
        (Some(3), Some(1), Some(1)),
        "{total}"
    );
    let run = inspect(dir.path(), &["dump", d, "--key", "named"])?;
    assert_eq!((run.code, run.bytes.as_slice()), (0, &b"the value"[..]));
    for (column, want) in [
        ("0", &b"the value"[..]),
        ("65534", b"its name record"),
        ("7", b"column 7"),
    ] {
        let run = inspect(
            dir.path(),
            &["dump", d, "--key", "named", "--column", column],
        )?;
        assert_eq!(
            (run.code, run.bytes.as_slice()),
            (0, want),
            "column {column}: {}",
            run.stderr
        );
    }
    let run = inspect(dir.path(), &["dump", d, "--key", "named", "--column", "3"])?;
    assert_eq!(run.code, 2, "{}", run.stderr);
    Ok(())
}
