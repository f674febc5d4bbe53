//! `blob-inspect verify`: every problem, then a total line.

use anyhow::Result;
use serde::Serialize;

use super::catalog::Catalog;
use super::out::Out;
use super::problem::{Problem, Severity};
use super::Status;

/// The last `--json` line.
#[derive(Debug, Serialize)]
pub struct TotalLine {
    pub total: bool,
    pub files: u64,
    pub bytes: u64,
    pub records: u64,
    pub problems: u64,
    pub corruption: u64,
    pub info: u64,
    pub status: &'static str,
}

fn text(p: &Problem) -> String {
    let key = p.key.map(|k| format!(" key {k}")).unwrap_or_default();
    let lost = p
        .end
        .map(|end| format!(" (bytes {}..{end} lost)", p.offset))
        .unwrap_or_default();
    let tag = match p.severity() {
        Severity::Info => "info",
        Severity::Corruption => "CORRUPT",
        Severity::Unreadable => "UNREADABLE",
    };
    format!(
        "{tag}: {} offset {}: {}{key}{lost}: {}",
        p.file,
        p.offset,
        p.kind.name(),
        p.reason
    )
}

pub fn run(catalog: &Catalog, json: bool, out: &mut Out) -> Result<Status> {
    let count = |s: Severity| catalog.problems().filter(|p| p.severity() == s).count() as u64;
    for p in catalog.problems() {
        if json {
            out.json(&p.to_json())?;
        } else {
            out.line(&text(p))?;
        }
    }
    let status = catalog.status();
    let total = TotalLine {
        total: true,
        files: catalog.blobs.len() as u64,
        bytes: catalog.total_bytes(),
        records: catalog.blobs.iter().map(|b| b.scan.rows.len() as u64).sum(),
        problems: catalog.problems().count() as u64,
        corruption: count(Severity::Corruption) + count(Severity::Unreadable),
        info: count(Severity::Info),
        status: status.name(),
    };
    if json {
        out.json(&total)?;
    } else {
        out.line(&format!(
            "verified {} blob file(s), {} bytes, {} valid records: {} problem(s) \
             ({} corruption, {} info): {}",
            total.files,
            total.bytes,
            total.records,
            total.problems,
            total.corruption,
            total.info,
            total.status
        ))?;
    }
    Ok(status)
}
