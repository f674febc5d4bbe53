//! Orphaned chunks found and reclaimed: an upload's chunks live as long as its upload record
//! (column `UPLOAD_COLUMN`). A record whose object's manifest names another upload (or no
//! object is there at all) belongs to an upload that was interrupted, failed, or was
//! replaced while its cleanup failed: once it is older than a grace period (an upload may
//! still be running), its chunks and then the record are removed.

use std::time::Duration;

use super::{now_ns, Client, Result, UploadRecord, UPLOAD_COLUMN};
use crate::client::target::Target;
use crate::wire::{Durability, IterEntry, IterateEnd, IterateRequest};

/// What a reclaim pass found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReclaimReport {
    /// Upload records looked at.
    pub uploads: u64,
    /// Of those, uploads whose object's manifest names them (kept).
    pub live: u64,
    /// Not referenced but younger than the grace period (kept; maybe still uploading).
    pub recent: u64,
    /// Not referenced and older: their chunks and record removed.
    pub reclaimed: u64,
    /// Chunks removed.
    pub chunks_removed: u64,
    /// Records that are not upload records (damaged or written by hand): left alone.
    pub unreadable: u64,
}

/// Consecutive absent chunks after which an upload's chunks are taken to end (chunks are
/// written in order, one at a time; a gap of one can be a chunk removed by an earlier,
/// interrupted reclaim).
const ABSENT_RUN: u32 = 2;

impl Client {
    /// Reclaims the orphaned uploads among the upload records of the node this client
    /// talks to (`ITERATE` lists one node's keys: run it against every node of a cluster).
    /// Uploads started less than `grace` ago are kept.
    pub async fn reclaim_uploads(
        &self,
        grace: Duration,
        durability: Durability,
    ) -> Result<ReclaimReport> {
        let mut report = ReclaimReport::default();
        let mut req = IterateRequest {
            from: [0; 32],
            to: [0xFF; 32],
            after: None,
            limit: 1000,
        };
        loop {
            let (entries, end) = self.iterate(req).await?;
            for e in entries.iter().filter(|e| e.meta.column == UPLOAD_COLUMN) {
                self.reclaim_one(e, grace, durability, &mut report).await?;
            }
            match end {
                IterateEnd::Done => return Ok(report),
                IterateEnd::ResumeAfter(p) => req.after = Some(p),
            }
        }
    }

    async fn reclaim_one(
        &self,
        e: &IterEntry,
        grace: Duration,
        durability: Durability,
        report: &mut ReclaimReport,
    ) -> Result<()> {
        report.uploads += 1;
        let bytes = match self.get_column(e.key, UPLOAD_COLUMN, 0, None).await {
            Ok(b) => b,
            Err(err) if err.is_not_found() => return Ok(()),
            Err(err) => return Err(err),
        };
        let Ok(record) = UploadRecord::decode(&bytes) else {
            report.unreadable += 1;
            return Ok(());
        };
        let object: Target = match record.name.clone() {
            Some(n) => n.into(),
            None => Target::Id(record.object),
        };
        let current = self.object_manifest(&object).await?;
        if current.is_some_and(|m| m.upload_id == record.upload_id) {
            report.live += 1;
            return Ok(());
        }
        let age = now_ns().saturating_sub(record.started_ns);
        if age < grace.as_nanos() as u64 {
            report.recent += 1;
            return Ok(());
        }
        report.chunks_removed += self
            .remove_upload_chunks(&object, &record.upload_id, durability)
            .await?;
        match self.remove(e.key, durability).await {
            Ok(()) => {}
            Err(err) if err.is_not_found() => {}
            Err(err) => return Err(err),
        }
        report.reclaimed += 1;
        tracing::info!(
            upload = %hex(&record.upload_id),
            "reclaimed an orphaned upload's chunks"
        );
        Ok(())
    }

    /// Removes an upload's chunks from the first on, until [`ABSENT_RUN`] in a row are
    /// absent; returns how many were removed.
    async fn remove_upload_chunks(
        &self,
        object: &Target,
        upload_id: &[u8; 16],
        durability: Durability,
    ) -> Result<u64> {
        let (mut removed, mut absent, mut index) = (0u64, 0u32, 0u32);
        while absent < ABSENT_RUN && index < super::MAX_CHUNKS {
            match self
                .remove(super::chunk_target(object, upload_id, index), durability)
                .await
            {
                Ok(()) => {
                    removed += 1;
                    absent = 0;
                }
                Err(e) if e.is_not_found() => absent += 1,
                Err(e) => return Err(e),
            }
            index += 1;
        }
        Ok(removed)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
