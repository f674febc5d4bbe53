//! [`RangeWalk`]: a ring range as spans of the backend's key order, listed page by page.
//!
//! A ring range may wrap past the top of the ring, so it is walked as at most two ascending
//! inclusive spans ([`linear_parts`]), one after the other; each page resumes at the last
//! key of the one before, so the backend lists from there, not from the span's start. The
//! walk is pure: it says which page to ask for ([`RangeWalk::request`]) and takes the
//! backend's answer ([`RangeWalk::take`]); the hand-over and repair state machines use it.

use ringblob_backends::{IterPage, IterRequest, Meta, Position};
use ringblob_engine::Key;

use crate::ring::KeyRange;

/// The range as at most two ascending inclusive key spans (it may wrap past the top of the
/// ring). Spans include `start_excl` itself; callers filter with `KeyRange::contains`.
pub fn linear_parts(range: &KeyRange) -> Vec<(Key, Key)> {
    let start = Key(range.start_excl.0);
    let end = Key(range.end_incl.0);
    if range.is_whole_ring() || start >= end {
        vec![(start, Key([0xff; 32])), (Key([0; 32]), end)]
    } else {
        vec![(start, end)]
    }
}

/// A walk over the live values of a ring range, page by page in key order.
#[derive(Debug, Clone)]
pub struct RangeWalk {
    range: KeyRange,
    /// Spans still to walk, the next one last.
    spans: Vec<(Key, Key)>,
    after: Option<Position>,
    limit: usize,
}

/// One page of a [`RangeWalk`].
#[derive(Debug, Clone)]
pub struct RangePage {
    /// The page's values in the range, in (key, column) order.
    pub entries: Vec<Meta>,
    /// More values may follow in this page's span (the last key may have more columns).
    pub span_more: bool,
}

impl RangeWalk {
    /// A walk over `range` in pages of at most `limit` values.
    pub fn new(range: KeyRange, limit: usize) -> Self {
        let mut spans = linear_parts(&range);
        spans.reverse();
        RangeWalk {
            range,
            spans,
            after: None,
            limit,
        }
    }

    /// The request for the next page; `None` when the walk is over.
    pub fn request(&self) -> Option<IterRequest> {
        let (from, to) = *self.spans.last()?;
        Some(IterRequest {
            from: self.after.map_or(from, |p| p.key),
            to,
            after: self.after,
            limit: self.limit,
        })
    }

    /// Takes the backend's answer to [`request`](Self::request).
    pub fn take(&mut self, page: IterPage) -> RangePage {
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
}

impl RangePage {
    /// The last key all of whose columns this page delivered: the page's last key, unless
    /// more columns of it may follow in the next page (then the key before it).
    pub fn finished_key(&self) -> Option<[u8; 32]> {
        let last = self.entries.last().map(|m| m.key.0);
        if !self.span_more {
            return last;
        }
        self.entries
            .iter()
            .rev()
            .map(|m| m.key.0)
            .find(|k| Some(*k) != last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::RingId;

    #[test]
    fn a_wrapping_range_is_two_spans_walked_in_order() {
        let range = KeyRange::new(RingId([0xf0; 32]), RingId([0x10; 32]));
        let parts = linear_parts(&range);
        assert_eq!(parts.len(), 2);
        let mut walk = RangeWalk::new(range, 10);
        let first = walk.request().map(|r| r.from);
        assert_eq!(first, Some(Key([0xf0; 32])));
        walk.take(IterPage {
            entries: Vec::new(),
            next_after: None,
        });
        assert_eq!(walk.request().map(|r| r.from), Some(Key([0; 32])));
        walk.take(IterPage {
            entries: Vec::new(),
            next_after: None,
        });
        assert!(walk.request().is_none());
    }
}
