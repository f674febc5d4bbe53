//! Routing and forwarding (`docs/PROTOCOL.md` §9): a request for a key that another node of
//! the target group owns is sent to that owner with `hops` + 1, over one pipelined
//! connection per peer that every client connection shares (so the requests of many clients
//! reach the owner in one write and are served there as one batch), and the owner's reply
//! frames are relayed back under the client's transaction id as they arrive (so a streamed
//! read is never held whole).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::hints::{hintable, Suspects};
use super::metrics::{Metrics, Route as MetricsRoute};
use super::versions::{now_ns, stamp_forwarded, Budget};
use crate::client::{Client, ClientConfig, ClientSecurity, RunReplies};
use crate::ring::Routing;
use crate::wire::{encode_error, Command, Frame, Header, Status, HEADER_LEN, MAX_FORWARD_HOPS};

/// Where a request is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Here.
    Local,
    /// At the owner: its address, and the group the request was routed in.
    Forward { addr: String, group: u32 },
    /// Nowhere: the error reply to give.
    Refuse(Status, String),
}

/// Commands about one key, routed to its owner; the rest are served by the node asked.
pub(super) fn keyed(command: Command) -> bool {
    matches!(
        command,
        Command::Lookup | Command::Read | Command::Write | Command::Remove
    )
}

/// The group a keyed request targets: its header's, or `own_group` when that is 0.
pub fn target_group(h: &Header, own_group: u32) -> u32 {
    if h.group == 0 {
        own_group
    } else {
        h.group
    }
}

/// Decides where `h` is served, by `table` and its rings (none: not in a cluster,
/// everything is local).
pub fn route(table: Option<&Routing>, me: &str, own_group: u32, h: &Header) -> Route {
    let Some(table) = table else {
        return Route::Local;
    };
    if !keyed(h.command) || h.is_local() || h.is_hinted() {
        return Route::Local;
    }
    let group = target_group(h, own_group);
    match table.owner(group, &h.key) {
        Some(owner) if owner.name == me => Route::Local,
        Some(_) if h.hops >= MAX_FORWARD_HOPS => Route::Refuse(
            Status::TooManyHops,
            format!(
                "not the owner, and the request was forwarded {} times",
                h.hops
            ),
        ),
        Some(owner) => Route::Forward {
            addr: owner.addr.clone(),
            group,
        },
        None if group == own_group => Route::Local,
        None => Route::Refuse(Status::NotOwner, format!("no live node in group {group}")),
    }
}

/// A frame the owner did not answer that may go to its successor instead: a client's
/// (stamped) whole write or remove, not already hinted.
fn retryable(frame: &Frame) -> bool {
    frame.header.hops == 0 && !frame.header.is_hinted() && hintable(frame)
}

/// Commands that change a key, which leave a coordinator with a version and a deadline.
fn is_change(command: Command) -> bool {
    matches!(command, Command::Write | Command::Remove)
}

/// One client per peer, shared by every connection of this node: the forwarded requests of
/// many clients reach the owner together and are served there as one batch (measured: two
/// or more connections per peer only split those batches, and lower forwarded throughput).
pub struct Peers {
    config: ClientConfig,
    budget: Budget,
    /// Owners that did not answer recently: their writes are hinted (`hints.rs`).
    pub suspects: Suspects,
    /// By peer address and lane (the hops frames arrive with; see [`Peers::client`]).
    clients: tokio::sync::Mutex<HashMap<(String, u8), Arc<Client>>>,
    /// Where forwarded requests are counted and timed (`metrics.rs`).
    metrics: Option<Arc<Metrics>>,
}

impl Peers {
    pub fn new(name: &str, budget: Budget, security: ClientSecurity) -> Peers {
        Peers {
            config: ClientConfig {
                name: format!("{name} (forwarding)"),
                retries: 0,
                timeout: budget.owner_timeout,
                security,
                ..ClientConfig::default()
            },
            budget,
            suspects: Suspects::default(),
            clients: tokio::sync::Mutex::new(HashMap::new()),
            metrics: None,
        }
    }

    /// Counts and times every forwarded request in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Peers {
        self.metrics = Some(metrics);
        self
    }

    fn observe(&self, header: &Header, status: Status, since: tokio::time::Instant) {
        if let Some(m) = &self.metrics {
            let secs = since.elapsed().as_secs_f64();
            m.request(header.command, status, MetricsRoute::Forwarded, secs);
        }
    }

    /// The shared client of the peer at `addr` for frames that arrive there with `hops`
    /// hops (its *lane*). Connecting happens outside the map's lock (and within the connect
    /// timeout), so an owner that is down delays only the requests routed to it, never those
    /// for other peers.
    ///
    /// One connection per peer and hop count, so that no two requests can wait on each
    /// other: a node serves each connection's requests in order, and a request it serves
    /// with `h` hops waits only on requests it sends on with more hops (forwarded, read
    /// through or read back), which travel on another lane. Every wait goes to a higher
    /// lane, and a request on the last lane (`MAX_FORWARD_HOPS`) waits on no other node, so
    /// no cycle of waits can form — as it could on one shared connection while route tables
    /// disagree on an owner (A forwards to B what B forwards back to A, each behind the
    /// other's request), until the owner timeout.
    pub(crate) async fn client(&self, addr: &str, hops: u8) -> Result<Arc<Client>, String> {
        let lane = (addr.to_string(), hops);
        if let Some(c) = self.clients.lock().await.get(&lane) {
            return Ok(c.clone());
        }
        let c = Arc::new(
            Client::connect(addr, self.config.clone())
                .await
                .map_err(|e| e.to_string())?,
        );
        // Another request may have connected meanwhile: keep one client per peer.
        let mut clients = self.clients.lock().await;
        Ok(clients.entry(lane).or_insert(c).clone())
    }

    /// Sends `run` (frames, each with the group it was routed in) on to the owner at `addr`
    /// in one write; their replies are relayed by [`finish`](Self::finish). Many runs, of
    /// many client connections, are in flight at once on the peer connection. A client's
    /// write or remove (no hops yet) leaves with this node's version and a deadline
    /// (`versions.rs`).
    pub async fn send(&self, addr: &str, run: &[(&Frame, u32)]) -> InFlight {
        let now = now_ns();
        let outgoing: Vec<(Frame, u32)> = run
            .iter()
            .map(|(f, g)| (self.outgoing(f, now), *g))
            .collect();
        let run: Vec<(&Frame, u32)> = outgoing.iter().map(|(f, g)| (f, *g)).collect();
        // The hops the frames arrive with (the relay adds one).
        let hops = run.iter().map(|(f, _)| f.header.hops).max().unwrap_or(0);
        let started = async {
            let client = self.client(addr, hops.saturating_add(1)).await?;
            let sent = client.relay_all(&run).await.map_err(|e| e.to_string())?;
            Ok::<_, String>((client, sent))
        };
        let started = started.await;
        let headers = run.iter().map(|(f, _)| f.header).collect();
        InFlight {
            first: None,
            outgoing,
            retry: true,
            failure: Status::Timeout,
            sent_at: tokio::time::Instant::now(),
            addr: addr.to_string(),
            headers,
            started,
        }
    }

    /// Writes the owner's reply frames to `out` under the client's transaction ids, gathered
    /// into one write where they come together; a frame whose owner could not be reached or
    /// did not answer in time gets a `TIMEOUT` error reply instead — except a client's write
    /// or remove that can be hinted (`hints.rs`): those are returned, stamped, for the
    /// caller to send to the owner's successor (the owner is then suspect). Only a failed
    /// write to `out` is an error (the client's connection is gone).
    pub async fn finish<W: AsyncWrite + Unpin>(
        &self,
        f: InFlight,
        out: &mut W,
    ) -> std::io::Result<Vec<(Frame, u32)>> {
        let mut gathered = BytesMut::new();
        let mut to_hint = Vec::new();
        let mut outgoing = f.outgoing.into_iter();
        let failed = match f.started {
            Ok((client, mut run)) => {
                let mut first = f.first;
                let mut failed = None;
                let mut payloads_before = 0u64;
                for (i, header) in f.headers.iter().enumerate() {
                    let Some(trans) = run.sent().get(i).copied() else {
                        break;
                    };
                    let sent_frame = outgoing.next();
                    // The owner serves the run in order: this frame's first reply is due when
                    // its payload and those before it could have arrived, plus the timeout.
                    payloads_before += u64::from(header.payload_len);
                    let due = Due {
                        first: f.sent_at + self.budget.allowed(payloads_before),
                        next: self.budget.allowed(header.payload_len.into()),
                    };
                    let frames_left = f.headers.len() - i;
                    let got = (first.take(), &mut run);
                    let to = Out {
                        out: &mut *out,
                        gathered: &mut gathered,
                        frames_left,
                    };
                    let relayed = relay(&client, trans, got, header, to, due).await;
                    match relayed {
                        Ok(status) => self.observe(header, status, f.sent_at),
                        Err(Relay::Client(e)) => return Err(e),
                        Err(Relay::Owner(why)) => {
                            self.observe(header, f.failure, f.sent_at);
                            match sent_frame.filter(|(fr, _)| f.retry && retryable(fr)) {
                                Some(frame) => to_hint.push(frame),
                                None => {
                                    failed_reply((&f.addr, f.failure), header, &why, &mut gathered)
                                }
                            }
                            failed = Some(why);
                        }
                    }
                }
                failed
            }
            Err(why) => {
                for (header, sent_frame) in f.headers.iter().zip(outgoing) {
                    self.observe(header, f.failure, f.sent_at);
                    if f.retry && retryable(&sent_frame.0) {
                        to_hint.push(sent_frame);
                    } else {
                        failed_reply((&f.addr, f.failure), header, &why, &mut gathered);
                    }
                }
                Some(why)
            }
        };
        if let Some(why) = failed {
            self.suspects.mark(&f.addr);
            tracing::debug!(owner = %f.addr, error = %why, "forwarding failed");
        }
        out.write_all(&gathered).await?;
        Ok(to_hint)
    }

    /// Sends a run to `addr` and relays the replies, with no second chance: a frame the
    /// node does not answer gets `TIMEOUT` (the last try of a hinted write).
    pub async fn send_once<W: AsyncWrite + Unpin>(
        &self,
        addr: &str,
        run: &[(&Frame, u32)],
        out: &mut W,
    ) -> std::io::Result<()> {
        let mut f = self.send(addr, run).await;
        f.retry = false;
        self.finish(f, out).await.map(|_| ())
    }

    /// The frame to send on for `frame`: stamped if it is a client's write or remove.
    fn outgoing(&self, frame: &Frame, now: u64) -> Frame {
        if frame.header.hops == 0 && is_change(frame.header.command) {
            stamp_forwarded(frame, now, &self.budget)
        } else {
            frame.clone()
        }
    }

    /// A read of a key this node took over, asked of its previous owner: [`send`] then
    /// [`finish`]. If the previous owner does not answer, the reply is `UNAVAILABLE`: this
    /// node cannot tell whether the key exists, and a replicated read asks another group.
    ///
    /// [`send`]: Self::send
    /// [`finish`]: Self::finish
    ///
    /// A plain `NOT_FOUND` is not relayed but returned ([`Asked::NotThere`]): the previous
    /// owner drops a key only once it has handed it to this node, so the caller looks again
    /// here before answering (a key can arrive between the first look and the answer).
    pub async fn read_through<W: AsyncWrite + Unpin>(
        &self,
        addr: &str,
        group: u32,
        frame: &Frame,
        out: &mut W,
    ) -> std::io::Result<Asked> {
        let mut f = self.send(addr, &[(frame, group)]).await;
        f.failure = Status::Unavailable;
        f.retry = false;
        let by = f.sent_at + self.budget.allowed(frame.header.payload_len.into());
        let first = match &mut f.started {
            Ok((client, run)) => match run.sent().first().copied() {
                Some(trans) => Some(next_reply(client, trans, run, by).await),
                None => None,
            },
            Err(_) => None,
        };
        match first {
            Some(Ok(reply))
                if reply.header.status == Status::NotFound && !reply.header.has_more() =>
            {
                self.observe(&frame.header, Status::NotFound, f.sent_at);
                return Ok(Asked::NotThere);
            }
            Some(Ok(reply)) => f.first = Some(reply),
            Some(Err(Relay::Owner(why))) => f.started = Err(why),
            Some(Err(Relay::Client(e))) => return Err(e),
            None => {}
        }
        self.finish(f, out).await.map(|_| Asked::Relayed)
    }
}

/// What became of a read passed to a key's previous owner ([`Peers::read_through`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// Its answer (or the failure to get one) was relayed to the client.
    Relayed,
    /// It has no such key: nothing was relayed.
    NotThere,
}

/// The error reply to a frame the node at `addr` did not answer, with status `failure`.
fn failed_reply((addr, failure): (&str, Status), header: &Header, why: &str, out: &mut BytesMut) {
    let read = matches!(header.command, Command::Lookup | Command::Read);
    let (failure, msg) = match failure {
        Status::Unavailable => (
            failure,
            format!(
                "{addr} (asked during a hand-over of this key's range) did not answer: \
                 {why}; whether the key exists is unknown here"
            ),
        ),
        // A read the owner did not answer: nobody else in the group can tell.
        _ if read => (
            Status::Unavailable,
            format!("the key's owner {addr} did not answer: {why}; ask another group"),
        ),
        _ => (failure, format!("owner {addr} did not answer: {why}")),
    };
    encode_error(header, failure, &msg, out);
}

/// A forwarded run: where it went, the client's headers, and the owner's reply channels (or
/// why the run could not be sent).
pub struct InFlight {
    /// The first frame's first reply, if it was taken before [`Peers::finish`].
    first: Option<Frame>,
    /// The frames as sent (stamped), with their groups.
    outgoing: Vec<(Frame, u32)>,
    /// Whether a hintable frame the owner does not answer is returned to be hinted.
    retry: bool,
    /// The status of the reply to a frame the owner did not answer.
    failure: Status,
    /// When the run was sent: each frame's first reply is due its budget after this (not
    /// after the previous frame's reply, or a run of N frames to a paused owner would take
    /// N timeouts).
    sent_at: tokio::time::Instant,
    addr: String,
    headers: Vec<Header>,
    started: Result<(Arc<Client>, RunReplies), String>,
}

/// Reply bytes gathered before they are written even though more are at hand (a streamed
/// read is relayed in pieces of about this size, never held whole).
const GATHER_BYTES: usize = 256 << 10;

/// When a relayed frame's replies are due: the first by `first`, each later one within
/// `next` of the one before it.
#[derive(Clone, Copy)]
struct Due {
    first: tokio::time::Instant,
    next: std::time::Duration,
}

/// Where relayed replies go: gathered, then written to `out`; `frames_left` counts the
/// frames of the run from this one on (the gathering buffer is sized once by them).
struct Out<'a, W> {
    out: &'a mut W,
    gathered: &'a mut BytesMut,
    frames_left: usize,
}

/// Relays reply frames into `gathered` until the one without `MORE`, the first by
/// `due.first`, each later one within `due.next` of the frame before it (a long streamed
/// reply that keeps coming is never cut off). What was gathered is written to `out` before
/// waiting for a frame not there yet.
async fn relay<W: AsyncWrite + Unpin>(
    client: &Client,
    trans: u64,
    (mut first, run): (Option<Frame>, &mut RunReplies),
    request: &Header,
    to: Out<'_, W>,
    due: Due,
) -> Result<Status, Relay> {
    let Out {
        out,
        gathered,
        frames_left,
    } = to;
    let mut by = due.first;
    loop {
        let reply = match first.take().map_or_else(|| run.try_next(trans), Ok) {
            Ok(reply) if gathered.len() < GATHER_BYTES => reply,
            ready => {
                out.write_all(gathered).await.map_err(Relay::Client)?;
                gathered.clear();
                match ready {
                    Ok(reply) => reply,
                    Err(_) => next_reply(client, trans, run, by).await?,
                }
            }
        };
        if gathered.capacity() == 0 {
            // Room for the rest of the run's replies if they are like this one, at once
            // rather than by doubling.
            let like_this = HEADER_LEN + reply.payload.len();
            gathered.reserve(GATHER_BYTES.min(like_this.saturating_mul(frames_left)));
        }
        by = tokio::time::Instant::now() + due.next;
        let more = reply.header.has_more();
        let status = reply.header.status;
        let mut header = reply.header;
        header.trans = request.trans;
        header.hops = 0;
        Frame {
            header,
            payload: reply.payload,
        }
        .encode(gathered)
        .map_err(|e| Relay::Owner(e.to_string()))?;
        if !more {
            return Ok(status);
        }
    }
}

/// The next reply frame of `trans`, by `by`.
async fn next_reply(
    client: &Client,
    trans: u64,
    run: &mut RunReplies,
    by: tokio::time::Instant,
) -> Result<Frame, Relay> {
    match tokio::time::timeout_at(by, run.next(trans)).await {
        Ok(Some(reply)) => Ok(reply),
        Ok(None) => Err(Relay::Owner("connection closed".into())),
        Err(_) => {
            run.give_up(trans);
            client.forget(trans).await;
            Err(Relay::Owner("timed out".into()))
        }
    }
}

enum Relay {
    /// Writing to the client failed: the connection is gone.
    Client(std::io::Error),
    /// The owner could not be reached or did not answer.
    Owner(String),
}

#[cfg(test)]
mod relay_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{RingId, RouteNode, RouteTable};

    fn node(name: &str, group: u32, id: u8, alive: bool) -> RouteNode {
        RouteNode {
            name: name.into(),
            addr: format!("{name}:1"),
            group,
            ids: vec![RingId([id; 32])],
            alive,
            leaving: false,
            incarnation: 1,
        }
    }

    fn table() -> RouteTable {
        // Group 1: "b" owns (0x40.., 0xc0..], "a" the rest (wrapping); group 2: "c" alone.
        RouteTable::new(
            3,
            vec![
                node("a", 1, 0x40, true),
                node("b", 1, 0xc0, true),
                node("c", 2, 0x80, true),
                node("d", 3, 0x80, false),
            ],
        )
    }

    fn header(cmd: Command, key: u8, group: u32, hops: u8) -> Header {
        let mut h = Header::request(cmd, 7, [key; 32], group);
        h.hops = hops;
        h
    }

    #[test]
    fn keyed_requests_go_to_the_owner_of_their_group() {
        let t = Routing::new(Arc::new(table()));
        let r = |cmd, key, group, hops| route(Some(&t), "a", 1, &header(cmd, key, group, hops));
        assert_eq!(r(Command::Read, 0x10, 0, 0), Route::Local);
        assert_eq!(r(Command::Read, 0x10, 1, 0), Route::Local);
        let to_b = Route::Forward {
            addr: "b:1".into(),
            group: 1,
        };
        assert_eq!(r(Command::Write, 0x90, 0, 0), to_b);
        assert_eq!(r(Command::Remove, 0xa0, 1, 3), to_b);
        assert_eq!(
            r(Command::Read, 0xf0, 1, 0),
            Route::Local,
            "wraps to the lowest id"
        );
        let to_c = Route::Forward {
            addr: "c:1".into(),
            group: 2,
        };
        assert_eq!(r(Command::Lookup, 0x10, 2, 0), to_c);
        assert!(matches!(
            r(Command::Read, 0x90, 0, MAX_FORWARD_HOPS),
            Route::Refuse(Status::TooManyHops, _)
        ));
        assert!(matches!(
            r(Command::Read, 0x90, 3, 0),
            Route::Refuse(Status::NotOwner, _)
        ));
        assert!(matches!(
            r(Command::Read, 0x90, 9, 0),
            Route::Refuse(Status::NotOwner, _)
        ));
    }

    #[test]
    fn other_commands_and_nodes_outside_a_cluster_serve_locally() {
        let t = Routing::new(Arc::new(table()));
        let h = header(Command::Iterate, 0x90, 0, 0);
        assert_eq!(route(Some(&t), "a", 1, &h), Route::Local);
        let h = header(Command::Read, 0x90, 2, 0);
        assert_eq!(route(None, "a", 1, &h), Route::Local);
    }
}
