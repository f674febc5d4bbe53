//! Sealing: a blob rotated out of the log is synced, gets its index file and (in sorted
//! mode) its sorted index, which then answers for its keys. Sealing takes turns (the seal
//! lock) and goes oldest first, so what a blob supersedes in older ones is counted.

use crate::engine::Inner;
use crate::error::Result;

impl Inner {
    /// Ids of blobs rotated out but not yet synced and sealed, and the active blob's.
    pub fn unsealed_ids(&self) -> Vec<u32> {
        let a = self.log.writer();
        let mut ids: Vec<u32> = a.unsynced_ids().collect();
        ids.extend(self.upkeep.queued());
        ids.push(a.id());
        ids
    }

    /// Seals the active blob if it holds records, then syncs it and writes its index file,
    /// and rebuilds the key locator if it now needs it (as the maintenance thread would).
    pub fn rotate_now(&self) -> Result<()> {
        let sealed = {
            let mut a = self.log.writer();
            if !a.has_records() {
                return Ok(());
            }
            self.log.rotate(&mut a)?
        };
        self.seal(sealed)?;
        self.refresh_locator_or_warn();
        Ok(())
    }

    /// Seals blob `id` (fdatasync, index file, sorted index), after any blob older than it
    /// still waiting, so what it supersedes in them is counted.
    pub fn seal(&self, id: u32) -> Result<()> {
        let _sealing = self.upkeep.sealing();
        while let Some(older) = self.upkeep.pop_older_than(id) {
            if let Err(e) = self.seal_locked(older) {
                tracing::warn!(blob = older, error = %e, "could not seal blob; the next open rescans it");
            }
        }
        self.seal_locked(id)
    }

    /// Seal lock held.
    fn seal_locked(&self, id: u32) -> Result<()> {
        let blob = self.log.blob(id)?;
        self.log.sync_blob(&blob)?;
        self.log.mark_blob_synced(id);
        let entries = crate::checkpoint::write_index_file(self, id)?;
        self.log.mark_blob_indexed(id);
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
            let _sealing = self.upkeep.sealing();
            let Some(id) = self.upkeep.pop_oldest() else {
                return;
            };
            if let Err(e) = self.seal_locked(id) {
                tracing::warn!(blob = id, error = %e, "could not seal blob; the next open rescans it");
            }
        }
    }

    /// Hands a rotated-out blob to the maintenance thread.
    pub(crate) fn finish_seal(&self, sealed: Option<u32>) {
        if let Some(id) = sealed {
            self.upkeep.queue_seal(id);
        }
    }
}
