//! Checking a sealed blob's sorted index (`data-N.sorted`, `docs/FORMAT.md` §12) against its
//! blob: the file's own checks (`decode_all`: magic, CRCs, page order, fences, bounds), that
//! it names this blob and its whole length, then every entry against the record it names,
//! and, for an undamaged blob, that it lists exactly the newest record of every
//! (key, column). The engine rebuilds a bad one at open, but until then lookups trust it.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use ringblob_engine::format::index_file::{IndexEntry, INDEX_ENTRY_LEN};
use ringblob_engine::format::sorted_index::{
    decode_all, SortedHeader, ENTRIES_PER_PAGE, PAGE_LEN, SORTED_HEADER_LEN,
};
use ringblob_engine::{Error, Key};

use super::classify::error_offset;
use super::problem::{Kind, Problem};
use super::rofile::ReadOnlyFile;
use super::scan::{BlobScan, Row};
use super::source::{BlobRef, FileRef};

/// Largest sorted index file read (the engine's own limit).
const MAX_SORTED_FILE: u64 = 4 << 30;
/// Bytes of a page's header (CRC, count, reserved) before its first entry.
const PAGE_HEADER_LEN: usize = 8;

/// Loads and checks `blob`'s sorted index, if it has one. `Err` only for IO errors.
pub fn check_sorted(blob: &BlobRef, scan: &BlobScan) -> Result<Vec<Problem>> {
    let Some(f) = &blob.sorted else {
        return Ok(Vec::new());
    };
    let name = f.name.as_str();
    let Some(bytes) = load(f)? else {
        return Ok(Vec::new());
    };
    let bytes = match bytes {
        Ok(b) => b,
        Err(len) => {
            let reason = format!("{len} bytes, more than any sorted index ({MAX_SORTED_FILE})");
            return Ok(vec![Problem::new(Kind::BadSortedIndex, name, 0, reason)]);
        }
    };
    let (h, entries) = match decode_all(&bytes, name) {
        Ok((h, _, entries)) => (h, entries),
        Err(e) => {
            let kind = match e {
                Error::UnsupportedVersion { .. } => Kind::UnsupportedVersion,
                _ => Kind::BadSortedIndex,
            };
            return Ok(vec![Problem::new(
                kind,
                name,
                error_offset(&e),
                e.to_string(),
            )]);
        }
    };
    if let Some(p) = check_header(&h, scan, name) {
        return Ok(p.into_iter().collect());
    }
    let mut out = reserved_header_bytes(&bytes, name);
    out.extend(check_entries(&entries, scan, name, &blob.file.name));
    if scan.damage.is_empty() {
        out.extend(missing(&entries, scan, name, &blob.file.name));
    }
    Ok(out)
}

/// The header's reserved bytes (80..4096) must be zero. No reader uses them and no CRC
/// covers them, so only this check notices damage there.
fn reserved_header_bytes(bytes: &[u8], name: &str) -> Vec<Problem> {
    let reserved = bytes.get(80..ringblob_engine::format::sorted_index::SORTED_HEADER_LEN);
    match reserved.and_then(|r| r.iter().position(|&b| b != 0)) {
        Some(i) => {
            let at = 80 + i as u64;
            let reason = "a reserved header byte is not zero (the engine does not read it)";
            vec![Problem::new(Kind::BadSortedIndex, name, at, reason)]
        }
        None => Vec::new(),
    }
}

/// `Ok(None)`: deleted since the listing. `Ok(Some(Err(len)))`: too big to read.
fn load(f: &FileRef) -> Result<Option<Result<Vec<u8>, u64>>> {
    let file = match ReadOnlyFile::open(&f.path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("open {}", f.path.display())),
    };
    let bytes = file
        .read_all(MAX_SORTED_FILE)
        .with_context(|| format!("read {}", f.name))?;
    Ok(Some(bytes))
}

/// `Some` when the index names another blob or another length of it: `Some(None)` when the
/// blob's own damage already explains a length that differs, so nothing more is said.
fn check_header(h: &SortedHeader, scan: &BlobScan, name: &str) -> Option<Option<Problem>> {
    if h.blob_id != scan.blob_id {
        let reason = format!(
            "sorted index names blob {} but belongs to blob {}",
            h.blob_id, scan.blob_id
        );
        return Some(Some(Problem::new(Kind::BadSortedIndex, name, 12, reason)));
    }
    if h.covered_len == scan.len {
        return None;
    }
    if !scan.damage.is_empty() {
        return Some(None);
    }
    let reason = format!(
        "describes {} bytes of its blob, which has {}: stale (the engine rebuilds it at open)",
        h.covered_len, scan.len
    );
    Some(Some(Problem::new(Kind::BadSortedIndex, name, 16, reason)))
}

/// Sorted index file offset of entry `i`.
fn entry_pos(i: usize) -> u64 {
    let (page, slot) = (i / ENTRIES_PER_PAGE, i % ENTRIES_PER_PAGE);
    (SORTED_HEADER_LEN + page * PAGE_LEN + PAGE_HEADER_LEN + slot * INDEX_ENTRY_LEN) as u64
}

fn agrees(e: &IndexEntry, r: &Row) -> bool {
    e.key == r.key && u64::from(e.record_len) == r.len && e.flags == r.flags && e.column == r.column
}

/// The newest valid record of every (key, column): its offset.
fn newest(scan: &BlobScan) -> BTreeMap<(Key, u16), u64> {
    scan.rows
        .iter()
        .map(|r| ((r.key, r.column), r.offset))
        .collect()
}

/// Every entry against the record it names. Entries that point into a damaged region are
/// not reported again: the damage already is.
fn check_entries(entries: &[IndexEntry], scan: &BlobScan, name: &str, blob: &str) -> Vec<Problem> {
    let newest = newest(scan);
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let reason = match scan.row_at(e.offset) {
            Some(r) if !agrees(e, r) => format!(
                "entry {i} says key {}, {} bytes, flags {:#x}, column {}; the record at {blob} \
                 offset {} has key {}, {} bytes, flags {:#x}, column {}",
                e.key, e.record_len, e.flags, e.column, e.offset, r.key, r.len, r.flags, r.column
            ),
            Some(_) => match newest.get(&(e.key, e.column)) {
                Some(&at) if at != e.offset => format!(
                    "entry {i} names the record at {blob} offset {}, but the newest record of \
                     its key and column is at offset {at}",
                    e.offset
                ),
                _ => continue,
            },
            None if scan.damaged_at(e.offset) => continue,
            None => {
                let reason = format!(
                    "entry {i} names {blob} offset {}, where no record starts",
                    e.offset
                );
                let p = Problem::new(Kind::IndexEntryPointsAtNothing, name, entry_pos(i), reason);
                out.push(p.with_blob_offset(e.offset).with_key(Some(e.key)));
                continue;
            }
        };
        let p = Problem::new(Kind::IndexEntryMismatch, name, entry_pos(i), reason);
        out.push(p.with_blob_offset(e.offset).with_key(Some(e.key)));
    }
    out
}

/// Newest records the sorted index does not list (only asked of an undamaged blob, where
/// every record was read).
fn missing(entries: &[IndexEntry], scan: &BlobScan, name: &str, blob: &str) -> Vec<Problem> {
    let listed: std::collections::HashSet<u64> = entries.iter().map(|e| e.offset).collect();
    newest(scan)
        .into_iter()
        .filter(|(_, at)| !listed.contains(at))
        .map(|((key, column), at)| {
            let reason = format!(
                "{name} does not list the newest record of this key, column {column}, at \
                 offset {at}"
            );
            Problem::new(Kind::RecordMissingFromIndex, blob, at, reason).with_key(Some(key))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_positions_skip_page_headers_and_pages() {
        assert_eq!(entry_pos(0), 4096 + 8);
        assert_eq!(entry_pos(1), 4096 + 8 + 48);
        assert_eq!(entry_pos(ENTRIES_PER_PAGE), 2 * 4096 + 8);
    }
}
