//! The node's reply memory: replies that are built but not written yet (a client reading
//! slowly, or not at all) are bounded for the whole node, not only per connection. Before a
//! batch is served it takes its share — what its replies can amount to — and holds it until
//! they are written; a batch that cannot get its share waits, so memory stays bounded and
//! the connections that drain their replies go on. Batches of small replies (at most
//! [`UNCHARGED`] bytes) are not charged, so they never wait behind slow readers: together
//! they hold at most `UNCHARGED` × `max_connections`.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::dispatch::{MAX_BATCH_REPLY_BYTES, MAX_BULK_REPLY_BYTES};
use super::read_stream::STREAM_PIECE;
use crate::wire::{Command, Frame, ReadRequest, Request, READ_TO_END};

/// Shares are counted in KiB.
const UNIT: usize = 1024;

/// Batches whose replies are bounded by this are not charged (a ping, a write, a lookup):
/// they never wait behind slow readers, and hold at most this much per connection.
pub const UNCHARGED: usize = 64 << 10;

/// What a reply other than a read's may take: headers, a meta, a small JSON document.
const SMALL_REPLY: usize = 4 << 10;

/// The node-wide budget.
#[derive(Clone)]
pub struct ReplyBudget {
    units: Arc<Semaphore>,
    total: usize,
}

/// A share taken from the budget, given back when dropped.
pub struct Share {
    _permit: Option<OwnedSemaphorePermit>,
    _extra: Option<OwnedSemaphorePermit>,
    cap: usize,
}

impl ReplyBudget {
    pub fn new(bytes: usize) -> Self {
        let total = (bytes / UNIT).max(1);
        ReplyBudget {
            units: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// Waits for the share of a batch of `frames` (see [`bound`]); none for a batch of
    /// small replies ([`UNCHARGED`]).
    pub async fn take(&self, frames: &[Frame]) -> Share {
        self.take_bytes(bound(frames)).await
    }

    /// Waits for a share of `bytes` (none below [`UNCHARGED`]).
    pub async fn take_bytes(&self, bytes: usize) -> Share {
        if bytes <= UNCHARGED {
            return Share {
                _permit: None,
                _extra: None,
                cap: MAX_BATCH_REPLY_BYTES,
            };
        }
        let units = bytes.div_ceil(UNIT).clamp(1, self.total);
        let permit = self
            .units
            .clone()
            .acquire_many_owned(units as u32)
            .await
            .ok();
        Share {
            _permit: permit,
            _extra: None,
            cap: units * UNIT,
        }
    }

    /// Bytes free now (for `STAT`).
    pub fn available(&self) -> usize {
        self.units.available_permits() * UNIT
    }
}

impl Share {
    /// The reply bytes the batch may produce: it stops taking requests there.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Takes more if the replies came out larger than the bound said (a whole-value read
    /// is bounded by the batch cap, but one value may exceed it): without waiting, since
    /// the bytes exist already; the budget is then over for as long as they are held.
    pub fn grow(&mut self, budget: &ReplyBudget, actual: usize, charged: usize) {
        if actual <= charged {
            return;
        }
        let units = (actual - charged).div_ceil(UNIT).min(budget.total) as u32;
        self._extra = budget.units.clone().try_acquire_many_owned(units).ok();
    }
}

/// The most reply bytes `frames` can produce served as one batch: a read its range up to
/// one piece (a longer reply's other pieces are charged as they go, `read_stream.rs`), a
/// bulk read as much as a batch may hold, anything else a small reply; never more than a
/// batch holds (the batch stops there, `dispatch.rs`).
pub fn bound(frames: &[Frame]) -> usize {
    let mut sum = 0usize;
    for f in frames {
        sum = sum.saturating_add(frame_bound(f));
        if sum >= MAX_BATCH_REPLY_BYTES {
            return MAX_BATCH_REPLY_BYTES;
        }
    }
    sum
}

fn frame_bound(f: &Frame) -> usize {
    match f.header.command {
        Command::Read => {
            match super::access::strip_envelope(f.clone()).and_then(|f| Request::decode(&f)) {
                Ok(Request::Read(ReadRequest { size, .. })) if size != READ_TO_END => {
                    (size.min(STREAM_PIECE as u64) as usize).saturating_add(SMALL_REPLY)
                }
                // A longer reply's other pieces are charged as they are sent.
                _ => STREAM_PIECE + SMALL_REPLY,
            }
        }
        Command::BulkRead => MAX_BULK_REPLY_BYTES,
        Command::Iterate | Command::RangeDigest => 1 << 20,
        Command::List => super::list::MAX_LIST_REPLY_BYTES,
        _ => SMALL_REPLY,
    }
}
