//! Opening a data directory: blobs and index files are loaded, the active blob's tail after
//! its last checkpoint is checked record by record and a torn tail truncated, and the key
//! index is rebuilt in log order.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::blob::{blob_name, index_name, parse_name, sorted_name, Blob, FileKind};
use crate::checkpoint::{load_index, store_index};
use crate::config::{Config, IndexMode};
use crate::damage::{proven_len, restore_len, DamageReport};
use crate::error::{Error, Result};
use crate::format::blob_header::{BlobHeader, BLOB_HEADER_LEN};
use crate::format::index_file::{IndexEntry, IndexFile};
use crate::format::record::FLAG_TOMBSTONE;
use crate::index::{Entry, KeyIndex, Loc};
use crate::io::{Device, DeviceFile, OpenMode};
use crate::journal::JournalWriter;
use crate::log::create_blob_on;
use crate::recovery_scan::{scan_blob, BlobScan, Cut};
use crate::sealed::{LocatorBuilder, SealedBlob, SealedSet};
use crate::sorting::write_sorted;

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
    /// What was found damaged.
    pub damage: DamageReport,
    /// The active blob's key journal.
    pub journal: JournalWriter,
}

/// Opens every blob in `device` and rebuilds the index.
pub fn recover(device: &dyn Device, config: &Config) -> Result<Recovered> {
    let sorted = config.index == IndexMode::Sorted;
    let dir = device.describe();
    let names = device
        .list()
        .map_err(|e| Error::io("list", dir.clone(), e))?;
    let ids = blob_ids(device, &names)?;
    let synced = crate::watermark::load(device);
    let mut damage = DamageReport::default();
    let mut blobs = BTreeMap::new();
    let mut entries: HashMap<u32, Vec<IndexEntry>> = HashMap::new();
    let mut sealed = SealedSet::default();
    let mut journal = None;
    for (i, &id) in ids.iter().enumerate() {
        let is_last = i + 1 == ids.len();
        let Some(opened) = open_blob_file(device, id, is_last, synced.as_ref())? else {
            continue;
        };
        let (file, len) = (opened.file, opened.len);
        damage.bytes_lost += opened.lost;
        let cut = if opened.damaged.is_some() {
            damage.blobs.push(id);
            Cut::Never
        } else {
            Cut::Tail
        };
        let mut scan = BlobScan {
            device,
            file: file.as_ref(),
            id,
            cut,
            synced: synced.as_ref(),
            damage: &mut damage,
            journal: None,
        };
        let end = if is_last && cut == Cut::Tail {
            let (list, end, unknown, covered) = recover_tail(&mut scan, len)?;
            journal = Some(if covered {
                // The checkpoint on disk already names every record: nothing to rewrite.
                JournalWriter::create(device, id)
            } else {
                start_journal(device, id, &list, end, unknown)
            });
            entries.insert(id, list);
            end
        } else if sorted {
            open_sealed(&mut scan, &mut sealed, len)?
        } else {
            let (list, end) = sealed_entries(&mut scan, len)?;
            entries.insert(id, list);
            end
        };
        let blob = match opened.damaged {
            Some(why) => Blob::damaged(id, file, end, why),
            None => Blob::new(id, file, end),
        };
        blobs.insert(id, Arc::new(blob));
    }
    // The newest blob takes writes unless it was half-created (and removed) or is damaged.
    let writable = |id: &u32| {
        blobs
            .get(id)
            .is_some_and(|b: &Arc<Blob>| b.damage().is_none())
    };
    let last_opened = ids.last().is_some_and(writable);
    let active = match blobs.last_key_value() {
        Some((_, b)) if last_opened => b.clone(),
        _ => {
            // No blob yet, or the newest was half-created and removed, or is damaged: the
            // blobs before it were sealed, so writing continues in a new one.
            let next = ids.last().map_or(1, |id| id + 1);
            let b = create_blob_on(device, next)?;
            entries.insert(next, Vec::new());
            blobs.insert(next, b.clone());
            journal = Some(JournalWriter::create(device, next));
            b
        }
    };
    let journal = journal.unwrap_or_else(|| JournalWriter::create(device, active.id));
    if sorted {
        check_sealed(device, &mut sealed, &blobs, &mut damage)?;
    }
    let (index, live_bytes) = build_index(&blobs, &entries, sorted)?;
    let live_keys = if sorted {
        let active_entries = entries.get(&active.id).map(Vec::as_slice).unwrap_or(&[]);
        sealed.live_values() as i64 + memory_key_delta(&sealed, &index, active.id, active_entries)?
    } else {
        index.len() as i64
    };
    let active_records = entries.get(&active.id).map_or(0, |e| e.len() as u64);
    tracing::info!(dir = %dir, blobs = blobs.len(), keys = index.len(), "opened");
    if !damage.is_empty() {
        tracing::error!(dir = %dir, ?damage, "opened with damage: keys whose newest record is damaged read as damaged until written again");
    }
    Ok(Recovered {
        blobs,
        index,
        sealed,
        live_keys,
        live_bytes,
        active,
        active_records,
        damage,
        journal,
    })
}

/// The active blob's key journal after opening. When every record is known, a checkpoint
/// index file is written (so the next open need not scan, and names every record) and the
/// journal starts empty; otherwise the journal keeps what it named up to `end`.
fn start_journal(
    device: &dyn Device,
    id: u32,
    entries: &[IndexEntry],
    end: u64,
    unknown: bool,
) -> JournalWriter {
    if !unknown {
        let ix = IndexFile {
            blob_id: id,
            covered_len: end,
            entries: entries.to_vec(),
        };
        match store_index(device, &ix) {
            Ok(()) => return JournalWriter::create(device, id),
            Err(e) => tracing::warn!(blob = id, error = %e, "could not write a checkpoint at open"),
        }
    }
    let kept: Vec<IndexEntry> = crate::journal::load(device, id)
        .into_iter()
        .filter(|e| e.offset + u64::from(e.record_len) <= end)
        .collect();
    JournalWriter::resume(device, id, &kept)
}

/// The ids of the blob files in `names`, ascending. Temporary files left by a crash are
/// removed, and so are index files and key journals whose blob does not exist (a defragmentation that
/// crashed between writing a new blob's index and the blob, or after retiring the blob).
fn blob_ids(device: &dyn Device, names: &[String]) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    let mut indexes = Vec::new();
    for name in names {
        let leftover = name.ends_with(".index.tmp") || name.ends_with(".sorted.tmp");
        if name.starts_with("data-") && leftover {
            tracing::info!(file = %name, "removing leftover temporary file");
            remove_file(device, name)?;
            continue;
        }
        match parse_name(name) {
            Some((id, FileKind::Blob)) => ids.push(id),
            Some((id, FileKind::Index | FileKind::Sorted)) => indexes.push((id, name)),
            None => {
                let journal_of = name
                    .strip_prefix("data-")
                    .and_then(|n| n.strip_suffix(".journal"))
                    .and_then(|id| id.parse::<u32>().ok())
                    .filter(|&id| crate::journal::journal_name(id) == *name);
                if let Some(id) = journal_of {
                    indexes.push((id, name));
                }
            }
        }
    }
    ids.sort_unstable();
    for (id, name) in indexes {
        if ids.binary_search(&id).is_err() {
            tracing::info!(file = %name, "removing index file of a blob that does not exist");
            remove_file(device, name)?;
        }
    }
    Ok(ids)
}

fn remove_file(device: &dyn Device, name: &str) -> Result<()> {
    device
        .remove(name)
        .map_err(|e| Error::io("remove", name.to_string(), e))
}

/// A blob file opened: its length (restored to what its indexes prove), and why its records
/// are not served when its header is damaged.
struct OpenedBlob {
    file: Arc<dyn DeviceFile>,
    len: u64,
    /// Bytes the blob was extended by to reach its proven length.
    lost: u64,
    damaged: Option<String>,
}

/// Opens one blob file and checks its header. The last blob may have a torn header (crash
/// while creating it): it is dropped. Any other bad header marks the blob damaged: it is
/// opened (its records are known from its index files or a scan, and read as damaged)
/// and everything else is served. A blob shorter than its index files prove is extended
/// back to that length (see [`restore_len`]).
fn open_blob_file(
    device: &dyn Device,
    id: u32,
    is_last: bool,
    synced: Option<&crate::watermark::Synced>,
) -> Result<Option<OpenedBlob>> {
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
    let damaged = match BlobHeader::decode(&head[..n], &name) {
        Ok(h) if h.blob_id == id => None,
        Ok(h) => Some(format!("its header names blob {}", h.blob_id)),
        Err(e) if is_last && len <= BLOB_HEADER_LEN as u64 => {
            tracing::warn!(file = %name, error = %e, "removing blob left half-created by a crash");
            drop(file);
            remove_file(device, &name)?;
            let _ = device.remove(&index_name(id));
            let _ = device.remove(&sorted_name(id));
            device
                .sync_dir()
                .map_err(|e| Error::io("sync dir for", name, e))?;
            return Ok(None);
        }
        // A blob of a newer format is not damage: refusing beats misreading it.
        Err(e @ Error::UnsupportedVersion { .. }) => return Err(e),
        Err(e) if e.is_corruption() => Some(format!("its header is damaged: {e}")),
        Err(e) => return Err(e),
    };
    if let Some(why) = &damaged {
        tracing::error!(file = %name, reason = %why, "damaged blob: its records read as damaged; everything else is served");
    }
    let watermark = synced.map_or(0, |w| w.proven_len(id));
    let proven = proven_len(device, id).max(watermark);
    let restored = restore_len(file.as_ref(), id, len, proven)?;
    Ok(Some(OpenedBlob {
        file,
        len: restored,
        lost: restored - len,
        damaged,
    }))
}

/// Sorted mode: opens a sealed blob's sorted index, or rebuilds it (from the index file, or
/// a scan of the blob) when it is missing, damaged or stale. Older blobs are already in
/// `sealed`, so what the blob superseded in them is counted. Returns the blob's length.
fn open_sealed(scan: &mut BlobScan<'_>, sealed: &mut SealedSet, len: u64) -> Result<u64> {
    let id = scan.id;
    match SealedBlob::open(scan.device, id, len) {
        Ok(Some(b)) => {
            sealed.add(b, std::iter::empty());
            return Ok(len);
        }
        Ok(None) => tracing::info!(blob = id, "no sorted index; building it"),
        Err(e) => tracing::warn!(blob = id, error = %e, "sorted index unusable; rebuilding it"),
    }
    // Damaged records with known keys are listed, so they stay their keys' newest records;
    // damage with unknown keys was reported by the scan (only this once: it held nothing
    // the sorted index could name).
    let (list, end) = sealed_entries(scan, len)?;
    let (blob, _) = write_sorted(scan.device, sealed, id, end, &list)?;
    sealed.add(blob, std::iter::empty());
    Ok(end)
}

/// Sorted mode: reads every page of every sealed index, so a damaged page is found now (and
/// that index rebuilt from its blob), and builds the key locator from them.
fn check_sealed(
    device: &dyn Device,
    sealed: &mut SealedSet,
    blobs: &BTreeMap<u32, Arc<Blob>>,
    damage: &mut DamageReport,
) -> Result<()> {
    let all = sealed.blobs();
    let mut builder = LocatorBuilder::new(all.iter().map(|b| b.header().entry_count).sum());
    for b in all {
        let Err(e) = builder.add(&b) else { continue };
        if !e.is_corruption() {
            return Err(e);
        }
        tracing::warn!(blob = b.id, error = %e, "sorted index damaged; rebuilding it");
        let blob = blobs.get(&b.id).ok_or(Error::BlobRetired(b.id))?;
        let mut scan = BlobScan {
            device,
            file: blob.file.as_ref(),
            id: b.id,
            // The blob's length was settled when it was opened.
            cut: Cut::Never,
            synced: None,
            damage,
            journal: None,
        };
        let (list, end) = sealed_entries(&mut scan, blob.flushed())?;
        let (rebuilt, _) = write_sorted(device, sealed, b.id, end, &list)?;
        builder.add(&rebuilt)?;
        sealed.add(rebuilt, std::iter::empty());
    }
    sealed.install_locator(builder.finish());
    Ok(())
}

/// How the active blob changes the count of live (key, column) pairs that sealed blobs give:
/// +1 for a value over nothing or a tombstone, -1 for a tombstone over a sealed value —
/// that is, the active blob's newest values (`index` holds the newest record of each
/// (key, column) of the active blob, tombstones kept: one pass over the table) less its
/// newest records whose (key, column) has a value in a sealed blob. Only entries the sealed
/// blobs may hold are looked up, and only those probe the index for being the newest
/// (sorting every entry to find the newest took half of a reopen).
fn memory_key_delta(
    sealed: &SealedSet,
    index: &KeyIndex,
    active: u32,
    entries: &[IndexEntry],
) -> Result<i64> {
    let values = (index.len() - index.tombstones()) as i64;
    if sealed.is_empty() {
        return Ok(values);
    }
    let mut over_sealed_values = 0i64;
    for e in entries {
        let sealed_value = sealed
            .find(&e.key, e.column, u32::MAX)?
            .is_some_and(|(_, s)| s.flags & FLAG_TOMBSTONE == 0);
        let at = |c: &Entry| c.loc.blob == active && u64::from(c.loc.offset) == e.offset;
        let newest = || index.candidates(index.tag(&e.key), e.column).iter().any(at);
        if sealed_value && newest() {
            over_sealed_values += 1;
        }
    }
    Ok(values - over_sealed_values)
}

/// A sealed blob's records: from its index file, or rebuilt from the blob (and the index
/// file rewritten, unless the blob has damage whose key is unknown, so the next open
/// finds and reports it again) when that is missing or fails its checks. Returns entries
/// and length.
fn sealed_entries(scan: &mut BlobScan<'_>, len: u64) -> Result<(Vec<IndexEntry>, u64)> {
    let id = scan.id;
    match load_index(scan.device, id, len) {
        Ok(Some(ix)) if ix.covered_len == len => {
            crate::journal::remove(scan.device, id);
            return Ok((ix.entries, len));
        }
        Ok(Some(ix)) => tracing::warn!(
            blob = id,
            covered = ix.covered_len,
            len,
            "index file is stale; rebuilding from blob"
        ),
        Ok(None) => tracing::warn!(blob = id, "index file missing; rebuilding from blob"),
        Err(e) => tracing::warn!(blob = id, error = %e, "index file damaged; rebuilding from blob"),
    }
    let (entries, end, unknown) = scan_blob(scan, BLOB_HEADER_LEN as u64, len)?;
    if unknown || scan.cut == Cut::Never {
        tracing::error!(
            blob = id,
            "blob has damage; not writing an index file over it"
        );
    } else {
        let ix = IndexFile {
            blob_id: id,
            covered_len: end,
            entries: entries.clone(),
        };
        match store_index(scan.device, &ix) {
            Ok(()) => crate::journal::remove(scan.device, id),
            Err(e) => tracing::warn!(blob = id, error = %e, "could not write rebuilt index file"),
        }
    }
    Ok((entries, end))
}

/// The active blob: checkpointed records, then every record after the checkpoint checked.
/// The active blob's records: its checkpoint index file, then a scan of what follows it.
/// Returns them, where the blob ends, whether a record's key is unknown, and whether the
/// checkpoint already covered the whole blob (then it need not be written again).
fn recover_tail(scan: &mut BlobScan<'_>, len: u64) -> Result<(Vec<IndexEntry>, u64, bool, bool)> {
    let id = scan.id;
    let (mut entries, start, checkpoint) = match load_index(scan.device, id, len) {
        Ok(Some(ix)) => (ix.entries, ix.covered_len, true),
        Ok(None) => (Vec::new(), BLOB_HEADER_LEN as u64, false),
        Err(e) => {
            tracing::warn!(blob = id, error = %e, "index checkpoint damaged; scanning whole blob");
            (Vec::new(), BLOB_HEADER_LEN as u64, false)
        }
    };
    let (tail, end, unknown) = scan_blob(scan, start, len)?;
    let covered = checkpoint && tail.is_empty() && end == start && !unknown;
    entries.extend(tail);
    Ok((entries, end, unknown, covered))
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
