//! [`IncomingRanges`]: reads during a hand-over. When the ring changes, the ranges a node
//! takes over are still being streamed to it by their previous owner; until a key has
//! arrived, a read of it there would find nothing. So for a window after the change a
//! `LOOKUP` or `READ` of a key in such a range that the node cannot answer — no value, and
//! no remembered remove — is passed to the previous owner (`LOCAL`: serve from your own
//! storage), or answered `UNAVAILABLE` if that owner is down (`docs/PROTOCOL.md` §15.10).
//!
//! Safe because the fallback happens only when the node knows nothing newer about the key:
//! a value written there wins, and a remove made there is remembered for longer than the
//! window lasts. Time is the caller's (milliseconds on any monotonic clock), so the node
//! and the simulator run the same decisions.

use crate::ring::{KeyRange, RouteTable};
use crate::wire::KeyId;

/// A range taken over, and from whom.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Incoming {
    range: KeyRange,
    /// The previous owner's name.
    from: String,
    group: u32,
    until_ms: u64,
}

/// Who can answer a read a node has nothing for, in a range it took over recently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadThrough {
    /// The previous owner, alive: ask it (at `addr`, as a member of `group`).
    Ask {
        name: String,
        addr: String,
        group: u32,
    },
    /// The previous owner (named) is down: nobody in this group can tell whether the key
    /// exists, so the answer is `UNAVAILABLE`, never `NOT_FOUND`.
    Down(String),
}

/// The ranges one node took over recently.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncomingRanges {
    /// How long after a ring change its ranges are read through (zero: never).
    window_ms: u64,
    incoming: Vec<Incoming>,
}

impl IncomingRanges {
    /// Ranges taken over are read through for `window_ms` after the ring change.
    pub fn new(window_ms: u64) -> IncomingRanges {
        IncomingRanges {
            window_ms,
            incoming: Vec::new(),
        }
    }

    /// Notes the ranges of `me`'s group that moved to it from `before` to `after`, at
    /// `now_ms`; forgets expired ones.
    pub fn table_changed(
        &mut self,
        before: &RouteTable,
        after: &RouteTable,
        me: &str,
        now_ms: u64,
    ) {
        self.incoming.retain(|i| i.until_ms > now_ms);
        if self.window_ms == 0 {
            return;
        }
        let Some(group) = after.node(me).map(|n| n.group) else {
            return;
        };
        for m in before.moves_to(after, group) {
            if m.to == me && m.from != me {
                self.incoming.push(Incoming {
                    range: m.range,
                    from: m.from,
                    group,
                    until_ms: now_ms.saturating_add(self.window_ms),
                });
            }
        }
    }

    /// Notes, for a node starting again, the ranges of `table` it owns that other nodes
    /// owned while it was away: writes made meanwhile went to them, and they hand those keys
    /// back while the window runs. (To the rest of the cluster the node's return is a ring
    /// change; to the node itself the saved table never showed it gone.)
    pub fn rejoined(&mut self, table: &RouteTable, me: &str, now_ms: u64) {
        let mut away = table.clone();
        for n in away.nodes.iter_mut().filter(|n| n.name == me) {
            n.alive = false;
        }
        self.table_changed(&away, table, me, now_ms);
    }

    /// The previous owner of `key`, if the key lies in a range taken over within the window
    /// and that owner does not own it again in `table`: to be asked if alive in `table`, else
    /// the reason this node cannot answer.
    pub fn previous_owner(
        &self,
        key: &KeyId,
        table: &RouteTable,
        now_ms: u64,
    ) -> Option<ReadThrough> {
        let i = self
            .incoming
            .iter()
            .rev()
            .find(|i| i.until_ms > now_ms && i.range.contains(key))?;
        // The range has moved back to the node it came from (a flap: it went away, came
        // back, took its ranges back): that node is the one asking, not one to ask — going
        // back would send a chained read round a loop until its hops ran out.
        if table.owner(i.group, key).is_some_and(|o| o.name == i.from) {
            return None;
        }
        match table.node(&i.from).filter(|n| n.alive) {
            Some(node) => Some(ReadThrough::Ask {
                name: node.name.clone(),
                addr: node.addr.clone(),
                group: i.group,
            }),
            None => Some(ReadThrough::Down(i.from.clone())),
        }
    }

    /// Whether any range is being read through at `now_ms` (a cheap check first).
    pub fn any(&self, now_ms: u64) -> bool {
        self.incoming.iter().any(|i| i.until_ms > now_ms)
    }
}
