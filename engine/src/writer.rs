//! The write path: records are appended to the active blob through a write buffer; the
//! index is updated under the same lock so its order matches the log's.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::blob::{blob_name, Blob};
use crate::commit::LogPos;
use crate::engine::Inner;
use crate::error::{Error, Result};
use crate::format::blob_header::{BlobHeader, BLOB_HEADER_LEN};
use crate::format::record::RECORD_HEADER_LEN;
use crate::index::Loc;
use crate::io::OpenMode;
use crate::key::{Key, KEY_LEN};

/// The blob being appended to, and the bytes not yet written to it.
pub struct Active {
    pub blob: Arc<Blob>,
    buf: Vec<u8>,
    records: u64,
    /// Sealed blobs whose last bytes may not be durable yet: every sync covers them first.
    unsynced: Vec<Arc<Blob>>,
}

impl Active {
    pub fn new(blob: Arc<Blob>, records: u64) -> Self {
        Active {
            blob,
            buf: Vec::new(),
            records,
            unsynced: Vec::new(),
        }
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
    /// Appends one encoded record for `key` and points the index at it. Returns the log
    /// position a durable write must wait for.
    pub fn append_record(&self, key: &Key, record: &[u8], tombstone: bool) -> Result<LogPos> {
        let mut a = self.active.lock();
        self.check_writable()?;
        let sealed = if self.needs_rotation(&a, record.len() as u64) {
            Some(self.rotate_locked(&mut a)?)
        } else {
            None
        };
        let tag = self.index.read().tag(key);
        let old = self
            .index
            .read()
            .find(tag, |loc| Ok(self.key_at_locked(&a, loc)? == *key))?;
        if tombstone && old.is_none() {
            drop(a);
            self.finish_seal(sealed);
            return Err(Error::NotFound(*key));
        }
        let offset = a.end();
        self.put_bytes_locked(&mut a, record)?;
        let loc = Loc {
            blob: a.blob.id,
            offset: offset as u32,
            len: record.len() as u32,
        };
        {
            let mut index = self.index.write();
            if tombstone {
                index.remove(tag, |l| Ok(Some(l) == old))?;
            } else {
                index.upsert(tag, loc, |l| Ok(Some(l) == old))?;
            }
        }
        let live = &self.counters.live_bytes;
        if !tombstone {
            live.fetch_add(record.len() as u64, Ordering::Relaxed);
        }
        if let Some(o) = old {
            live.fetch_sub(u64::from(o.len), Ordering::Relaxed);
        }
        self.counters
            .records_written
            .fetch_add(1, Ordering::Relaxed);
        a.records += 1;
        let pos = (a.blob.id, a.end());
        drop(a);
        self.finish_seal(sealed);
        Ok(pos)
    }

    /// Where the live record of `key` is now (its value; `None` if removed or absent).
    pub fn current_loc(&self, key: &Key) -> Result<Option<Loc>> {
        let a = self.active.lock();
        let tag = self.index.read().tag(key);
        let found = self
            .index
            .read()
            .find(tag, |loc| Ok(self.key_at_locked(&a, loc)? == *key));
        found
    }

    /// Defragmentation's append: re-appends a record copied verbatim from a sealed blob, if
    /// it is still current — a value only while the index still points at `from`, a
    /// tombstone only while the key has no live value. Deciding and appending under the
    /// writer lock keeps the log order right against concurrent writers. Returns whether the
    /// record was appended.
    pub fn append_copy(
        &self,
        key: &Key,
        record: &[u8],
        from: Loc,
        tombstone: bool,
    ) -> Result<bool> {
        let mut a = self.active.lock();
        self.check_writable()?;
        let tag = self.index.read().tag(key);
        let current = self
            .index
            .read()
            .find(tag, |loc| Ok(self.key_at_locked(&a, loc)? == *key))?;
        let keep = if tombstone {
            current.is_none()
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
        if !tombstone {
            let loc = Loc {
                blob: a.blob.id,
                offset: offset as u32,
                len: record.len() as u32,
            };
            self.index
                .write()
                .upsert(tag, loc, |l| Ok(Some(l) == current))?;
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

    /// Finishes sealing blob `id`: fdatasync, then its index file.
    pub fn seal(&self, id: u32) -> Result<()> {
        let blob = self.blob(id)?;
        self.sync_blob(&blob)?;
        self.active.lock().unsynced.retain(|b| b.id != id);
        crate::checkpoint::write_index_file(self, id)
    }

    /// Seals every blob rotated out but not sealed yet (the maintenance thread's job, or
    /// close's). An index-file failure only costs a rescan at the next open, so it is logged.
    pub fn seal_pending(&self) {
        loop {
            let Some(id) = self.seal_queue.lock().pop() else {
                return;
            };
            if let Err(e) = self.seal(id) {
                tracing::warn!(blob = id, error = %e, "could not seal blob; the next open rescans it");
            }
        }
    }

    fn needs_rotation(&self, a: &Active, len: u64) -> bool {
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

    fn write_or_poison(&self, blob: &Blob, bytes: &[u8], at: u64) -> Result<()> {
        blob.file.write_all_at(bytes, at).map_err(|e| {
            let err = Error::io("write", blob_name(blob.id), e);
            self.poison(err.to_string());
            err
        })
    }

    /// Writes the buffer to the file (not synced).
    pub fn flush_locked(&self, a: &mut Active) -> Result<()> {
        if a.buf.is_empty() {
            return Ok(());
        }
        let at = a.blob.flushed();
        self.write_or_poison(&a.blob, &a.buf, at)?;
        a.blob.set_flushed(at + a.buf.len() as u64);
        a.buf.clear();
        Ok(())
    }

    /// Flushes the buffer and fdatasyncs the active blob; returns the position now durable.
    /// The sync runs without the writer lock, so appends and reads go on meanwhile.
    /// Blobs sealed since the last sync are synced first, oldest first, so the position
    /// returned really has everything before it on disk.
    pub fn flush_and_sync(&self) -> Result<LogPos, String> {
        let (blob, sealed) = {
            let mut a = self.active.lock();
            self.flush_locked(&mut a).map_err(|e| e.to_string())?;
            (a.blob.clone(), a.unsynced.clone())
        };
        let end = blob.flushed();
        for b in &sealed {
            self.sync_blob(b).map_err(|e| e.to_string())?;
        }
        self.sync_blob(&blob).map_err(|e| e.to_string())?;
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
    fn rotate_locked(&self, a: &mut Active) -> Result<u32> {
        self.flush_locked(a)?;
        let old = a.blob.clone();
        let next = create_blob(self, old.id + 1).inspect_err(|e| self.poison(e.to_string()))?;
        self.blobs.write().insert(next.id, next.clone());
        a.unsynced.push(old.clone());
        a.blob = next;
        a.records = 0;
        Ok(old.id)
    }

    /// Hands a sealed blob to the maintenance thread.
    fn finish_seal(&self, sealed: Option<u32>) {
        if let Some(id) = sealed {
            self.seal_queue.lock().insert(0, id);
            self.wake_maintenance();
        }
    }

    /// The key of the record at `loc`, read while holding the writer lock.
    fn key_at_locked(&self, a: &Active, loc: Loc) -> Result<Key> {
        let at = u64::from(loc.offset) + 8;
        let mut key = [0u8; KEY_LEN];
        if let Some(b) = a.buffered_bytes(loc.blob, at, KEY_LEN) {
            key.copy_from_slice(b);
            return Ok(Key(key));
        }
        let blob = self.blob(loc.blob)?;
        debug_assert!(u64::from(loc.len) >= RECORD_HEADER_LEN as u64);
        blob.file
            .read_exact_at(&mut key, at)
            .map_err(|e| Error::io("read", blob_name(loc.blob), e))?;
        Ok(Key(key))
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
