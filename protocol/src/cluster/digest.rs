//! [`DigestTree`]: a Merkle-style summary of the records of one key range, so two replicas
//! find the few sub-ranges where they differ and copy only those records.
//!
//! The range is cut into 16 equal parts, each part into 16, and so on to `depth` levels
//! (the cut points depend only on the range, so both sides cut alike). A leaf's digest is
//! the SHA-256 of its records (key, column, timestamp, checksum) in that order, or 32 zero
//! bytes if it has none; an inner digest is the SHA-256 of its 16 children's, or zeros if all
//! are. A peer's tree can be rebuilt from its leaves alone ([`DigestTree::from_leaves`]),
//! which is what a node sends (`RANGE_DIGEST`, `docs/PROTOCOL.md` §7.10).

use sha2::{Digest, Sha256};

use super::arith::{order_in, part_is_empty, sixteenth};
use super::ClusterError;
use crate::ring::{KeyRange, RingId};
use crate::wire::KeyId;

/// Children per inner node.
pub const DIGEST_FANOUT: usize = 16;
/// Deepest tree: 16^4 = 65536 leaves (2.2 MB of digests).
pub const MAX_DIGEST_DEPTH: u8 = 4;
/// [`depth_for`] aims at this many records per leaf.
pub const RECORDS_PER_LEAF: usize = 16;

/// A 32-byte digest.
pub type Hash = [u8; 32];
const EMPTY: Hash = [0; 32];

/// What a replica knows of one record: enough to tell which copy is newer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DigestEntry {
    /// The key.
    pub key: KeyId,
    /// The column of the key.
    pub column: u16,
    /// The write timestamp; the larger wins. Nodes put 0 here: replicas of one client
    /// write carry each node's own clock, and equal bytes are in sync (see the repairer).
    pub timestamp_ns: u64,
    /// The value's checksum, so equal timestamps with different values are seen.
    pub checksum: u32,
}

/// The depth for a range of about `count` records: the smallest with at most
/// [`RECORDS_PER_LEAF`] records per leaf on average, at most [`MAX_DIGEST_DEPTH`]. Both
/// sides must build with the same depth: the side that starts a comparison picks it.
pub fn depth_for(count: usize) -> u8 {
    let mut depth = 0u8;
    let mut leaves = 1usize;
    while depth < MAX_DIGEST_DEPTH && count > leaves.saturating_mul(RECORDS_PER_LEAF) {
        depth += 1;
        leaves = leaves.saturating_mul(DIGEST_FANOUT);
    }
    depth
}

/// Digests of a range at every level: `levels[0]` is the root, `levels[d]` has 16^d nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestTree {
    range: KeyRange,
    depth: u8,
    leaf_ranges: Vec<KeyRange>,
    levels: Vec<Vec<Hash>>,
}

impl DigestTree {
    /// The tree of `entries` (any order; keys outside `range` are ignored) at `depth`
    /// (capped at [`MAX_DIGEST_DEPTH`]).
    pub fn build(range: KeyRange, depth: u8, entries: &[DigestEntry]) -> DigestTree {
        let depth = depth.min(MAX_DIGEST_DEPTH);
        let leaf_ranges = leaf_ranges(&range, depth);
        // A part ending at the start itself is empty (narrow ranges) unless the range is
        // the whole ring, where that end is the last position.
        let whole = range.is_whole_ring();
        let ends: Vec<(bool, RingId)> = leaf_ranges
            .iter()
            .map(|r| match order_in(&range, &r.end_incl) {
                (true, _) if !whole => (false, RingId::MIN),
                at => at,
            })
            .collect();
        let mut buckets: Vec<Vec<DigestEntry>> = vec![Vec::new(); leaf_ranges.len()];
        for entry in entries.iter().filter(|e| range.contains(&e.key)) {
            let at = order_in(&range, &RingId(entry.key));
            let leaf = ends.partition_point(|end| *end < at);
            if let Some(bucket) = buckets.get_mut(leaf) {
                bucket.push(*entry);
            }
        }
        let leaves: Vec<Hash> = buckets.iter_mut().map(|b| leaf_digest(b)).collect();
        DigestTree {
            range,
            depth,
            leaf_ranges,
            levels: levels_above(leaves),
        }
    }

    /// The tree whose leaves (16^`depth` of them, in order) are `leaves`, as a peer sent
    /// them. `None` if the count does not fit the depth.
    pub fn from_leaves(range: KeyRange, depth: u8, leaves: Vec<Hash>) -> Option<DigestTree> {
        let depth = depth.min(MAX_DIGEST_DEPTH);
        let leaf_ranges = leaf_ranges(&range, depth);
        if leaves.len() != leaf_ranges.len() {
            return None;
        }
        Some(DigestTree {
            range,
            depth,
            leaf_ranges,
            levels: levels_above(leaves),
        })
    }

    /// The leaf digests, in the range's order (16^depth of them).
    pub fn leaves(&self) -> &[Hash] {
        self.levels.last().map(Vec::as_slice).unwrap_or_default()
    }

    /// The range summarized.
    pub fn range(&self) -> KeyRange {
        self.range
    }

    /// Levels below the root.
    pub fn depth(&self) -> u8 {
        self.depth
    }

    /// The root digest: equal roots mean equal records (up to SHA-256 collisions).
    pub fn root(&self) -> Hash {
        self.levels
            .first()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or(EMPTY)
    }

    /// The smallest sub-ranges (leaves) whose records differ between the two trees,
    /// adjacent ones merged, in the range's order. Only subtrees whose digests differ are
    /// visited. Fails if the trees cover different ranges or have different depths.
    pub fn diff(&self, other: &DigestTree) -> Result<Vec<KeyRange>, ClusterError> {
        if (self.range, self.depth) != (other.range, other.depth) {
            return Err(ClusterError::DigestShapeMismatch);
        }
        let mut frontier = vec![0usize];
        for (mine, theirs) in self.levels.iter().zip(&other.levels).skip(1) {
            frontier = frontier
                .iter()
                .flat_map(|parent| parent * DIGEST_FANOUT..(parent + 1) * DIGEST_FANOUT)
                .filter(|i| mine.get(*i) != theirs.get(*i))
                .collect();
        }
        if self.root() == other.root() {
            frontier.clear();
        }
        let mut out: Vec<KeyRange> = Vec::new();
        for leaf in frontier {
            let Some(range) = self.leaf_ranges.get(leaf) else {
                continue;
            };
            match out.last_mut() {
                Some(last) if last.end_incl == range.start_excl => last.end_incl = range.end_incl,
                _ => out.push(*range),
            }
        }
        Ok(out)
    }
}

/// Every level from the root down to `leaves`.
fn levels_above(leaves: Vec<Hash>) -> Vec<Vec<Hash>> {
    let mut levels = vec![leaves];
    while levels.last().is_some_and(|l| l.len() > 1) {
        let below = levels.last().map(Vec::as_slice).unwrap_or_default();
        let above = below.chunks(DIGEST_FANOUT).map(inner_digest).collect();
        levels.push(above);
    }
    levels.reverse();
    levels
}

/// The 16^depth leaf ranges of `range`, in order.
fn leaf_ranges(range: &KeyRange, depth: u8) -> Vec<KeyRange> {
    let mut ranges = vec![*range];
    for _ in 0..depth {
        ranges = ranges
            .iter()
            .flat_map(|r| (0..16u8).map(move |i| sixteenth(r, i)))
            .collect();
    }
    // Parts of very narrow ranges can be empty; they must never receive a key.
    for r in ranges.iter_mut() {
        if part_is_empty(range, r) {
            *r = KeyRange::new(r.end_incl, r.end_incl);
        }
    }
    ranges
}

fn leaf_digest(entries: &mut [DigestEntry]) -> Hash {
    if entries.is_empty() {
        return EMPTY;
    }
    entries.sort_unstable();
    let mut hasher = Sha256::new();
    for e in entries.iter() {
        hasher.update(e.key);
        hasher.update(e.column.to_le_bytes());
        hasher.update(e.timestamp_ns.to_le_bytes());
        hasher.update(e.checksum.to_le_bytes());
    }
    hasher.finalize().into()
}

fn inner_digest(children: &[Hash]) -> Hash {
    if children.iter().all(|c| *c == EMPTY) {
        return EMPTY;
    }
    let mut hasher = Sha256::new();
    for child in children {
        hasher.update(child);
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, RngCore, SeedableRng};

    fn entries(n: usize, seed: u64) -> Vec<DigestEntry> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let mut key = [0u8; 32];
                rng.fill_bytes(&mut key);
                DigestEntry {
                    key,
                    column: 0,
                    timestamp_ns: rng.next_u64() % 1000,
                    checksum: rng.next_u32(),
                }
            })
            .collect()
    }

    fn whole() -> KeyRange {
        KeyRange::new(RingId::MIN, RingId::MIN)
    }

    #[test]
    fn depth_grows_with_the_count() {
        assert_eq!(depth_for(0), 0);
        assert_eq!(depth_for(16), 0);
        assert_eq!(depth_for(17), 1);
        assert_eq!(depth_for(4096), 2);
        assert_eq!(depth_for(usize::MAX), MAX_DIGEST_DEPTH);
    }

    #[test]
    fn equal_sets_have_equal_roots_in_any_order() -> Result<(), ClusterError> {
        let a = entries(500, 1);
        let mut b = a.clone();
        b.reverse();
        let (ta, tb) = (
            DigestTree::build(whole(), 2, &a),
            DigestTree::build(whole(), 2, &b),
        );
        assert_eq!(ta.root(), tb.root());
        assert!(ta.diff(&tb)?.is_empty());
        Ok(())
    }

    #[test]
    fn diff_finds_exactly_the_changed_records() -> Result<(), ClusterError> {
        let a = entries(2000, 2);
        let mut b = a.clone();
        let changed = [17usize, 900, 1999];
        for i in changed {
            if let Some(e) = b.get_mut(i) {
                e.timestamp_ns += 1;
            }
        }
        b.truncate(1999); // and one missing record (the last one, also changed above)
        let depth = depth_for(a.len());
        let (ta, tb) = (
            DigestTree::build(whole(), depth, &a),
            DigestTree::build(whole(), depth, &b),
        );
        let ranges = ta.diff(&tb)?;
        assert!(ranges.len() <= changed.len());
        for i in changed {
            let key = a.get(i).map(|e| e.key).unwrap_or_default();
            assert!(ranges.iter().any(|r| r.contains(&key)), "record {i} missed");
        }
        let covered = a
            .iter()
            .filter(|e| ranges.iter().any(|r| r.contains(&e.key)))
            .count();
        assert!(covered < 60, "{covered} records to copy for 3 changes");
        Ok(())
    }

    #[test]
    fn a_tree_rebuilt_from_its_leaves_is_the_same_tree() -> Result<(), ClusterError> {
        let a = entries(3000, 4);
        let mut b = a.clone();
        if let Some(e) = b.get_mut(7) {
            e.column = 1;
        }
        let depth = depth_for(a.len());
        let ta = DigestTree::build(whole(), depth, &a);
        let tb = DigestTree::build(whole(), depth, &b);
        let sent = DigestTree::from_leaves(whole(), depth, tb.leaves().to_vec());
        assert_eq!(sent.as_ref(), Some(&tb));
        let diff = ta.diff(&tb)?;
        assert_eq!(diff.len(), 1, "a changed column is a difference");
        assert!(DigestTree::from_leaves(whole(), depth, vec![[0; 32]; 3]).is_none());
        Ok(())
    }

    #[test]
    fn narrow_and_wrapping_ranges() -> Result<(), ClusterError> {
        let mut end = RingId::MIN;
        end.0[31] = 5;
        let narrow = KeyRange::new(RingId::MAX, end); // wraps: ff..ff < k <= 5
        let e = |k: u8| DigestEntry {
            key: {
                let mut key = [0u8; 32];
                key[31] = k;
                key
            },
            column: 0,
            timestamp_ns: 1,
            checksum: 0,
        };
        let a = DigestTree::build(narrow, 2, &[e(0), e(3), e(9)]);
        let b = DigestTree::build(narrow, 2, &[e(0), e(3)]);
        assert_eq!(a.root(), b.root(), "key 9 is outside the range");
        let c = DigestTree::build(narrow, 2, &[e(0)]);
        let diff = a.diff(&c)?;
        assert_eq!(diff.len(), 1);
        assert!(diff
            .iter()
            .all(|r| r.contains(&e(3).key) && !r.contains(&e(0).key)));
        assert_eq!(
            a.diff(&DigestTree::build(narrow, 1, &[])),
            Err(ClusterError::DigestShapeMismatch)
        );
        Ok(())
    }
}
