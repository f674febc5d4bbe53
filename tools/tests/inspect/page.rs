//! A zeroed 4096-byte page in the middle of a blob: exactly the records it touches are lost.

use std::fs;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::fixture::{blobs, build, inspect, name, records, s, Rec};

const PAGE: u64 = 4096;

/// The damaged regions the tool must report for a zeroed `page_start..page_start+PAGE`:
/// the record the page starts in, cut at its own end when its header survived (its length
/// is trusted), then everything up to the first record that starts after the page.
fn expected(recs: &[Rec], page_start: u64, len: u64) -> Vec<(String, u64, u64)> {
    let page_end = page_start + PAGE;
    let next_after = |at: u64| {
        recs.iter()
            .map(|r| r.offset)
            .find(|o| *o >= at.max(page_end))
            .unwrap_or(len)
    };
    let Some(first) = recs
        .iter()
        .find(|r| r.offset <= page_start && page_start < r.end())
    else {
        return Vec::new();
    };
    let header_end = first.offset + 88;
    let table_end = header_end + first.h.table_len() as u64;
    let kind = if page_start == first.offset {
        "bad_magic"
    } else if page_start < header_end {
        "bad_header_crc"
    } else if page_start < table_end {
        "bad_frame_table_crc"
    } else {
        "bad_data_crc"
    };
    if page_start < header_end {
        return vec![(kind.into(), first.offset, next_after(first.offset + 1))];
    }
    let mut out = vec![(kind.to_string(), first.offset, first.end())];
    if first.end() < page_end {
        out.push(("bad_magic".into(), first.end(), next_after(first.end())));
    }
    out
}

#[test]
fn zeroed_page_costs_only_the_records_it_touches() -> Result<()> {
    let dir = build()?;
    let files = blobs(dir.path())?;
    let file = files
        .iter()
        .find(|f| fs::metadata(f).is_ok_and(|m| m.len() > 4 * PAGE))
        .context("no blob large enough")?;
    let recs = records(file)?;
    let mut bytes = fs::read(file)?;
    let len = bytes.len() as u64;
    let page_start = (len / 2) & !(PAGE - 1);
    bytes
        .get_mut(page_start as usize..(page_start + PAGE) as usize)
        .context("page")?
        .fill(0);
    fs::write(file, &bytes)?;
    let want = expected(&recs, page_start, len);
    assert!(!want.is_empty());
    let run = inspect(dir.path(), &["verify", "--json", s(dir.path())])?;
    assert_eq!(run.code, 1, "{}", run.stdout);
    let got: Vec<(String, u64, u64)> = run
        .json()?
        .iter()
        .filter(|v| v.get("total").is_none())
        .map(|v| {
            assert_eq!(
                v.get("file").and_then(Value::as_str),
                Some(name(file).as_str())
            );
            let n = |f: &str| v.get(f).and_then(Value::as_u64).unwrap_or(u64::MAX);
            let kind = v
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            (kind, n("offset"), n("end"))
        })
        .collect();
    assert_eq!(got, want, "page {page_start}..{}", page_start + PAGE);
    let lost: Vec<u64> = recs
        .iter()
        .filter(|r| r.offset < page_start + PAGE && page_start < r.end())
        .map(|r| r.offset)
        .collect();
    let list = inspect(dir.path(), &["list", "--json", s(file)])?;
    let kept = list
        .json()?
        .iter()
        .filter(|r| r.get("state").and_then(Value::as_str) != Some("damaged"))
        .count();
    assert_eq!(
        kept,
        recs.len() - lost.len(),
        "only records touching the page are lost"
    );
    Ok(())
}
