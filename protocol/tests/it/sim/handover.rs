//! Drives each node's hand-over streams — the shipping [`HandoverStream`] machine — as the
//! node's mover does: backend steps run on the node's backend (`cluster::local`, the code
//! the node runs on its blocking pool), copies travel the simulated network to the new
//! owner, which stores them as the node stores a conditional copy (`local::accept_copy`)
//! if its own table makes it the owner. A refused or lost copy fails the stream, which
//! restarts from its last progress record a while later.

use ringblob_protocol::cluster::local;
use ringblob_protocol::cluster::{owner_agrees, HandoverAnswer, HandoverStep, HandoverStream};

use super::world::{Copied, Msg, Sim, StreamRef};

/// A copy not answered in this long fails its stream.
const ACK_TIMEOUT_MS: u64 = 500;
/// A failed stream's node starts streams again after this long.
const RETRY_MS: u64 = 300;

/// One running stream: its machine and the copy it waits an answer for.
pub struct Stream {
    machine: HandoverStream,
    /// The sequence number of the copy in flight and when it was sent.
    waiting: Option<(u64, u64)>,
    next_seq: u64,
}

impl Sim {
    /// Every second, each node asks the previous owners it still reads ranges through to
    /// whether they are done, as the node's `handover_check.rs` does: an owner that is up,
    /// reachable, serves a table agreeing that the ranges are this node's
    /// (`cluster::owner_agrees`) and has no transfer to this node left ends their
    /// read-through (`IncomingRanges::handed_over`).
    pub fn check_handovers(&mut self) {
        if self.now < self.next_handover_check {
            return;
        }
        self.next_handover_check = self.now + 1000;
        for node in 0..self.nodes.len() {
            let Some(n) = self.nodes.get(node) else {
                continue;
            };
            let (Some(_), Some(mine)) = (&n.cluster, n.last_table.clone()) else {
                continue;
            };
            let (me, my_addr) = (n.name.clone(), n.addr.clone());
            let mut done = Vec::new();
            for a in n.incoming.awaited(self.now) {
                let Some(owner) = self.nodes.iter().find(|o| o.name == a.from) else {
                    continue;
                };
                let Some(theirs) = &owner.cluster else {
                    continue;
                };
                if self.cut_off(&my_addr, &owner.addr) {
                    continue;
                }
                let pending = theirs.transfers().iter().any(|t| t.to == me);
                if !pending && owner_agrees(&mine, theirs.route_table(), &a, &me) {
                    done.push(a);
                }
            }
            if let Some(n) = self.nodes.get_mut(node) {
                for a in done {
                    self.stats.handovers_confirmed += n.incoming.handed_over(&a.from, a.seq) as u64;
                }
            }
        }
    }

    /// Starts a stream for every transfer without one, and fails streams whose copy is
    /// overdue.
    pub fn pump_streams(&mut self) {
        for node in 0..self.nodes.len() {
            self.fail_overdue(node);
            let Some(n) = self.nodes.get(node) else {
                continue;
            };
            let Some(cluster) = &n.cluster else {
                continue;
            };
            if self.now < n.retry_at {
                continue;
            }
            let starting: Vec<_> = cluster
                .transfers()
                .iter()
                .filter(|t| !n.streams.contains_key(&t.id))
                .cloned()
                .collect();
            for t in starting {
                let stream = Stream {
                    machine: HandoverStream::new(&t, None),
                    waiting: None,
                    next_seq: 0,
                };
                if let Some(n) = self.nodes.get_mut(node) {
                    n.streams.insert(t.id, stream);
                }
                self.run_stream(node, t.id, HandoverAnswer::Continue);
            }
        }
    }

    fn fail_overdue(&mut self, node: usize) {
        let now = self.now;
        let Some(n) = self.nodes.get(node) else {
            return;
        };
        let overdue: Vec<u64> = n
            .streams
            .iter()
            .filter(|(_, s)| s.waiting.is_some_and(|(_, at)| now > at + ACK_TIMEOUT_MS))
            .map(|(id, _)| *id)
            .collect();
        for id in overdue {
            self.fail_stream(node, id);
        }
    }

    fn fail_stream(&mut self, node: usize, id: u64) {
        self.stats.stream_failures += 1;
        let now = self.now;
        if let Some(n) = self.nodes.get_mut(node) {
            n.streams.remove(&id);
            n.retry_at = now + RETRY_MS;
        }
    }

    /// Feeds `answer` to the stream and carries out its steps until it sends something or
    /// ends.
    pub fn run_stream(&mut self, node: usize, id: u64, mut answer: HandoverAnswer) {
        loop {
            let Some(n) = self.nodes.get_mut(node) else {
                return;
            };
            let backend = n.backend.clone();
            let Some(stream) = n.streams.get_mut(&id) else {
                return;
            };
            let step = match stream.machine.advance(answer) {
                Ok(step) => step,
                Err(e) => {
                    self.errors.push(format!("node {node} stream {id}: {e}"));
                    self.fail_stream(node, id);
                    return;
                }
            };
            let b = backend.as_ref();
            let done = match step {
                HandoverStep::Done => {
                    if let Some(n) = self.nodes.get_mut(node) {
                        n.streams.remove(&id);
                    }
                    self.drive(node, |c| c.transfer_done(id));
                    return;
                }
                HandoverStep::Progress { cursor } => {
                    self.drive(node, |c| c.transfer_progress(id, cursor));
                    Ok(HandoverAnswer::Continue)
                }
                HandoverStep::Pace { .. } => Ok(HandoverAnswer::Continue),
                HandoverStep::ListRemoves(range) => {
                    local::removes_to_hand_over(b, &range).map(HandoverAnswer::Removes)
                }
                HandoverStep::ListPage(req) => local::list(b, &req).map(HandoverAnswer::Page),
                HandoverStep::ReadRecord { key, column } => {
                    local::read_record(b, key, column).map(HandoverAnswer::Record)
                }
                HandoverStep::DropCopy {
                    key,
                    column,
                    timestamp_ns,
                } => local::drop_copy(b, key, column, timestamp_ns).map(HandoverAnswer::Dropped),
                HandoverStep::SendCopy {
                    key,
                    column,
                    record,
                } => {
                    let copied = Copied::Value {
                        key,
                        column,
                        record,
                    };
                    match self.send_copy(node, id, copied) {
                        Some(answer) => Ok(answer),
                        None => return,
                    }
                }
                HandoverStep::SendRemove(r) => match self.send_copy(node, id, Copied::Remove(r)) {
                    Some(answer) => Ok(answer),
                    None => return,
                },
            };
            answer = match done {
                Ok(answer) => answer,
                // The source's disk failed: the stream retries later.
                Err(_) => {
                    self.fail_stream(node, id);
                    return;
                }
            };
        }
    }

    /// Sends a copy to the transfer's new owner and marks the stream waiting; `Some` answer
    /// only when the broken-movement knob pretends a copy landed.
    fn send_copy(&mut self, node: usize, id: u64, copied: Copied) -> Option<HandoverAnswer> {
        let now = self.now;
        let n = self.nodes.get_mut(node)?;
        let cluster = n.cluster.as_ref()?;
        let to = cluster.transfers().iter().find(|t| t.id == id)?.to.clone();
        let to = cluster.route_table().node(&to)?.addr.clone();
        let (from, epoch) = (n.addr.clone(), n.epoch);
        let stream = n.streams.get_mut(&id)?;
        let seq = stream.next_seq;
        stream.next_seq += 1;
        if self.broken_movement && seq % 7 == 3 && matches!(copied, Copied::Value { .. }) {
            return Some(HandoverAnswer::Sent(true));
        }
        stream.waiting = Some((seq, now));
        let stream = StreamRef {
            node,
            epoch,
            transfer: id,
            seq,
        };
        self.send(&from, &to, Msg::Copy { stream, copied });
        None
    }

    /// Stores a copy at its receiver, if the receiver's table makes it the owner.
    pub fn accept(&mut self, node: usize, copied: Copied) -> Option<bool> {
        let key = match &copied {
            Copied::Value { key, .. } => key.0,
            Copied::Remove(r) => r.key.0,
        };
        if !self.owns(node, &key) {
            return None;
        }
        let b = self.nodes.get(node)?.backend.clone();
        let stored = match copied {
            Copied::Value {
                key,
                column,
                record,
            } => local::accept_copy(b.as_ref(), key, column, &record),
            Copied::Remove(r) => local::accept_remove(b.as_ref(), &r),
        };
        match stored {
            Ok(stored) => {
                self.stats.copies_stored += u64::from(stored);
                Some(stored)
            }
            // A full or failing disk: the copy is refused and the stream retries later.
            Err(_) => None,
        }
    }

    /// The new owner answered a copy: the stream goes on, or fails if it was refused.
    pub fn copy_acked(&mut self, at: StreamRef, stored: Option<bool>) {
        let current = self.nodes.get(at.node).and_then(|n| {
            let s = n.streams.get(&at.transfer)?;
            (n.epoch == at.epoch && s.waiting.map(|(seq, _)| seq) == Some(at.seq)).then_some(())
        });
        if current.is_none() {
            return; // a duplicate, or an answer to a stream that is gone
        }
        if let Some(s) = self
            .nodes
            .get_mut(at.node)
            .and_then(|n| n.streams.get_mut(&at.transfer))
        {
            s.waiting = None;
        }
        match stored {
            Some(stored) => self.run_stream(at.node, at.transfer, HandoverAnswer::Sent(stored)),
            None => self.fail_stream(at.node, at.transfer),
        }
    }
}
