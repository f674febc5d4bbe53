//! Reads during a hand-over (the decisions are `cluster::IncomingRanges`, which the
//! simulator drives too). When the ring changes, the ranges this node takes over are
//! still being streamed to it by their previous owner; until a key has arrived, a read of it
//! here would find nothing. So for a while after the change (`handover_read_secs`), a
//! `LOOKUP` or `READ` of a key in such a range that this node cannot answer — no value, and
//! no remembered remove — is passed to the previous owner with the `LOCAL` flag (serve from
//! your own storage, route nothing), and its answer relayed (`docs/PROTOCOL.md` §15.10).
//!
//! Safe because the fallback happens only when this node knows nothing newer about the key:
//! a value written here wins, and a remove made here is remembered (the remove log) for
//! longer than the window lasts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ringblob_engine::coarse_clock::coarse_now;

use parking_lot::RwLock;

use crate::cluster::{IncomingRanges, ReadThrough as Decided};
use crate::ring::{OwnerLookup, RouteTable};
use crate::wire::{Command, Header, KeyId, MAX_FORWARD_HOPS};

/// The ranges this node took over recently: the node's clock around the shared decisions
/// of `cluster::IncomingRanges`.
#[derive(Debug)]
pub struct Handovers {
    /// The window's clock starts here (on the coarse clock: every read during a window
    /// asks it).
    origin: Duration,
    ranges: RwLock<IncomingRanges>,
    /// Whether `ranges` notes anything (kept with every change under its write lock): a
    /// node that never took a range over answers [`any`](Self::any) without the clock or
    /// the lock, which every keyed request asks (~3 % of serving pipelined small GETs).
    noted: AtomicBool,
}

impl Default for Handovers {
    fn default() -> Self {
        Handovers::new(Duration::ZERO)
    }
}

/// Where a read this node cannot answer may be asked instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousOwner {
    pub addr: String,
    pub group: u32,
}

/// Who can answer a read this node has nothing for, in a range it took over recently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadThrough {
    /// The previous owner, alive: ask it.
    Ask(PreviousOwner),
    /// The previous owner (named) is down: nobody in this group can tell whether the key
    /// exists, so the answer is `UNAVAILABLE`, never `NOT_FOUND`.
    Down(String),
}

impl Handovers {
    /// Ranges taken over are read through for `window` after the ring change.
    pub fn new(window: Duration) -> Self {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        Handovers {
            origin: coarse_now(),
            ranges: RwLock::new(IncomingRanges::new(window_ms)),
            noted: AtomicBool::new(false),
        }
    }

    /// Changes the ranges by `change`, keeping [`noted`](Self::noted) true to them.
    fn change<T>(&self, change: impl FnOnce(&mut IncomingRanges) -> T) -> T {
        let mut ranges = self.ranges.write();
        let done = change(&mut ranges);
        self.noted.store(!ranges.is_empty(), Ordering::Release);
        done
    }

    fn now_ms(&self) -> u64 {
        let elapsed = coarse_now().saturating_sub(self.origin);
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
    }

    /// Notes the ranges of this node's group that moved to it from `before` to `after`;
    /// forgets expired ones.
    pub fn table_changed(&self, before: &RouteTable, after: &RouteTable, me: &str) {
        let now = self.now_ms();
        self.change(|r| r.table_changed(before, after, me, now));
    }

    /// Notes, for a node starting again, the ranges of `table` it owns that other nodes
    /// owned while it was away (`IncomingRanges::rejoined`).
    pub fn rejoined(&self, table: &RouteTable, me: &str) {
        let now = self.now_ms();
        self.change(|r| r.rejoined(table, me, now));
    }

    /// The previous owner of `key`, if the key lies in a range taken over recently: to be
    /// asked if alive, else the reason this node cannot answer.
    pub fn previous_owner(&self, key: &KeyId, routes: &impl OwnerLookup) -> Option<ReadThrough> {
        let now = self.now_ms();
        match self.ranges.read().previous_owner(key, routes, now)? {
            Decided::Ask { addr, group, .. } => {
                Some(ReadThrough::Ask(PreviousOwner { addr, group }))
            }
            Decided::Down(name) => Some(ReadThrough::Down(name)),
        }
    }

    /// The previous owner to ask about a request this node cannot answer (or why nobody
    /// can): a `LOOKUP` or `READ` of a key in a range taken over recently. A request that
    /// is itself a read-through (`LOCAL`) reads through in turn while its hops allow — a
    /// range that moved twice before its data did (A to B to C) is read from A through B.
    ///
    /// A `LOCAL` read (a read through, chained) follows the data: to where its range came
    /// from or went, whichever was later (`IncomingRanges::holder`).
    pub fn reads_through(
        &self,
        routes: &impl OwnerLookup,
        me: &str,
        h: &Header,
    ) -> Option<ReadThrough> {
        let chained_too_far = h.is_local() && h.hops >= MAX_FORWARD_HOPS;
        let reads = matches!(h.command, Command::Lookup | Command::Read);
        if !reads || chained_too_far || !self.any() {
            return None;
        }
        if !h.is_local() {
            return self.previous_owner(&h.key, routes);
        }
        let now = self.now_ms();
        match self.ranges.read().holder(&h.key, routes, me, now)? {
            Decided::Ask { addr, group, .. } => {
                Some(ReadThrough::Ask(PreviousOwner { addr, group }))
            }
            Decided::Down(name) => Some(ReadThrough::Down(name)),
        }
    }

    /// The new owner to ask (with `LOCAL`) about a client's `LOOKUP` or `READ` of a key in
    /// a range this node is giving away as it leaves (`IncomingRanges::new_owner`):
    /// if it has nothing, this node answers from its own storage.
    pub fn reads_back(
        &self,
        routes: &impl OwnerLookup,
        me: &str,
        h: &Header,
    ) -> Option<PreviousOwner> {
        let reads = matches!(h.command, Command::Lookup | Command::Read);
        if !reads || h.is_local() || h.hops >= MAX_FORWARD_HOPS || !self.any() {
            return None;
        }
        match self.ranges.read().new_owner(&h.key, routes, me)? {
            Decided::Ask { addr, group, .. } => Some(PreviousOwner { addr, group }),
            Decided::Down(_) => None,
        }
    }

    /// The ranges taken over whose previous owners are still handing them over
    /// (`IncomingRanges::awaited`): what `handover_check` asks those owners about.
    pub fn awaited(&self) -> Vec<crate::cluster::Awaited> {
        let now = self.now_ms();
        self.ranges.read().awaited(now)
    }

    /// `from` confirmed it has handed over the ranges noted up to `seq`
    /// (`IncomingRanges::handed_over`).
    pub fn handed_over(&self, from: &str, seq: u64) -> usize {
        self.change(|r| r.handed_over(from, seq))
    }

    /// Whether keys of `from ..= to` may still be on their way to this node (a range it
    /// took over recently overlaps it): `ITERATE`'s `MOVING` flag (`docs/PROTOCOL.md` §7.6).
    pub fn moving_in(&self, from: &KeyId, to: &KeyId, table: &RouteTable) -> bool {
        if !self.any() {
            return false;
        }
        let start = crate::ring::prev_key(from).unwrap_or([0xff; 32]);
        let range =
            crate::ring::KeyRange::new(crate::ring::RingId(start), crate::ring::RingId(*to));
        let now = self.now_ms();
        self.ranges.read().incoming_overlaps(&range, table, now)
    }

    /// Whether any hand-over is being read through (a cheap check before looking keys up).
    pub fn any(&self) -> bool {
        if !self.noted.load(Ordering::Acquire) {
            return false;
        }
        let now = self.now_ms();
        self.ranges.read().any(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{RingId, RouteNode};

    fn node(name: &str, id: u8, alive: bool) -> RouteNode {
        RouteNode {
            name: name.into(),
            addr: format!("{name}:1"),
            group: 1,
            ids: vec![RingId([id; 32])],
            alive,
            leaving: false,
            incarnation: 1,
        }
    }

    fn table(b_alive: bool) -> RouteTable {
        RouteTable {
            version: 1,
            nodes: vec![node("a", 0x40, true), node("b", 0xc0, b_alive)],
        }
    }

    fn owner_of(t: &RouteTable, key: &KeyId) -> String {
        t.owner(1, key).map(|n| n.name.clone()).unwrap_or_default()
    }

    /// Keys `b` owns, and keys `a` owns, in the two-node table.
    fn keys_of_each(t: &RouteTable) -> (Vec<KeyId>, Vec<KeyId>) {
        let keys: Vec<KeyId> = (0..=255u8).map(|i| [i; 32]).collect();
        keys.into_iter().partition(|k| owner_of(t, k) == "b")
    }

    #[test]
    fn a_node_that_starts_again_reads_its_ranges_through_their_owner_while_away() {
        let t = table(true);
        let (of_b, of_a) = keys_of_each(&t);
        assert!(!of_b.is_empty() && !of_a.is_empty());
        let h = Handovers::new(Duration::from_secs(60));
        h.rejoined(&t, "b");
        assert!(h.any());
        for k in &of_b {
            let prev = match h.previous_owner(k, &t) {
                Some(ReadThrough::Ask(p)) => Some(p.addr),
                _ => None,
            };
            assert_eq!(prev.as_deref(), Some("a:1"), "{:?}", k[0]);
        }
        assert!(of_a.iter().all(|k| h.previous_owner(k, &t).is_none()));
    }

    #[test]
    fn a_node_that_took_nothing_over_has_nothing_to_read_through() {
        let t = table(true);
        let h = Handovers::new(Duration::from_secs(60));
        assert!(!h.any(), "new");
        h.table_changed(&t, &t, "b");
        assert!(!h.any(), "a table change that moved nothing");
        h.table_changed(&table(false), &t, "b");
        assert!(h.any(), "b took its ranges back from a");
    }

    #[test]
    fn a_read_through_reads_through_in_turn_while_its_hops_allow() {
        let (before, after) = (table(false), table(true));
        let (of_b, _) = keys_of_each(&after);
        let key = of_b.first().copied().unwrap_or_default();
        let h = Handovers::new(Duration::from_secs(60));
        h.table_changed(&before, &after, "b");
        let mut read = Header::request(Command::Read, 1, key, 0);
        assert!(
            h.reads_through(&after, "b", &read).is_some(),
            "a client's read"
        );
        read.flags |= crate::wire::FLAG_LOCAL;
        read.hops = 1;
        assert!(
            h.reads_through(&after, "b", &read).is_some(),
            "a read-through, chained"
        );
        read.hops = MAX_FORWARD_HOPS;
        assert!(h.reads_through(&after, "b", &read).is_none(), "out of hops");
        let write = Header::request(Command::Write, 2, key, 0);
        assert!(h.reads_through(&after, "b", &write).is_none(), "only reads");
    }

    /// A flap: `b` is marked dead (its ranges go to `a`), then alive again (they come back).
    /// Each now notes the other as the previous owner; the node that lost the range again
    /// must not read back through to the one asking it, or a read goes round in a loop.
    #[test]
    fn a_range_that_came_back_is_not_read_through_to_the_node_that_owns_it_again() {
        let (b_dead, b_back) = (table(false), table(true));
        let (of_b, _) = keys_of_each(&b_back);
        assert!(!of_b.is_empty());
        let a = Handovers::new(Duration::from_secs(60));
        a.table_changed(&b_back, &b_dead, "a");
        let b = Handovers::new(Duration::from_secs(60));
        b.table_changed(&b_dead, &b_back, "b");
        for k in &of_b {
            assert!(b.previous_owner(k, &b_back).is_some(), "b asks a");
            assert!(
                a.previous_owner(k, &b_back).is_none(),
                "a must not ask b back"
            );
            assert!(a.previous_owner(k, &b_dead).is_some(), "while a owns it");
        }
    }

    #[test]
    fn a_ring_change_reads_through_to_the_previous_owner_until_the_window_ends() {
        let (before, after) = (table(false), table(true));
        let (of_b, _) = keys_of_each(&after);
        let h = Handovers::new(Duration::from_secs(60));
        h.table_changed(&before, &after, "b");
        assert!(of_b.iter().all(|k| h.previous_owner(k, &after).is_some()));
        // The node it would ask is dead: nobody here can tell (UNAVAILABLE, not NOT_FOUND).
        let a_dead = RouteTable {
            version: 2,
            nodes: vec![node("a", 0x40, false), node("b", 0xc0, true)],
        };
        assert!(of_b
            .iter()
            .all(|k| h.previous_owner(k, &a_dead) == Some(ReadThrough::Down("a".into()))));
        // A zero window notes nothing.
        let never = Handovers::new(Duration::ZERO);
        never.table_changed(&before, &after, "b");
        never.rejoined(&after, "b");
        assert!(!never.any());
    }

    #[test]
    fn a_chained_read_follows_a_range_to_the_node_it_was_given_to() {
        let (before, after) = (table(false), table(true));
        let (of_b, _) = keys_of_each(&after);
        let h = Handovers::new(Duration::from_secs(60));
        h.table_changed(&before, &after, "a");
        for k in &of_b {
            let mut read = Header::request(Command::Read, 1, *k, 0);
            assert!(
                h.reads_through(&after, "a", &read).is_none(),
                "a client's read"
            );
            read.flags |= crate::wire::FLAG_LOCAL;
            read.hops = 2;
            let asked = match h.reads_through(&after, "a", &read) {
                Some(ReadThrough::Ask(p)) => Some(p.addr),
                _ => None,
            };
            assert_eq!(asked.as_deref(), Some("b:1"), "a read through, chained");
        }
        // Given away, then taken back (from a node now dead): the later move wins — the
        // read is the taking back's, and its previous owner is down.
        h.table_changed(&after, &before, "a");
        let back = h.reads_through(&before, "a", &{
            let mut read = Header::request(Command::Read, 1, of_b[0], 0);
            read.flags |= crate::wire::FLAG_LOCAL;
            read.hops = 2;
            read
        });
        assert!(
            matches!(&back, Some(ReadThrough::Down(n)) if n == "b"),
            "{back:?}"
        );
    }

    /// A drained node that left has handed everything over: its entry says so (dead, no
    /// IDs), and the ranges it gave are no longer read through — whether or not a hand-over
    /// check confirmed it before it left. One that died while leaving keeps its IDs: nobody
    /// can tell what it had not handed over, so reads of keys missing here are UNAVAILABLE.
    #[test]
    fn a_node_that_finished_its_leave_is_not_awaited_one_that_died_leaving_is() {
        let before = table(true);
        let (of_b, _) = keys_of_each(&before);
        let mut leaving = before.clone();
        leaving.nodes[1].alive = false;
        leaving.nodes[1].leaving = true;
        let mut left = leaving.clone();
        left.nodes[1].leaving = false;
        left.nodes[1].ids.clear();
        left.nodes[1].incarnation += 1;
        assert!(left.nodes[1].has_left());
        let mut died = leaving.clone();
        died.nodes[1].leaving = false;
        assert!(!died.nodes[1].has_left());
        let read = |k: &KeyId| Header::request(Command::Read, 1, *k, 1);
        for (after, expected) in [(&left, None), (&died, Some(ReadThrough::Down("b".into())))] {
            let a = Handovers::new(Duration::from_secs(3600));
            a.table_changed(&before, &leaving, "a");
            a.table_changed(&leaving, after, "a");
            for k in &of_b {
                assert_eq!(a.reads_through(after, "a", &read(k)), expected);
            }
            // Seen only once it had left (the leaving table skipped): nothing noted.
            let late = Handovers::new(Duration::from_secs(3600));
            late.table_changed(&before, after, "a");
            assert_eq!(late.awaited().is_empty(), expected.is_none());
        }
    }

    #[test]
    fn a_leaving_node_is_read_through_past_the_window_and_reads_back_from_its_new_owner() {
        let before = table(true);
        let (of_b, of_a) = keys_of_each(&before);
        let mut b_leaving = node("b", 0xc0, false);
        b_leaving.leaving = true;
        let after = RouteTable {
            version: 2,
            nodes: vec![node("a", 0x40, true), b_leaving],
        };
        let b_key = |k: &KeyId| Header::request(Command::Read, 1, *k, 1);
        // A window of 1 ms, long over when the reads come: only the leaving rule applies.
        let window = Duration::from_millis(1);
        let a = Handovers::new(window);
        a.table_changed(&before, &after, "a");
        let b = Handovers::new(window);
        b.table_changed(&before, &after, "b");
        std::thread::sleep(Duration::from_millis(20));
        let asked = |k: &KeyId| match a.reads_through(&after, "a", &b_key(k)) {
            Some(ReadThrough::Ask(p)) => Some(p.addr),
            _ => None,
        };
        assert!(of_b.iter().all(|k| asked(k).as_deref() == Some("b:1")));
        assert!(of_a.iter().all(|k| asked(k).is_none()));
        // On the leaving node: reads of what it hands over ask the new owner first.
        for k in &of_b {
            let back = b.reads_back(&after, "b", &b_key(k)).map(|p| p.addr);
            assert_eq!(back.as_deref(), Some("a:1"));
        }
        assert!(of_a
            .iter()
            .all(|k| b.reads_back(&after, "b", &b_key(k)).is_none()));
        // Once it has left (dead), nothing is read through it, nor back from it.
        let mut left = after.clone();
        left.nodes[1].leaving = false;
        a.table_changed(&after, &left, "a");
        b.table_changed(&after, &left, "b");
        assert!(of_b
            .iter()
            .all(|k| a.reads_through(&left, "a", &b_key(k)).is_none()));
        assert!(of_b
            .iter()
            .all(|k| b.reads_back(&left, "b", &b_key(k)).is_none()));
    }
}
