//! [`IncomingRanges`]: reads during a hand-over. When the ring changes, the ranges a node
//! takes over are still being streamed to it by their previous owner; until a key has
//! arrived, a read of it there would find nothing. So for a window after the change a
//! `LOOKUP` or `READ` of a key in such a range that the node cannot answer — no value, and
//! no remembered remove — is passed to the previous owner (`LOCAL`: serve from your own
//! storage), or answered `UNAVAILABLE` if that owner is down (`docs/PROTOCOL.md` §15.10).
//! A previous owner that is *leaving* (drained) is asked for as long as it is leaving,
//! window or not: it hands its ranges over at the rebalance rate and is still serving.
//!
//! Safe because the fallback happens only when the node knows nothing newer about the key:
//! a value written there wins, and a remove made there is remembered for longer than the
//! window lasts. Time is the caller's (milliseconds on any monotonic clock), so the node
//! and the simulator run the same decisions.

use crate::ring::{KeyRange, OwnerLookup, RouteTable};
use crate::wire::KeyId;

/// A range that moved to or from this node, and the other node of the move.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Moved {
    range: KeyRange,
    /// The other node: an incoming range's previous owner, an outgoing one's new owner.
    other: String,
    group: u32,
    until_ms: u64,
    /// Incoming: the previous owner is leaving (a drain) — it hands the range over at the
    /// rebalance rate, however long that takes, so the range is read through until it has
    /// left. Outgoing: this node is leaving.
    leaving: bool,
    /// Order of noting, across incoming and outgoing ranges.
    seq: u64,
}

impl Moved {
    fn live(&self, now_ms: u64) -> bool {
        self.leaving || self.until_ms > now_ms
    }
}

/// Ranges a node took over from one previous owner that is still handing them over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Awaited {
    /// The previous owner's node name.
    pub from: String,
    pub group: u32,
    pub ranges: Vec<KeyRange>,
    /// The order number of the last of these ranges noted.
    pub seq: u64,
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
    /// Moves noted so far (the next [`Moved::seq`]).
    noted: u64,
    incoming: Vec<Moved>,
    /// Ranges given away recently, `other` naming their new owner and `leaving` whether this
    /// node is leaving (see [`IncomingRanges::new_owner`]).
    outgoing: Vec<Moved>,
}

impl IncomingRanges {
    /// Ranges taken over are read through for `window_ms` after the ring change.
    pub fn new(window_ms: u64) -> IncomingRanges {
        IncomingRanges {
            window_ms,
            noted: 0,
            incoming: Vec::new(),
            outgoing: Vec::new(),
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
        let leaving = |name: &str| after.node(name).is_some_and(|n| !n.alive && n.leaving);
        // A node that finished its leave has handed everything over: nothing to read through.
        let left = |name: &str| after.node(name).is_some_and(|n| n.has_left());
        let me_leaving = leaving(me);
        for i in &mut self.incoming {
            i.leaving = leaving(&i.other);
        }
        for o in &mut self.outgoing {
            o.leaving = me_leaving;
        }
        self.incoming.retain(|i| i.live(now_ms) && !left(&i.other));
        self.outgoing.retain(|o| o.live(now_ms));
        if self.window_ms == 0 {
            return;
        }
        let Some(group) = after.node(me).map(|n| n.group) else {
            return;
        };
        let until_ms = now_ms.saturating_add(self.window_ms);
        // A range given away stays noted when its new owner gives it on: that owner may
        // still hold keys of it, on their way to the next, which a chained read reaching
        // this node (from a node whose table skipped that owner's version) can only find
        // by following the range there (`holder`).
        let moves = before.moves_to(after, group);
        for m in moves {
            self.noted += 1;
            let seq = self.noted;
            if m.to == me && m.from != me && !left(&m.from) {
                let from_leaving = leaving(&m.from);
                self.incoming.push(Moved {
                    range: m.range,
                    other: m.from,
                    group,
                    until_ms,
                    leaving: from_leaving,
                    seq,
                });
            } else if m.from == me && m.to != me {
                self.outgoing.push(Moved {
                    range: m.range,
                    other: m.to,
                    group,
                    until_ms,
                    leaving: me_leaving,
                    seq,
                });
            }
        }
    }

    /// The owner of `key` in `table`, if the key lies in a range `me` is giving to that
    /// owner because it is leaving (a drain): a read
    /// of the key here asks it with `LOCAL` and, if it has nothing, answers from here (the
    /// key may not be handed over yet). Asking with `LOCAL` matters while route tables
    /// disagree: a plain forward to a node that still believes this one the owner would be
    /// forwarded back, round a loop.
    pub fn new_owner(
        &self,
        key: &KeyId,
        routes: &impl OwnerLookup,
        me: &str,
    ) -> Option<ReadThrough> {
        let o = self
            .outgoing
            .iter()
            .rev()
            .find(|o| o.leaving && o.range.contains(key))?;
        let owner = routes.owner_of(o.group, key)?;
        // Only the node the range went to: this node's copies go there and nowhere else (a
        // range that moved on since is that owner's to read through).
        if owner.name == me || owner.name != o.other {
            return None;
        }
        Some(ReadThrough::Ask {
            name: owner.name.clone(),
            addr: owner.addr.clone(),
            group: o.group,
        })
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
        routes: &impl OwnerLookup,
        now_ms: u64,
    ) -> Option<ReadThrough> {
        let i = self
            .incoming
            .iter()
            .rev()
            .find(|i| i.live(now_ms) && i.range.contains(key))?;
        // The range has moved back to the node it came from (a flap: it went away, came
        // back, took its ranges back): that node is the one asking, not one to ask — going
        // back would send a chained read round a loop until its hops ran out.
        if routes
            .owner_of(i.group, key)
            .is_some_and(|o| o.name == i.other)
        {
            return None;
        }
        Some(ask_or_down(routes.route_table(), &i.other, i.group))
    }

    /// Where a read asked of this node with `LOCAL` (a read through, chained) may find a key
    /// it has nothing for: the node the key's range came from, or the node `me` gave it to,
    /// whichever move of the range was noted last — the read follows the data. `None`:
    /// nobody else can have it.
    pub fn holder(
        &self,
        key: &KeyId,
        routes: &impl OwnerLookup,
        me: &str,
        now_ms: u64,
    ) -> Option<ReadThrough> {
        let taken = self
            .incoming
            .iter()
            .rev()
            .find(|m| m.live(now_ms) && m.range.contains(key))
            .map(|m| m.seq);
        let given = self
            .outgoing
            .iter()
            .rev()
            .find(|o| o.live(now_ms) && o.range.contains(key));
        match (taken, given) {
            (taken, Some(o)) if taken.is_none_or(|t| o.seq > t) => {
                (o.other != me).then(|| ask_or_down(routes.route_table(), &o.other, o.group))
            }
            _ => self.previous_owner(key, routes, now_ms),
        }
    }

    /// Whether a range this node took over, and is still reading through at `now_ms`,
    /// overlaps `range` while its previous owner still answers in `table`: some of its keys
    /// may still be on their way here, and can be read there. (A previous owner gone from
    /// the group holds nothing anyone else could be asked for.)
    pub fn incoming_overlaps(&self, range: &KeyRange, table: &RouteTable, now_ms: u64) -> bool {
        self.incoming.iter().any(|i| {
            i.live(now_ms)
                && i.range.overlaps(range)
                && table.node(&i.other).is_some_and(|n| n.reachable())
        })
    }

    /// The ranges taken over whose previous owner may still be handing them over, by
    /// previous owner, with the order number of the last one noted — what
    /// [`IncomingRanges::handed_over`] is told.
    pub fn awaited(&self, now_ms: u64) -> Vec<Awaited> {
        let mut out: Vec<Awaited> = Vec::new();
        for i in self.incoming.iter().filter(|i| i.live(now_ms)) {
            match out
                .iter_mut()
                .find(|a| a.from == i.other && a.group == i.group)
            {
                Some(a) => {
                    a.ranges.push(i.range);
                    a.seq = a.seq.max(i.seq);
                }
                None => out.push(Awaited {
                    from: i.other.clone(),
                    group: i.group,
                    ranges: vec![i.range],
                    seq: i.seq,
                }),
            }
        }
        out
    }

    /// `from` has handed over every range it had to give this node, as of the moves noted
    /// up to `seq` (its route table gives them to this node, and no transfer to this node is
    /// pending there): those ranges are no longer read through. Returns how many were
    /// dropped. Ranges noted later stay. (A leaving node's too are dropped: it is read
    /// through for as long as it leaves only because its transfers can take that long.)
    pub fn handed_over(&mut self, from: &str, seq: u64) -> usize {
        let before = self.incoming.len();
        self.incoming.retain(|i| i.other != from || i.seq > seq);
        before - self.incoming.len()
    }

    /// Whether no range is noted at all, live or expired.
    pub fn is_empty(&self) -> bool {
        self.incoming.is_empty() && self.outgoing.is_empty()
    }

    /// Whether any range is being read through at `now_ms` (a cheap check first).
    pub fn any(&self, now_ms: u64) -> bool {
        self.incoming.iter().any(|i| i.live(now_ms)) || self.outgoing.iter().any(|o| o.live(now_ms))
    }
}

/// The node `name` to ask (in `group`) if it still answers in `table`, else why nobody can.
fn ask_or_down(table: &RouteTable, name: &str, group: u32) -> ReadThrough {
    match table.node(name).filter(|n| n.reachable()) {
        Some(node) => ReadThrough::Ask {
            name: node.name.clone(),
            addr: node.addr.clone(),
            group,
        },
        None => ReadThrough::Down(name.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::fixtures::{at, c_joins, node};

    #[test]
    fn a_range_taken_over_overlaps_the_spans_it_touches_until_the_window_ends() {
        let (before, after) = c_joins();
        let mut c = IncomingRanges::new(1000);
        c.table_changed(&before, &after, "c", 0);
        // c took (0xff…, 0x40…] from a.
        let span = |a: u8, b: u8| KeyRange::new(at(a), at(b));
        assert!(c.incoming_overlaps(&span(0x10, 0x20), &after, 10));
        assert!(c.incoming_overlaps(&span(0x30, 0x90), &after, 10));
        assert!(!c.incoming_overlaps(&span(0x50, 0x70), &after, 10));
        assert!(
            !c.incoming_overlaps(&span(0x10, 0x20), &after, 1000),
            "the window ended"
        );
        let mut a_gone = after.clone();
        for n in a_gone.nodes.iter_mut().filter(|n| n.name == "a") {
            n.alive = false;
        }
        assert!(
            !c.incoming_overlaps(&span(0x10, 0x20), &a_gone, 10),
            "nobody else to ask"
        );
    }

    #[test]
    fn ranges_handed_over_are_no_longer_read_through_but_later_ones_are() {
        let (before, after) = c_joins();
        let mut c = IncomingRanges::new(1000);
        c.table_changed(&before, &after, "c", 0);
        let awaited = c.awaited(10);
        assert_eq!(awaited.len(), 1);
        assert_eq!(awaited[0].from, "a");
        assert_eq!(awaited[0].ranges, vec![KeyRange::new(at(0xff), at(0x40))]);
        let key = at(0x10).0;
        assert!(c.previous_owner(&key, &after, 10).is_some());
        // A later move from a, noted after the check began, stays.
        let later = RouteTable::new(
            3,
            vec![
                node("a", &[0x80]),
                node("b", &[0xff]),
                node("c", &[0x40, 0x70]),
            ],
        );
        c.table_changed(&after, &later, "c", 20);
        assert_eq!(c.handed_over("b", awaited[0].seq), 0, "nothing came from b");
        assert_eq!(c.handed_over("a", awaited[0].seq), 1);
        assert!(c.previous_owner(&key, &later, 30).is_none());
        assert!(c.previous_owner(&at(0x60).0, &later, 30).is_some());
        assert!(!c.incoming_overlaps(&KeyRange::new(at(0x00), at(0x20)), &later, 30));
    }

    /// A range that moved twice (a to c, then c to d) while d's table skipped the middle
    /// version: d reads through to a, which has nothing, and a follows the range to c, which
    /// may still be handing the key to d; c in turn names d (the chain ends there, or at the
    /// hops limit). Forgetting a's hand-over to c once c gave the range on (as before
    /// 2026-12-07) ended the chain at a with `NOT_FOUND` while c still held the key.
    #[test]
    fn a_chained_read_follows_a_range_that_moved_on_from_its_new_owner() {
        let (t1, t2) = c_joins();
        let mut nodes = t2.nodes.clone();
        nodes.push(node("d", &[0x20]));
        let t3 = RouteTable::new(3, nodes);
        let key = at(0x10).0;
        let ask = |name: &str| ReadThrough::Ask {
            name: name.into(),
            addr: t3.node(name).map(|n| n.addr.clone()).unwrap_or_default(),
            group: 1,
        };
        let mut a = IncomingRanges::new(1000);
        a.table_changed(&t1, &t2, "a", 0);
        a.table_changed(&t2, &t3, "a", 10);
        assert_eq!(a.holder(&key, &t3, "a", 20), Some(ask("c")));
        let mut c = IncomingRanges::new(1000);
        c.table_changed(&t1, &t2, "c", 0);
        c.table_changed(&t2, &t3, "c", 10);
        assert_eq!(c.holder(&key, &t3, "c", 20), Some(ask("d")));
        let mut d = IncomingRanges::new(1000);
        d.table_changed(&t1, &t3, "d", 10);
        assert_eq!(d.previous_owner(&key, &t3, 20), Some(ask("a")));
        assert_eq!(a.holder(&key, &t3, "a", 1010), None, "the window ended");
    }

    /// The node asks by its rings (`Routing`), tests and the simulator may by the table: the
    /// answers must be the same for every key, through joins, a death and a drain.
    #[test]
    fn answers_by_the_rings_are_the_answers_by_the_table() {
        use crate::ring::Routing;
        use std::sync::Arc;
        let (before, after) = c_joins();
        let mut a_dead = after.clone();
        a_dead.nodes[0].alive = false;
        let mut c_leaving = after.clone();
        c_leaving.nodes[2].leaving = true;
        let moved_on = RouteTable::new(
            3,
            vec![
                node("a", &[0x80]),
                node("b", &[0xff, 0x20]),
                node("c", &[0x40, 0x60]),
                node("d", &[0xc0]),
            ],
        );
        let tables = [before, after, a_dead, c_leaving, moved_on];
        for me in ["a", "b", "c"] {
            let mut ranges = IncomingRanges::new(1000);
            for (i, pair) in tables.windows(2).enumerate() {
                ranges.table_changed(&pair[0], &pair[1], me, i as u64 * 10);
                let table = &pair[1];
                let routing = Routing::new(Arc::new(table.clone()));
                for v in 0..=255u8 {
                    let key = at(v).0;
                    let now = i as u64 * 10 + 5;
                    assert_eq!(
                        ranges.previous_owner(&key, table, now),
                        ranges.previous_owner(&key, &routing, now),
                        "{me}, change {i}, key {v:#x}"
                    );
                    assert_eq!(
                        ranges.holder(&key, table, me, now),
                        ranges.holder(&key, &routing, me, now)
                    );
                    assert_eq!(
                        ranges.new_owner(&key, table, me),
                        ranges.new_owner(&key, &routing, me)
                    );
                }
            }
        }
    }
}
