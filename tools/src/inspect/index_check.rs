//! Checking an index file against its blob: the file's own checks (magic, CRCs, tiling),
//! then every entry against the records the scan found, and every record inside the covered
//! range against the entries.

use anyhow::{Context, Result};
use ringblob_engine::format::index_file::{
    IndexEntry, IndexFile, INDEX_ENTRY_LEN, INDEX_HEADER_LEN,
};
use ringblob_engine::Error;

use super::classify::error_offset;
use super::problem::{Kind, Problem};
use super::rofile::ReadOnlyFile;
use super::scan::{BlobScan, Row};
use super::source::{BlobRef, FileRef};

/// Largest index file read (an entry per 88-byte record of a 4 GiB blob fits well below).
const MAX_INDEX_FILE: u64 = 4 << 30;

/// What `summary` reports about a blob's index file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexState {
    pub present: bool,
    /// The file passed its own checks and names this blob (`None` when absent).
    pub checksum_ok: Option<bool>,
    pub covered_len: Option<u64>,
    pub entries: Option<u64>,
}

/// Loads and checks `blob`'s index file, if it has one. `Err` only for IO errors.
pub fn check_index(blob: &BlobRef, scan: &BlobScan) -> Result<(IndexState, Vec<Problem>)> {
    let Some(ix_ref) = &blob.index else {
        return Ok((IndexState::default(), Vec::new()));
    };
    let bad_state = IndexState {
        present: true,
        checksum_ok: Some(false),
        ..IndexState::default()
    };
    let ix = match load(ix_ref)? {
        Loaded::Gone => return Ok((IndexState::default(), Vec::new())),
        Loaded::Bad(p) => return Ok((bad_state, vec![p])),
        Loaded::Ok(ix) => ix,
    };
    if ix.blob_id != scan.blob_id {
        let reason = format!(
            "index names blob {} but belongs to blob {}",
            ix.blob_id, scan.blob_id
        );
        let p = Problem::new(Kind::BadIndexFile, &ix_ref.name, 12, reason);
        return Ok((bad_state, vec![p]));
    }
    let state = IndexState {
        present: true,
        checksum_ok: Some(true),
        covered_len: Some(ix.covered_len),
        entries: Some(ix.entries.len() as u64),
    };
    Ok((state, compare(&ix, scan, &ix_ref.name, &blob.file.name)))
}

enum Loaded {
    Ok(IndexFile),
    Bad(Problem),
    /// Deleted between listing the directory and opening it.
    Gone,
}

fn load(ix_ref: &FileRef) -> Result<Loaded> {
    let name = ix_ref.name.as_str();
    let file = match ReadOnlyFile::open(&ix_ref.path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::Gone),
        Err(e) => return Err(e).with_context(|| format!("open {}", ix_ref.path.display())),
    };
    let bytes = match file
        .read_all(MAX_INDEX_FILE)
        .with_context(|| format!("read {name}"))?
    {
        Ok(b) => b,
        Err(len) => {
            let reason = format!("{len} bytes, more than any index file ({MAX_INDEX_FILE})");
            return Ok(Loaded::Bad(Problem::new(
                Kind::BadIndexFile,
                name,
                0,
                reason,
            )));
        }
    };
    Ok(match IndexFile::decode(&bytes, name) {
        Ok(ix) => Loaded::Ok(ix),
        Err(e) => {
            let kind = match e {
                Error::UnsupportedVersion { .. } => Kind::UnsupportedVersion,
                _ => Kind::BadIndexFile,
            };
            Loaded::Bad(Problem::new(kind, name, error_offset(&e), e.to_string()))
        }
    })
}

/// Index file offset of entry `i`.
fn entry_pos(i: usize) -> u64 {
    (INDEX_HEADER_LEN + i * INDEX_ENTRY_LEN) as u64
}

fn agrees(e: &IndexEntry, r: &Row) -> bool {
    e.key == r.key && u64::from(e.record_len) == r.len && e.flags == r.flags && e.column == r.column
}

/// Entries against records and records against entries. Entries that point into a damaged
/// region are not reported again: the damage already is.
fn compare(ix: &IndexFile, scan: &BlobScan, ix_name: &str, blob_name: &str) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut past_end: Option<(usize, &IndexEntry, usize)> = None;
    for (i, e) in ix.entries.iter().enumerate() {
        if e.offset >= scan.len {
            let first = past_end.map_or((i, e), |(i, e, _)| (i, e));
            past_end = Some((first.0, first.1, past_end.map_or(1, |p| p.2 + 1)));
            continue;
        }
        let p =
            match scan.row_at(e.offset) {
                Some(r) if agrees(e, r) => continue,
                Some(r) => {
                    Problem::new(
                        Kind::IndexEntryMismatch,
                        ix_name,
                        entry_pos(i),
                        format!(
                    "entry {i} says key {}, {} bytes, flags {:#x}, column {}; the record at \
                     {blob_name} offset {} has key {}, {} bytes, flags {:#x}, column {}",
                    e.key, e.record_len, e.flags, e.column, e.offset, r.key, r.len, r.flags,
                    r.column
                ),
                    )
                }
                None if scan.damaged_at(e.offset) => continue,
                None => Problem::new(
                    Kind::IndexEntryPointsAtNothing,
                    ix_name,
                    entry_pos(i),
                    format!(
                        "entry {i} names {blob_name} offset {}, where no record starts",
                        e.offset
                    ),
                ),
            };
        out.push(p.with_blob_offset(e.offset).with_key(Some(e.key)));
    }
    if let Some((i, e, n)) = past_end {
        let reason = format!(
            "{n} entries from entry {i} on name offsets at or past the end of {blob_name} \
             ({} bytes): the blob lost its tail",
            scan.len
        );
        let p = Problem::new(
            Kind::IndexEntryPointsAtNothing,
            ix_name,
            entry_pos(i),
            reason,
        );
        out.push(p.with_blob_offset(e.offset).with_key(Some(e.key)));
    }
    out.extend(missing(ix, scan, ix_name, blob_name));
    out
}

/// Records the index should list but does not, and the uncovered tail as information.
fn missing(ix: &IndexFile, scan: &BlobScan, ix_name: &str, blob_name: &str) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut after = 0u64;
    for r in &scan.rows {
        if r.offset + r.len > ix.covered_len {
            after += 1;
            continue;
        }
        if ix
            .entries
            .binary_search_by_key(&r.offset, |e| e.offset)
            .is_err()
        {
            let reason = format!("{ix_name} covers offset {} but does not list it", r.offset);
            let p = Problem::new(Kind::RecordMissingFromIndex, blob_name, r.offset, reason);
            out.push(p.with_key(Some(r.key)));
        }
    }
    // Only worth saying when valid records lie beyond it; garbage there is reported anyway.
    if ix.covered_len < scan.len && after > 0 {
        let reason = format!(
            "{ix_name} covers bytes up to {} of {}; the {after} records after that are not in \
             it (normal: the active blob's index file is a checkpoint)",
            ix.covered_len, scan.len
        );
        out.push(Problem::new(
            Kind::IndexCoversPrefix,
            blob_name,
            ix.covered_len,
            reason,
        ));
    }
    out
}
