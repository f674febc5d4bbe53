//! The log room: the blob files, the active blob with its write buffer and key journal,
//! rotation, syncing (group commit and the synced watermark) and the poison that stops
//! writes after a failed write or sync. Its locks are the writer lock (rank `Writer`) and
//! the blob map (rank `Blobs`); see the lock-order table in `engine`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard, RwLock};

use crate::blob::{blob_name, Blob};
use crate::commit::{GroupCommit, LogPos};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::format::blob_header::{BlobHeader, BLOB_HEADER_LEN};
use crate::format::index_file::IndexEntry;
use crate::io::{Device, OpenMode};
use crate::journal::JournalWriter;
use crate::lock_order::{Held, Rank, Ranked};
use crate::record_cache::{Lookup, RecordCache, RecordCacheFigures};
use crate::watermark::Watermark;

/// The first `len` bytes of `buf`, grown to hold them (never shrunk, never zeroed again).
fn front(buf: &mut Vec<u8>, len: usize) -> &mut [u8] {
    if buf.len() < len {
        buf.resize(len, 0);
    }
    &mut buf[..len]
}

/// The writer lock, held: the active blob, ready to append to.
pub(crate) type Writer<'a> = Held<MutexGuard<'a, Active>>;

/// The blob being appended to, and the bytes not yet written to it.
pub struct Active {
    blob: Arc<Blob>,
    buf: Vec<u8>,
    records: u64,
    /// Sealed blobs whose last bytes may not be durable yet: every sync covers them first.
    unsynced: Vec<Arc<Blob>>,
    /// Blobs rotated out whose index file is not written yet, with their final lengths:
    /// the synced watermark carries them (see `watermark`).
    unindexed: BTreeMap<u32, u64>,
    /// The active blob's key journal (see `journal`).
    journal: Option<JournalWriter>,
}

impl Active {
    pub fn new(blob: Arc<Blob>, records: u64) -> Self {
        Active {
            blob,
            buf: Vec::new(),
            records,
            unsynced: Vec::new(),
            unindexed: BTreeMap::new(),
            journal: None,
        }
    }

    /// Starts with the active blob's key journal.
    pub fn with_journal(mut self, journal: JournalWriter) -> Self {
        self.journal = Some(journal);
        self
    }

    /// The active blob's id.
    #[inline]
    pub fn id(&self) -> u32 {
        self.blob.id
    }

    /// The active blob.
    pub fn blob(&self) -> &Arc<Blob> {
        &self.blob
    }

    /// Logical end of the blob: written bytes plus buffered ones.
    #[inline]
    pub fn end(&self) -> u64 {
        self.blob.flushed() + self.buf.len() as u64
    }

    /// The position a write appended now must wait for to be durable.
    #[inline]
    pub fn pos(&self) -> LogPos {
        (self.blob.id, self.end())
    }

    pub fn buffered(&self) -> u64 {
        self.buf.len() as u64
    }

    /// Whether the blob holds any record.
    #[inline]
    pub fn has_records(&self) -> bool {
        self.end() > BLOB_HEADER_LEN as u64
    }

    /// Bytes at `offset..offset+len` of the active blob if they are still in the buffer.
    #[inline]
    pub fn buffered_bytes(&self, blob: u32, offset: u64, len: usize) -> Option<&[u8]> {
        let flushed = self.blob.flushed();
        if blob != self.blob.id || offset < flushed {
            return None;
        }
        let from = (offset - flushed) as usize;
        self.buf.get(from..from.checked_add(len)?)
    }

    /// Counts a record just appended, and lists it in the key journal if it went into the
    /// active blob.
    #[inline]
    pub fn note_record(&mut self, blob: u32, entry: &IndexEntry) {
        if let Some(j) = self.journal.as_mut().filter(|j| j.blob() == blob) {
            j.note(entry);
        }
        self.records += 1;
    }

    /// Ids of blobs rotated out whose last bytes may not be synced yet.
    pub fn unsynced_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.unsynced.iter().map(|b| b.id)
    }
}

/// When the active blob is full.
#[derive(Debug, Clone, Copy)]
struct Limits {
    write_buffer_size: usize,
    max_blob_records: u64,
    max_blob_size: u64,
}

/// The log room.
pub(crate) struct Log {
    device: Arc<dyn Device>,
    limits: Limits,
    active: Ranked<Mutex<Active>>,
    blobs: Ranked<RwLock<BTreeMap<u32, Arc<Blob>>>>,
    commit: GroupCommit,
    watermark: Watermark,
    poison: Ranked<Mutex<Option<String>>>,
    poisoned: AtomicBool,
    records_written: AtomicU64,
    syncs: AtomicU64,
    /// Small records' bytes, by place (`record_cache`).
    cache: RecordCache,
}

impl Log {
    /// The log as recovery left it: `active` synced up to its end.
    pub fn open(
        device: Arc<dyn Device>,
        config: &Config,
        blobs: BTreeMap<u32, Arc<Blob>>,
        active: Active,
    ) -> Log {
        let synced = (active.blob.id, active.blob.flushed());
        let watermark = Watermark::open(device.as_ref(), synced);
        let log = Log {
            device,
            limits: Limits {
                write_buffer_size: config.write_buffer_size,
                max_blob_records: config.max_blob_records,
                max_blob_size: config.max_blob_size,
            },
            active: Ranked::mutex(Rank::Writer, active),
            blobs: Ranked::rw(Rank::Blobs, blobs),
            commit: GroupCommit::default(),
            watermark,
            poison: Ranked::mutex(Rank::Leaf, None),
            poisoned: AtomicBool::new(false),
            records_written: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            cache: RecordCache::new(config.record_cache_bytes),
        };
        log.commit.mark_synced(synced);
        log
    }

    /// Takes the writer lock.
    #[inline]
    pub fn writer(&self) -> Writer<'_> {
        self.active.lock()
    }

    /// Where the log ends now (buffered bytes included).
    pub fn end(&self) -> LogPos {
        self.writer().pos()
    }

    /// The active blob's id and its buffered bytes.
    pub fn active_figures(&self) -> (u32, u64) {
        let a = self.writer();
        (a.blob.id, a.buffered())
    }

    /// The blob with this id.
    #[inline]
    pub fn blob(&self, id: u32) -> Result<Arc<Blob>> {
        self.blobs
            .read()
            .get(&id)
            .cloned()
            .ok_or(Error::BlobRetired(id))
    }

    /// Every open blob, by id.
    pub fn blobs(&self) -> BTreeMap<u32, Arc<Blob>> {
        self.blobs.read().clone()
    }

    /// Bytes written to blob files, and how many there are.
    pub fn disk_figures(&self) -> (u64, u64) {
        let blobs = self.blobs.read();
        (
            blobs.values().map(|b| b.flushed()).sum(),
            blobs.len() as u64,
        )
    }

    /// Forgets a retired blob (its files are removed by the caller).
    pub fn forget_blob(&self, id: u32) {
        self.blobs.write().remove(&id);
        self.cache.forget_blob(id);
    }

    /// What the record cache holds and has answered.
    pub fn cache_figures(&self) -> RecordCacheFigures {
        self.cache.figures()
    }

    /// Refuses writes from now on. A failed write or fdatasync leaves the file in a state we
    /// cannot know: after a failed fsync Linux may drop the dirty pages and clear the error,
    /// so a retry could "succeed" over lost data. Only a reopen, which rescans the tail from
    /// what is really on disk, makes writing safe again.
    pub fn poison(&self, why: String) {
        tracing::error!(reason = %why, "engine poisoned: refusing writes until reopened");
        let mut p = self.poison.lock();
        if p.is_none() {
            *p = Some(why);
        }
        self.poisoned.store(true, Ordering::SeqCst);
    }

    #[inline]
    pub fn check_writable(&self) -> Result<()> {
        if self.is_poisoned() {
            let why = self.poison.lock().clone().unwrap_or_default();
            return Err(Error::Poisoned(why));
        }
        Ok(())
    }

    #[inline]
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::SeqCst)
    }

    /// Why writes are refused, if they are.
    pub fn poison_reason(&self) -> Option<String> {
        self.poison.lock().clone()
    }

    #[inline]
    pub fn count_record(&self) {
        self.records_written.fetch_add(1, Ordering::Relaxed);
    }

    pub fn records_written(&self) -> u64 {
        self.records_written.load(Ordering::Relaxed)
    }

    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Whether a record of `len` bytes must go into a new blob.
    #[inline]
    pub fn needs_rotation(&self, a: &Active, len: u64) -> bool {
        let l = &self.limits;
        a.records >= l.max_blob_records || (a.has_records() && a.end() + len > l.max_blob_size)
    }

    /// Writes `record` at the end of the active blob: into the buffer, or straight to the
    /// file when it is as large as the buffer. Returns its offset. A buffer that has no room
    /// for it is written out first, so a failed write (a full disk) never leaves the record
    /// half accepted: it is either in the buffer or refused.
    #[inline]
    pub fn put(&self, a: &mut Active, record: &[u8]) -> Result<u64> {
        let size = self.limits.write_buffer_size;
        let needs_flush = record.len() >= size || a.buf.len() + record.len() > size;
        if needs_flush && crate::io::nowait::active() {
            // Nothing is changed yet: the call is made again where it may wait.
            let e = crate::io::nowait::refuse("writing the buffer out");
            return Err(Error::io("write", blob_name(a.blob.id), e));
        }
        if record.len() >= size {
            self.flush(a)?;
            let offset = a.end();
            self.write_or_poison(&a.blob, record, offset)?;
            a.blob.set_flushed(offset + record.len() as u64);
            return Ok(offset);
        }
        if !a.buf.is_empty() && a.buf.len() + record.len() > size {
            self.flush(a)?;
        }
        let offset = a.end();
        a.buf.extend_from_slice(record);
        Ok(offset)
    }

    /// Writes `bytes` at `at`. A failure poisons the log, except a full disk (`ENOSPC`):
    /// nothing past the flushed end counts, so the bytes are simply written again later and
    /// the write is refused as `DiskFull`.
    pub fn write_or_poison(&self, blob: &Blob, bytes: &[u8], at: u64) -> Result<()> {
        blob.file.write_all_at(bytes, at).map_err(|e| {
            if e.kind() == std::io::ErrorKind::StorageFull {
                tracing::warn!(
                    blob = blob.id,
                    bytes = bytes.len(),
                    "write refused: the disk is full"
                );
                return Error::DiskFull {
                    need: bytes.len() as u64,
                    available: 0,
                };
            }
            let err = Error::io("write", blob_name(blob.id), e);
            self.poison(err.to_string());
            err
        })
    }

    /// Writes the buffer to the file (not synced).
    /// The key journal's entries go after the records they name.
    pub fn flush(&self, a: &mut Active) -> Result<()> {
        if !a.buf.is_empty() {
            let at = a.blob.flushed();
            self.write_or_poison(&a.blob, &a.buf, at)?;
            a.blob.set_flushed(at + a.buf.len() as u64);
            a.buf.clear();
        }
        if let Some(j) = a.journal.as_mut() {
            j.write_pending();
        }
        Ok(())
    }

    /// Flushes the buffer and fdatasyncs the active blob; returns the position now durable.
    /// The sync runs without the writer lock, so appends and reads go on meanwhile.
    /// Blobs sealed since the last sync are synced first, oldest first, so the position
    /// returned really has everything before it on disk.
    pub fn flush_and_sync(&self) -> Result<LogPos> {
        let (blob, sealed, unindexed) = {
            let mut a = self.writer();
            self.flush(&mut a)?;
            let unindexed: Vec<(u32, u64)> = a.unindexed.iter().map(|(&b, &l)| (b, l)).collect();
            (a.blob.clone(), a.unsynced.clone(), unindexed)
        };
        let end = blob.flushed();
        for b in &sealed {
            self.sync_blob(b)?;
        }
        self.sync_blob(&blob)?;
        // Every blob rotated out before the snapshot is synced now: this one's sync, or an
        // earlier one, covered it.
        self.watermark.advance((blob.id, end), &unindexed);
        if !sealed.is_empty() {
            self.writer()
                .unsynced
                .retain(|b| !sealed.iter().any(|s| s.id == b.id));
        }
        Ok((blob.id, end))
    }

    /// Returns once `target` is durable, sharing one fdatasync with every writer that asks
    /// within `window` (group commit).
    pub fn wait_durable(&self, target: LogPos, window: Duration) -> Result<()> {
        self.commit
            .wait_durable(target, window, || self.flush_and_sync())
            .map_err(Error::from)
    }

    /// Makes everything appended so far durable.
    pub fn sync_all(&self) -> Result<()> {
        let target = self.end();
        self.wait_durable(target, Duration::ZERO)
    }

    /// Writes the watermark file's last state durably (at close).
    pub fn sync_watermark(&self) {
        self.watermark.sync();
    }

    /// fdatasyncs one blob; a failure poisons the log.
    pub fn sync_blob(&self, blob: &Blob) -> Result<()> {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        blob.file.sync_data().map_err(|e| {
            let err = Error::io("fdatasync", blob_name(blob.id), e);
            self.poison(err.to_string());
            err
        })
    }

    /// Blob `id` was synced as a whole: later syncs need not cover it.
    pub fn mark_blob_synced(&self, id: u32) {
        self.writer().unsynced.retain(|b| b.id != id);
    }

    /// Blob `id` has its index file: the watermark need not carry it.
    pub fn mark_blob_indexed(&self, id: u32) {
        self.writer().unindexed.remove(&id);
    }

    /// Closes the active blob for appends (its buffer written, not yet synced) and starts
    /// the next one; returns the rotated blob's id. Syncing it and writing its index file
    /// happen outside the writer lock: in the next durable sync (which covers rotated blobs
    /// first) and in sealing.
    pub fn rotate(&self, a: &mut Active) -> Result<u32> {
        self.flush(a)?;
        let old = a.blob.clone();
        let next = create_blob_on(self.device.as_ref(), old.id + 1).inspect_err(|e| {
            if !matches!(e, Error::DiskFull { .. }) {
                self.poison(e.to_string())
            }
        })?;
        self.blobs.write().insert(next.id, next.clone());
        a.unsynced.push(old.clone());
        a.unindexed.insert(old.id, old.flushed());
        a.journal = Some(JournalWriter::create(self.device.as_ref(), next.id));
        a.blob = next;
        a.records = 0;
        Ok(old.id)
    }

    /// Fills `out` with `len` bytes at `offset` of blob `blob`, from the file or the write
    /// buffer (taking the writer lock only for bytes past what is flushed).
    pub fn read_bytes(&self, blob: u32, offset: u64, len: usize, out: &mut Vec<u8>) -> Result<()> {
        out.resize(len, 0);
        self.read_into(blob, offset, out)
    }

    /// The `len` bytes at `offset` of blob `blob`, read into the front of `buf`, which only
    /// ever grows: a buffer reused for reads of different sizes is not zeroed again each
    /// time it was last used for a shorter one (as [`read_bytes`](Self::read_bytes)'s is).
    pub fn read_prefix<'b>(
        &self,
        blob: u32,
        offset: u64,
        len: usize,
        buf: &'b mut Vec<u8>,
    ) -> Result<&'b [u8]> {
        let out = front(buf, len);
        self.read_into(blob, offset, out)?;
        Ok(out)
    }

    /// A whole small record, `len` bytes at `offset` of blob `blob`, into the front of
    /// `buf` (as [`read_prefix`](Self::read_prefix)): from the record cache when it holds
    /// it, else read and kept there. Only bytes below the blob's flushed end are kept —
    /// those never change (module `record_cache`).
    pub fn read_record<'b>(
        &self,
        blob: u32,
        offset: u64,
        len: usize,
        buf: &'b mut Vec<u8>,
    ) -> Result<&'b [u8]> {
        if !self.cache.takes(len) {
            return self.read_prefix(blob, offset, len, buf);
        }
        let out = front(buf, len);
        let b = self.blob(blob)?;
        let settled = b.damage().is_none() && offset + len as u64 <= b.flushed();
        let place = (blob, offset, len as u32);
        let found = if settled {
            self.cache.lookup(place, b.serial(), out)
        } else {
            Lookup::Passed
        };
        if found == Lookup::Hit {
            return Ok(out);
        }
        self.read_from(&b, offset, out)?;
        if found == Lookup::Miss {
            self.cache.insert(place, b.serial(), out);
        }
        Ok(out)
    }

    /// Fills `out` from `offset` of blob `blob` (see [`read_bytes`](Self::read_bytes)).
    fn read_into(&self, blob: u32, offset: u64, out: &mut [u8]) -> Result<()> {
        let b = self.blob(blob)?;
        self.read_from(&b, offset, out)
    }

    /// Fills `out` from `offset` of `b`: its write buffer's bytes, or its file's.
    fn read_from(&self, b: &Blob, offset: u64, out: &mut [u8]) -> Result<()> {
        let (len, blob) = (out.len(), b.id);
        if let Some(why) = b.damage() {
            return Err(Error::Corrupt {
                what: "blob",
                file: blob_name(blob),
                offset,
                reason: why.to_string(),
            });
        }
        if offset + len as u64 > b.flushed() {
            let a = self.writer();
            if let Some(bytes) = a.buffered_bytes(blob, offset, len) {
                out.copy_from_slice(bytes);
                return Ok(());
            }
        }
        b.file
            .read_exact_at(out, offset)
            .map_err(|e| Error::io("read", blob_name(blob), e))
    }

    /// [`read_bytes`](Self::read_bytes) for a caller holding the writer lock.
    pub fn read_locked(&self, a: &Active, blob: u32, at: u64, out: &mut [u8]) -> Result<()> {
        if let Some(b) = a.buffered_bytes(blob, at, out.len()) {
            out.copy_from_slice(b);
            return Ok(());
        }
        let b = self.blob(blob)?;
        b.file
            .read_exact_at(out, at)
            .map_err(|e| Error::io("read", blob_name(blob), e))
    }
}

/// Creates blob `id` on a device: header written, file and directory entry synced.
pub fn create_blob_on(device: &dyn Device, id: u32) -> Result<Arc<Blob>> {
    let name = blob_name(id);
    if id > crate::index::MAX_BLOB_ID {
        return Err(Error::InvalidConfig(format!(
            "blob id {id} is past the last one the index can hold"
        )));
    }
    let io = |op| move |e| Error::io(op, blob_name(id), e);
    let file = device
        .open(&name, OpenMode::CreateNew)
        .map_err(io("create"))?;
    if let Err(e) = file.write_all_at(&BlobHeader::new(id).encode(), 0) {
        if e.kind() == std::io::ErrorKind::StorageFull {
            // No room for even a header: no blob, and nothing to poison.
            drop(file);
            let _ = device.remove(&name);
            return Err(Error::DiskFull {
                need: BLOB_HEADER_LEN as u64,
                available: 0,
            });
        }
        return Err(io("write")(e));
    }
    file.sync_data().map_err(io("fdatasync"))?;
    device.sync_dir().map_err(io("sync dir for"))?;
    Ok(Arc::new(Blob::new(id, file, BLOB_HEADER_LEN as u64)))
}
