//! `blob-inspect summary`: counts per blob file and in total.

use std::collections::HashSet;

use anyhow::Result;
use ringblob_engine::format::blob_header::BLOB_HEADER_LEN;
use ringblob_engine::Key;
use serde::Serialize;

use super::catalog::{BlobReport, Catalog};
use super::out::Out;
use super::replay::{Replay, State};
use super::Status;

/// Figures that add up across files.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Counts {
    pub size_bytes: u64,
    pub records: u64,
    pub live: u64,
    pub superseded: u64,
    pub removed: u64,
    /// Always 0: format version 1 has no streaming writes.
    pub uncommitted: u64,
    pub damaged: u64,
    pub keys: u64,
    pub bytes_live: u64,
    pub bytes_garbage: u64,
    pub bytes_reclaimable: u64,
    pub bytes_damaged: u64,
    pub value_bytes: u64,
    pub stored_value_bytes: u64,
    pub compression_ratio: Option<f64>,
    pub problems: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.size_bytes += o.size_bytes;
        self.records += o.records;
        self.live += o.live;
        self.superseded += o.superseded;
        self.removed += o.removed;
        self.damaged += o.damaged;
        self.bytes_live += o.bytes_live;
        self.bytes_garbage += o.bytes_garbage;
        self.bytes_reclaimable += o.bytes_reclaimable;
        self.bytes_damaged += o.bytes_damaged;
        self.value_bytes += o.value_bytes;
        self.stored_value_bytes += o.stored_value_bytes;
        self.problems += o.problems;
        self.compression_ratio = ratio(self.value_bytes, self.stored_value_bytes);
    }
}

fn ratio(value: u64, stored: u64) -> Option<f64> {
    (stored > 0).then(|| (value as f64 / stored as f64 * 1000.0).round() / 1000.0)
}

/// One `--json` line per blob file.
#[derive(Debug, Serialize)]
pub struct FileLine<'a> {
    pub file: &'a str,
    pub blob_id: u32,
    pub format_version: Option<u32>,
    #[serde(flatten)]
    pub counts: Counts,
    pub index_present: bool,
    pub index_sorted: Option<bool>,
    pub index_checksum_ok: Option<bool>,
    pub index_covered_len: Option<u64>,
    pub index_entries: Option<u64>,
}

/// The last `--json` line.
#[derive(Debug, Serialize)]
pub struct TotalLine {
    pub total: bool,
    pub files: u64,
    #[serde(flatten)]
    pub counts: Counts,
    pub status: &'static str,
}

/// Counts for blob `b` of the catalog.
pub fn file_counts(report: &BlobReport, replay: &Replay, b: usize) -> Counts {
    let states = replay.states.get(b).map(Vec::as_slice).unwrap_or(&[]);
    let mut c = Counts {
        size_bytes: report.scan.len,
        records: report.scan.rows.len() as u64,
        damaged: report
            .scan
            .damage
            .iter()
            .filter(|p| p.end.is_some())
            .count() as u64,
        bytes_damaged: report.scan.damaged_bytes(),
        problems: report.problems.len() as u64,
        ..Counts::default()
    };
    let mut keys: HashSet<Key> = HashSet::new();
    for (row, state) in report.scan.rows.iter().zip(states) {
        keys.insert(row.key);
        match state {
            State::Live => {
                c.live += 1;
                c.bytes_live += row.len;
            }
            State::Superseded => c.superseded += 1,
            State::Removed => c.removed += 1,
        }
        if !row.is_tombstone() {
            c.value_bytes += row.value_len;
            c.stored_value_bytes += row.stored_value_len;
        }
    }
    c.keys = keys.len() as u64;
    let header = report.scan.len.min(BLOB_HEADER_LEN as u64);
    c.bytes_garbage = report.scan.len - header - c.bytes_live;
    let pinned = replay.pinned_bytes.get(b).copied().unwrap_or(0);
    c.bytes_reclaimable = c.bytes_garbage.saturating_sub(pinned);
    c.compression_ratio = ratio(c.value_bytes, c.stored_value_bytes);
    c
}

pub fn run(catalog: &Catalog, json: bool, out: &mut Out) -> Result<Status> {
    let replay = Replay::run(&catalog.blobs);
    let mut total = Counts::default();
    let mut all_keys: HashSet<Key> = HashSet::new();
    let mut lines = Vec::with_capacity(catalog.blobs.len());
    for (b, report) in catalog.blobs.iter().enumerate() {
        let counts = file_counts(report, &replay, b);
        total.add(&counts);
        all_keys.extend(report.scan.rows.iter().map(|r| r.key));
        lines.push(file_line(report, counts));
    }
    total.keys = all_keys.len() as u64;
    total.problems += catalog.other.len() as u64;
    let status = catalog.status();
    let total = TotalLine {
        total: true,
        files: catalog.blobs.len() as u64,
        counts: total,
        status: status.name(),
    };
    if json {
        for l in &lines {
            out.json(l)?;
        }
        out.json(&total)?;
    } else {
        super::summary_text::print(&lines, &total, out)?;
    }
    Ok(status)
}

fn file_line(report: &BlobReport, counts: Counts) -> FileLine<'_> {
    let ix = report.index;
    FileLine {
        file: &report.blob.file.name,
        blob_id: report.scan.blob_id,
        format_version: report.scan.header.map(|h| h.version),
        counts,
        index_present: ix.present,
        index_sorted: ix.present.then_some(false),
        index_checksum_ok: ix.checksum_ok,
        index_covered_len: ix.covered_len,
        index_entries: ix.entries,
    }
}
