//! Scrubbing: a background pass that re-reads every record of every sealed blob at a
//! throttled rate and checks every checksum, so bit rot is found before a read meets it.
//! A damaged record joins the known damage (logged once): it is never served, iteration
//! no longer lists it, and a copy from another group (repair) replaces it.
//!
//! Lock order: `status` is a leaf.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::engine::Inner;
use crate::error::{Error, Result};
use crate::index::Loc;
use crate::pace::Pace;

/// What scrubbing has done since open.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScrubStatus {
    /// A pass is under way.
    pub running: bool,
    /// Passes finished.
    pub passes: u64,
    /// The blob the running pass is checking.
    pub blob: Option<u32>,
    /// Blobs, records and bytes checked, over all passes.
    pub blobs_checked: u64,
    pub records_checked: u64,
    pub bytes_checked: u64,
    /// Damaged records found (each counted once).
    pub damaged_found: u64,
    /// How long the last finished pass took.
    pub last_pass_secs: Option<f64>,
}

/// The scrub's status room.
#[derive(Default)]
pub struct Scrubbing {
    status: Mutex<ScrubStatus>,
}

impl Scrubbing {
    pub fn status(&self) -> ScrubStatus {
        self.status.lock().clone()
    }

    fn update(&self, f: impl FnOnce(&mut ScrubStatus)) {
        f(&mut self.status.lock());
    }
}

impl Inner {
    /// One pass over every sealed blob, `bytes_per_sec` at most (0: unthrottled). Stops
    /// early (`Ok(false)`) when the engine is closing.
    pub fn scrub_pass(&self, bytes_per_sec: u64) -> Result<bool> {
        let started = Instant::now();
        self.scrubbing.update(|s| s.running = true);
        let mut pace = Pace::new(bytes_per_sec);
        let sealed: Vec<(u32, u64)> = self
            .blob_usage()
            .iter()
            .filter(|u| u.sealed)
            .map(|u| (u.id, u.size))
            .collect();
        let mut finished = true;
        for (id, size) in sealed {
            self.scrubbing.update(|s| s.blob = Some(id));
            match self.scrub_blob(id, size, &mut pace) {
                Ok(true) => {}
                Ok(false) => {
                    finished = false;
                    break;
                }
                // Defragmented away meanwhile: nothing left to check there.
                Err(Error::BlobRetired(_)) => {}
                Err(e) if e.is_corruption() => {
                    tracing::warn!(blob = id, error = %e, "scrub: blob cannot be listed; blob-inspect verify shows its damage");
                }
                Err(e) => {
                    self.scrubbing.update(|s| s.running = false);
                    return Err(e);
                }
            }
        }
        self.scrubbing.update(|s| {
            s.running = false;
            s.blob = None;
            if finished {
                s.passes += 1;
                s.last_pass_secs = Some(started.elapsed().as_secs_f64());
            }
        });
        Ok(finished)
    }

    /// Checks every record of sealed blob `id`; false when the engine is closing.
    fn scrub_blob(&self, id: u32, size: u64, pace: &mut Pace) -> Result<bool> {
        let entries = self.entries_of(id, size)?;
        let mut buf = Vec::new();
        for e in &entries {
            let intact = match self.verify_record(id, e, &mut buf) {
                Ok(intact) => intact,
                Err(err) if err.is_corruption() => false,
                Err(err) => return Err(err),
            };
            let len = u64::from(e.record_len);
            self.scrubbing.update(|s| {
                s.records_checked += 1;
                s.bytes_checked += len;
            });
            if !intact {
                self.found_damage(id, e);
            }
            if let Some(wait) = pace.spent(len) {
                if !self.upkeep.wait_or_stop(wait) {
                    return Ok(false);
                }
            }
        }
        self.scrubbing.update(|s| s.blobs_checked += 1);
        Ok(true)
    }

    fn found_damage(&self, id: u32, e: &crate::format::index_file::IndexEntry) {
        let loc = Loc {
            blob: id,
            offset: e.offset as u32,
            len: e.record_len,
        };
        if self.known_damage.note(loc) {
            self.scrubbing.update(|s| s.damaged_found += 1);
            tracing::error!(
                blob = id,
                offset = e.offset,
                key = %e.key,
                column = e.column,
                "scrub found a damaged record (checksum failure); it is never served, and a copy from another group replaces it"
            );
        }
    }
}

/// The scrub thread: a pass every `every`, throttled to `bytes_per_sec`.
pub(crate) fn scrub_loop(inner: std::sync::Weak<Inner>, every: Duration, bytes_per_sec: u64) {
    loop {
        let Some(i) = inner.upgrade() else { return };
        if !i.upkeep.wait_or_stop(every) {
            return;
        }
        match i.scrub_pass(bytes_per_sec) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => tracing::warn!(error = %e, "scrub pass failed"),
        }
    }
}
