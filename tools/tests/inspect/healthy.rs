//! A healthy directory: clean verify, exact counts, list, usage errors.

use anyhow::{Context, Result};
use serde_json::Value;

use crate::fixture::{blobs, build, inspect, name, records, s, BIG, COMP, SMALL};

fn u(v: &Value, field: &str) -> Option<u64> {
    v.get(field).and_then(Value::as_u64)
}

#[test]
fn healthy_directory_verifies_clean() -> Result<()> {
    let dir = build()?;
    let run = inspect(dir.path(), &["verify", s(dir.path()), "--json"])?;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.problems()?, []);
    let total = run.total()?;
    assert_eq!(total.get("status").and_then(Value::as_str), Some("healthy"));
    assert_eq!(u(&total, "records"), Some(75));
    assert_eq!(
        run.stderr, "",
        "no progress bar when stderr is not a terminal"
    );
    let text = inspect(dir.path(), &["verify", s(dir.path())])?;
    assert_eq!(text.code, 0);
    assert!(text.stdout.contains("0 problem(s)"), "{}", text.stdout);
    Ok(())
}

#[test]
fn summary_counts_match_what_was_written() -> Result<()> {
    let dir = build()?;
    let run = inspect(dir.path(), &["summary", "--json", s(dir.path())])?;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = run.json()?;
    let files = blobs(dir.path())?;
    assert!(files.len() >= 3, "the fixture spans several blobs");
    assert_eq!(lines.len(), files.len() + 1);
    let total = run.total()?;
    let written = (SMALL + BIG + COMP) as u64;
    assert_eq!(u(&total, "records"), Some(written + 10 + 5));
    assert_eq!(u(&total, "live"), Some(written - 5));
    assert_eq!(u(&total, "superseded"), Some(15));
    assert_eq!(u(&total, "removed"), Some(5));
    assert_eq!(u(&total, "uncommitted"), Some(0));
    assert_eq!(u(&total, "damaged"), Some(0));
    assert_eq!(u(&total, "keys"), Some(written));
    assert_eq!(u(&total, "files"), Some(files.len() as u64));
    let ratio = total.get("compression_ratio").and_then(Value::as_f64);
    assert!(ratio.is_some_and(|r| r > 1.0), "{ratio:?}");
    for (line, path) in lines.iter().zip(&files) {
        assert_eq!(
            line.get("file").and_then(Value::as_str),
            Some(name(path).as_str())
        );
        assert_eq!(u(line, "format_version"), Some(3));
        assert_eq!(line.get("index_present"), Some(&Value::Bool(true)));
        assert_eq!(line.get("index_sorted"), Some(&Value::Bool(false)));
        assert_eq!(line.get("index_checksum_ok"), Some(&Value::Bool(true)));
        let size = std::fs::metadata(path)?.len();
        assert_eq!(u(line, "size_bytes"), Some(size));
        let live = u(line, "bytes_live").context("bytes_live")?;
        let garbage = u(line, "bytes_garbage").context("bytes_garbage")?;
        assert_eq!(live + garbage + 32, size, "{line}");
        assert_eq!(u(line, "records"), Some(records(path)?.len() as u64));
    }
    let text = inspect(dir.path(), &["summary", s(dir.path())])?;
    assert_eq!(text.code, 0);
    assert!(text.stdout.contains("uncommitted: 0"), "{}", text.stdout);
    Ok(())
}

#[test]
fn list_shows_every_record_with_its_state() -> Result<()> {
    let dir = build()?;
    let run = inspect(dir.path(), &["list", s(dir.path()), "--json"])?;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = run.json()?;
    assert_eq!(lines.len(), 75);
    let count = |st: &str| {
        lines
            .iter()
            .filter(|l| l.get("state").and_then(Value::as_str) == Some(st))
            .count()
    };
    assert_eq!(
        (count("live"), count("superseded"), count("removed")),
        (55, 15, 5)
    );
    for l in &lines {
        assert_eq!(l.get("name"), Some(&Value::Null));
        assert_eq!(l.get("key").and_then(Value::as_str).map(str::len), Some(64));
        let tomb = l.get("tombstone") == Some(&Value::Bool(true));
        assert_eq!(
            tomb,
            l.get("state").and_then(Value::as_str) == Some("removed")
        );
    }
    let limited = inspect(
        dir.path(),
        &["list", "--limit", "3", "--json", s(dir.path())],
    )?;
    assert_eq!(limited.json()?.len(), 3);
    let text = inspect(dir.path(), &["list", s(dir.path())])?;
    assert_eq!(text.code, 0);
    assert_eq!(
        text.stdout.lines().count(),
        76,
        "a header and one line per record"
    );
    assert!(text.stdout.contains("removed (tombstone)"));
    Ok(())
}

#[test]
fn single_blob_file_replays_only_itself() -> Result<()> {
    let dir = build()?;
    let files = blobs(dir.path())?;
    let last = files.last().context("no blob")?;
    let recs = records(last)?;
    let run = inspect(dir.path(), &["summary", "--json", s(last)])?;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()?.len(), 2);
    let total = run.total()?;
    let tombstones = recs.iter().filter(|r| r.h.is_tombstone()).count() as u64;
    assert_eq!(u(&total, "records"), Some(recs.len() as u64));
    assert_eq!(u(&total, "removed"), Some(tombstones));
    // Alone, the file's tombstones remove nothing in it unless their value is in it too.
    let verify = inspect(dir.path(), &["verify", s(last), "--json"])?;
    assert_eq!(verify.code, 0);
    assert_eq!(verify.problems()?, []);
    Ok(())
}

#[test]
fn missing_path_and_usage_errors_exit_2() -> Result<()> {
    let dir = build()?;
    let missing = dir.path().join("nope");
    for cmd in ["summary", "list", "verify"] {
        let run = inspect(dir.path(), &[cmd, s(&missing)])?;
        assert_eq!(run.code, 2, "{cmd}: {}", run.stderr);
        assert!(run.stderr.contains("nope"), "{}", run.stderr);
    }
    assert_eq!(inspect(dir.path(), &["frobnicate"])?.code, 2);
    assert_eq!(inspect(dir.path(), &["dump", s(dir.path())])?.code, 2);
    assert_eq!(
        inspect(dir.path(), &["list", s(dir.path()), "--limit", "x"])?.code,
        2
    );
    let help = inspect(dir.path(), &["--help"])?;
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("truncated_tail"));
    let summary_help = inspect(dir.path(), &["summary", "--help"])?;
    assert!(summary_help.stdout.contains("uncommitted  always 0"));
    Ok(())
}

#[test]
fn strangers_in_the_directory_are_ignored() -> Result<()> {
    let dir = build()?;
    std::fs::write(dir.path().join("data-00000001.index.tmp"), b"half an index")?;
    std::fs::write(dir.path().join("notes.txt"), b"hello")?;
    let run = inspect(dir.path(), &["verify", "--json", s(dir.path())])?;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.problems()?, []);
    Ok(())
}

#[test]
fn works_beside_a_live_engine_without_taking_its_lock() -> Result<()> {
    let dir = build()?;
    // A larger limit: the write must land in the active blob, after its checkpoint.
    let config = ringblob_engine::Config {
        max_blob_size: 1 << 20,
        ..crate::fixture::config()
    };
    let engine = ringblob_engine::Engine::open(dir.path(), config)?;
    let k = ringblob_engine::Key::from_name(b"", b"while-open");
    engine.write(&k, b"fresh", ringblob_engine::WriteOptions::default())?;
    engine.sync()?;
    let run = inspect(dir.path(), &["verify", "--json", s(dir.path())])?;
    assert_eq!(run.code, 0, "{}", run.stdout);
    let kinds: Vec<String> = run.problems()?.into_iter().map(|p| p.0).collect();
    assert_eq!(
        kinds,
        ["index_covers_prefix"],
        "the new record is after the checkpoint"
    );
    let dump = inspect(dir.path(), &["dump", s(dir.path()), "--key", "while-open"])?;
    assert_eq!((dump.code, dump.bytes), (0, b"fresh".to_vec()));
    engine.close()?;
    Ok(())
}
