//! Opening a data directory: blobs and index files are loaded, the active blob's tail after
//! its last checkpoint is checked record by record and a torn tail truncated, and the key
//! index is rebuilt in log order.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::blob::{blob_name, index_name, parse_name, sorted_name, Blob, FileKind};
use crate::checkpoint::{load_index, store_index};
use crate::config::{Config, IndexMode};
use crate::error::{Error, Result};
use crate::format::blob_header::{BlobHeader, BLOB_HEADER_LEN};
use crate::format::index_file::{IndexEntry, IndexFile};
use crate::format::record::FLAG_TOMBSTONE;
use crate::index::{Entry, KeyIndex, Loc};
use crate::io::{Device, DeviceFile, OpenMode};
use crate::scan::{Check, ScanItem, Scanner};
use crate::sealed::{FilterBuilder, SealedBlob, SealedSet};
use crate::sorting::write_sorted;
use crate::writer::create_blob_on;

/// What `open` found.
pub struct Recovered {
    pub blobs: BTreeMap<u32, Arc<Blob>>,
    pub index: KeyIndex,
    /// Sealed blobs with sorted indexes (sorted mode only).
    pub sealed: SealedSet,
    /// Live (key, column) pairs.
    pub live_keys: i64,
    pub live_bytes: u64,
    pub active: Arc<Blob>,
    pub active_records: u64,
}

/// Opens every blob in `device` and rebuilds the index.
pub fn recover(device: &dyn Device, config: &Config) -> Result<Recovered> {
    let sorted = config.index == IndexMode::Sorted;
    let dir = device.describe();
    let names = device
        .list()
        .map_err(|e| Error::io("list", dir.clone(), e))?;
    let mut ids = Vec::new();
    for name in &names {
        let leftover = name.ends_with(".index.tmp") || name.ends_with(".sorted.tmp");
        if name.starts_with("data-") && leftover {
            tracing::info!(file = %name, "removing leftover temporary file");
            device
                .remove(name)
                .map_err(|e| Error::io("remove", name.clone(), e))?;
        } else if let Some((id, FileKind::Blob)) = parse_name(name) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    let mut blobs = BTreeMap::new();
    let mut entries: HashMap<u32, Vec<IndexEntry>> = HashMap::new();
    let mut sealed = SealedSet::default();
    for (i, &id) in ids.iter().enumerate() {
        let is_last = i + 1 == ids.len();
        let Some((file, len)) = open_blob_file(device, id, is_last)? else {
            continue;
        };
        let end = if is_last {
            let (list, end) = recover_tail(device, file.as_ref(), id, len)?;
            entries.insert(id, list);
            end
        } else if sorted {
            open_sealed(device, &mut sealed, file.as_ref(), id, len)?
        } else {
            let (list, end) = sealed_entries(device, file.as_ref(), id, len)?;
            entries.insert(id, list);
            end
        };
        blobs.insert(id, Arc::new(Blob::new(id, file, end)));
    }
    let last_opened = ids.last().is_some_and(|id| blobs.contains_key(id));
    let active = match blobs.last_key_value() {
        Some((_, b)) if last_opened => b.clone(),
        _ => {
            // No blob yet, or the newest was half-created and removed: the blobs before it
            // were sealed, so writing continues in a new one.
            let next = ids.last().map_or(1, |id| id + 1);
            let b = create_blob_on(device, next)?;
            entries.insert(next, Vec::new());
            blobs.insert(next, b.clone());
            b
        }
    };
    if sorted {
        check_sealed(device, &mut sealed, &blobs)?;
    }
    let (index, live_bytes) = build_index(&blobs, &entries, sorted)?;
    let live_keys = if sorted {
        let active_entries = entries.get(&active.id).map(Vec::as_slice).unwrap_or(&[]);
        sealed.live_values() as i64 + memory_key_delta(&sealed, active_entries)?
    } else {
        index.len() as i64
    };
    let active_records = entries.get(&active.id).map_or(0, |e| e.len() as u64);
    tracing::info!(dir = %dir, blobs = blobs.len(), keys = index.len(), "opened");
    Ok(Recovered {
        blobs,
        index,
        sealed,
        live_keys,
        live_bytes,
        active,
        active_records,
    })
}

/// Opens one blob file and checks its header; returns it with its length. The last blob
/// may have a torn header (crash while creating it): it is dropped. Any other bad header is
/// an error: refusing to open beats silently losing a blob.
fn open_blob_file(
    device: &dyn Device,
    id: u32,
    is_last: bool,
) -> Result<Option<(Arc<dyn DeviceFile>, u64)>> {
    let name = blob_name(id);
    // Read-write even when sealed: a blob sealed just before a crash may have a torn tail
    // to truncate (rotation does not wait for the sealed blob's fdatasync).
    let file = device
        .open(&name, OpenMode::ReadWrite)
        .map_err(|e| Error::io("open", name.clone(), e))?;
    let len = file.len().map_err(|e| Error::io("stat", name.clone(), e))?;
    if len > crate::config::MAX_BLOB_SIZE {
        return Err(Error::Corrupt {
            what: "blob",
            file: name,
            offset: 0,
            reason: format!("{len} bytes is past the 4 GiB blob limit"),
        });
    }
    let mut head = [0u8; BLOB_HEADER_LEN];
    let n = crate::io::read_up_to(file.as_ref(), &mut head, 0)
        .map_err(|e| Error::io("read", name.clone(), e))?;
    match BlobHeader::decode(&head[..n], &name) {
        Ok(h) if h.blob_id == id => Ok(Some((file, len))),
        Ok(h) => Err(Error::Corrupt {
            what: "blob header",
            file: name,
            offset: 0,
            reason: format!("header names blob {}", h.blob_id),
        }),
        Err(e) if is_last && len <= BLOB_HEADER_LEN as u64 => {
            tracing::warn!(file = %name, error = %e, "removing blob left half-created by a crash");
            drop(file);
            device
                .remove(&name)
                .map_err(|e| Error::io("remove", name.clone(), e))?;
            let _ = device.remove(&index_name(id));
            let _ = device.remove(&sorted_name(id));
            device
                .sync_dir()
                .map_err(|e| Error::io("sync dir for", name, e))?;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Sorted mode: opens a sealed blob's sorted index, or rebuilds it (from the index file, or
/// a scan of the blob) when it is missing, damaged or stale. Older blobs are already in
/// `sealed`, so what the blob superseded in them is counted. Returns the blob's length.
fn open_sealed(
    device: &dyn Device,
    sealed: &mut SealedSet,
    file: &dyn DeviceFile,
    id: u32,
    len: u64,
) -> Result<u64> {
    match SealedBlob::open(device, id, len) {
        Ok(Some(b)) => {
            sealed.add(b, std::iter::empty());
            return Ok(len);
        }
        Ok(None) => tracing::info!(blob = id, "no sorted index; building it"),
        Err(e) => tracing::warn!(blob = id, error = %e, "sorted index unusable; rebuilding it"),
    }
    let (list, end) = sealed_entries(device, file, id, len)?;
    let (blob, _) = write_sorted(device, sealed, id, end, &list)?;
    sealed.add(blob, std::iter::empty());
    Ok(end)
}

/// Sorted mode: reads every page of every sealed index, so a damaged page is found now (and
/// that index rebuilt from its blob), and builds the global filter from them.
fn check_sealed(
    device: &dyn Device,
    sealed: &mut SealedSet,
    blobs: &BTreeMap<u32, Arc<Blob>>,
) -> Result<()> {
    let all = sealed.blobs();
    let mut builder = FilterBuilder::new(all.iter().map(|b| b.header().entry_count).sum());
    for b in all {
        let Err(e) = builder.add(&b) else { continue };
        if !e.is_corruption() {
            return Err(e);
        }
        tracing::warn!(blob = b.id, error = %e, "sorted index damaged; rebuilding it");
        let blob = blobs.get(&b.id).ok_or(Error::BlobRetired(b.id))?;
        let (list, end) = sealed_entries(device, blob.file.as_ref(), b.id, blob.flushed())?;
        let (rebuilt, _) = write_sorted(device, sealed, b.id, end, &list)?;
        builder.add(&rebuilt)?;
        sealed.add(rebuilt, std::iter::empty());
    }
    sealed.install_filter(builder.finish());
    Ok(())
}

/// How the active blob changes the count of live (key, column) pairs that sealed blobs give:
/// +1 for a value over nothing or a tombstone, -1 for a tombstone over a sealed value.
fn memory_key_delta(sealed: &SealedSet, entries: &[IndexEntry]) -> Result<i64> {
    let (newest, _) = crate::sorting::newest_entries(entries);
    let mut delta = 0i64;
    for e in &newest {
        let is_value = e.flags & FLAG_TOMBSTONE == 0;
        let sealed_value = sealed
            .find(&e.key, e.column, u32::MAX)?
            .is_some_and(|(_, s)| s.flags & FLAG_TOMBSTONE == 0);
        delta += i64::from(is_value) - i64::from(sealed_value);
    }
    Ok(delta)
}

/// A sealed blob's records: from its index file, or rebuilt from the blob (and the index
/// file rewritten) when that is missing or fails its checks. Returns entries and length.
fn sealed_entries(
    device: &dyn Device,
    file: &dyn DeviceFile,
    id: u32,
    len: u64,
) -> Result<(Vec<IndexEntry>, u64)> {
    match load_index(device, id, len) {
        Ok(Some(ix)) if ix.covered_len == len => return Ok((ix.entries, len)),
        Ok(Some(ix)) => tracing::warn!(
            blob = id,
            covered = ix.covered_len,
            len,
            "index file is stale; rebuilding from blob"
        ),
        Ok(None) => tracing::warn!(blob = id, "index file missing; rebuilding from blob"),
        Err(e) => tracing::warn!(blob = id, error = %e, "index file damaged; rebuilding from blob"),
    }
    let (entries, end, damaged) = scan_blob(file, id, BLOB_HEADER_LEN as u64, len)?;
    if damaged {
        tracing::error!(
            blob = id,
            "blob has damaged records; not writing an index file over them"
        );
    } else {
        let ix = IndexFile {
            blob_id: id,
            covered_len: end,
            entries: entries.clone(),
        };
        if let Err(e) = store_index(device, &ix) {
            tracing::warn!(blob = id, error = %e, "could not write rebuilt index file");
        }
    }
    Ok((entries, end))
}

/// The active blob: checkpointed records, then every record after the checkpoint checked.
fn recover_tail(
    device: &dyn Device,
    file: &dyn DeviceFile,
    id: u32,
    len: u64,
) -> Result<(Vec<IndexEntry>, u64)> {
    let (mut entries, start) = match load_index(device, id, len) {
        Ok(Some(ix)) => (ix.entries, ix.covered_len),
        Ok(None) => (Vec::new(), BLOB_HEADER_LEN as u64),
        Err(e) => {
            tracing::warn!(blob = id, error = %e, "index checkpoint damaged; scanning whole blob");
            (Vec::new(), BLOB_HEADER_LEN as u64)
        }
    };
    let (tail, end, _) = scan_blob(file, id, start, len)?;
    entries.extend(tail);
    Ok((entries, end))
}

/// Checks every record of `[start, len)` in full. A damaged tail with no valid record after
/// it is a torn append and is truncated; damage followed by valid records is corruption,
/// logged and skipped. Returns the entries, the blob's length afterwards, and whether damage
/// was skipped.
fn scan_blob(
    file: &dyn DeviceFile,
    id: u32,
    start: u64,
    len: u64,
) -> Result<(Vec<IndexEntry>, u64, bool)> {
    let mut entries = Vec::new();
    let (mut end, mut damaged) = (len, false);
    for item in Scanner::new(file, id, start, len, Check::Everything) {
        match item? {
            ScanItem::Record { offset, header } => entries.push(entry(offset, &header)),
            ScanItem::Damaged {
                offset,
                error,
                next: None,
            } => {
                tracing::warn!(blob = id, offset, dropped = len - offset, reason = %error, "truncating torn tail");
                let name = blob_name(id);
                file.set_len(offset)
                    .map_err(|e| Error::io("truncate", name.clone(), e))?;
                file.sync_data()
                    .map_err(|e| Error::io("fdatasync", name, e))?;
                end = offset;
            }
            ScanItem::Damaged {
                offset,
                error,
                next: Some(n),
            } => {
                tracing::error!(blob = id, offset, skipped = n - offset, reason = %error, "damaged record skipped");
                damaged = true;
            }
        }
    }
    Ok((entries, end, damaged))
}

fn entry(offset: u64, h: &crate::format::record::RecordHeader) -> IndexEntry {
    IndexEntry {
        key: h.key,
        offset,
        record_len: h.record_len() as u32,
        flags: h.flags,
        column: h.column,
    }
}

/// Applies every record in log order; later records win, tombstones remove. Keys whose tags
/// collide are told apart by the full keys in `entries`, without touching the disk.
fn build_index(
    blobs: &BTreeMap<u32, Arc<Blob>>,
    entries: &HashMap<u32, Vec<IndexEntry>>,
    keep_tombstones: bool,
) -> Result<(KeyIndex, u64)> {
    let total: usize = entries.values().map(Vec::len).sum();
    let mut index = KeyIndex::with_capacity(total);
    let mut live = 0u64;
    let key_at = |loc: Loc| {
        entries.get(&loc.blob).and_then(|list| {
            let i = list
                .binary_search_by_key(&u64::from(loc.offset), |e| e.offset)
                .ok()?;
            list.get(i).map(|e| e.key)
        })
    };
    for id in blobs.keys() {
        for e in entries.get(id).map(Vec::as_slice).unwrap_or(&[]) {
            let tag = index.tag(&e.key);
            let same = |l: Loc| Ok(key_at(l) == Some(e.key));
            let entry = Entry {
                loc: Loc {
                    blob: *id,
                    offset: e.offset as u32,
                    len: e.record_len,
                },
                column: e.column,
                tombstone: e.flags & FLAG_TOMBSTONE != 0,
            };
            let old = if entry.tombstone && !keep_tombstones {
                index.remove(tag, e.column, same)?
            } else {
                index.upsert(tag, e.column, entry, same)?
            };
            if !entry.tombstone {
                live += u64::from(e.record_len);
            }
            if let Some(o) = old.filter(|o| !o.tombstone) {
                live -= u64::from(o.loc.len);
            }
        }
    }
    Ok((index, live))
}
