//! Damaged blobs: each kind of damage is reported exactly (kind, file, offset) and costs
//! no more records than it hit.

use std::fs::{self, OpenOptions};
use std::io::Write;

use anyhow::{Context, Result};
use ringblob_engine::format::crc32;
use ringblob_engine::format::record::{FRAME_ENTRY_LEN, RECORD_HEADER_LEN};
use serde_json::Value;

use crate::fixture::{blobs, build, flip, inspect, name, records, s, Rec};

/// The first multi-frame raw record of a sealed (not last) blob, with its file.
fn sealed_big_record(dir: &std::path::Path) -> Result<(std::path::PathBuf, Rec)> {
    let files = blobs(dir)?;
    for f in files.iter().take(files.len().saturating_sub(1)) {
        if let Some(r) = records(f)?
            .into_iter()
            .find(|r| r.h.frame_count > 1 && r.h.flags == 0)
        {
            return Ok((f.clone(), r));
        }
    }
    anyhow::bail!("no sealed multi-frame raw record")
}

fn one_problem(dir: &std::path::Path, kind: &str, file: &str, offset: u64) -> Result<Value> {
    let run = inspect(dir, &["verify", "--json", s(dir)])?;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(
        run.problems()?,
        [(kind.to_string(), file.to_string(), offset)]
    );
    let line = run.json()?.into_iter().next().context("no line")?;
    assert_eq!(
        line.get("severity").and_then(Value::as_str),
        Some("corruption")
    );
    Ok(line)
}

#[test]
fn flipped_value_byte_costs_one_record() -> Result<()> {
    let dir = build()?;
    let (file, rec) = sealed_big_record(dir.path())?;
    let before = records(&file)?.len();
    let data_at = rec.offset + (RECORD_HEADER_LEN + rec.h.table_len()) as u64;
    flip(&file, data_at + 5000)?;
    let line = one_problem(dir.path(), "bad_data_crc", &name(&file), rec.offset)?;
    assert_eq!(line.get("end").and_then(Value::as_u64), Some(rec.end()));
    let key = line.get("key").and_then(Value::as_str);
    assert_eq!(key, Some(rec.h.key.to_hex().as_str()));
    let list = inspect(dir.path(), &["list", "--json", s(&file)])?;
    assert_eq!(list.code, 1);
    let rows = list.json()?;
    assert_eq!(rows.len(), before, "one damaged row replaces the record");
    let damaged: Vec<&Value> = rows
        .iter()
        .filter(|r| r.get("state").and_then(Value::as_str) == Some("damaged"))
        .collect();
    assert_eq!(damaged.len(), 1);
    assert_eq!(
        damaged.first().and_then(|d| d.get("offset")?.as_u64()),
        Some(rec.offset)
    );
    let summary = inspect(dir.path(), &["summary", "--json", s(dir.path())])?;
    assert_eq!(summary.code, 1);
    assert_eq!(
        summary.total()?.get("damaged").and_then(Value::as_u64),
        Some(1)
    );
    Ok(())
}

#[test]
fn flipped_header_byte_costs_exactly_one_record() -> Result<()> {
    let dir = build()?;
    let files = blobs(dir.path())?;
    let file = files.first().context("no blob")?;
    let recs = records(file)?;
    assert!(recs.len() >= 4, "want records after the damaged one");
    let victim = recs.get(1).copied().context("second record")?;
    flip(file, victim.offset + 50)?;
    let line = one_problem(dir.path(), "bad_header_crc", &name(file), victim.offset)?;
    assert_eq!(line.get("end").and_then(Value::as_u64), Some(victim.end()));
    assert_eq!(
        line.get("key"),
        Some(&Value::Null),
        "an unverified header gives no key"
    );
    let list = inspect(dir.path(), &["list", "--json", s(file)])?;
    let offsets: Vec<(u64, String)> = list
        .json()?
        .iter()
        .map(|r| {
            let off = r.get("offset").and_then(Value::as_u64).unwrap_or(u64::MAX);
            let state = r.get("state").and_then(Value::as_str).unwrap_or("");
            (off, state.to_string())
        })
        .collect();
    let expected: Vec<u64> = recs.iter().map(|r| r.offset).collect();
    let got: Vec<u64> = offsets.iter().map(|(o, _)| *o).collect();
    assert_eq!(got, expected, "every later record is still listed");
    let damaged: Vec<u64> = offsets
        .iter()
        .filter(|(_, st)| st == "damaged")
        .map(|(o, _)| *o)
        .collect();
    assert_eq!(damaged, [victim.offset]);
    Ok(())
}

#[test]
fn truncated_mid_record_is_a_truncated_tail() -> Result<()> {
    let dir = build()?;
    let files = blobs(dir.path())?;
    let file = files.last().context("no blob")?;
    let last = *records(file)?.last().context("empty blob")?;
    let cut = last.offset + (RECORD_HEADER_LEN as u64 + last.h.record_len()) / 2;
    let cut = cut.min(last.end() - 1);
    // The blob was closed cleanly, so the synced watermark also says bytes were lost.
    let lost = |cut: u64| ("synced_bytes_lost".to_string(), name(file), cut);
    OpenOptions::new().write(true).open(file)?.set_len(cut)?;
    let run = inspect(dir.path(), &["verify", "--json", s(dir.path())])?;
    assert_eq!(run.code, 1, "{}", run.stdout);
    let torn = ("truncated_tail".to_string(), name(file), last.offset);
    assert_eq!(run.problems()?, [torn.clone(), lost(cut)]);
    let line = run.json()?.into_iter().next().context("no line")?;
    assert_eq!(line.get("end").and_then(Value::as_u64), Some(cut));
    // Cut inside the header: still a truncated tail, with no key.
    let cut = last.offset + 40;
    OpenOptions::new().write(true).open(file)?.set_len(cut)?;
    let run = inspect(dir.path(), &["verify", "--json", s(dir.path())])?;
    assert_eq!(run.problems()?, [torn, lost(cut)]);
    let line = run.json()?.into_iter().next().context("no line")?;
    assert_eq!(line.get("key"), Some(&Value::Null));
    Ok(())
}

#[test]
fn appended_garbage_is_reported_after_the_last_record() -> Result<()> {
    let dir = build()?;
    let files = blobs(dir.path())?;
    for (i, file) in [files.first(), files.last()]
        .into_iter()
        .flatten()
        .enumerate()
    {
        let len = fs::metadata(file)?.len();
        let junk = if i == 0 {
            vec![0x33u8; 30]
        } else {
            b"garbage!".repeat(40)
        };
        OpenOptions::new()
            .append(true)
            .open(file)?
            .write_all(&junk)?;
        let line = one_problem(dir.path(), "garbage_after_last_record", &name(file), len)?;
        assert_eq!(
            line.get("end").and_then(Value::as_u64),
            Some(len + junk.len() as u64)
        );
        fs::OpenOptions::new()
            .write(true)
            .open(file)?
            .set_len(len)?;
    }
    Ok(())
}

#[test]
fn bad_value_crc_and_bad_snappy_are_caught_by_verify_only() -> Result<()> {
    let dir = build()?;
    let (file, rec) = sealed_big_record(dir.path())?;
    let mut h = rec.h;
    h.value_crc ^= 1;
    let mut bytes = fs::read(&file)?;
    let at = rec.offset as usize;
    bytes.splice(at..at + RECORD_HEADER_LEN, h.encode());
    fs::write(&file, &bytes)?;
    one_problem(dir.path(), "bad_value_crc", &name(&file), rec.offset)?;
    let summary = inspect(dir.path(), &["summary", "--json", s(dir.path())])?;
    assert_eq!(
        summary.code, 0,
        "frames are intact; only verify checks value_crc"
    );
    Ok(())
}

#[test]
fn compressed_frame_with_wrong_length_is_bad_compressed_frame() -> Result<()> {
    let dir = build()?;
    let mut found = None;
    for f in blobs(dir.path())? {
        if let Some(r) = records(&f)?.into_iter().find(|r| r.h.flags & 2 != 0) {
            found = Some((f, r));
            break;
        }
    }
    let (file, rec) = found.context("no compressed record")?;
    let mut bytes = fs::read(&file)?;
    let table_at = rec.offset as usize + RECORD_HEADER_LEN;
    let frames_at = table_at + rec.h.table_len();
    // Frame 0 is compressed: change its Snappy length preamble, then re-seal every CRC.
    let word = bytes.get(table_at..table_at + 4).context("table")?;
    let stored_len = (u32::from_le_bytes(word.try_into()?) & 0x7FFF_FFFF) as usize;
    let frame = bytes
        .get_mut(frames_at..frames_at + stored_len)
        .context("frame")?;
    frame[0] ^= 0x01;
    let frame_crc = crc32(frame);
    bytes.splice(table_at + 4..table_at + 8, frame_crc.to_le_bytes());
    let table = bytes.get(table_at..table_at + rec.h.frame_count as usize * FRAME_ENTRY_LEN);
    let mut h = rec.h;
    h.table_crc = crc32(table.context("table")?);
    bytes.splice(rec.offset as usize..table_at, h.encode());
    fs::write(&file, &bytes)?;
    one_problem(dir.path(), "bad_compressed_frame", &name(&file), rec.offset)?;
    Ok(())
}

#[test]
fn impossible_length_in_a_sealed_header_costs_one_record() -> Result<()> {
    let dir = build()?;
    let files = blobs(dir.path())?;
    let file = files.first().context("no blob")?;
    let recs = records(file)?;
    let victim = recs.get(2).copied().context("third record")?;
    let mut h = victim.h;
    h.frame_len = 3000; // not a power of two; the header CRC is recomputed, so it passes
    let mut bytes = fs::read(file)?;
    let at = victim.offset as usize;
    bytes.splice(at..at + RECORD_HEADER_LEN, h.encode());
    fs::write(file, &bytes)?;
    let line = one_problem(dir.path(), "impossible_length", &name(file), victim.offset)?;
    assert_eq!(line.get("end").and_then(Value::as_u64), Some(victim.end()));
    Ok(())
}

#[test]
fn damaged_blob_header_still_lists_every_record() -> Result<()> {
    let dir = build()?;
    let files = blobs(dir.path())?;
    let file = files.get(1).context("second blob")?;
    flip(file, 3)?;
    one_problem(dir.path(), "bad_blob_header", &name(file), 0)?;
    let list = inspect(dir.path(), &["list", "--json", s(file)])?;
    assert_eq!(list.code, 1);
    assert_eq!(list.json()?.len(), records(file)?.len());
    let summary = inspect(dir.path(), &["summary", "--json", s(dir.path())])?;
    let line = summary
        .json()?
        .into_iter()
        .nth(1)
        .context("second blob line")?;
    assert_eq!(line.get("format_version"), Some(&Value::Null));
    Ok(())
}
