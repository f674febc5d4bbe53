//! Building a sealed blob's sorted index: the newest record of every (key, column), the
//! blob's own garbage, and what its records superseded in older sealed blobs; writing it
//! durably; and moving the blob's keys out of memory once the index answers for them.

use std::collections::BTreeMap;

use crate::blob::sorted_name;
use crate::checkpoint::store_file;
use crate::engine::Inner;
use crate::error::Result;
use crate::format::index_file::IndexEntry;
use crate::format::record::FLAG_TOMBSTONE;
use crate::format::sorted_index::{encode_sorted, SortedSource, Superseded};
use crate::io::Device;
use crate::sealed::{build_locator, SealedBlob, SealedSet};

/// The newest entry of every (key, column) of a blob's file-ordered entries, sorted, and the
/// bytes of the rest plus every tombstone (the blob's own garbage).
pub fn newest_entries(file_order: &[IndexEntry]) -> (Vec<IndexEntry>, u64) {
    let mut sorted: Vec<IndexEntry> = file_order.to_vec();
    sorted.sort_by_key(|e| (e.key, e.column, e.offset));
    let mut newest: Vec<IndexEntry> = Vec::with_capacity(sorted.len());
    for e in sorted {
        match newest.last_mut() {
            Some(last) if (last.key, last.column) == (e.key, e.column) => *last = e,
            _ => newest.push(e),
        }
    }
    let total: u64 = file_order.iter().map(|e| u64::from(e.record_len)).sum();
    let live: u64 = newest
        .iter()
        .filter(|e| e.flags & FLAG_TOMBSTONE == 0)
        .map(|e| u64::from(e.record_len))
        .sum();
    (newest, total - live)
}

/// What `newest` supersedes in sealed blobs older than `id`.
fn superseded_in_older(set: &SealedSet, id: u32, newest: &[IndexEntry]) -> Result<Vec<Superseded>> {
    let mut rows: BTreeMap<u32, Superseded> = BTreeMap::new();
    for e in newest {
        // Only figures for garbage accounting: a damaged older sorted index (rebuilt when
        // the engine opens or reads it) costs its rows here, never the new index.
        let found = match set.find(&e.key, e.column, id) {
            Err(err) if err.is_corruption() => {
                tracing::warn!(error = %err, "older sorted index damaged; its superseded figures are left out");
                continue;
            }
            other => other?,
        };
        if let Some((blob, old)) = found {
            let row = rows.entry(blob).or_insert(Superseded {
                blob,
                values: 0,
                bytes: 0,
            });
            row.bytes += u64::from(old.record_len);
            row.values += u64::from(old.flags & FLAG_TOMBSTONE == 0);
        }
    }
    Ok(rows.into_values().collect())
}

/// Writes blob `id`'s sorted index (durably) from its file-ordered entries, and opens it.
/// Returns the opened index and the entries it lists.
pub fn write_sorted(
    device: &dyn Device,
    set: &SealedSet,
    id: u32,
    covered_len: u64,
    file_order: &[IndexEntry],
) -> Result<(SealedBlob, Vec<IndexEntry>)> {
    let (newest, self_dead_bytes) = newest_entries(file_order);
    let superseded = superseded_in_older(set, id, &newest)?;
    let bytes = encode_sorted(&SortedSource {
        blob_id: id,
        covered_len,
        entries: &newest,
        self_dead_bytes,
        superseded: &superseded,
    });
    store_file(device, &sorted_name(id), &bytes)?;
    let opened = SealedBlob::open(device, id, covered_len)?.ok_or_else(|| {
        crate::Error::io(
            "reopen",
            sorted_name(id),
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )
    })?;
    Ok((opened, newest))
}

impl Inner {
    /// Sorted mode, at seal (seal lock held): writes blob `id`'s sorted index, adds it to the
    /// sealed set, then drops the blob's keys from memory. Readers that miss in memory find
    /// them in the set, which already has them.
    pub fn install_sorted(
        &self,
        id: u32,
        covered_len: u64,
        file_order: &[IndexEntry],
    ) -> Result<()> {
        let (blob, newest) = self.keys.with_sealed(|set| {
            write_sorted(self.device.as_ref(), set, id, covered_len, file_order)
        })?;
        self.keys.install_sealed(blob, &newest);
        Ok(())
    }

    /// [`refresh_locator`](Self::refresh_locator), a failure logged: the locator there is
    /// (or, without one, every sealed blob) keeps answering.
    pub fn refresh_locator_or_warn(&self) {
        if let Err(e) = self.refresh_locator() {
            tracing::warn!(error = %e, "could not build the key locator; the one there is (or, without one, every sealed blob) answers");
        }
    }

    /// Builds the key locator over every sealed key when it is missing or should be rebuilt
    /// (past six tables, or more stale entries than live). Holds the seal lock, so no blob
    /// joins while it is built; lookups use the old one meanwhile.
    pub fn refresh_locator(&self) -> Result<()> {
        if !self.keys.locator_needs_rebuild() {
            return Ok(());
        }
        let _sealing = self.upkeep.sealing();
        let blobs = self.keys.sealed_blobs();
        let started = std::time::Instant::now();
        let built = build_locator(&blobs)?;
        self.keys.install_locator(built);
        tracing::debug!(
            blobs = blobs.len(),
            ms = started.elapsed().as_millis() as u64,
            "key locator built"
        );
        Ok(())
    }
}
