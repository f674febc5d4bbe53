//! The write path: records are appended to the active blob through a write buffer; the
//! index is updated under the same lock so its order matches the log's.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::blob::{blob_name, Blob};
use crate::commit::LogPos;
use crate::engine::Inner;
use crate::error::{Error, Result};
use crate::format::blob_header::{BlobHeader, BLOB_HEADER_LEN};
use crate::format::record::{RecordHeader, FLAG_TOMBSTONE, RECORD_HEADER_LEN};
use crate::index::{Entry, Loc};
use crate::io::OpenMode;
use crate::key::Key;

/// What a record is written for.
pub(crate) struct Target<'a> {
    pub key: &'a Key,
    pub column: u16,
    pub tombstone: bool,
    pub probe: Option<SealedProbe>,
    /// Write only if the newest record is older than this timestamp (the record's own).
    pub if_newer: Option<u64>,
    /// Write only if the live record of (key, column) is at this place (`Some(None)`: has
    /// none); otherwise `Contended`.
    pub expected: Option<Option<Loc>>,
}

/// A sealed-blob lookup made before taking the writer lock.
#[derive(Clone, Copy)]
pub(crate) struct SealedProbe {
    generation: u64,
    found: Option<Entry>,
}

/// The blob being appended to, and the bytes not yet written to it.
pub struct Active {
    pub blob: Arc<Blob>,
    buf: Vec<u8>,
    records: u64,
    /// Sealed blobs whose last bytes may not be durable yet: every sync covers them first.
    unsynced: Vec<Arc<Blob>>,
    /// Blobs rotated out whose index file is not written yet, with their final lengths:
    /// the synced watermark carries them (see `watermark`).
    unindexed: std::collections::BTreeMap<u32, u64>,
    /// The active blob's key journal (see `journal`).
    journal: Option<crate::journal::JournalWriter>,
}

impl Active {
    pub fn new(blob: Arc<Blob>, records: u64) -> Self {
        Active {
            blob,
            buf: Vec::new(),
            records,
            unsynced: Vec::new(),
            unindexed: std::collections::BTreeMap::new(),
            journal: None,
        }
    }

    /// Starts with the active blob's key journal.
    pub fn with_journal(mut self, journal: crate::journal::JournalWriter) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Logical end of the blob: written bytes plus buffered ones.
    pub fn end(&self) -> u64 {
        self.blob.flushed() + self.buf.len() as u64
    }

    pub fn buffered(&self) -> u64 {
        self.buf.len() as u64
    }

    /// Bytes at `offset..offset+len` of the active blob if they are still in the buffer.
    pub fn buffered_bytes(&self, blob: u32, offset: u64, len: usize) -> Option<&[u8]> {
        let flushed = self.blob.flushed();
        if blob != self.blob.id || offset < flushed {
            return None;
        }
        let from = (offset - flushed) as usize;
        self.buf.get(from..from.checked_add(len)?)
    }
}

impl Inner {
    /// Appends one encoded record of (key, column) and points the index at it. Returns the
    /// log position a durable write must wait for. A tombstone of a (key, column) with no
    /// live value is refused with `NotFound`.
    pub fn append_record(
        &self,
        key: &Key,
        column: u16,
        record: &[u8],
        tombstone: bool,
        if_newer: Option<u64>,
    ) -> Result<LogPos> {
        // Sealed blobs are asked before taking the writer lock; under it, the answer is
        // used only if the sealed set did not change meanwhile.
        let probe = self.probe_sealed(key, column, true)?;
        let target = Target {
            key,
            column,
            tombstone,
            probe,
            if_newer,
            expected: None,
        };
        self.append_encoded(target, record, None)?
            .ok_or_else(|| Error::Internal("a whole record was refused a blob".into()))
    }

    /// Appends the encoded `record` for `t` under the writer lock, rotating the active blob
    /// first if it has no room — except a patch (`patch_of`: the blob its kept frames are
    /// in), which goes only into that blob, unrotated; `None` when it cannot (the blob is
    /// sealed, or full: then it is rotated here).
    fn append_encoded(
        &self,
        t: Target<'_>,
        record: &[u8],
        patch_of: Option<u32>,
    ) -> Result<Option<LogPos>> {
        let mut a = self.active.lock();
        self.check_writable()?;
        let len = record.len() as u64;
        if patch_of.is_some_and(|blob| blob != a.blob.id) {
            return Ok(None);
        }
        let sealed = if self.needs_rotation(&a, len) {
            Some(self.rotate_locked(&mut a)?)
        } else {
            None
        };
        let result = if patch_of.is_some() && sealed.is_some() {
            Ok(None)
        } else {
            self.append_with(&mut a, t, len, |inner, a| {
                let offset = a.end();
                inner.put_bytes_locked(a, record)?;
                Ok(offset)
            })
            .map(Some)
        };
        drop(a);
        self.finish_seal(sealed);
        result
    }

    /// Appends a record of `len` bytes that `write` puts at the end of the active blob
    /// (returning its offset), after checking a tombstone has a value to hide, then points
    /// the index at it and counts it. Writer lock held.
    pub(crate) fn append_with(
        &self,
        a: &mut Active,
        t: Target<'_>,
        len: u64,
        write: impl FnOnce(&Inner, &mut Active) -> Result<u64>,
    ) -> Result<LogPos> {
        let Target {
            key,
            column,
            tombstone,
            probe,
            if_newer,
            expected,
        } = t;
        let tag = self.index.read().tag(key);
        let old = self
            .index
            .read()
            .find(tag, column, |loc| Ok(self.key_at_locked(a, loc)? == *key))?;
        let newest = self.newest_locked(key, column, old, probe)?;
        let had_value = newest.is_some_and(|e| !e.tombstone);
        if tombstone && !had_value {
            return Err(Error::NotFound(*key));
        }
        if expected.is_some_and(|x| x != newest.filter(|e| !e.tombstone).map(|e| e.loc)) {
            return Err(Error::Contended);
        }
        if let (Some(write_ns), Some(e)) = (if_newer, newest) {
            // A sealed tombstone's blob may be retired meanwhile: defragmentation drops a
            // tombstone (without the writer lock) only when no older record of the key is
            // left, so there is then no record to be newer than.
            let stored_ns = match self.timestamp_at_locked(a, e.loc) {
                Err(Error::BlobRetired(_)) if e.tombstone => 0,
                // A damaged newest record cannot be read: any copy replaces it.
                Err(err) if err.is_corruption() => 0,
                other => other?,
            };
            // A record known to be damaged cannot be read: any copy replaces it (repair
            // from another group), even one older than the version it held — the best
            // the cluster still has. A newer version may still land over the copy.
            let heals = self.known_damage.contains(e.loc);
            if stored_ns >= write_ns && !heals {
                return Err(Error::NotNewer {
                    stored_ns,
                    write_ns,
                });
            }
        }
        let offset = write(self, a)?;
        let e = Entry {
            loc: Loc {
                blob: a.blob.id,
                offset: offset as u32,
                len: len as u32,
            },
            column,
            tombstone,
        };
        self.point_index(tag, e, old.map(|o| o.loc))?;
        if let Some(j) = a.journal.as_mut().filter(|j| j.blob() == e.loc.blob) {
            j.note(&crate::format::index_file::IndexEntry {
                key: *key,
                offset,
                record_len: len as u32,
                flags: if tombstone { FLAG_TOMBSTONE } else { 0 },
                column,
            });
        }
        if !self.sorted() {
            let live = &self.counters.live_bytes;
            if !tombstone {
                live.fetch_add(len, Ordering::Relaxed);
            }
            if let Some(o) = old.filter(|o| !o.tombstone) {
                live.fetch_sub(u64::from(o.loc.len), Ordering::Relaxed);
            }
        }
        let change = i64::from(!tombstone) - i64::from(had_value);
        self.live_keys.fetch_add(change, Ordering::Relaxed);
        self.counters
            .records_written
            .fetch_add(1, Ordering::Relaxed);
        a.records += 1;
        Ok((a.blob.id, a.end()))
    }

    /// Appends `record`, built by a write into the value of (key, column) from its live
    /// record at `expected`, if that is still its live record; a patch (`patch_of`: the blob
    /// its kept frames are in) only into that blob, without rotating it. `None` when the
    /// record must be built again (the value changed, or the blob is sealed or full: then it
    /// is rotated here, and the write rebuilt as a whole value).
    pub(crate) fn append_planned(
        &self,
        key: &Key,
        column: u16,
        record: &[u8],
        (expected, patch_of): (Option<Loc>, Option<u32>),
    ) -> Result<Option<LogPos>> {
        let probe = self.probe_sealed(key, column, true)?;
        let target = Target {
            key,
            column,
            tombstone: false,
            probe,
            if_newer: None,
            expected: Some(expected),
        };
        match self.append_encoded(target, record, patch_of) {
            Err(Error::Contended) => Ok(None),
            other => other,
        }
    }

    /// Points the index at a new record `e` that replaces `old`. In memory mode a tombstone
    /// just drops the key; in sorted mode it is kept, to hide values in sealed blobs.
    fn point_index(&self, tag: u64, e: Entry, old: Option<Loc>) -> Result<()> {
        let mut index = self.index.write();
        if e.tombstone && !self.sorted() {
            index.remove(tag, e.column, |l| Ok(Some(l) == old))?;
        } else {
            index.upsert(tag, e.column, e, |l| Ok(Some(l) == old))?;
        }
        Ok(())
    }

    /// Sealed blobs' newest entry of (key, column), looked up before the writer lock.
    pub(crate) fn probe_sealed(
        &self,
        key: &Key,
        column: u16,
        needed: bool,
    ) -> Result<Option<SealedProbe>> {
        if !needed || !self.sorted() {
            return Ok(None);
        }
        let generation = self.sealed_generation();
        Ok(Some(SealedProbe {
            generation,
            found: self.find_sealed(key, column)?,
        }))
    }

    /// The newest entry of (key, column) given the in-memory one (`unsealed`) and a probe of
    /// the sealed blobs, asked again if the sealed set changed since. Writer lock held.
    fn newest_locked(
        &self,
        key: &Key,
        column: u16,
        unsealed: Option<Entry>,
        probe: Option<SealedProbe>,
    ) -> Result<Option<Entry>> {
        if unsealed.is_some() || !self.sorted() {
            return Ok(unsealed);
        }
        match probe {
            Some(p) if p.generation == self.sealed_generation() => Ok(p.found),
            _ => self.find_sealed(key, column),
        }
    }

    /// Where the live value of (key, column) is now (`None` if removed or absent).
    pub fn current_loc(&self, key: &Key, column: u16) -> Result<Option<Loc>> {
        let newest = self.find_newest(key, column)?;
        Ok(newest.filter(|e| !e.tombstone).map(|e| e.loc))
    }

    /// Defragmentation's append: re-appends a record copied verbatim from a sealed blob, if
    /// it is still current — a value only while it is still the newest record of its
    /// (key, column), a tombstone only while the key has no live value. Deciding and
    /// appending under the writer lock keeps the log order right against concurrent
    /// writers. Returns whether the record was appended.
    pub fn append_copy(&self, key: &Key, column: u16, record: &[u8], from: Entry) -> Result<bool> {
        let probe = self.probe_sealed(key, column, true)?;
        let mut a = self.active.lock();
        self.check_writable()?;
        let tag = self.index.read().tag(key);
        let unsealed = self
            .index
            .read()
            .find(tag, column, |loc| Ok(self.key_at_locked(&a, loc)? == *key))?;
        let current = self.newest_locked(key, column, unsealed, probe)?;
        let keep = if from.tombstone {
            current.is_none_or(|e| e.tombstone)
        } else {
            current == Some(from)
        };
        if !keep {
            return Ok(false);
        }
        let sealed = if self.needs_rotation(&a, record.len() as u64) {
            Some(self.rotate_locked(&mut a)?)
        } else {
            None
        };
        let offset = a.end();
        self.put_bytes_locked(&mut a, record)?;
        let e = Entry {
            loc: Loc {
                blob: a.blob.id,
                offset: offset as u32,
                len: record.len() as u32,
            },
            column,
            tombstone: from.tombstone,
        };
        if !from.tombstone || self.sorted() {
            self.point_index(tag, e, unsealed.map(|u| u.loc))?;
        }
        a.records += 1;
        drop(a);
        self.finish_seal(sealed);
        Ok(true)
    }

    /// Ids of blobs rotated out but not yet synced and sealed.
    pub fn unsealed_ids(&self) -> Vec<u32> {
        let a = self.active.lock();
        let mut ids: Vec<u32> = a.unsynced.iter().map(|b| b.id).collect();
        ids.extend(self.seal_queue.lock().iter().copied());
        ids.push(a.blob.id);
        ids
    }

    /// Seals the active blob if it holds records, then syncs it and writes its index file.
    pub fn rotate_now(&self) -> Result<()> {
        let sealed = {
            let mut a = self.active.lock();
            if a.end() <= BLOB_HEADER_LEN as u64 {
                return Ok(());
            }
            self.rotate_locked(&mut a)?
        };
        self.seal(sealed)
    }

    /// Seals blob `id` (fdatasync, index file, sorted index), after any blob older than it
    /// still waiting, so what it supersedes in them is counted.
    pub fn seal(&self, id: u32) -> Result<()> {
        let _sealing = self.seal_lock.lock();
        while let Some(older) = self.pop_queued_below(id) {
            if let Err(e) = self.seal_locked(older) {
                tracing::warn!(blob = older, error = %e, "could not seal blob; the next open rescans it");
            }
        }
        self.seal_locked(id)
    }

    fn pop_queued_below(&self, id: u32) -> Option<u32> {
        let mut queue = self.seal_queue.lock();
        if queue.last().is_some_and(|&oldest| oldest < id) {
            queue.pop()
        } else {
            None
        }
    }

    /// Seal lock held.
    fn seal_locked(&self, id: u32) -> Result<()> {
        let blob = self.blob(id)?;
        self.sync_blob(&blob)?;
        self.active.lock().unsynced.retain(|b| b.id != id);
        let entries = crate::checkpoint::write_index_file(self, id)?;
        self.active.lock().unindexed.remove(&id);
        crate::journal::remove(self.device.as_ref(), id);
        if self.sorted() {
            self.install_sorted(id, blob.flushed(), &entries)?;
        }
        Ok(())
    }

    /// Seals every blob rotated out but not sealed yet, oldest first (the maintenance
    /// thread's job, or close's). A failure only costs a rescan at the next open, so it is
    /// logged.
    pub fn seal_pending(&self) {
        loop {
            let _sealing = self.seal_lock.lock();
            let Some(id) = self.seal_queue.lock().pop() else {
                return;
            };
            if let Err(e) = self.seal_locked(id) {
                tracing::warn!(blob = id, error = %e, "could not seal blob; the next open rescans it");
            }
        }
    }

    pub(crate) fn needs_rotation(&self, a: &Active, len: u64) -> bool {
        let c = &self.config;
        let has_records = a.end() > BLOB_HEADER_LEN as u64;
        a.records >= c.max_blob_records || (has_records && a.end() + len > c.max_blob_size)
    }

    /// Writes `record` at the end of the active blob: into the buffer, or straight to the
    /// file when it is as large as the buffer.
    fn put_bytes_locked(&self, a: &mut Active, record: &[u8]) -> Result<()> {
        if record.len() >= self.config.write_buffer_size {
            self.flush_locked(a)?;
            let at = a.blob.flushed();
            self.write_or_poison(&a.blob, record, at)?;
            a.blob.set_flushed(at + record.len() as u64);
            return Ok(());
        }
        a.buf.extend_from_slice(record);
        if a.buf.len() >= self.config.write_buffer_size {
            self.flush_locked(a)?;
        }
        Ok(())
    }

    pub(crate) fn write_or_poison(&self, blob: &Blob, bytes: &[u8], at: u64) -> Result<()> {
        blob.file.write_all_at(bytes, at).map_err(|e| {
            let err = Error::io("write", blob_name(blob.id), e);
            self.poison(err.to_string());
            err
        })
    }

    /// Writes the buffer to the file (not synced).
    /// The key journal's entries go after the records they name.
    pub fn flush_locked(&self, a: &mut Active) -> Result<()> {
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
            let mut a = self.active.lock();
            self.flush_locked(&mut a)?;
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
            self.active
                .lock()
                .unsynced
                .retain(|b| !sealed.iter().any(|s| s.id == b.id));
        }
        Ok((blob.id, end))
    }

    fn sync_blob(&self, blob: &Blob) -> Result<()> {
        self.counters.syncs.fetch_add(1, Ordering::Relaxed);
        blob.file.sync_data().map_err(|e| {
            let err = Error::io("fdatasync", blob_name(blob.id), e);
            self.poison(err.to_string());
            err
        })
    }

    /// Closes the active blob for appends (its buffer written, not yet synced) and starts
    /// the next one; returns the sealed blob's id. Syncing it and writing its index file
    /// happen outside the writer lock: in the next durable sync (which covers sealed blobs
    /// first) and in the maintenance thread.
    pub(crate) fn rotate_locked(&self, a: &mut Active) -> Result<u32> {
        self.flush_locked(a)?;
        let old = a.blob.clone();
        let next = create_blob(self, old.id + 1).inspect_err(|e| self.poison(e.to_string()))?;
        self.blobs.write().insert(next.id, next.clone());
        a.unsynced.push(old.clone());
        a.unindexed.insert(old.id, old.flushed());
        a.journal = Some(crate::journal::JournalWriter::create(
            self.device.as_ref(),
            next.id,
        ));
        a.blob = next;
        a.records = 0;
        Ok(old.id)
    }

    /// Hands a sealed blob to the maintenance thread.
    pub(crate) fn finish_seal(&self, sealed: Option<u32>) {
        if let Some(id) = sealed {
            self.seal_queue.lock().insert(0, id);
            self.wake_maintenance();
        }
    }

    /// The key of the record at `loc`, read while holding the writer lock (its header's
    /// checksum checked: a damaged header is an error, never "another key").
    ///
    /// A header one flipped bit from intact names its key (see
    /// [`RecordHeader::repaired_one_bit`]): a write of that key then replaces the damaged
    /// record instead of failing on it, and a write of another key passes it by.
    fn key_at_locked(&self, a: &Active, loc: Loc) -> Result<Key> {
        let mut raw = [0u8; RECORD_HEADER_LEN];
        self.header_bytes_locked(a, loc, 0, &mut raw)?;
        let offset = u64::from(loc.offset);
        match RecordHeader::decode(&raw, loc.blob, offset) {
            Ok(h) => Ok(h.key),
            Err(e) if e.is_corruption() => RecordHeader::repaired_one_bit(&raw, loc.blob, offset)
                .map(|h| h.key)
                .ok_or(e),
            Err(e) => Err(e),
        }
    }

    /// The timestamp of the record at `loc`, read while holding the writer lock (checked
    /// as [`key_at_locked`](Self::key_at_locked)).
    fn timestamp_at_locked(&self, a: &Active, loc: Loc) -> Result<u64> {
        Ok(self.header_at_locked(a, loc)?.timestamp_ns)
    }

    /// The header of the record at `loc`, checksum checked.
    fn header_at_locked(&self, a: &Active, loc: Loc) -> Result<RecordHeader> {
        let mut raw = [0u8; RECORD_HEADER_LEN];
        self.header_bytes_locked(a, loc, 0, &mut raw)?;
        RecordHeader::decode(&raw, loc.blob, u64::from(loc.offset))
    }

    /// Bytes of the header of the record at `loc`, from the buffer or the file.
    fn header_bytes_locked(&self, a: &Active, loc: Loc, at: usize, out: &mut [u8]) -> Result<()> {
        debug_assert!(at + out.len() <= RECORD_HEADER_LEN);
        let at = u64::from(loc.offset) + at as u64;
        if let Some(b) = a.buffered_bytes(loc.blob, at, out.len()) {
            out.copy_from_slice(b);
            return Ok(());
        }
        let blob = self.blob(loc.blob)?;
        blob.file
            .read_exact_at(out, at)
            .map_err(|e| Error::io("read", blob_name(loc.blob), e))
    }

    /// The blob with this id.
    pub fn blob(&self, id: u32) -> Result<Arc<Blob>> {
        self.blobs
            .read()
            .get(&id)
            .cloned()
            .ok_or(Error::BlobRetired(id))
    }
}

/// Creates blob `id`: header written, file and directory entry synced.
pub fn create_blob(inner: &Inner, id: u32) -> Result<Arc<Blob>> {
    create_blob_on(inner.device.as_ref(), id)
}

/// Creates blob `id` on a device: header written, file and directory entry synced.
pub fn create_blob_on(device: &dyn crate::io::Device, id: u32) -> Result<Arc<Blob>> {
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
    file.write_all_at(&BlobHeader::new(id).encode(), 0)
        .map_err(io("write"))?;
    file.sync_data().map_err(io("fdatasync"))?;
    device.sync_dir().map_err(io("sync dir for"))?;
    Ok(Arc::new(Blob::new(id, file, BLOB_HEADER_LEN as u64)))
}
