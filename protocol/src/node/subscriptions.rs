//! Subscriptions (`WATCH`, `docs/PROTOCOL.md` §7.15): the node's hub of who watches what,
//! and each connection's queue of notifications.
//!
//! The dispatcher records every change a client made here (a write or remove without
//! `IF_NEWER`: not hand-over, repair or read-repair copies) that some subscription wants;
//! the connection that served it publishes them once its replies are out (so after the sync
//! of durable writes: a watcher never hears of a write that could still be lost). The hub
//! numbers each published change (`owner_seq`) and queues a note on every matching
//! subscription's connection. A connection holds at most [`SUB_QUEUE`] notes per
//! subscription: past that, notes are dropped and counted, and the subscriber gets one
//! `GAP` note (first missed number and count) when its connection catches up. So a slow
//! subscriber costs the node a bounded queue, never more.
//!
//! Lock order: the hub's subscription map, then a connection's queue (never the other way).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use ringblob_backends::names::Attrs;
use tokio::sync::Notify;

use crate::attrs::Query;
use crate::wire::{Header, KeyId, NoteKind, WatchNote};

/// Notes one subscription may have waiting on its connection before new ones are dropped
/// (and reported as a gap).
pub const SUB_QUEUE: usize = 64;
/// Subscriptions one connection may hold.
pub const MAX_WATCHES_PER_CONNECTION: usize = 1024;

/// What a subscription wants.
#[derive(Debug, Clone)]
pub enum Filter {
    /// Every change of one key (any column).
    Key(KeyId),
    /// Objects of a namespace written or removed through their name record, optionally only
    /// those whose attributes match a query.
    Namespace {
        namespace: String,
        query: Option<Query>,
    },
}

/// The object a change was made through (its name record), for namespace subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub namespace: String,
    pub name: Bytes,
    /// The object's size as its record says.
    pub size: u64,
    pub attrs: Attrs,
}

/// One change a client made on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: NoteKind,
    pub key: KeyId,
    pub column: u16,
    pub whole_key: bool,
    pub size: u64,
    pub named: Option<Arc<Named>>,
}

/// One subscription, as the hub files it.
struct Sub {
    trans: u64,
    conn: Arc<ConnWatches>,
    filter: Filter,
}

/// Every subscription of the node, by what it watches.
#[derive(Default)]
struct Subs {
    by_key: HashMap<KeyId, Vec<Arc<Sub>>>,
    by_namespace: HashMap<String, Vec<Arc<Sub>>>,
    count: usize,
}

/// The node's subscriptions.
pub struct WatchHub {
    /// A random id of this start: a subscriber that sees another knows the node restarted.
    epoch: u64,
    published: AtomicU64,
    gaps: AtomicU64,
    subs: RwLock<Subs>,
}

impl Default for WatchHub {
    fn default() -> Self {
        WatchHub {
            epoch: rand::random::<u64>() | 1,
            published: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            subs: RwLock::default(),
        }
    }
}

impl WatchHub {
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Whether a change of `key` (through a name record, `named`) is wanted by anyone: a
    /// cheap check the dispatcher makes before it records a change.
    pub fn wants(&self, key: &KeyId, named: bool) -> bool {
        let subs = self.subs.read();
        subs.count > 0
            && (subs.by_key.contains_key(key) || (named && !subs.by_namespace.is_empty()))
    }

    /// Whether any namespace is watched (a remove then reads the record it removes).
    pub fn watches_namespaces(&self) -> bool {
        !self.subs.read().by_namespace.is_empty()
    }

    /// Files subscription `trans` of `conn`.
    pub fn add(&self, conn: &Arc<ConnWatches>, trans: u64, filter: Filter) {
        let sub = Arc::new(Sub {
            trans,
            conn: conn.clone(),
            filter: filter.clone(),
        });
        let mut subs = self.subs.write();
        subs.count += 1;
        match filter {
            Filter::Key(key) => subs.by_key.entry(key).or_default().push(sub),
            Filter::Namespace { namespace, .. } => {
                subs.by_namespace.entry(namespace).or_default().push(sub)
            }
        }
    }

    /// Removes the subscriptions of `conn` for which `which` is true.
    pub fn remove(&self, conn: &ConnWatches, which: impl Fn(u64) -> bool) {
        let mut subs = self.subs.write();
        let mut removed = 0;
        let mut sweep = |list: &mut Vec<Arc<Sub>>| {
            let before = list.len();
            list.retain(|s| s.conn.id != conn.id || !which(s.trans));
            removed += before - list.len();
            !list.is_empty()
        };
        subs.by_key.retain(|_, l| sweep(l));
        subs.by_namespace.retain(|_, l| sweep(l));
        subs.count -= removed;
    }

    /// Changes published since the node started.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Subscriptions filed.
    pub fn count(&self) -> usize {
        self.subs.read().count
    }

    /// Publishes `changes` (in the order they were made) to every subscription wanting them.
    pub fn publish(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let subs = self.subs.read();
        for change in changes {
            let owner_seq = self.published.fetch_add(1, Ordering::Relaxed) + 1;
            let note = WatchNote {
                whole_key: change.whole_key,
                column: change.column,
                owner_seq,
                timestamp_ns: super::versions::now_ns(),
                size: change.size,
                key: change.key,
                ..WatchNote::new(change.kind, self.epoch)
            };
            for sub in subs.by_key.get(&change.key).into_iter().flatten() {
                sub.conn.push(sub.trans, note.clone(), &self.gaps);
            }
            let Some(named) = &change.named else { continue };
            for sub in subs
                .by_namespace
                .get(&named.namespace)
                .into_iter()
                .flatten()
            {
                let Filter::Namespace { query, .. } = &sub.filter else {
                    continue;
                };
                if query.as_ref().is_none_or(|q| q.matches(&named.attrs)) {
                    // About the object: its value's column and size, not the record's.
                    let note = WatchNote {
                        name: named.name.clone(),
                        column: 0,
                        size: match change.kind {
                            NoteKind::Write => named.size,
                            _ => 0,
                        },
                        ..note.clone()
                    };
                    sub.conn.push(sub.trans, note, &self.gaps);
                }
            }
        }
    }

    /// STAT's `watches` object.
    pub fn stat_json(&self) -> serde_json::Value {
        serde_json::json!({
            "subscriptions": self.count(),
            "published": self.published.load(Ordering::Relaxed),
            "gaps": self.gaps.load(Ordering::Relaxed),
            "epoch": format!("{:016x}", self.epoch),
        })
    }
}

/// One subscription's place in its connection's queue.
struct SubState {
    /// The WATCH request's header: notes answer it.
    header: Header,
    seq: u64,
    pending: usize,
    /// Dropped notes not reported yet: the first's number and how many.
    missed: Option<(u64, u64)>,
}

#[derive(Default)]
struct Queue {
    notes: VecDeque<(Header, WatchNote)>,
    subs: HashMap<u64, SubState>,
}

/// A connection's subscriptions and the notes waiting to be written to it.
pub struct ConnWatches {
    id: u64,
    queue: Mutex<Queue>,
    /// Woken when a note is queued.
    pub notify: Notify,
}

impl ConnWatches {
    pub fn new() -> Arc<ConnWatches> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Arc::new(ConnWatches {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            queue: Mutex::default(),
            notify: Notify::new(),
        })
    }

    /// Opens subscription `header.trans`; false if the connection has too many or that
    /// transaction id is taken.
    pub fn open(&self, header: Header) -> bool {
        let mut q = self.queue.lock();
        if q.subs.len() >= MAX_WATCHES_PER_CONNECTION || q.subs.contains_key(&header.trans) {
            return false;
        }
        let state = SubState {
            header,
            seq: 0,
            pending: 0,
            missed: None,
        };
        q.subs.insert(header.trans, state);
        true
    }

    /// Closes subscription `trans`; its request header if it was open.
    pub fn close(&self, trans: u64) -> Option<Header> {
        let mut q = self.queue.lock();
        q.notes.retain(|(h, _)| h.trans != trans);
        q.subs.remove(&trans).map(|s| s.header)
    }

    /// Subscriptions open.
    pub fn open_count(&self) -> usize {
        self.queue.lock().subs.len()
    }

    fn push(&self, trans: u64, mut note: WatchNote, gaps: &AtomicU64) {
        let mut q = self.queue.lock();
        let Some(state) = q.subs.get_mut(&trans) else {
            return;
        };
        state.seq += 1;
        note.seq = state.seq;
        if state.pending >= SUB_QUEUE {
            if state.missed.is_none() {
                gaps.fetch_add(1, Ordering::Relaxed);
            }
            let missed = state.missed.get_or_insert((note.seq, 0));
            missed.1 += 1;
            return;
        }
        state.pending += 1;
        let header = state.header;
        q.notes.push_back((header, note));
        drop(q);
        self.notify.notify_one();
    }

    /// Every note waiting, in order, each subscription's gap (if it dropped notes) after
    /// its queued notes.
    pub fn drain(&self, epoch: u64) -> Vec<(Header, WatchNote)> {
        let mut q = self.queue.lock();
        let mut out: Vec<(Header, WatchNote)> = q.notes.drain(..).collect();
        for state in q.subs.values_mut() {
            state.pending = 0;
            if let Some((first, count)) = state.missed.take() {
                let gap = WatchNote {
                    seq: first,
                    size: count,
                    timestamp_ns: super::versions::now_ns(),
                    ..WatchNote::new(NoteKind::Gap, epoch)
                };
                out.push((state.header, gap));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Command;

    fn change(key: u8) -> Change {
        Change {
            kind: NoteKind::Write,
            key: [key; 32],
            column: 0,
            whole_key: false,
            size: 1,
            named: None,
        }
    }

    #[test]
    fn a_key_subscription_gets_its_keys_changes_in_order() {
        let hub = WatchHub::default();
        let conn = ConnWatches::new();
        assert!(conn.open(Header::request(Command::Watch, 7, [1; 32], 0)));
        hub.add(&conn, 7, Filter::Key([1; 32]));
        assert!(hub.wants(&[1; 32], false) && !hub.wants(&[2; 32], false));
        hub.publish(vec![change(1), change(2), change(1)]);
        let notes = conn.drain(hub.epoch());
        let seqs: Vec<(u64, u64)> = notes.iter().map(|(_, n)| (n.seq, n.owner_seq)).collect();
        assert_eq!(seqs, [(1, 1), (2, 3)]);
        hub.remove(&conn, |_| true);
        assert_eq!(hub.count(), 0);
        assert!(!hub.wants(&[1; 32], false));
    }

    #[test]
    fn a_slow_subscriber_gets_a_gap_not_a_growing_queue() {
        let hub = WatchHub::default();
        let conn = ConnWatches::new();
        conn.open(Header::request(Command::Watch, 1, [1; 32], 0));
        hub.add(&conn, 1, Filter::Key([1; 32]));
        hub.publish((0..SUB_QUEUE + 10).map(|_| change(1)).collect());
        let notes = conn.drain(hub.epoch());
        assert_eq!(notes.len(), SUB_QUEUE + 1);
        let gap = &notes[SUB_QUEUE].1;
        assert_eq!(
            (gap.kind, gap.seq, gap.size),
            (NoteKind::Gap, SUB_QUEUE as u64 + 1, 10)
        );
        hub.publish(vec![change(1)]);
        let next = conn.drain(hub.epoch());
        assert_eq!(next[0].1.seq, SUB_QUEUE as u64 + 11);
    }

    #[test]
    fn namespace_subscriptions_filter_by_query() -> Result<(), Box<dyn std::error::Error>> {
        let hub = WatchHub::default();
        let conn = ConnWatches::new();
        conn.open(Header::request(Command::Watch, 3, [0; 32], 0));
        let query = Query::parse(&["camera=x100"], false)?;
        let filter = Filter::Namespace {
            namespace: "ph".into(),
            query: Some(query),
        };
        hub.add(&conn, 3, filter);
        let named = |cam: &str| -> Result<Change, Box<dyn std::error::Error>> {
            Ok(Change {
                named: Some(Arc::new(Named {
                    namespace: "ph".into(),
                    name: Bytes::from(format!("{cam}.jpg")),
                    size: 1,
                    attrs: Attrs::parse_pairs(&[format!("camera={cam}")])?,
                })),
                ..change(9)
            })
        };
        hub.publish(vec![named("x100")?, named("gr3")?]);
        let notes = conn.drain(hub.epoch());
        assert_eq!(notes.len(), 1);
        assert_eq!(&notes[0].1.name[..], b"x100.jpg");
        Ok(())
    }
}
