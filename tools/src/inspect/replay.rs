//! Replaying the log: blobs in id order, records in file order; a later record of a (key,
//! column) supersedes the earlier one and a tombstone removes it. This decides which record
//! of each key's column is live, exactly as the engine's open does (damaged records take no
//! part): a key's columns — its value, its name record — live side by side.

use std::collections::HashMap;

use ringblob_engine::Key;

use super::catalog::BlobReport;

/// What became of a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The newest record of its (key, column), and not a tombstone.
    Live,
    /// A value that a later record of its (key, column) (a value or a tombstone) replaced.
    Superseded,
    /// A tombstone.
    Removed,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Live => "live",
            State::Superseded => "superseded",
            State::Removed => "removed",
        }
    }
}

/// Where a record is: blob index in the catalog, row index in that blob's scan.
pub type Pos = (usize, usize);

/// The outcome of a replay.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    /// `states[b][r]` for row `r` of blob `b`.
    pub states: Vec<Vec<State>>,
    /// Per blob: bytes of tombstones that still hide a value in an earlier blob, so
    /// rewriting this blob alone could not drop them.
    pub pinned_bytes: Vec<u64>,
    newest: HashMap<(Key, u16), Pos>,
}

impl Replay {
    pub fn run(blobs: &[BlobReport]) -> Replay {
        let mut r = Replay::default();
        for (b, report) in blobs.iter().enumerate() {
            r.states.push(Vec::with_capacity(report.scan.rows.len()));
            r.pinned_bytes.push(0);
            for (i, row) in report.scan.rows.iter().enumerate() {
                let state = if row.is_tombstone() {
                    State::Removed
                } else {
                    State::Live
                };
                if let Some(s) = r.states.get_mut(b) {
                    s.push(state);
                }
                let Some((pb, pi)) = r.newest.insert((row.key, row.column), (b, i)) else {
                    continue;
                };
                let prev = r.states.get_mut(pb).and_then(|s| s.get_mut(pi));
                if let Some(prev @ State::Live) = prev {
                    *prev = State::Superseded;
                    if row.is_tombstone() && pb < b {
                        if let Some(p) = r.pinned_bytes.get_mut(b) {
                            *p += row.len;
                        }
                    }
                }
            }
        }
        r
    }

    /// The newest valid record of `key`'s `column` (a tombstone if it was removed last).
    pub fn newest(&self, key: &Key, column: u16) -> Option<Pos> {
        self.newest.get(&(*key, column)).copied()
    }

    pub fn state(&self, (b, r): Pos) -> Option<State> {
        self.states.get(b).and_then(|s| s.get(r)).copied()
    }
}
