//! [`HandoverStream`]: the per-step decisions of streaming one [`Transfer`] to its new
//! owner, as a sans-IO state machine. The node's mover and the simulator drive the same
//! machine: each [`HandoverStep`] is something to do (read the local backend, send to the
//! new owner, wait, report progress), and its [`HandoverAnswer`] is fed back with
//! [`HandoverStream::advance`] to get the next step.
//!
//! The order of a stream:
//! 1. **Removes first**: every remove the source remembers in the range and no newer value
//!    supersedes (`local::removes_to_hand_over`) is sent as a copied remove, so no copy of a
//!    removed value can land on the new owner later. A superseded remove is left out: its
//!    newer value follows, and the new owner, knowing nothing of the key meanwhile, reads it
//!    through from here.
//! 2. **Values page by page**, in key order: each (key, column) is read with its timestamp,
//!    sent as a conditional copy (`IF_NEWER`), and then the source drops its own copy
//!    (`drop_copy`, not a remove) — the new owner holds it or something newer, and the
//!    source must never serve it stale if the range falls back to it later. Records older
//!    than a quarantine are never handed on. After each send the driver paces (one rate for
//!    all transfers).
//! 3. **Progress** after each page: the last key all of whose columns were delivered, so a
//!    crash resumes there.

use std::collections::VecDeque;

use ringblob_backends::{IterPage, IterRequest, Meta, Removal};
use ringblob_engine::Key;

use super::local::Record;
use super::range_walk::RangeWalk;
use super::{ClusterError, Transfer};
use crate::ring::KeyRange;
use crate::wire::KeyId;

/// Values read per page.
pub const HANDOVER_PAGE: usize = 256;

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoverStep {
    /// List the removes to hand over in the range, `local::removes_to_hand_over` (answer:
    /// [`HandoverAnswer::Removes`]).
    ListRemoves(KeyRange),
    /// Send a copied remove to the new owner (answer: [`HandoverAnswer::Sent`]).
    SendRemove(Removal),
    /// List one page of local values (answer: [`HandoverAnswer::Page`]).
    ListPage(IterRequest),
    /// Read (key, column) with its timestamp (answer: [`HandoverAnswer::Record`]).
    ReadRecord { key: Key, column: u16 },
    /// Send a conditional copy to the new owner (answer: [`HandoverAnswer::Sent`]).
    SendCopy {
        key: Key,
        column: u16,
        record: Record,
    },
    /// Drop the local copy stamped `timestamp_ns` (answer: [`HandoverAnswer::Dropped`]).
    DropCopy {
        key: Key,
        column: u16,
        timestamp_ns: u64,
    },
    /// `bytes` were sent: wait as the transfer rate requires (answer: `Continue`).
    Pace { bytes: u64 },
    /// Every key of the transfer up to `cursor` was delivered: record it (answer: `Continue`).
    Progress { cursor: KeyId },
    /// The transfer sent everything.
    Done,
}

/// The outcome of a [`HandoverStep`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoverAnswer {
    /// The first call, and the answer to `Pace` and `Progress`.
    Continue,
    Removes(Vec<Removal>),
    Page(IterPage),
    /// `None`: the value is gone (removed meanwhile).
    Record(Option<Record>),
    /// True if the new owner stored it; false if it held something at least as new.
    Sent(bool),
    Dropped(bool),
}

/// What the stream waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Waiting {
    Start,
    Removes,
    RemoveSent,
    Page,
    Record(Meta),
    CopySent { meta: Meta, bytes: u64 },
    Dropped { bytes: u64 },
    Paced,
    Progressed,
    Finished,
}

/// One transfer's stream (see the module docs).
#[derive(Debug, Clone)]
pub struct HandoverStream {
    id: u64,
    range: Option<KeyRange>,
    walk: Option<RangeWalk>,
    removes: VecDeque<Removal>,
    values: VecDeque<Meta>,
    /// Progress to report once the current page's values are sent.
    finished_key: Option<KeyId>,
    /// Records older than this (Unix ns) are not handed on (quarantine).
    untrusted_before: Option<u64>,
    waiting: Waiting,
}

impl HandoverStream {
    /// The stream of what remains of `t`; records older than `untrusted_before` are skipped.
    pub fn new(t: &Transfer, untrusted_before: Option<u64>) -> HandoverStream {
        let range = t.remaining();
        HandoverStream {
            id: t.id,
            range,
            walk: range.map(|r| RangeWalk::new(r, HANDOVER_PAGE)),
            removes: VecDeque::new(),
            values: VecDeque::new(),
            finished_key: None,
            untrusted_before,
            waiting: Waiting::Start,
        }
    }

    /// The transfer's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Takes the answer to the last step (`Continue` first) and says what to do next.
    pub fn advance(&mut self, answer: HandoverAnswer) -> Result<HandoverStep, ClusterError> {
        let waiting = std::mem::replace(&mut self.waiting, Waiting::Finished);
        match (waiting, answer) {
            (Waiting::Start, HandoverAnswer::Continue) => Ok(self.start()),
            (Waiting::Removes, HandoverAnswer::Removes(found)) => {
                let range = self.range;
                self.removes = found
                    .into_iter()
                    .filter(|r| range.is_some_and(|range| range.contains(&r.key.0)))
                    .collect();
                Ok(self.next())
            }
            (Waiting::RemoveSent, HandoverAnswer::Sent(_))
            | (Waiting::Paced | Waiting::Progressed, HandoverAnswer::Continue) => Ok(self.next()),
            (Waiting::Page, HandoverAnswer::Page(page)) => {
                if let Some(walk) = self.walk.as_mut() {
                    let page = walk.take(page);
                    self.finished_key = page.finished_key();
                    self.values = page.entries.into();
                }
                Ok(self.next())
            }
            (Waiting::Record(meta), HandoverAnswer::Record(found)) => Ok(self.copy(meta, found)),
            (Waiting::CopySent { meta, bytes }, HandoverAnswer::Sent(_)) => {
                self.waiting = Waiting::Dropped { bytes };
                Ok(HandoverStep::DropCopy {
                    key: meta.key,
                    column: meta.column,
                    timestamp_ns: meta.timestamp_ns,
                })
            }
            (Waiting::Dropped { bytes }, HandoverAnswer::Dropped(_)) => {
                self.waiting = Waiting::Paced;
                Ok(HandoverStep::Pace { bytes })
            }
            (waiting, answer) => {
                self.waiting = waiting.clone();
                Err(ClusterError::UnexpectedAnswer {
                    machine: "hand-over",
                    waiting: format!("{waiting:?}"),
                    got: answer_name(&answer),
                })
            }
        }
    }

    fn start(&mut self) -> HandoverStep {
        match self.range {
            Some(range) => {
                self.waiting = Waiting::Removes;
                HandoverStep::ListRemoves(range)
            }
            None => HandoverStep::Done,
        }
    }

    /// A record was read: send it, unless it is gone or untrusted.
    fn copy(&mut self, meta: Meta, found: Option<Record>) -> HandoverStep {
        let Some(record) = found else {
            return self.next();
        };
        if self
            .untrusted_before
            .is_some_and(|t| record.timestamp_ns < t)
        {
            return self.next();
        }
        let bytes = record.value.len() as u64;
        // The drop must name the record that was sent, not the one listed before it.
        let meta = Meta {
            timestamp_ns: record.timestamp_ns,
            ..meta
        };
        let (key, column) = (meta.key, meta.column);
        self.waiting = Waiting::CopySent { meta, bytes };
        HandoverStep::SendCopy {
            key,
            column,
            record,
        }
    }

    fn next(&mut self) -> HandoverStep {
        if let Some(r) = self.removes.pop_front() {
            self.waiting = Waiting::RemoveSent;
            return HandoverStep::SendRemove(r);
        }
        if let Some(meta) = self.values.pop_front() {
            let (key, column) = (meta.key, meta.column);
            self.waiting = Waiting::Record(meta);
            return HandoverStep::ReadRecord { key, column };
        }
        if let Some(cursor) = self.finished_key.take() {
            self.waiting = Waiting::Progressed;
            return HandoverStep::Progress { cursor };
        }
        match self.walk.as_ref().and_then(RangeWalk::request) {
            Some(req) => {
                self.waiting = Waiting::Page;
                HandoverStep::ListPage(req)
            }
            None => HandoverStep::Done,
        }
    }
}

fn answer_name(a: &HandoverAnswer) -> &'static str {
    match a {
        HandoverAnswer::Continue => "Continue",
        HandoverAnswer::Removes(_) => "Removes",
        HandoverAnswer::Page(_) => "Page",
        HandoverAnswer::Record(_) => "Record",
        HandoverAnswer::Sent(_) => "Sent",
        HandoverAnswer::Dropped(_) => "Dropped",
    }
}
