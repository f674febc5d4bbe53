//! Sorted index files (`data-N.sorted`): checked by verify, damage reported as
//! `bad_sorted_index` (or, for well-formed files that disagree with their blob, as the
//! entry kinds the index files use), exit status 1 like any index damage.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ringblob_engine::format::index_file::IndexEntry;
use ringblob_engine::format::sorted_index::{
    decode_all, encode_sorted, SortedSource, PAGE_LEN, SORTED_HEADER_LEN,
};
use serde_json::Value;

use crate::fixture::{blobs, build, flip, inspect, name, s};

fn sorted_of(blob: &Path) -> PathBuf {
    blob.with_extension("sorted")
}

/// The first blob of the standard fixture and its sorted index (which a sealed blob has).
fn first_sorted(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let first = blobs(dir)?.into_iter().next().context("no blob")?;
    let sorted = sorted_of(&first);
    anyhow::ensure!(sorted.is_file(), "the first blob has no sorted index");
    Ok((first, sorted))
}

/// Rewrites `path` as a valid sorted index with the entries `edit` leaves.
fn rewrite(path: &Path, edit: impl FnOnce(&mut Vec<IndexEntry>)) -> Result<()> {
    let (h, tail, mut entries) = decode_all(&fs::read(path)?, "test")?;
    edit(&mut entries);
    let bytes = encode_sorted(&SortedSource {
        blob_id: h.blob_id,
        covered_len: h.covered_len,
        entries: &entries,
        self_dead_bytes: h.self_dead_bytes,
        superseded: &tail.superseded,
    });
    fs::write(path, bytes)?;
    Ok(())
}

#[test]
fn healthy_sorted_indexes_are_checked_and_pass() -> Result<()> {
    let dir = build()?;
    let (_, sorted) = first_sorted(dir.path())?;
    let (_, _, entries) = decode_all(&fs::read(&sorted)?, "test")?;
    assert!(!entries.is_empty());
    let run = inspect(dir.path(), &["verify", "--json", s(dir.path())])?;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.problems()?, []);
    Ok(())
}

#[test]
fn flipped_page_byte_is_bad_sorted_index() -> Result<()> {
    let dir = build()?;
    let (_, sorted) = first_sorted(dir.path())?;
    flip(&sorted, (SORTED_HEADER_LEN + 100) as u64)?;
    let run = inspect(dir.path(), &["verify", "--json", s(dir.path())])?;
    assert_eq!(run.code, 1, "{}", run.stdout);
    // Reported at the start of the page whose CRC fails.
    assert_eq!(
        run.problems()?,
        [(
            "bad_sorted_index".to_string(),
            name(&sorted),
            SORTED_HEADER_LEN as u64
        )]
    );
    let line = run.json()?.into_iter().next().context("line")?;
    assert_eq!(
        line.get("severity").and_then(Value::as_str),
        Some("corruption")
    );
    let total = run.total()?;
    assert_eq!(total.get("status").and_then(Value::as_str), Some("corrupt"));
    let summary = inspect(dir.path(), &["summary", "--json", s(dir.path())])?;
    assert_eq!(summary.code, 1);
    Ok(())
}

#[test]
fn flipped_header_field_and_truncation_are_bad_sorted_index() -> Result<()> {
    let dir = build()?;
    let (_, sorted) = first_sorted(dir.path())?;
    flip(&sorted, 20)?;
    let run = inspect(dir.path(), &["verify", "--json", s(dir.path())])?;
    assert_eq!(run.code, 1);
    // The header CRC (at offset 76) no longer matches.
    assert_eq!(
        run.problems()?,
        [("bad_sorted_index".to_string(), name(&sorted), 76)]
    );

    let dir = build()?;
    let (_, sorted) = first_sorted(dir.path())?;
    let bytes = fs::read(&sorted)?;
    fs::write(&sorted, &bytes[..bytes.len() - PAGE_LEN / 2])?;
    let run = inspect(dir.path(), &["verify", "--json", s(dir.path())])?;
    assert_eq!(run.code, 1);
    assert_eq!(
        run.problems()?,
        [("bad_sorted_index".to_string(), name(&sorted), 0)]
    );
    Ok(())
}

#[test]
fn sorted_index_of_another_blob_is_bad_sorted_index() -> Result<()> {
    let dir = build()?;
    let all = blobs(dir.path())?;
    let sealed: Vec<PathBuf> = all
        .iter()
        .map(|b| sorted_of(b))
        .filter(|p| p.is_file())
        .collect();
    let [first, second, ..] = sealed.as_slice() else {
        anyhow::bail!("the fixture has fewer than two sealed blobs");
    };
    fs::copy(first, second)?;
    let run = inspect(dir.path(), &["verify", "--json", s(dir.path())])?;
    assert_eq!(run.code, 1);
    assert_eq!(
        run.problems()?,
        [("bad_sorted_index".to_string(), name(second), 12)]
    );
    Ok(())
}

#[test]
fn well_formed_sorted_index_missing_or_misnaming_a_record() -> Result<()> {
    let dir = build()?;
    let (first, sorted) = first_sorted(dir.path())?;
    let mut dropped = None;
    rewrite(&sorted, |e| dropped = Some(e.remove(0)))?;
    let dropped = dropped.context("no entry")?;
    let run = inspect(dir.path(), &["verify", "--json", s(dir.path())])?;
    assert_eq!(run.code, 1);
    assert_eq!(
        run.problems()?,
        [(
            "record_missing_from_index".to_string(),
            name(&first),
            dropped.offset
        )]
    );

    let dir = build()?;
    let (_, sorted) = first_sorted(dir.path())?;
    let mut named = 0;
    rewrite(&sorted, |e| {
        if let Some(e0) = e.first_mut() {
            e0.record_len += 1;
            named = e0.offset;
        }
    })?;
    let run = inspect(dir.path(), &["verify", "--json", s(dir.path())])?;
    assert_eq!(run.code, 1);
    // Entry 0 sits after the header region and the page's 8-byte header.
    assert_eq!(
        run.problems()?,
        [(
            "index_entry_mismatch".to_string(),
            name(&sorted),
            SORTED_HEADER_LEN as u64 + 8
        )]
    );
    let line = run.json()?.into_iter().next().context("line")?;
    assert_eq!(line.get("blob_offset").and_then(Value::as_u64), Some(named));
    Ok(())
}

#[test]
fn orphan_sorted_index_is_information() -> Result<()> {
    let dir = build()?;
    let (_, sorted) = first_sorted(dir.path())?;
    let ghost = dir.path().join("data-00000099.sorted");
    fs::copy(sorted, &ghost)?;
    let run = inspect(dir.path(), &["verify", "--json", s(dir.path())])?;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        run.problems()?,
        [("orphan_index_file".to_string(), name(&ghost), 0)]
    );
    Ok(())
}
