//! How open checks the records of one blob and what it does with damage (docs/FORMAT.md
//! §9.2): damaged records whose key is known stay listed (their keys read as damaged), a
//! torn append past the synced watermark is cut (and saved), synced bytes are never cut,
//! and the key journal names what a destroyed region held.

use crate::blob::blob_name;
use crate::damage::{save_cut, DamageReport};
use crate::error::{Error, Result};
use crate::format::index_file::IndexEntry;
use crate::index::Loc;
use crate::io::{Device, DeviceFile};
use crate::scan::{Check, ScanItem, Scanner};

/// Whether a scan may cut a blob's tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// A torn tail is cut (saved beside the blob first), a record cut short is restored.
    Tail,
    /// The blob is damaged: it is read, never changed.
    Never,
}

/// One blob being opened.
pub struct BlobScan<'a> {
    pub device: &'a dyn Device,
    pub file: &'a dyn DeviceFile,
    pub id: u32,
    pub cut: Cut,
    /// The synced watermark, if known (see `watermark`).
    pub synced: Option<&'a crate::watermark::Synced>,
    pub damage: &'a mut DamageReport,
    /// The blob's key journal, read at the first damage whose key the blob cannot tell.
    pub journal: Option<Vec<IndexEntry>>,
}

/// Checks every record of `[start, len)` in full. Returns the entries, the blob's length
/// afterwards, and whether there was damage whose key is unknown.
///
/// - A damaged record whose header is known (intact, or one flipped bit away) is listed:
///   its key reads as damaged. If it is cut off by the end of the blob, the blob is
///   extended to the record's full length (zeros), so later appends cannot land inside it.
/// - Damage with no known header followed by valid records is skipped and counted.
/// - Bytes at the end that are no record at all (a torn append's header, garbage) are cut
///   off, saved beside the blob first unless they are all zeros.
pub fn scan_blob(
    scan: &mut BlobScan<'_>,
    start: u64,
    len: u64,
) -> Result<(Vec<IndexEntry>, u64, bool)> {
    let id = scan.id;
    let mut entries = Vec::new();
    let (mut end, mut unknown) = (len, false);
    for item in Scanner::new(scan.file, id, start, len, Check::Everything) {
        match item? {
            ScanItem::Record { offset, header } => entries.push(IndexEntry::of(offset, &header)),
            ScanItem::Damaged {
                offset,
                error,
                next,
                header: Some(h),
            } => {
                let record_end = offset + h.record_len();
                if record_end > len && !scan.was_synced(offset) {
                    tracing::warn!(blob = id, offset, key = %h.key, reason = %error, "cutting a torn append (past the synced watermark)");
                    end = scan.cut_tail(offset, end)?;
                    continue;
                }
                tracing::error!(blob = id, offset, key = %h.key, column = h.column, reason = %error, "damaged record: its key reads as damaged until written again");
                scan.damage.records += 1;
                if record_end > len {
                    end = scan.restore_record(offset, record_end)?;
                    if end < record_end {
                        continue;
                    }
                }
                entries.push(IndexEntry::of(offset, &h));
                scan.damage.found.push(Loc {
                    blob: id,
                    offset: offset as u32,
                    len: h.record_len() as u32,
                });
                match next {
                    // Bytes between the record and the next valid one: damage.
                    Some(n) if n > record_end => {
                        unknown |= scan.unknown_region(record_end, n, &mut entries);
                    }
                    None if record_end < end => {
                        let (e, u) = scan.end_tail(record_end, end, &mut entries)?;
                        (end, unknown) = (e, unknown | u);
                    }
                    _ => {}
                }
            }
            ScanItem::Damaged {
                offset,
                error,
                next: Some(n),
                header: None,
            } => {
                tracing::error!(blob = id, offset, skipped = n - offset, reason = %error, "damaged region: no record header left");
                unknown |= scan.unknown_region(offset, n, &mut entries);
            }
            ScanItem::Damaged {
                offset,
                error,
                next: None,
                header: None,
            } => {
                tracing::warn!(blob = id, offset, bytes = end - offset, reason = %error, "the blob ends in bytes that are no record");
                let (e, u) = scan.end_tail(offset, end, &mut entries)?;
                (end, unknown) = (e, unknown | u);
            }
        }
    }
    Ok((entries, end, unknown))
}

impl BlobScan<'_> {
    /// Whether the log at `offset` of this blob is known to have been synced (it lies
    /// before the watermark). With no watermark (a directory from before it existed, or a
    /// damaged one) only index files prove anything, and the tail past them is treated
    /// as unsynced, as it always was.
    fn was_synced(&self, offset: u64) -> bool {
        self.synced.is_some_and(|w| w.covers(self.id, offset))
    }

    /// Bytes from `at` to the end that are no record: cut if they lie past the synced
    /// watermark (a torn append, or garbage written after the last sync); kept and counted
    /// as damage with an unknown key if they were synced. Returns the blob's length.
    /// Returns the blob's length and whether damage with unknown keys remains.
    fn end_tail(
        &mut self,
        at: u64,
        len: u64,
        entries: &mut Vec<IndexEntry>,
    ) -> Result<(u64, bool)> {
        if self.was_synced(at) {
            tracing::error!(
                blob = self.id,
                offset = at,
                bytes = len - at,
                "synced bytes at the end of the blob are damaged: kept"
            );
            return Ok((len, self.unknown_region(at, len, entries)));
        }
        Ok((self.cut_tail(at, len)?, false))
    }

    /// Damage in `[from, to)` with no record header left: the records the key journal
    /// names there are listed (their keys read as damaged). Returns whether some of the
    /// region stays unnamed (then it is counted as damage with an unknown key).
    fn unknown_region(&mut self, from: u64, to: u64, entries: &mut Vec<IndexEntry>) -> bool {
        let (device, id) = (self.device, self.id);
        let journal = self
            .journal
            .get_or_insert_with(|| crate::journal::load(device, id));
        let mut at = from;
        for e in journal.iter() {
            let e_end = e.offset + u64::from(e.record_len);
            if e.offset < from || e_end > to {
                continue;
            }
            tracing::error!(blob = id, offset = e.offset, key = %e.key, column = e.column, "damaged record named by the key journal: its key reads as damaged until written again");
            entries.push(*e);
            self.damage.records += 1;
            self.damage.found.push(Loc {
                blob: id,
                offset: e.offset as u32,
                len: e.record_len,
            });
            if e.offset == at {
                at = e_end;
            }
        }
        let unnamed = at < to;
        if unnamed {
            tracing::error!(
                blob = id,
                offset = at,
                bytes = to - at,
                "damaged region whose key cannot be known"
            );
            self.damage.unknown_regions += 1;
        }
        unnamed
    }

    /// Cuts the blob at `at` (saving the bytes cut); returns the new length. A blob that
    /// may not be changed keeps them (and its length).
    pub fn cut_tail(&mut self, at: u64, len: u64) -> Result<u64> {
        if self.cut == Cut::Never {
            self.damage.unknown_regions += 1;
            return Ok(len);
        }
        save_cut(self.device, self.file, self.id, at, len);
        self.damage.tail_bytes_cut += len - at;
        let name = blob_name(self.id);
        self.file
            .set_len(at)
            .map_err(|e| Error::io("truncate", name.clone(), e))?;
        self.file
            .sync_data()
            .map_err(|e| Error::io("fdatasync", name, e))?;
        Ok(at)
    }

    /// Extends the blob to `record_end` so the record at `offset`, cut off by the end of the
    /// file, keeps its place (and its key reads as damaged); returns the new length. A
    /// record that cannot fit a blob is cut instead.
    fn restore_record(&mut self, offset: u64, record_end: u64) -> Result<u64> {
        let len = self
            .file
            .len()
            .map_err(|e| Error::io("stat", blob_name(self.id), e))?;
        if self.cut == Cut::Never || record_end > crate::config::MAX_BLOB_SIZE {
            return self.cut_tail(offset, len);
        }
        crate::damage::restore_len(self.file, self.id, len, record_end)
    }
}
