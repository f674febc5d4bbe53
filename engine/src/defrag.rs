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

/// Space asked for beyond the copies themselves, at most (and never more than the copies
/// again): their blob's index files and the next blob's header.
const FREE_SPACE_MARGIN: u64 = 1 << 20;

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
    /// When nothing was rewritten, why (e.g. no blob's garbage reaches the threshold).
    pub note: Option<String>,
}

/// One blob's space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobUsage {
    pub id: u32,
    pub size: u64,
    /// Bytes of records that hold live values.
    pub live_bytes: u64,
    pub garbage_bytes: u64,
    /// What defragmentation frees once the blob's garbage reaches the threshold: its garbage
    /// (the active blob's too: a defragmentation seals it first).
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
                    reclaimable_bytes: garbage,
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
        self.seal_active_if_wasteful(&opts)?;
        let candidates = self.candidates(&opts);
        let copies: u64 = candidates.iter().map(|u| u.live_bytes).sum();
        if !candidates.is_empty() {
            self.check_free_space(copies)?;
        }
        let mut report = DefragReport::default();
        let mut throttle = Pace::new(opts.max_bytes_per_sec);
        for u in &candidates {
            self.rewrite_blob(u, &mut report, &mut throttle)?;
        }
        report.seconds = started.elapsed().as_secs_f64();
        if report.blobs_rewritten.is_empty() {
            report.note = Some(self.why_nothing(&opts, &candidates, &report));
        } else {
            tracing::info!(?report, "defragmentation done");
        }
        Ok(report)
    }

    /// Seals the active blob when its garbage reaches the threshold, so that it is
    /// rewritten like any sealed blob (garbage does not wait for the blob to fill up).
    fn seal_active_if_wasteful(&self, opts: &DefragOptions) -> Result<()> {
        let active = self.log.writer().id();
        let wasteful = self
            .blob_usage()
            .iter()
            .any(|u| u.id == active && over_threshold(u, opts.min_garbage_ratio));
        if wasteful {
            self.rotate_now()?;
        }
        Ok(())
    }

    /// Why a defragmentation rewrote nothing, in words for the operator.
    fn why_nothing(
        &self,
        opts: &DefragOptions,
        candidates: &[BlobUsage],
        r: &DefragReport,
    ) -> String {
        if !r.blobs_skipped_damaged.is_empty() {
            return format!(
                "blobs {:?} hold damaged live records and were left in place (blob-inspect \
                 verify shows them)",
                r.blobs_skipped_damaged
            );
        }
        if !candidates.is_empty() {
            return "the blobs to rewrite are still being sealed; the next run takes them".into();
        }
        let usage = self.blob_usage();
        let worst = usage
            .iter()
            .filter(|u| u.size > BLOB_HEADER_LEN as u64)
            .max_by(|a, b| ratio(a).total_cmp(&ratio(b)));
        match worst {
            Some(u) if u.garbage_bytes > 0 => format!(
                "no blob's garbage reaches the threshold ({:.0}% of its size): the most is blob \
                 {} with {} bytes ({:.0}%)",
                opts.min_garbage_ratio * 100.0,
                u.id,
                u.garbage_bytes,
                ratio(u) * 100.0
            ),
            _ => "nothing to reclaim: no blob holds garbage".into(),
        }
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
                over_threshold(u, opts.min_garbage_ratio) || (small >= 2 && u.size < small_size)
            })
            .collect()
    }

    /// Asks the device for the bytes the copies take (and a small margin); only called when
    /// there is something to copy, so a nearly full disk can always be defragmented.
    fn check_free_space(&self, need: u64) -> Result<()> {
        let available = self
            .device
            .free_space()
            .map_err(|e| Error::io("statvfs", self.device.describe(), e))?;
        let need = need + need.min(FREE_SPACE_MARGIN);
        match available {
            Some(available) if need > available => Err(Error::NoSpace { need, available }),
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
    pub(crate) fn entries_of(&self, id: u32, len: u64) -> Result<Vec<IndexEntry>> {
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
        self.known_damage.forget_blob(id);
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

/// The fraction of a blob that is garbage.
fn ratio(u: &BlobUsage) -> f64 {
    u.garbage_bytes as f64 / (u.size.max(1)) as f64
}

/// Whether a blob's garbage reaches `min_ratio` of its size (and is not nothing).
fn over_threshold(u: &BlobUsage, min_ratio: f64) -> bool {
    u.garbage_bytes > 0 && u.garbage_bytes as f64 >= min_ratio * u.size as f64
}
