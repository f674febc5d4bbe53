//! The replies of a *run*: frames sent together on one connection whose reply frames all
//! arrive on one channel ([`Conn::send_run`](super::conn::Conn::send_run)). A channel per
//! frame cost a forwarding node more than the frame's relaying (measured: creating and
//! dropping them was ~8 % of a node's CPU relaying pipelined GETs); one per run costs a
//! sender clone per frame.
//!
//! A node answers a connection's requests in order, so the frames come transaction after
//! transaction; one that arrives early (another order, or a transaction the caller is not
//! reading yet) is kept until asked for, and one of a transaction given up is dropped.

use std::collections::VecDeque;

use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::wire::Frame;

/// The transactions of a run, in the order sent, and their reply frames.
pub struct RunReplies {
    sent: Vec<u64>,
    given_up: Vec<u64>,
    rx: UnboundedReceiver<Frame>,
    early: VecDeque<Frame>,
}

impl RunReplies {
    pub(super) fn new(sent: Vec<u64>, rx: UnboundedReceiver<Frame>) -> RunReplies {
        RunReplies {
            sent,
            given_up: Vec::new(),
            rx,
            early: VecDeque::new(),
        }
    }

    /// The run's transaction ids, in the order the frames were sent.
    pub fn sent(&self) -> &[u64] {
        &self.sent
    }

    /// The next reply frame of `trans`; `None` once the connection is gone.
    pub async fn next(&mut self, trans: u64) -> Option<Frame> {
        if let Some(f) = self.take_early(trans) {
            return Some(f);
        }
        loop {
            let f = self.rx.recv().await?;
            if let Some(f) = self.sort(trans, f) {
                return Some(f);
            }
        }
    }

    /// The next reply frame of `trans` if one is here: `Empty` if not yet, `Disconnected`
    /// once the connection is gone.
    pub fn try_next(&mut self, trans: u64) -> Result<Frame, TryRecvError> {
        if let Some(f) = self.take_early(trans) {
            return Ok(f);
        }
        loop {
            let f = self.rx.try_recv()?;
            if let Some(f) = self.sort(trans, f) {
                return Ok(f);
            }
        }
    }

    /// Stops waiting for `trans`: its frames still to come are dropped.
    pub fn give_up(&mut self, trans: u64) {
        self.given_up.push(trans);
        self.early.retain(|f| f.header.trans != trans);
    }

    fn take_early(&mut self, trans: u64) -> Option<Frame> {
        let at = self.early.iter().position(|f| f.header.trans == trans)?;
        self.early.remove(at)
    }

    /// `f` if it is `trans`'s — or the connection's (transaction 0: an error such as
    /// `CONNECTION_LIMIT`, which the connection's reader hands every waiting transaction a
    /// copy of); otherwise kept for later (a transaction of the run still waited for) or
    /// dropped.
    fn sort(&mut self, trans: u64, f: Frame) -> Option<Frame> {
        let of = f.header.trans;
        if of == trans || of == 0 {
            return Some(f);
        }
        if self.sent.contains(&of) && !self.given_up.contains(&of) {
            self.early.push_back(f);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Command, Header};
    use bytes::Bytes;

    fn frame(trans: u64, body: &'static str) -> Frame {
        Frame {
            header: Header::request(Command::Read, trans, [0; 32], 0),
            payload: Bytes::from_static(body.as_bytes()),
        }
    }

    #[tokio::test]
    async fn frames_reach_their_transaction_whatever_the_order() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut run = RunReplies::new(vec![1, 2, 3], rx);
        for f in [
            frame(2, "b"),
            frame(9, "stray"),
            frame(1, "a"),
            frame(3, "c"),
        ] {
            assert!(tx.send(f).is_ok());
        }
        assert_eq!(run.sent(), &[1, 2, 3]);
        let got = run.next(1).await.map(|f| f.payload);
        assert_eq!(got, Some(Bytes::from_static(b"a")));
        assert_eq!(
            run.try_next(2).map(|f| f.payload),
            Ok(Bytes::from_static(b"b"))
        );
        assert_eq!(
            run.try_next(3).map(|f| f.payload),
            Ok(Bytes::from_static(b"c"))
        );
        assert_eq!(run.try_next(3).err(), Some(TryRecvError::Empty));
        drop(tx);
        assert!(run.next(3).await.is_none(), "the connection is gone");
    }

    #[tokio::test]
    async fn an_error_of_the_connection_answers_every_transaction() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut run = RunReplies::new(vec![1, 2], rx);
        // The reader sends one copy per waiting transaction.
        for _ in 0..2 {
            assert!(tx.send(frame(0, "connection limit")).is_ok());
        }
        for trans in [1, 2] {
            let got = run.try_next(trans).map(|f| f.payload);
            assert_eq!(got, Ok(Bytes::from_static(b"connection limit")), "{trans}");
        }
    }

    #[tokio::test]
    async fn a_transaction_given_up_gets_nothing_more() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut run = RunReplies::new(vec![1, 2], rx);
        assert!(tx.send(frame(1, "early")).is_ok());
        assert_eq!(run.try_next(2).err(), Some(TryRecvError::Empty));
        run.give_up(1);
        assert!(tx.send(frame(1, "late")).is_ok());
        assert!(tx.send(frame(2, "b")).is_ok());
        assert_eq!(
            run.try_next(2).map(|f| f.payload),
            Ok(Bytes::from_static(b"b"))
        );
        assert_eq!(run.try_next(1).err(), Some(TryRecvError::Empty));
    }
}
