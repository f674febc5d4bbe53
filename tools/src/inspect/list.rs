//! `blob-inspect list`: one line per record (and per damaged region), in replay order.

use anyhow::Result;
use ringblob_engine::format::blob_header::BLOB_HEADER_LEN;
use serde::Serialize;

use super::catalog::{BlobReport, Catalog};
use super::out::Out;
use super::problem::Problem;
use super::replay::Replay;
use super::scan::Row;
use super::time::utc;
use super::Status;

/// One `--json` line. Damaged regions have `state: "damaged"`, their `kind`, and null for
/// what cannot be read.
#[derive(Debug, Serialize)]
pub struct Line<'a> {
    pub file: &'a str,
    pub offset: u64,
    pub key: Option<String>,
    /// Names are not stored in format version 1.
    pub name: Option<String>,
    pub column: Option<u16>,
    pub flags: Option<u16>,
    pub tombstone: Option<bool>,
    pub compressed: Option<bool>,
    /// A patch record (format version 3): frames kept from earlier records of the blob.
    pub patch: Option<bool>,
    pub value_size: Option<u64>,
    /// Bytes on disk (for a damaged region: its length).
    pub stored_size: u64,
    pub timestamp_ns: Option<u64>,
    pub state: &'static str,
    pub kind: Option<&'static str>,
}

fn record_line<'a>(file: &'a str, r: &Row, state: &'static str) -> Line<'a> {
    Line {
        file,
        offset: r.offset,
        key: Some(r.key.to_hex()),
        name: None,
        column: Some(r.column),
        flags: Some(r.flags),
        tombstone: Some(r.is_tombstone()),
        compressed: Some(r.is_compressed()),
        patch: Some(r.is_patch()),
        value_size: Some(r.value_len),
        stored_size: r.len,
        timestamp_ns: Some(r.timestamp_ns),
        state,
        kind: None,
    }
}

fn damage_line<'a>(file: &'a str, p: &Problem, end: u64) -> Line<'a> {
    Line {
        file,
        offset: p.offset,
        key: p.key.map(|k| k.to_hex()),
        name: None,
        column: None,
        flags: None,
        tombstone: None,
        compressed: None,
        patch: None,
        value_size: None,
        stored_size: end - p.offset,
        timestamp_ns: None,
        state: "damaged",
        kind: Some(p.kind.name()),
    }
}

/// Valid records and damaged regions of one blob, merged in file order.
fn lines<'a>(b: usize, report: &'a BlobReport, replay: &Replay) -> Vec<Line<'a>> {
    let file = report.blob.file.name.as_str();
    let mut out: Vec<Line<'a>> = report
        .scan
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let state = replay.state((b, i)).map_or("?", |s| s.name());
            record_line(file, r, state)
        })
        .collect();
    let regions = report.scan.damage.iter().filter_map(|p| match p.end {
        Some(end) if p.offset >= BLOB_HEADER_LEN as u64 => Some(damage_line(file, p, end)),
        _ => None,
    });
    out.extend(regions);
    out.sort_by_key(|l| l.offset);
    out
}

fn text(l: &Line<'_>) -> String {
    let flags = match (l.tombstone, l.compressed, l.patch) {
        (Some(true), _, _) => "tombstone",
        (_, Some(true), Some(true)) => "patch,comp",
        (_, _, Some(true)) => "patch",
        (_, Some(true), _) => "compressed",
        (Some(false), _, _) => "-",
        _ => "?",
    };
    let opt = |v: Option<u64>| v.map_or_else(|| "?".to_string(), |v| v.to_string());
    let state = match (l.state, l.kind) {
        ("damaged", Some(kind)) => format!("damaged ({kind})"),
        ("removed", _) => "removed (tombstone)".to_string(),
        (s, _) => s.to_string(),
    };
    format!(
        "{:<20} {:>12}  {:<64}  {:>6}  {flags:<10}  {:>12}  {:>12}  {:<30}  {state}",
        l.file,
        l.offset,
        l.key.as_deref().unwrap_or("?"),
        l.column.map_or_else(|| "?".to_string(), |c| c.to_string()),
        opt(l.value_size),
        l.stored_size,
        l.timestamp_ns.map_or_else(|| "?".to_string(), utc),
    )
}

pub fn run(catalog: &Catalog, limit: Option<u64>, json: bool, out: &mut Out) -> Result<Status> {
    let replay = Replay::run(&catalog.blobs);
    if !json {
        out.line(&format!(
            "{:<20} {:>12}  {:<64}  {:>6}  {:<10}  {:>12}  {:>12}  {:<30}  STATE",
            "FILE", "OFFSET", "KEY", "COLUMN", "FLAGS", "VALUE_SIZE", "STORED_SIZE", "TIMESTAMP"
        ))?;
    }
    let mut left = limit.unwrap_or(u64::MAX);
    'blobs: for (b, report) in catalog.blobs.iter().enumerate() {
        for l in lines(b, report, &replay) {
            if left == 0 {
                break 'blobs;
            }
            left -= 1;
            if json {
                out.json(&l)?;
            } else {
                out.line(&text(&l))?;
            }
        }
    }
    Ok(catalog.status())
}
