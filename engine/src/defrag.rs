//! Online defragmentation: sealed blobs whose garbage (superseded values, tombstones that no
//! longer hide anything) passes a threshold are rewritten by re-appending their live records,
//! verbatim, to the active blob; once those copies are durable, the old blob is removed.
//!
//! Why it is safe:
//! - a record is copied only if it is still current, decided under the writer lock
//!   ([`Inner::append_copy`]), so a concurrent overwrite or remove always stays newer;
//! - a tombstone is kept (copied) only while some older blob may still hold a value of its
//!   key, so deleted data never comes back; otherwise it is dropped;
//! - the old blob is removed only after an fdatasync covers every copy; a crash before that
//!   leaves both copies, and recovery's log order makes the newer one win;
//! - readers holding the old blob keep reading it (the file stays open after unlink); readers
//!   that looked up its location just before the switch look the key up again.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use crate::blob::{blob_name, index_name, sorted_name};
use crate::checkpoint::{load_index, scan_entries};
use crate::engine::Inner;
use crate::error::{Error, Result};
use crate::format::blob_header::BLOB_HEADER_LEN;
use crate::format::frames::unpatched;
use crate::format::index_file::IndexEntry;
use crate::format::record::{RecordHeader, FLAG_TOMBSTONE};
use crate::key::Key;
use crate::pace::Pace;
use crate::scan::{check_frames, Check};

/// Space kept free beyond what the copies need.
const FREE_SPACE_MARGIN: u64 = 64 << 20;

/// How to defragment.
#[derive(Debug, Clone, Copy)]
pub struct DefragOptions {
    /// Rewrite sealed blobs whose garbage is at least this fraction of their size.
    pub min_garbage_ratio: f64,
    /// Copy at most this many bytes per second (0: unthrottled).
    pub max_bytes_per_sec: u64,
}

/// What one defragmentation did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DefragReport {
    pub blobs_rewritten: Vec<u32>,
    /// Blobs left alone because a live record in them is damaged.
    pub blobs_skipped_damaged: Vec<u32>,
    pub records_copied: u64,
    pub bytes_copied: u64,
    pub tombstones_kept: u64,
    pub tombstones_dropped: u64,
    /// Bytes of blob files removed.
    pub bytes_reclaimed: u64,
    pub seconds: f64,
}

/// One blob's space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobUsage {
    pub id: u32,
    pub size: u64,
    /// Bytes of records that hold live values.
    pub live_bytes: u64,
    pub garbage_bytes: u64,
    /// What defragmentation would free (garbage of sealed blobs; 0 for the active one).
    pub reclaimable_bytes: u64,
    pub sealed: bool,
}

impl Inner {
    /// Space per blob: sealed blobs with sorted indexes from what their indexes counted at
    /// seal (their own garbage, and what newer blobs superseded in them); other blobs from
    /// the in-memory index's live locations.
    pub fn blob_usage(&self) -> Vec<BlobUsage> {
        let mut live = HashMap::<u32, u64>::new();
        for loc in self.keys.locations() {
            *live.entry(loc.blob).or_default() += u64::from(loc.len);
        }
        let dead = self.keys.sealed_garbage();
        let unsealed = self.unsealed_ids();
        let blobs = self.log.blobs();
        let header = BLOB_HEADER_LEN as u64;
        blobs
            .values()
            .map(|b| {
                let size = b.flushed();
                let garbage = match dead.get(&b.id) {
                    Some(d) => (*d).min(size.saturating_sub(header)),
                    None => size.saturating_sub(live.get(&b.id).copied().unwrap_or(0) + header),
                };
                let sealed = !unsealed.contains(&b.id);
                BlobUsage {
                    id: b.id,
                    size,
                    live_bytes: size.saturating_sub(garbage + header),
                    garbage_bytes: garbage,
                    reclaimable_bytes: if sealed { garbage } else { 0 },
                    sealed,
                }
            })
            .collect()
    }

    /// Rewrites every sealed blob at or over the garbage threshold.
    pub fn defrag(&self, opts: DefragOptions) -> Result<DefragReport> {
        let _running = self.upkeep.defragmenting()?;
        self.log.check_writable()?;
        let started = Instant::now();
        let candidates = self.candidates(&opts);
        self.check_free_space(candidates.iter().map(|u| u.live_bytes).sum())?;
        let mut report = DefragReport::default();
        let mut throttle = Pace::new(opts.max_bytes_per_sec);
        for u in &candidates {
            self.rewrite_blob(u, &mut report, &mut throttle)?;
        }
        report.seconds = started.elapsed().as_secs_f64();
        if !candidates.is_empty() {
            tracing::info!(?report, "defragmentation done");
        }
        Ok(report)
    }

    /// Sealed blobs at or over the garbage threshold, and small sealed blobs to merge: when
    /// two or more sealed blobs are under an eighth of `max_blob_size`, they are all
    /// rewritten, so their records gather in the active blob.
    fn candidates(&self, opts: &DefragOptions) -> Vec<BlobUsage> {
        let sealed: Vec<BlobUsage> = self
            .blob_usage()
            .into_iter()
            .filter(|u| u.sealed && u.size > BLOB_HEADER_LEN as u64)
            .collect();
        let small_size = self.config.max_blob_size / 8;
        let small = sealed.iter().filter(|u| u.size < small_size).count();
        sealed
            .into_iter()
            .filter(|u| {
                let garbage = u.garbage_bytes > 0
                    && u.garbage_bytes as f64 >= opts.min_garbage_ratio * u.size as f64;
                garbage || (small >= 2 && u.size < small_size)
            })
            .collect()
    }

    fn check_free_space(&self, need: u64) -> Result<()> {
        let available = self
            .device
            .free_space()
            .map_err(|e| Error::io("statvfs", self.device.describe(), e))?;
        match available {
            Some(available) if need + FREE_SPACE_MARGIN > available => Err(Error::NoSpace {
                need: need + FREE_SPACE_MARGIN,
                available,
            }),
            _ => Ok(()),
        }
    }

    /// Copies blob `u`'s current records forward, syncs, removes the blob.
    fn rewrite_blob(
        &self,
        u: &BlobUsage,
        report: &mut DefragReport,
        throttle: &mut Pace,
    ) -> Result<()> {
        let Some(entries) = self.sealed_records(u.id)? else {
            tracing::debug!(
                blob = u.id,
                "not defragmenting a blob whose sealing has not finished"
            );
            return Ok(());
        };
        let tombstones: HashSet<Key> = entries
            .iter()
            .filter(|e| e.flags & FLAG_TOMBSTONE != 0)
            .map(|e| e.key)
            .collect();
        let shadowed = self.keys_in_older_blobs(u.id, &tombstones)?;
        let mut buf = Vec::new();
        for e in &entries {
            let from = crate::keys::sealed_entry(u.id, e);
            let tombstone = from.tombstone;
            if tombstone && !shadowed.contains(&e.key) {
                report.tombstones_dropped += 1;
                continue;
            }
            if !tombstone && self.current_loc(&e.key, e.column)? != Some(from.loc) {
                continue; // superseded: garbage
            }
            if !self.read_checked(u.id, e, &mut buf)? {
                tracing::error!(
                    blob = u.id,
                    offset = e.offset,
                    "damaged live record: blob left in place"
                );
                report.blobs_skipped_damaged.push(u.id);
                return Ok(());
            }
            if self.append_copy(&e.key, e.column, &buf, from)? {
                report.records_copied += u64::from(!tombstone);
                report.tombstones_kept += u64::from(tombstone);
                report.bytes_copied += buf.len() as u64;
                if let Some(wait) = throttle.spent(buf.len() as u64) {
                    std::thread::sleep(wait);
                }
            } else if tombstone {
                report.tombstones_dropped += 1;
            }
        }
        self.log.sync_all()?;
        self.retire(u.id)?;
        report.blobs_rewritten.push(u.id);
        report.bytes_reclaimed += u.size;
        Ok(())
    }

    /// A sealed blob's records that can matter, in disk order: in sorted mode its sorted
    /// index (the newest record of each (key, column)), otherwise its index file. `None` while
    /// its sealing has not finished (the next run takes it).
    fn sealed_records(&self, id: u32) -> Result<Option<Vec<IndexEntry>>> {
        if self.sorted() {
            let Some(b) = self.keys.sealed_blob(id) else {
                return Ok(None);
            };
            let mut entries = b.entries()?;
            entries.sort_by_key(|e| e.offset);
            return Ok(Some(entries));
        }
        let blob = self.log.blob(id)?;
        match load_index(self.device.as_ref(), id, blob.flushed()) {
            Ok(Some(ix)) if ix.covered_len == blob.flushed() => Ok(Some(ix.entries)),
            _ => Ok(None),
        }
    }

    /// Blob `id`'s records: its index file, or a full scan.
    fn entries_of(&self, id: u32, len: u64) -> Result<Vec<IndexEntry>> {
        match load_index(self.device.as_ref(), id, len) {
            Ok(Some(ix)) if ix.covered_len == len => Ok(ix.entries),
            _ => {
                let blob = self.log.blob(id)?;
                scan_entries(
                    blob.file.as_ref(),
                    id,
                    BLOB_HEADER_LEN as u64,
                    len,
                    Check::Everything,
                )
            }
        }
    }

    /// Which of `keys` have a record in a blob older than `id`.
    fn keys_in_older_blobs(&self, id: u32, keys: &HashSet<Key>) -> Result<HashSet<Key>> {
        let mut found = HashSet::new();
        if keys.is_empty() {
            return Ok(found);
        }
        let older: Vec<(u32, u64)> = self
            .log
            .blobs()
            .range(..id)
            .map(|(_, b)| (b.id, b.flushed()))
            .collect();
        if self.sorted() {
            // Every older blob answering from its sorted index: ask the indexes.
            let from_indexes = self.keys.with_sealed(|set| {
                if !older.iter().all(|(b, _)| set.blob(*b).is_some()) {
                    return Ok(None);
                }
                let mut found = HashSet::new();
                for k in keys {
                    if !set.key_entries(k, id)?.is_empty() {
                        found.insert(*k);
                    }
                }
                Ok::<_, Error>(Some(found))
            })?;
            if let Some(found) = from_indexes {
                return Ok(found);
            }
        }
        for (old, len) in older {
            match self.entries_of(old, len) {
                Ok(entries) => {
                    found.extend(entries.iter().map(|e| e.key).filter(|k| keys.contains(k)))
                }
                // A damaged older blob might hold any of these keys: keep every tombstone.
                Err(e) if e.is_corruption() => {
                    tracing::warn!(blob = old, error = %e, "older blob is damaged: keeping its tombstones");
                    return Ok(keys.clone());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }

    /// Reads a whole record into `buf` and checks every CRC; false if it is damaged.
    pub(crate) fn read_checked(&self, id: u32, e: &IndexEntry, buf: &mut Vec<u8>) -> Result<bool> {
        self.log
            .read_bytes(id, e.offset, e.record_len as usize, buf)?;
        let checked = RecordHeader::decode(buf, id, e.offset)
            .and_then(|h| check_frames(&h, buf, id, e.offset).map(|()| h));
        let h = match checked {
            Ok(h) if h.key == e.key => h,
            _ => return Ok(false),
        };
        if h.is_patch() {
            // The copy must not need this blob: its kept frames go into it (§6.7).
            let fetch = |at, len: u32| {
                let mut frame = Vec::new();
                self.log.read_bytes(id, at, len as usize, &mut frame)?;
                Ok(frame)
            };
            match unpatched(&h, buf, (id, e.offset), fetch) {
                Ok(whole) => *buf = whole,
                Err(e) if e.is_corruption() => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Removes a blob nobody points at any more: out of the map, then its files.
    fn retire(&self, id: u32) -> Result<()> {
        self.keys.retire_sealed(id);
        self.log.forget_blob(id);
        let dev = self.device.as_ref();
        dev.remove(&blob_name(id))
            .map_err(|e| Error::io("remove", blob_name(id), e))?;
        for name in [index_name(id), sorted_name(id)] {
            if let Err(e) = dev.remove(&name) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(Error::io("remove", name, e));
                }
            }
        }
        dev.sync_dir()
            .map_err(|e| Error::io("sync dir after removing", blob_name(id), e))
    }
}
