//! [`RepairRange`]: the per-step decisions of repairing one [`RepairTask`] — one range this
//! node shares with a peer of another group — as a sans-IO state machine. The node's
//! repairer and the simulator drive the same machine: each [`RepairStep`] is something to
//! do (read the local backend, ask or send to the peer), and its [`RepairAnswer`] is fed
//! back with [`RepairRange::advance`].
//!
//! 1. Both digest trees are compared (`RANGE_DIGEST`); only the sub-ranges where they
//!    differ are looked at (the whole range if the peer predates `RANGE_DIGEST`).
//! 2. In each differing span, this node's values are listed page by page, the peer's metas
//!    of the same key span are listed (`ITERATE`), and every (key, column) the peer lacks,
//!    or holds older with other bytes, is pushed as a conditional copy. Each side pushes
//!    what it has, so a round on both ends converges them.
//! 3. The removes this node remembers in the span are pushed as copied removes, so the
//!    peer drops values older than them and its own round does not push them back.
//!
//! While this node is quarantined (`untrusted_before`), a record older than the quarantine
//! is never pushed: if the peer lacks it (it may be a value removed while this node was
//! away) or holds newer other bytes, it is dropped (`drop_copy`, not a remove).

use std::collections::{HashMap, VecDeque};

use ringblob_backends::{IterPage, IterRequest, Meta, Removal};
use ringblob_engine::Key;

use super::local::Record;
use super::range_walk::RangeWalk;
use super::{depth_for, ClusterError, DigestEntry, DigestTree, RepairTask};
use crate::ring::KeyRange;
use crate::wire::{
    IterEntry, IterPosition, IterateEnd, IterateRequest, RangeDigestReply, RangeDigestRequest,
    ValueMeta, MAX_RANGE_DIGEST_DEPTH,
};

/// Values compared per page.
pub const REPAIR_PAGE: usize = 1000;

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairStep {
    /// Summarise the local values of the range (answer: [`RepairAnswer::Digest`]).
    DigestMine(KeyRange),
    /// Ask the peer for its digest (answer: [`RepairAnswer::PeerDigest`]).
    PeerDigest(RangeDigestRequest),
    /// List one page of local values (answer: [`RepairAnswer::Page`]).
    ListPage(IterRequest),
    /// List the peer's metas (answer: [`RepairAnswer::PeerPage`]).
    PeerList(IterateRequest),
    /// Read (key, column) with its timestamp (answer: [`RepairAnswer::Record`]).
    ReadRecord { key: Key, column: u16 },
    /// Send a conditional copy to the peer (answer: [`RepairAnswer::Sent`]).
    SendCopy {
        key: Key,
        column: u16,
        record: Record,
    },
    /// Drop a quarantined local record (answer: [`RepairAnswer::Dropped`]).
    DropCopy {
        key: Key,
        column: u16,
        timestamp_ns: u64,
    },
    /// List the removes remembered in a span (answer: [`RepairAnswer::Removes`]).
    ListRemoves(KeyRange),
    /// Send a copied remove to the peer (answer: [`RepairAnswer::Sent`]).
    SendRemove(Removal),
    /// The range is repaired.
    Done,
}

/// The outcome of a [`RepairStep`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairAnswer {
    /// The first call.
    Start,
    Digest(Vec<DigestEntry>),
    /// `None`: the peer predates `RANGE_DIGEST` (it answered `UNKNOWN_COMMAND`).
    PeerDigest(Option<RangeDigestReply>),
    Page(IterPage),
    PeerPage {
        entries: Vec<IterEntry>,
        end: IterateEnd,
    },
    Record(Option<Record>),
    Sent(bool),
    Dropped(bool),
    Removes(Vec<Removal>),
}

/// What one range's repair did, for `stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepairTally {
    pub records_compared: u64,
    /// The digests matched: nothing was listed or copied.
    pub in_sync: bool,
    pub records_pushed: u64,
    pub removes_pushed: u64,
    pub quarantine_dropped: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Push(Meta),
    Drop(Meta),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Waiting {
    Start,
    Digest,
    PeerDigest { depth: u8, mine: Vec<DigestEntry> },
    Page,
    PeerPage,
    Record { key: Key, column: u16 },
    CopySent,
    Dropped,
    Removes,
    RemoveSent,
    Finished,
}

/// One range's repair (see the module docs).
#[derive(Debug, Clone)]
pub struct RepairRange {
    range: KeyRange,
    untrusted_before: Option<u64>,
    /// Differing spans still to repair, the next one last.
    spans: Vec<KeyRange>,
    span: Option<(KeyRange, RangeWalk)>,
    /// The current page of local values, waiting for the peer's listing.
    mine: Vec<Meta>,
    theirs: HashMap<([u8; 32], u16), ValueMeta>,
    actions: VecDeque<Action>,
    removes: VecDeque<Removal>,
    tally: RepairTally,
    waiting: Waiting,
}

impl RepairRange {
    /// The repair of `task`'s range; records older than `untrusted_before` are quarantined.
    pub fn new(task: &RepairTask, untrusted_before: Option<u64>) -> RepairRange {
        RepairRange {
            range: task.range,
            untrusted_before,
            spans: Vec::new(),
            span: None,
            mine: Vec::new(),
            theirs: HashMap::new(),
            actions: VecDeque::new(),
            removes: VecDeque::new(),
            tally: RepairTally::default(),
            waiting: Waiting::Start,
        }
    }

    /// What the repair did so far.
    pub fn tally(&self) -> RepairTally {
        self.tally
    }

    /// Takes the answer to the last step (`Start` first) and says what to do next.
    pub fn advance(&mut self, answer: RepairAnswer) -> Result<RepairStep, ClusterError> {
        let waiting = std::mem::replace(&mut self.waiting, Waiting::Finished);
        match (waiting, answer) {
            (Waiting::Start, RepairAnswer::Start) => {
                self.waiting = Waiting::Digest;
                Ok(RepairStep::DigestMine(self.range))
            }
            (Waiting::Digest, RepairAnswer::Digest(mine)) => Ok(self.ask_digest(mine)),
            (Waiting::PeerDigest { depth, mine }, RepairAnswer::PeerDigest(theirs)) => {
                self.compare(depth, &mine, theirs)?;
                Ok(self.next_span())
            }
            (Waiting::Page, RepairAnswer::Page(page)) => Ok(self.take_page(page)),
            (Waiting::PeerPage, RepairAnswer::PeerPage { entries, end }) => {
                Ok(self.take_peer_page(entries, end))
            }
            (Waiting::Record { .. }, RepairAnswer::Record(None)) => Ok(self.next_action()),
            (Waiting::Record { key, column }, RepairAnswer::Record(Some(record))) => {
                self.waiting = Waiting::CopySent;
                Ok(RepairStep::SendCopy {
                    key,
                    column,
                    record,
                })
            }
            (Waiting::CopySent, RepairAnswer::Sent(stored)) => {
                self.tally.records_pushed += u64::from(stored);
                Ok(self.next_action())
            }
            (Waiting::Dropped, RepairAnswer::Dropped(dropped)) => {
                self.tally.quarantine_dropped += u64::from(dropped);
                Ok(self.next_action())
            }
            (Waiting::Removes, RepairAnswer::Removes(found)) => {
                let span = self.span.as_ref().map(|(s, _)| *s);
                self.removes = found
                    .into_iter()
                    .filter(|r| span.is_some_and(|s| s.contains(&r.key.0)))
                    .collect();
                Ok(self.next_remove())
            }
            (Waiting::RemoveSent, RepairAnswer::Sent(sent)) => {
                self.tally.removes_pushed += u64::from(sent);
                Ok(self.next_remove())
            }
            (waiting, answer) => {
                let got = answer_name(&answer);
                self.waiting = waiting.clone();
                Err(ClusterError::UnexpectedAnswer {
                    machine: "repair",
                    waiting: format!("{waiting:?}"),
                    got,
                })
            }
        }
    }

    fn ask_digest(&mut self, mine: Vec<DigestEntry>) -> RepairStep {
        let depth = depth_for(mine.len()).min(MAX_RANGE_DIGEST_DEPTH);
        self.waiting = Waiting::PeerDigest { depth, mine };
        RepairStep::PeerDigest(RangeDigestRequest {
            start_excl: self.range.start_excl.0,
            end_incl: self.range.end_incl.0,
            depth,
        })
    }

    /// Finds the differing spans from both digests.
    fn compare(
        &mut self,
        depth: u8,
        mine: &[DigestEntry],
        theirs: Option<RangeDigestReply>,
    ) -> Result<(), ClusterError> {
        let Some(theirs) = theirs else {
            self.spans = vec![self.range];
            return Ok(());
        };
        let theirs = DigestTree::from_leaves(self.range, depth, theirs.leaves)
            .ok_or(ClusterError::DigestShapeMismatch)?;
        let mut differing = DigestTree::build(self.range, depth, mine).diff(&theirs)?;
        self.tally.in_sync = differing.is_empty();
        differing.reverse();
        self.spans = differing;
        Ok(())
    }

    fn next_span(&mut self) -> RepairStep {
        match self.spans.pop() {
            Some(span) => {
                self.span = Some((span, RangeWalk::new(span, REPAIR_PAGE)));
                self.next_page()
            }
            None => RepairStep::Done,
        }
    }

    fn next_page(&mut self) -> RepairStep {
        let Some((span, walk)) = self.span.as_ref() else {
            return self.next_span();
        };
        match walk.request() {
            Some(req) => {
                self.waiting = Waiting::Page;
                RepairStep::ListPage(req)
            }
            None => {
                self.waiting = Waiting::Removes;
                RepairStep::ListRemoves(*span)
            }
        }
    }

    fn take_page(&mut self, page: IterPage) -> RepairStep {
        let Some((_, walk)) = self.span.as_mut() else {
            return self.next_span();
        };
        self.mine = walk.take(page).entries;
        self.theirs.clear();
        match (self.mine.first(), self.mine.last()) {
            (Some(first), Some(last)) => {
                let (from, to) = (first.key.0, last.key.0);
                self.peer_list(from, to, None)
            }
            _ => self.next_page(),
        }
    }

    fn peer_list(
        &mut self,
        from: [u8; 32],
        to: [u8; 32],
        after: Option<IterPosition>,
    ) -> RepairStep {
        self.waiting = Waiting::PeerPage;
        RepairStep::PeerList(IterateRequest {
            from,
            to,
            after,
            limit: REPAIR_PAGE as u32,
        })
    }

    fn take_peer_page(&mut self, entries: Vec<IterEntry>, end: IterateEnd) -> RepairStep {
        for e in entries {
            self.theirs.insert((e.key, e.meta.column), e.meta);
        }
        if let IterateEnd::ResumeAfter(p) = end {
            let from = p.key;
            let to = self.mine.last().map_or(from, |m| m.key.0);
            return self.peer_list(from, to, Some(p));
        }
        self.decide();
        self.next_action()
    }

    /// What to do with each local value of the page, given the peer's.
    fn decide(&mut self) {
        let mine = std::mem::take(&mut self.mine);
        self.tally.records_compared += mine.len() as u64;
        for m in mine {
            let theirs = self.theirs.get(&(m.key.0, m.column));
            if self.untrusted_before.is_some_and(|t| m.timestamp_ns < t) {
                // Quarantined: a record the peer lacks may be a value removed while this
                // node was away (and forgotten since); one the peer holds newer (other
                // bytes) is stale. The same bytes are kept, whatever their timestamps.
                let newer = theirs
                    .is_none_or(|t| t.checksum != m.checksum && t.timestamp_ns > m.timestamp_ns);
                if newer {
                    self.actions.push_back(Action::Drop(m));
                }
                continue;
            }
            let stale =
                theirs.is_none_or(|t| t.checksum != m.checksum && t.timestamp_ns < m.timestamp_ns);
            if stale {
                self.actions.push_back(Action::Push(m));
            }
        }
        self.theirs.clear();
    }

    fn next_action(&mut self) -> RepairStep {
        match self.actions.pop_front() {
            Some(Action::Push(m)) => {
                self.waiting = Waiting::Record {
                    key: m.key,
                    column: m.column,
                };
                RepairStep::ReadRecord {
                    key: m.key,
                    column: m.column,
                }
            }
            Some(Action::Drop(m)) => {
                self.waiting = Waiting::Dropped;
                RepairStep::DropCopy {
                    key: m.key,
                    column: m.column,
                    timestamp_ns: m.timestamp_ns,
                }
            }
            None => self.next_page(),
        }
    }

    fn next_remove(&mut self) -> RepairStep {
        match self.removes.pop_front() {
            Some(r) => {
                self.waiting = Waiting::RemoveSent;
                RepairStep::SendRemove(r)
            }
            None => {
                self.span = None;
                self.next_span()
            }
        }
    }
}

fn answer_name(a: &RepairAnswer) -> &'static str {
    match a {
        RepairAnswer::Start => "Start",
        RepairAnswer::Digest(_) => "Digest",
        RepairAnswer::PeerDigest(_) => "PeerDigest",
        RepairAnswer::Page(_) => "Page",
        RepairAnswer::PeerPage { .. } => "PeerPage",
        RepairAnswer::Record(_) => "Record",
        RepairAnswer::Sent(_) => "Sent",
        RepairAnswer::Dropped(_) => "Dropped",
        RepairAnswer::Removes(_) => "Removes",
    }
}
