//! Reads served in process, for the node's own HTTP gateway: the frames a client would send
//! are served by the same code a connection runs — routing, admission of the request's key,
//! hand-over read-through, quarantine, inline serving, the reply budget, metrics — without
//! the loopback round trip, the framing on a socket or the client behind it. Only what this
//! node serves from its own storage at once is answered here; anything else (a key another
//! node owns, a read to ask a previous owner, a reply that streams, a refused key) is left
//! to the caller, who sends it through a client as before, so the answer never differs from
//! the one a connection would give.

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;

use super::access::{admit, Identity};
use super::connection::{metrics_kind, observe_batch, route_of, serve_batch};
use super::forward::Route;
use super::{reply_budget, Node};
use crate::wire::{decode_frame, Command, Frame, Reply};

impl Node {
    /// Serves `frames` — `LOOKUP`s and `READ`s, as a connection of `who` (`None`: a node
    /// without keys) would receive them — here and now, if this node answers every one of
    /// them from its own storage in one batch: their replies in order. `None` otherwise:
    /// nothing was answered, and the caller asks through a client.
    pub async fn read_here(
        self: &Arc<Self>,
        who: Option<&Identity>,
        frames: Vec<Frame>,
    ) -> Option<Vec<Reply>> {
        if !self.serves_here(who, &frames) {
            return None;
        }
        let routing = self.info.routing();
        let table = routing.as_ref().map(|r| r.table().clone());
        let count = frames.len();
        let kinds: Vec<_> = frames.iter().map(metrics_kind).collect();
        let arrived = Instant::now();
        let charged = reply_budget::bound(&frames);
        let mut share = self.reply_budget.take(&frames).await;
        let served = serve_batch(self, frames, table, share.cap()).await.ok()?;
        let actual = served.chunks.iter().map(|c| c.len()).sum();
        share.grow(&self.reply_budget, actual, charged);
        observe_batch(
            self,
            &kinds,
            &served.outcomes,
            arrived.elapsed().as_secs_f64(),
        );
        let whole = served.outcomes.len() == count && served.stream.is_none();
        if !whole || served.ask_first {
            return None;
        }
        let mut buf = BytesMut::with_capacity(actual);
        for chunk in &served.chunks {
            buf.extend_from_slice(chunk);
        }
        let mut replies = Vec::with_capacity(count);
        while let Ok(Some(frame)) = decode_frame(&mut buf) {
            replies.push(Reply::decode(&frame).ok()?);
        }
        (replies.len() == count).then_some(replies)
    }

    /// Whether every frame is a read this node owns (by the route table it routes by) and
    /// `who` may make.
    fn serves_here(&self, who: Option<&Identity>, frames: &[Frame]) -> bool {
        let routing = self.info.routing();
        frames.iter().all(|f| {
            matches!(f.header.command, Command::Lookup | Command::Read)
                && f.header.hops == 0
                && route_of(self, routing.as_ref(), f) == Route::Local
                && who.is_none_or(|id| admit(&self.config.access, id, f).is_ok())
        })
    }
}
