//! Hinted hand-off (`docs/PROTOCOL.md` §9.2): a key's owner that stops answering does not
//! stop writes to its ranges.
//!
//! - A coordinator whose forwarded request got no answer from an owner marks the owner
//!   **suspect** ([`Suspects`]). A client's whole-value write or remove for a suspect owner
//!   goes, with its coordinator's version, to the next node of the owner's group that is alive
//!   and not suspect, flagged `HINTED`; a frame that was in flight to the owner when it
//!   stopped is sent there too, after the owner timeout (the same version twice is harmless).
//! - The node that takes a hinted change stores it and notes a **hint** ([`Hints`]): the
//!   owner's name and the key.
//! - Every 250 ms each node probes the owners it suspects (a `PING` within the owner
//!   timeout; an answer clears the suspicion); every second it replays its hints to owners
//!   that are alive and answer: each column of the key as a conditional copy (`IF_NEWER`)
//!   and each remembered remove as a copied remove, so the owner keeps anything newer it
//!   holds. A hint is dropped once the owner has it (OK or `NOT_NEWER`).
//!
//! Appends, writes at an offset and streamed uploads are never hinted: they build on the
//! stored value, which only the owner has. Hints live in memory (at most [`MAX_HINTS`]); a
//! node that restarts forgets them, and repair between groups then brings the owner in line.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use ringblob_engine::Key;
use tokio::sync::watch;

use super::copy::{local, send_copy, send_remove};
use super::task_error::TaskError;
use super::Node;
use crate::client::Client;
use crate::cluster::local::read_record;
use crate::wire::{Command, Frame, KeyId};

/// Most hints one node keeps; a hinted change beyond it is still stored, but not noted for
/// replay (repair between groups brings its owner in line).
pub const MAX_HINTS: usize = 1 << 20;
/// Keys replayed to one owner per round.
const REPLAY_BATCH: usize = 256;
/// A suspicion nobody cleared is forgotten after this long (the owner is tried again).
const SUSPECT_FOR: Duration = Duration::from_secs(60);
/// How often suspects are probed (hints are replayed every [`REPLAY_EVERY`] rounds).
const ROUND: Duration = Duration::from_millis(250);
/// Probe rounds per hint replay.
const REPLAY_EVERY: u32 = 4;

/// Owners (by address) that did not answer this node recently.
#[derive(Debug, Default)]
pub struct Suspects {
    since: Mutex<HashMap<String, Instant>>,
}

impl Suspects {
    pub fn mark(&self, addr: &str) {
        let mut since = self.since.lock();
        if !since.contains_key(addr) {
            tracing::info!(owner = %addr, "owner did not answer: hinting its writes");
        }
        since.entry(addr.to_string()).or_insert_with(Instant::now);
    }

    pub fn clear(&self, addr: &str) {
        if self.since.lock().remove(addr).is_some() {
            tracing::info!(owner = %addr, "owner answers again");
        }
    }

    pub fn is_suspect(&self, addr: &str) -> bool {
        let mut since = self.since.lock();
        match since.get(addr) {
            Some(t) if t.elapsed() < SUSPECT_FOR => true,
            Some(_) => {
                since.remove(addr);
                false
            }
            None => false,
        }
    }

    /// No owner is suspect (the common case: nothing to hint).
    pub fn is_empty(&self) -> bool {
        self.since.lock().is_empty()
    }

    fn all(&self) -> Vec<String> {
        self.since.lock().keys().cloned().collect()
    }
}

/// Keys this node holds hinted changes of, per owner name.
#[derive(Debug, Default)]
pub struct Hints {
    by_owner: Mutex<BTreeMap<String, BTreeSet<KeyId>>>,
}

impl Hints {
    /// Notes a hinted change of `key` for `owner`; false if the node holds too many hints.
    pub fn add(&self, owner: &str, key: KeyId) -> bool {
        let mut by_owner = self.by_owner.lock();
        if by_owner.values().map(BTreeSet::len).sum::<usize>() >= MAX_HINTS {
            return false;
        }
        by_owner.entry(owner.to_string()).or_default().insert(key);
        true
    }

    /// Hints held, in all.
    pub fn len(&self) -> usize {
        self.by_owner.lock().values().map(BTreeSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn batch(&self, owner: &str) -> Vec<KeyId> {
        let by_owner = self.by_owner.lock();
        by_owner
            .get(owner)
            .map(|keys| keys.iter().take(REPLAY_BATCH).copied().collect())
            .unwrap_or_default()
    }

    fn done(&self, owner: &str, key: &KeyId) {
        let mut by_owner = self.by_owner.lock();
        if let Some(keys) = by_owner.get_mut(owner) {
            keys.remove(key);
            if keys.is_empty() {
                by_owner.remove(owner);
            }
        }
    }

    fn owners(&self) -> Vec<String> {
        self.by_owner.lock().keys().cloned().collect()
    }
}

/// Whether `frame` may be hinted: a `REMOVE`, or a `WRITE` of a whole value (mode 0).
pub fn hintable(frame: &Frame) -> bool {
    match frame.header.command {
        Command::Remove => true,
        Command::Write => frame.payload.first() == Some(&0),
        _ => false,
    }
}

/// Probes suspects every [`ROUND`] and replays hints every [`REPLAY_EVERY`] rounds until
/// `stop`.
pub async fn run(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    let mut round = 0u32;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(ROUND) => {}
            _ = stop.changed() => return,
        }
        probe_suspects(&node).await;
        round = round.wrapping_add(1);
        if round.is_multiple_of(REPLAY_EVERY) {
            replay(&node).await;
        }
    }
}

async fn probe_suspects(node: &Node) {
    for addr in node.peers.suspects.all() {
        let answered = match node.peers.client(&addr, 1).await {
            Ok(c) => c.ping().await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match answered {
            Ok(()) => node.peers.suspects.clear(&addr),
            Err(why) => {
                tracing::debug!(owner = %addr, error = %why, "suspect still does not answer")
            }
        }
    }
}

async fn replay(node: &Node) {
    let Some(table) = node.info.route_table() else {
        return;
    };
    for owner in node.hints.owners() {
        let Some(entry) = table.node(&owner).filter(|n| n.alive) else {
            continue;
        };
        if node.peers.suspects.is_suspect(&entry.addr) {
            continue;
        }
        let Ok(client) = node.peers.client(&entry.addr, 1).await else {
            node.peers.suspects.mark(&entry.addr);
            continue;
        };
        for key in node.hints.batch(&owner) {
            match replay_key(node, &client, key).await {
                Ok(()) => {
                    node.hints.done(&owner, &key);
                    let c = &node.info.counters;
                    c.hints_replayed.fetch_add(1, Ordering::Relaxed);
                    c.hints_held
                        .store(node.hints.len() as u64, Ordering::Relaxed);
                }
                Err(why) => {
                    tracing::debug!(%owner, error = %why, "hint replay failed; retrying later");
                    node.peers.suspects.mark(&entry.addr);
                    break;
                }
            }
        }
    }
}

/// Sends every column and remembered remove of `key` held here to the owner behind
/// `client`, as conditional copies.
async fn replay_key(node: &Node, client: &Client, key: KeyId) -> Result<(), TaskError> {
    let k = Key(key);
    let columns = node.backend.run(move |b| b.columns(&k)).await?;
    for meta in columns {
        let column = meta.column;
        let found = local(&node.backend, move |b| read_record(b, k, column)).await?;
        if let Some(record) = found {
            send_copy(client, k, column, record).await?;
        }
    }
    let removes = node.backend.run(move |b| b.removes_in(&k, &k)).await?;
    for r in &removes {
        send_remove(client, r).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Header, RemoveRequest, Request, WriteMode, WriteRequest};
    use bytes::BytesMut;

    fn frame(req: Request) -> Frame {
        let mut out = BytesMut::new();
        let h = Header::request(req.command(), 1, [1; 32], 1);
        assert!(req.encode_with(&h, &mut out).is_ok());
        match crate::wire::decode_frame(&mut out) {
            Ok(Some(f)) => f,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_whole_writes_and_removes_are_hinted() {
        assert!(hintable(&frame(Request::Write(WriteRequest::whole("v")))));
        assert!(hintable(&frame(Request::Remove(RemoveRequest::default()))));
        let append = WriteRequest {
            mode: WriteMode::Append,
            ..WriteRequest::whole("v")
        };
        assert!(!hintable(&frame(Request::Write(append))));
        let part = WriteRequest {
            mode: WriteMode::Part { offset: 0 },
            ..WriteRequest::whole("v")
        };
        assert!(!hintable(&frame(Request::Write(part))));
        assert!(!hintable(&frame(Request::Lookup(
            crate::wire::LookupRequest { column: 0 }
        ))));
    }

    #[test]
    fn hints_are_kept_per_owner_until_done() {
        let h = Hints::default();
        assert!(h.add("a", [1; 32]));
        assert!(h.add("a", [1; 32]), "the same key twice is one hint");
        assert!(h.add("b", [2; 32]));
        assert_eq!(h.len(), 2);
        assert_eq!(h.batch("a"), vec![[1; 32]]);
        h.done("a", &[1; 32]);
        assert_eq!(h.owners(), vec!["b".to_string()]);
    }

    #[test]
    fn suspicion_is_marked_and_cleared() {
        let s = Suspects::default();
        assert!(!s.is_suspect("x:1"));
        s.mark("x:1");
        assert!(s.is_suspect("x:1"));
        s.clear("x:1");
        assert!(!s.is_suspect("x:1"));
    }
}
