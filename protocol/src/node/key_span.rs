//! A ring range as spans of the backend's key order, and the Merkle-style summary of what a
//! node holds in one (`RANGE_DIGEST`, `docs/PROTOCOL.md` §7.10).

use ringblob_backends::{
    AsyncBackend, Backend, IterPage, IterRequest, Meta, Position, MAX_ITER_LIMIT,
};
use ringblob_engine::Key;

use crate::cluster::{DigestEntry, DigestTree};
use crate::ring::{KeyRange, RingId};
use crate::wire::{RangeDigestReply, RangeDigestRequest};

/// The range as at most two ascending inclusive key spans (it may wrap past the top of the
/// ring). Spans include `start_excl` itself; callers filter with `KeyRange::contains`.
pub(super) fn linear_parts(range: &KeyRange) -> Vec<(Key, Key)> {
    let start = Key(range.start_excl.0);
    let end = Key(range.end_incl.0);
    if range.is_whole_ring() || start >= end {
        vec![(start, Key([0xff; 32])), (Key([0; 32]), end)]
    } else {
        vec![(start, end)]
    }
}

/// A walk over the live values of a ring range, page by page in key order (one linear span
/// after the other), each page resuming at the last key of the one before — so the backend
/// lists from there, not from the span's start.
pub(super) struct RangePages {
    range: KeyRange,
    /// Spans still to walk, the next one last.
    spans: Vec<(Key, Key)>,
    after: Option<Position>,
    limit: usize,
}

/// One page of a [`RangePages`] walk.
pub(super) struct RangePage {
    /// The page's values in the range, in (key, column) order.
    pub entries: Vec<Meta>,
    /// More values may follow in this page's span (the last key may have more columns).
    pub span_more: bool,
}

impl RangePages {
    pub fn new(range: KeyRange, limit: usize) -> Self {
        let mut spans = linear_parts(&range);
        spans.reverse();
        RangePages {
            range,
            spans,
            after: None,
            limit,
        }
    }

    /// The request for the next page; `None` when the walk is over.
    fn request(&self) -> Option<IterRequest> {
        let (from, to) = *self.spans.last()?;
        Some(IterRequest {
            from: self.after.map_or(from, |p| p.key),
            to,
            after: self.after,
            limit: self.limit,
        })
    }

    /// Takes the backend's answer to [`request`](Self::request).
    fn take(&mut self, page: IterPage) -> RangePage {
        let span_more = page.next_after.is_some();
        match page.next_after {
            Some(p) => self.after = Some(p),
            None => {
                self.spans.pop();
                self.after = None;
            }
        }
        let range = self.range;
        let mut entries = page.entries;
        entries.retain(|m| range.contains(&m.key.0));
        RangePage { entries, span_more }
    }

    /// The next page, from `backend` on its blocking pool.
    pub async fn next(&mut self, backend: &AsyncBackend) -> Result<Option<RangePage>, String> {
        let Some(req) = self.request() else {
            return Ok(None);
        };
        let page = backend
            .run(move |b| b.iterate(&req))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Some(self.take(page)))
    }

    /// The next page, from `b` on this thread.
    pub fn next_here(&mut self, b: &dyn Backend) -> ringblob_backends::Result<Option<RangePage>> {
        let Some(req) = self.request() else {
            return Ok(None);
        };
        Ok(Some(self.take(b.iterate(&req)?)))
    }
}

/// Calls `f` with every live value in `range`.
pub(super) fn for_each_in(
    b: &dyn Backend,
    range: &KeyRange,
    mut f: impl FnMut(&Meta),
) -> ringblob_backends::Result<()> {
    let mut pages = RangePages::new(*range, MAX_ITER_LIMIT);
    while let Some(page) = pages.next_here(b)? {
        page.entries.iter().for_each(&mut f);
    }
    Ok(())
}

/// The summary entries of every live value in `range`.
pub(super) fn digest_entries(
    b: &dyn Backend,
    range: &KeyRange,
) -> ringblob_backends::Result<Vec<DigestEntry>> {
    let mut out = Vec::new();
    for_each_in(b, range, |m| out.push(digest_entry(m)))?;
    Ok(out)
}

/// What the summary hashes of a value: its key, column and checksum. The timestamp is left
/// out (0): replicas of one client write carry each node's own clock, and equal bytes are in
/// sync — repair copies only values whose checksums differ.
pub(super) fn digest_entry(m: &Meta) -> DigestEntry {
    DigestEntry {
        key: m.key.0,
        column: m.column,
        timestamp_ns: 0,
        checksum: m.checksum,
    }
}

/// Answers `RANGE_DIGEST`.
pub(super) fn range_digest(
    b: &dyn Backend,
    req: &RangeDigestRequest,
) -> ringblob_backends::Result<RangeDigestReply> {
    let range = KeyRange::new(RingId(req.start_excl), RingId(req.end_incl));
    let entries = digest_entries(b, &range)?;
    let tree = DigestTree::build(range, req.depth, &entries);
    Ok(RangeDigestReply {
        records: entries.len() as u64,
        depth: req.depth,
        leaves: tree.leaves().to_vec(),
    })
}
