//! A connection's side of `WATCH` (`docs/PROTOCOL.md` §7.15): opening and cancelling its
//! subscriptions, and writing their notes. The hub and the queues are in `subscriptions.rs`.

use std::sync::Arc;

use bytes::BytesMut;

use super::access::strip_envelope;
use super::subscriptions::{ConnWatches, Filter, WatchHub};
use crate::attrs::Query;
use crate::wire::{
    encode_error, Frame, Header, NoteKind, Reply, Request, Status, WatchNote, WatchRequest,
};

/// The oldest protocol version with `WATCH`.
pub const WATCH_VERSION: u8 = 3;

type Failure = (Status, String);

/// A connection's subscriptions; dropping it removes them from the hub.
pub struct Watching {
    hub: Arc<WatchHub>,
    conn: Arc<ConnWatches>,
}

impl Watching {
    pub fn new(hub: Arc<WatchHub>) -> Watching {
        Watching {
            hub,
            conn: ConnWatches::new(),
        }
    }

    /// Whether any subscription is open (the connection then never idles out).
    pub fn active(&self) -> bool {
        self.conn.open_count() > 0
    }

    /// Resolves when a note is waiting.
    pub async fn ready(&self) {
        self.conn.notify.notified().await
    }

    /// The replies to `frame`, a WATCH: the first note of a new subscription, or the ends
    /// of a cancelled one and of the cancel itself; an error reply if it is refused.
    pub fn serve(&self, frame: &Frame, out: &mut BytesMut) {
        let h = frame.header;
        match self.answer(frame) {
            Ok(replies) => {
                for (header, note) in replies {
                    let more = note.kind != NoteKind::Ended;
                    if let Err(e) = (Reply::Watch { note, more }).encode(&header, out) {
                        encode_error(&header, e.status(), &e.to_string(), out);
                    }
                }
            }
            Err((status, message)) => encode_error(&h, status, &message, out),
        }
    }

    fn answer(&self, frame: &Frame) -> Result<Vec<(Header, WatchNote)>, Failure> {
        let h = frame.header;
        if h.version < WATCH_VERSION {
            return Err((
                Status::BadRequest,
                format!(
                    "WATCH needs protocol version {WATCH_VERSION}; this connection speaks {}",
                    h.version
                ),
            ));
        }
        let bad = |e: crate::wire::WireError| (e.status(), e.to_string());
        let req = match Request::decode(&strip_envelope(frame.clone()).map_err(bad)?) {
            Ok(Request::Watch(req)) => req,
            Ok(_) => return Err((Status::BadRequest, "not a WATCH".into())),
            Err(e) => return Err(bad(e)),
        };
        let ended = |header: Header| (header, WatchNote::new(NoteKind::Ended, self.hub.epoch()));
        if let Some(trans) = req.cancel {
            let Some(watched) = self.conn.close(trans) else {
                return Err((
                    Status::NotFound,
                    format!("no subscription {trans} on this connection"),
                ));
            };
            self.hub.remove(&self.conn, |t| t == trans);
            return Ok(vec![ended(watched), ended(h)]);
        }
        let filter = filter_of(&req, &h)?;
        if !self.conn.open(h) {
            return Err((
                Status::BadRequest,
                format!(
                    "transaction {} is watching already, or the connection has {} \
                     subscriptions (the most one may hold)",
                    h.trans,
                    super::subscriptions::MAX_WATCHES_PER_CONNECTION
                ),
            ));
        }
        self.hub.add(&self.conn, h.trans, filter);
        let first = WatchNote {
            owner_seq: self.hub.published(),
            timestamp_ns: super::versions::now_ns(),
            key: h.key,
            ..WatchNote::new(NoteKind::Subscribed, self.hub.epoch())
        };
        Ok(vec![(h, first)])
    }

    /// Every note waiting, encoded.
    pub fn notes(&self, out: &mut BytesMut) {
        for (header, note) in self.conn.drain(self.hub.epoch()) {
            if let Err(e) = (Reply::Watch { note, more: true }).encode(&header, out) {
                encode_error(&header, e.status(), &e.to_string(), out);
            }
        }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.hub.remove(&self.conn, |_| true);
    }
}

/// What a WATCH asks for: its namespace (and query), or the header's key.
fn filter_of(req: &WatchRequest, h: &Header) -> Result<Filter, Failure> {
    let Some(namespace) = &req.namespace else {
        return Ok(Filter::Key(h.key));
    };
    let words: Vec<&str> = req.query.split_whitespace().collect();
    let query = match words.is_empty() {
        true => None,
        false => {
            Some(Query::parse(&words, req.exact).map_err(|e| (Status::BadRequest, e.to_string()))?)
        }
    };
    Ok(Filter::Namespace {
        namespace: namespace.clone(),
        query,
    })
}
