//! A ring range as spans of the backend's key order, and the Merkle-style summary of what a
//! node holds in one (`RANGE_DIGEST`, `docs/PROTOCOL.md` §7.10).

use ringblob_backends::{Backend, IterRequest, Meta, MAX_ITER_LIMIT};
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

/// Calls `f` with every live value in `range`, page by page of the backend's iteration.
pub(super) fn for_each_in(
    b: &dyn Backend,
    range: &KeyRange,
    mut f: impl FnMut(&Meta),
) -> ringblob_backends::Result<()> {
    for (mut from, to) in linear_parts(range) {
        let mut after = None;
        loop {
            let page = b.iterate(&IterRequest {
                from,
                to,
                after,
                limit: MAX_ITER_LIMIT,
            })?;
            page.entries
                .iter()
                .filter(|m| range.contains(&m.key.0))
                .for_each(&mut f);
            match page.next_after {
                // Resume at the page's last key: the backend lists from `from`.
                Some(p) => (from, after) = (p.key, Some(p)),
                None => break,
            }
        }
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
