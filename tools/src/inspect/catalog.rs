//! One inspection of a target: every blob scanned, every index and sorted index file
//! checked. All commands start from this, so they agree on what is damaged.

use anyhow::Result;

use super::index_check::{check_index, IndexState};
use super::problem::{Kind, Problem, Severity};
use super::progress::Progress;
use super::scan::{open_blob, scan_open, BlobScan};
use super::sorted_check::check_sorted;
use super::source::{BlobRef, Target};
use super::value::Depth;
use super::Status;

/// One blob file, scanned.
#[derive(Debug, Clone)]
pub struct BlobReport {
    pub blob: BlobRef,
    pub scan: BlobScan,
    pub index: IndexState,
    /// Damage found by the scan, then index problems, then sorted index problems.
    pub problems: Vec<Problem>,
}

/// Everything found in a target.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub target: Target,
    /// In blob id order.
    pub blobs: Vec<BlobReport>,
    /// Problems that belong to no blob (orphan index files, side files).
    pub other: Vec<Problem>,
}

impl Catalog {
    /// Scans every blob of `target` to `depth`, reporting progress by bytes.
    pub fn build(target: Target, depth: Depth, progress: &Progress) -> Result<Catalog> {
        let mut blobs = Vec::with_capacity(target.blobs.len());
        let mut base = 0u64;
        // The next blob is opened (and its reading started) as soon as the disk is done
        // with the current one, so the disk does not idle while the last records are
        // checked and the index file is compared.
        let mut next = None;
        for (i, blob) in target.blobs.iter().enumerate() {
            progress.file(&blob.file.name);
            let open = next.take().unwrap_or_else(|| open_blob(blob));
            let following = target.blobs.get(i + 1);
            let mut start_next = || {
                if next.is_none() {
                    next = following.map(open_blob);
                }
            };
            let scan = scan_open(blob, open, depth, progress, base, &mut start_next)?;
            base += scan.len;
            progress.set(base);
            let (index, index_problems) = check_index(blob, &scan)?;
            let mut problems = scan.damage.clone();
            problems.extend(index_problems);
            problems.extend(check_sorted(blob, &scan)?);
            blobs.push(BlobReport {
                blob: blob.clone(),
                scan,
                index,
                problems,
            });
        }
        progress.finish();
        let mut other: Vec<Problem> = target
            .orphan_indexes
            .iter()
            .map(|f| {
                let reason = "index file without its blob file; the engine removes it at open";
                Problem::new(Kind::OrphanIndexFile, &f.name, 0, reason)
            })
            .collect();
        if !target.single_file {
            let blob_len = |id: u32| {
                blobs
                    .iter()
                    .find(|b: &&BlobReport| b.blob.id == Some(id))
                    .map(|b| b.scan.len)
            };
            other.extend(super::side_files::check(&target.root, &blob_len)?);
        }
        Ok(Catalog {
            target,
            blobs,
            other,
        })
    }

    /// Sum of the blob files' lengths.
    pub fn total_bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.scan.len).sum()
    }

    /// Every problem: per blob in id order, then the rest.
    pub fn problems(&self) -> impl Iterator<Item = &Problem> {
        self.blobs
            .iter()
            .flat_map(|b| b.problems.iter())
            .chain(self.other.iter())
    }

    /// 0 healthy, 1 corruption found, 2 something could not be read.
    pub fn status(&self) -> Status {
        let worst = self.problems().map(Problem::severity).max();
        match worst {
            None | Some(Severity::Info) => Status::Healthy,
            Some(Severity::Corruption) => Status::Corrupt,
            Some(Severity::Unreadable) => Status::Failed,
        }
    }
}
