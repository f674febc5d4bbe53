//! One client connection: frames are read, served in batches on the blocking pool, and the
//! replies written back in one write per batch. A connection's first frame must be a
//! HANDSHAKE with a version both sides speak.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::access::{admit, seal_for_forward, Denied, Identity};
use super::forward::{route, target_group, Asked, Route};
use super::greeting::{greet, prove, Greeting, Pending};
use super::handover::{PreviousOwner, ReadThrough};
use super::metrics::Route as MetricsRoute;
use super::read_stream::ReadStream;
use super::read_window::ReadWindow;
use super::timed_stream::TimedStream;
use super::watching::Watching;
use super::write_chunks::write_chunks;
use super::{dispatch, handover_remove, Node};
use super::{hints, versions};
use crate::ring::{RouteNode, RouteTable, Routing};
use crate::tls::{Stream, TlsServer};
use crate::wire::{
    decode_frame, encode_error, Command, Frame, Header, Status, WireError, FLAG_HINTED, FLAG_LOCAL,
    HEADER_LEN, MAX_FORWARD_HOPS, MAX_IN_FLIGHT_PER_CONNECTION,
};

/// A client connection's stream (plain or TLS): its writes time out when the client reads
/// nothing.
type ClientStream = TimedStream<Stream>;

/// Why a connection ended, for the log.
#[derive(Debug)]
enum End {
    Closed,
    Idle,
    SlowFrame,
    /// No handshake within the handshake timeout.
    NoHandshake,
    Shutdown,
    Fatal(String),
}

/// Serves `tcp` until the peer closes, misbehaves, idles out, or the node shuts down (its
/// TLS handshake first, when the node has TLS).
pub async fn serve(node: Arc<Node>, tcp: TcpStream, shutdown: watch::Receiver<bool>) {
    let accepted = Accepted::now(&tcp);
    if let Some(stream) = secure(&node, tcp, &accepted).await {
        serve_stream(node, stream, accepted, shutdown).await;
    }
}

/// When and from where a connection was accepted.
#[derive(Clone, Copy)]
pub struct Accepted {
    addr: Option<std::net::SocketAddr>,
    /// One handshake deadline from the accept: TLS and the ringblob handshake together.
    at: Instant,
}

impl Accepted {
    pub fn now(tcp: &TcpStream) -> Self {
        Accepted {
            addr: tcp.peer_addr().ok(),
            at: Instant::now(),
        }
    }

    fn peer(&self) -> String {
        self.addr.map(|a| a.to_string()).unwrap_or_default()
    }
}

/// The connection's stream: plain, or TLS once its handshake is done; `None` (logged) if
/// the connection was dropped before that.
pub async fn secure(node: &Node, tcp: TcpStream, accepted: &Accepted) -> Option<Stream> {
    let Some(tls) = &node.config.tls else {
        return Some(Stream::Plain(tcp));
    };
    match accept_tls(node, tls, tcp).await {
        Ok(s) => Some(s),
        Err(why) => {
            let peer = accepted.peer();
            tracing::info!(%peer, %why, "connection dropped before TLS was set up");
            None
        }
    }
}

/// Serves a connection's stream (see [`serve`]) once any TLS handshake is done.
pub async fn serve_stream(
    node: Arc<Node>,
    stream: Stream,
    accepted: Accepted,
    mut shutdown: watch::Receiver<bool>,
) {
    let peer = accepted.peer();
    let mut stream = TimedStream::new(stream, node.config.write_timeout);
    let ip = accepted.addr.map(|a| a.ip());
    match run(&node, &mut stream, &mut shutdown, (ip, accepted.at)).await {
        End::Fatal(why) => tracing::info!(%peer, %why, "connection dropped"),
        End::SlowFrame => {
            tracing::info!(%peer, "connection dropped: frame not completed within the read timeout")
        }
        End::NoHandshake => {
            tracing::info!(%peer, "connection dropped: no handshake within the handshake timeout")
        }
        end => tracing::debug!(%peer, ?end, "connection closed"),
    }
    let _ = stream.shutdown().await;
}

/// The TLS side of a new connection, within the handshake timeout. A client that speaks
/// plaintext ringblob to this TLS listener is told so in a plaintext error frame.
async fn accept_tls(node: &Node, tls: &TlsServer, tcp: TcpStream) -> Result<Stream, String> {
    let deadline = tokio::time::Instant::now() + node.config.handshake_timeout;
    let mut first = [0u8; 1];
    match tokio::time::timeout_at(deadline, tcp.peek(&mut first)).await {
        Err(_) => return Err("nothing received within the handshake timeout".into()),
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(0)) => return Err("closed".into()),
        Ok(Ok(_)) => {}
    }
    if crate::tls::looks_like_plaintext_frame(&first) {
        let mut tcp = tcp;
        let mut out = BytesMut::new();
        let mut h = Header::request(Command::Handshake, 0, [0; 32], 0);
        h.version = crate::wire::MIN_PROTOCOL_VERSION;
        let msg = format!(
            "node {} requires TLS: connect with --tls (and --tls-ca FILE)",
            node.info.name
        );
        encode_error(&h, Status::Unauthorized, &msg, &mut out);
        let _ = tcp.write_all(&out).await;
        let _ = tcp.shutdown().await;
        return Err("a plaintext client on the TLS listener (told to use TLS)".into());
    }
    match tokio::time::timeout_at(deadline, tls.accept(tcp)).await {
        Err(_) => Err("TLS handshake not completed within the handshake timeout".into()),
        Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
        Ok(Ok(s)) => Ok(Stream::Server(Box::new(s))),
    }
}

/// Where a connection stands: not greeted yet, waiting for AUTH, or serving as an identity
/// (`None`: not authenticated, only `PING`).
enum Session {
    New,
    Proving(Pending),
    Serving(Option<Identity>),
}

impl Session {
    fn greeted(&self) -> bool {
        matches!(self, Session::Serving(_))
    }
}

/// Answers the greeting frames at the front of `batch` (HANDSHAKE, then AUTH for an
/// authenticating client) and moves `session` on; `Err` ends the connection after the
/// refusal is written.
async fn greet_frames(
    node: &Node,
    stream: &mut ClientStream,
    session: &mut Session,
    batch: &mut Vec<Frame>,
    ip: Option<IpAddr>,
) -> Result<(), End> {
    while !session.greeted() && !batch.is_empty() {
        let frame = batch.remove(0);
        let outcome = match std::mem::replace(session, Session::New) {
            Session::New => greet(node, &frame, ip).map(|(reply, g)| {
                let next = match g {
                    Greeting::Open(id) => Session::Serving(Some(id)),
                    Greeting::Unauthenticated => Session::Serving(None),
                    Greeting::Proving(p) => Session::Proving(p),
                };
                (reply, next)
            }),
            Session::Proving(p) => {
                prove(node, &p, &frame, ip).map(|(reply, id)| (reply, Session::Serving(Some(id))))
            }
            Session::Serving(id) => Ok((BytesMut::new(), Session::Serving(id))),
        };
        match outcome {
            Ok((reply, next)) => {
                *session = next;
                stream
                    .write_all(&reply)
                    .await
                    .map_err(|e| End::Fatal(e.to_string()))?;
            }
            Err(refusal) => {
                let _ = stream.write_all(&refusal).await;
                return Err(End::Fatal("no valid handshake or authentication".into()));
            }
        }
    }
    Ok(())
}

/// After a reload of the keys: the connection's identity as it stands now, or the end of
/// the connection if its key was removed.
fn recheck(node: &Node, session: &mut Session) -> Result<(), End> {
    let Session::Serving(Some(id)) = session else {
        return Ok(());
    };
    match node.config.access.refresh(id) {
        Some(now) => {
            *id = now;
            Ok(())
        }
        None => Err(End::Fatal(format!(
            "key {} was removed or changed: connection closed",
            id.name()
        ))),
    }
}

async fn run(
    node: &Arc<Node>,
    stream: &mut ClientStream,
    shutdown: &mut watch::Receiver<bool>,
    (ip, connected): (Option<IpAddr>, Instant),
) -> End {
    let mut buf = BytesMut::with_capacity(ReadWindow::MIN);
    let mut window = ReadWindow::default();
    let mut session = Session::New;
    let mut reloads = node.config.access.subscribe();
    let mut partial_since: Option<Instant> = None;
    // Subscriptions (`WATCH`), from this connection's first.
    let mut watching: Option<Watching> = None;
    loop {
        // Every whole frame before a framing error is answered before the close.
        let (batch, bad) = take_frames(&mut buf);
        let served_some = !batch.is_empty();
        if served_some {
            let mut batch = batch;
            // The greeting is answered here; any later HANDSHAKE or AUTH reaches the
            // dispatcher, which refuses it (`BAD_REQUEST`).
            if let Err(end) = greet_frames(node, stream, &mut session, &mut batch, ip).await {
                return end;
            }
            if reloads.has_changed().unwrap_or(false) {
                reloads.mark_unchanged();
                if let Err(end) = recheck(node, &mut session) {
                    return end;
                }
            }
            let who = match &session {
                Session::Serving(id) => id.as_ref(),
                _ => None,
            };
            let batch = match admit_batch(node, stream, batch, who).await {
                Ok(b) => b,
                Err(end) => return end,
            };
            let watch = |f: &Frame| f.header.command == Command::Watch;
            // Split only when there is something to split (two new lists per batch were
            // ~1 % of serving pipelined small GETs).
            let (watches, batch): (Vec<Frame>, Vec<Frame>) = match batch.iter().any(watch) {
                true => batch.into_iter().partition(watch),
                false => (Vec::new(), batch),
            };
            if !watches.is_empty() {
                let w = watching.get_or_insert_with(|| Watching::new(node.info.watches.clone()));
                if let Err(end) = serve_watches(stream, w, &watches).await {
                    return end;
                }
            }
            if let Err(end) = serve_frames(node, stream, batch, (who, ip)).await {
                return end;
            }
            if let Err(end) = write_notes(stream, watching.as_ref()).await {
                return end;
            }
        }
        if let Some(e) = bad {
            node.info
                .counters
                .bad_frames
                .fetch_add(1, Ordering::Relaxed);
            // A header that passed its CRC (e.g. an oversized length) gets an error reply
            // before the close; garbage gets just the close.
            if let Ok(h) = Header::decode(&buf) {
                let mut out = BytesMut::new();
                encode_error(&h, e.status(), &e.to_string(), &mut out);
                let _ = stream.write_all(&out).await;
            }
            return End::Fatal(e.to_string());
        }
        if served_some {
            continue;
        }
        partial_since = if buf.is_empty() {
            None
        } else {
            partial_since.or(Some(Instant::now()))
        };
        let mut wait = match partial_since {
            None => node.config.idle_timeout,
            Some(t) => node.config.read_timeout.saturating_sub(t.elapsed()),
        };
        if !session.greeted() {
            wait = wait.min(
                node.config
                    .handshake_timeout
                    .saturating_sub(connected.elapsed()),
            );
        }
        if let Some(total) = crate::wire::announced_frame_len(&buf) {
            buf.reserve(total.saturating_sub(buf.len()));
        }
        let room = window.make_room(&mut buf);
        let notes = async {
            match &watching {
                Some(w) => w.ready().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = tokio::time::timeout(wait, stream.read_buf(&mut buf)) => match r {
                Err(_) if !session.greeted() => return End::NoHandshake,
                Err(_) if partial_since.is_some() => return End::SlowFrame,
                // A subscriber may send nothing for as long as it watches.
                Err(_) if watching.as_ref().is_some_and(Watching::active) => {}
                Err(_) => return End::Idle,
                Ok(Ok(0)) => return End::Closed,
                Ok(Ok(n)) => {
                    window.read(n, room);
                    node.metrics.received(n)
                }
                Ok(Err(e)) => return End::Fatal(e.to_string()),
            },
            () = notes => {
                if let Err(end) = write_notes(stream, watching.as_ref()).await {
                    return end;
                }
            }
            _ = shutdown.changed() => return End::Shutdown,
            _ = reloads.changed() => {
                if let Err(end) = recheck(node, &mut session) {
                    return end;
                }
            }
        }
    }
}

/// Answers the WATCH frames of a batch (opening or cancelling subscriptions).
async fn serve_watches(
    stream: &mut ClientStream,
    watching: &Watching,
    frames: &[Frame],
) -> Result<(), End> {
    let mut out = BytesMut::new();
    for f in frames {
        watching.serve(f, &mut out);
    }
    stream
        .write_all(&out)
        .await
        .map_err(|e| End::Fatal(e.to_string()))
}

/// Writes the notes waiting for this connection's subscriptions.
async fn write_notes(stream: &mut ClientStream, watching: Option<&Watching>) -> Result<(), End> {
    let Some(w) = watching else {
        return Ok(());
    };
    let mut out = BytesMut::new();
    w.notes(&mut out);
    if out.is_empty() {
        return Ok(());
    }
    stream
        .write_all(&out)
        .await
        .map_err(|e| End::Fatal(e.to_string()))
}

/// The frames of `batch` the connection may have served; the others are answered with
/// their refusal here (`access::admit`). Without authentication everything passes.
async fn admit_batch(
    node: &Node,
    stream: &mut ClientStream,
    batch: Vec<Frame>,
    who: Option<&Identity>,
) -> Result<Vec<Frame>, End> {
    let open = who.is_some_and(|id| id.key_id.is_none());
    if open || batch.is_empty() {
        return Ok(batch);
    }
    let mut refused = BytesMut::new();
    let mut admitted = Vec::with_capacity(batch.len());
    for f in batch {
        let verdict = match who {
            Some(id) => admit(&node.config.access, id, &f),
            None if crate::auth::Role::needed_for(f.header.command).is_none() => Ok(()),
            None => Err(Denied {
                status: Status::Unauthorized,
                message: format!(
                    "this connection is not authenticated: node {} requires an access key \
                     (HANDSHAKE offering the key, then AUTH; the CLI takes --key ID:SECRET or \
                     RINGBLOB_KEY)",
                    node.info.name
                ),
            }),
        };
        match verdict {
            Ok(()) => admitted.push(f),
            Err(d) => {
                node.info
                    .counters
                    .unauthorized
                    .fetch_add(1, Ordering::Relaxed);
                encode_error(&f.header, d.status, &d.message, &mut refused)
            }
        }
    }
    if !refused.is_empty() {
        stream
            .write_all(&refused)
            .await
            .map_err(|e| End::Fatal(e.to_string()))?;
    }
    Ok(admitted)
}

/// The key a frame is forwarded for: the connection's own, when it is a client's key (a
/// node's frames carry theirs already).
fn acting_key(who: Option<&Identity>) -> Option<&str> {
    who.filter(|id| id.role != crate::auth::Role::Node)
        .and_then(|id| id.key_id.as_deref())
}

/// `frame` as it is forwarded for `acting` (see [`acting_key`]).
fn for_forward(frame: &Frame, acting: Option<&str>) -> Result<Frame, End> {
    match acting {
        None => Ok(frame.clone()),
        Some(key) => seal_for_forward(frame, key).map_err(|e| End::Fatal(e.to_string())),
    }
}

/// Serves a batch in order: runs of frames this node serves go to the backend together;
/// a frame another node owns is forwarded to it and its replies relayed (`forward.rs`); a
/// read of a key this node took over but has not received yet is asked of its previous
/// owner (`handover.rs`).
async fn serve_frames(
    node: &Arc<Node>,
    stream: &mut ClientStream,
    mut batch: Vec<Frame>,
    (who, peer): (Option<&Identity>, Option<IpAddr>),
) -> Result<(), End> {
    let acting = acting_key(who);
    let routing = node.info.routing();
    let table = routing.as_ref().map(|r| r.table().clone());
    while !batch.is_empty() {
        if let Some(r) = routing.as_ref() {
            hint_suspected(node, r, &mut batch);
        }
        let routes: Vec<Route> = batch
            .iter()
            .map(|f| route_of(node, routing.as_ref(), f))
            .collect();
        let local = routes.iter().take_while(|r| **r == Route::Local).count();
        if local == 0 {
            let given = |(f, r): (&Frame, &Route)| reads_back(node, routing.as_ref(), f, r);
            if let Some(owner) = batch.first().zip(routes.first()).and_then(given) {
                let frame = batch.remove(0);
                ask_new_owner(node, stream, frame, owner, acting).await?;
                continue;
            }
            let n = batch
                .iter()
                .zip(&routes)
                .take_while(|(f, r)| **r != Route::Local && given((f, r)).is_none())
                .count();
            let rest = batch.split_off(n);
            if acting.is_some() {
                batch = batch
                    .iter()
                    .map(|f| for_forward(f, acting))
                    .collect::<Result<_, _>>()?;
            }
            pass_on(node, stream, &batch, &routes[..n]).await?;
            batch = rest;
            continue;
        }
        let later = batch.split_off(local);
        if let Some(t) = table.as_deref() {
            note_hints(node, t, &batch);
        }
        // The batch's share of the node's reply memory, held until its replies are written.
        let arrived = Instant::now();
        let kinds: Vec<(Command, MetricsRoute)> = batch.iter().map(metrics_kind).collect();
        let access_log = tracing::enabled!(target: "ringblob::access", tracing::Level::DEBUG)
            .then(|| access_entries(&batch));
        let charged = super::reply_budget::bound(&batch);
        let mut share = node.reply_budget.take(&batch).await;
        let mut served = serve_batch(node, batch, routing.clone(), share.cap())
            .await
            .map_err(|e| End::Fatal(e.to_string()))?;
        let actual = served.chunks.iter().map(|c| c.len()).sum();
        share.grow(&node.reply_budget, actual, charged);
        // Counted before the replies go out: a client holding its reply never scrapes
        // metrics that do not count it yet.
        observe_batch(
            node,
            &kinds,
            &served.outcomes,
            arrived.elapsed().as_secs_f64(),
        );
        node.metrics.sent(actual);
        write_chunks(stream, &served.chunks)
            .await
            .map_err(|e| End::Fatal(e.to_string()))?;
        drop(share);
        // Announced once the replies (after any sync) are out: never a change that could
        // still be lost.
        node.info
            .watches
            .publish(std::mem::take(&mut served.changes));
        if let Some(entries) = access_log {
            log_access(&entries, &served.outcomes, arrived, peer);
        }
        if let Some(rest) = served.stream {
            send_stream(node, stream, rest).await?;
        }
        batch = served.rest;
        if served.ask_first && !batch.is_empty() {
            let frame = batch.remove(0);
            if frame.header.command == Command::Remove {
                remove_taken_over(node, stream, frame, routing.as_ref()).await?;
            } else {
                let prev = reads_through(node, routing.as_ref(), &frame);
                ask_previous(node, stream, frame, prev, acting).await?;
            }
        }
        batch.extend(later);
    }
    Ok(())
}

/// The previous owner to ask about `frame` if this node cannot answer it (or why nobody
/// can): `Handovers::reads_through`.
pub(super) fn reads_through(
    node: &Node,
    routing: Option<&Routing>,
    frame: &Frame,
) -> Option<ReadThrough> {
    node.handovers
        .reads_through(routing?, &node.config.name, &frame.header)
}

/// Asks `prev` (the previous owner of the key `frame` reads) to serve it from its own
/// storage (`LOCAL`) and relays its reply (`docs/PROTOCOL.md` §15.10).
async fn ask_previous(
    node: &Arc<Node>,
    stream: &mut ClientStream,
    frame: Frame,
    prev: Option<ReadThrough>,
    acting: Option<&str>,
) -> Result<(), End> {
    let written = match prev {
        Some(ReadThrough::Down(name)) => {
            let mut out = BytesMut::new();
            let msg = format!(
                "this node took the key's range over from {name}, which is down and has not \
                 handed it over: whether the key exists is unknown here; ask another group"
            );
            encode_error(&frame.header, Status::Unavailable, &msg, &mut out);
            stream.write_all(&out).await
        }
        Some(ReadThrough::Ask(prev)) => {
            // The relay adds the hop (`Client::relay_all`), as for any forwarded frame.
            tracing::debug!(target: "ringblob::handover", key = %hex_prefix(&frame.header.key),
                previous = %prev.addr, hops = frame.header.hops, "read through");
            let mut asking = for_forward(&frame, acting)?;
            asking.header.flags |= FLAG_LOCAL;
            match ask_local(node, &prev, &asking, stream).await {
                // It handed the key here meanwhile (or it never existed): look again.
                Ok(Asked::NotThere) => return serve_here(node, stream, frame).await,
                Ok(Asked::Relayed) => Ok(()),
                Err(e) => Err(e),
            }
        }
        // The hand-over expired since the batch looked: serve it here.
        None => return serve_here(node, stream, frame).await,
    };
    written.map_err(|e| End::Fatal(e.to_string()))
}

/// The new owner to ask about `frame`, routed by `route` to another node, if it reads a
/// key whose range this node is handing over as it leaves (`handover.rs`).
fn reads_back(
    node: &Node,
    routing: Option<&Routing>,
    frame: &Frame,
    route: &Route,
) -> Option<PreviousOwner> {
    if !matches!(route, Route::Forward { .. }) {
        return None;
    }
    node.handovers
        .reads_back(routing?, &node.config.name, &frame.header)
}

/// A read of a key whose range this node is handing to `owner` as it leaves: asked of the
/// owner with `LOCAL` (it serves from its own storage and never forwards, so tables that
/// disagree on the owner cannot send the read round a loop); if it has nothing, the key has
/// not been handed over yet and is served from here. A key handed over (and dropped here)
/// between the two looks is asked again.
async fn ask_new_owner(
    node: &Arc<Node>,
    stream: &mut ClientStream,
    frame: Frame,
    owner: PreviousOwner,
    acting: Option<&str>,
) -> Result<(), End> {
    let mut asking = for_forward(&frame, acting)?;
    asking.header.flags |= FLAG_LOCAL;
    // Arriving with the last hop, it is served from the owner's storage alone: not read
    // through in turn (to this node, or along the owner's own hand-overs).
    asking.header.hops = MAX_FORWARD_HOPS - 1;
    tracing::debug!(target: "ringblob::handover", key = %hex_prefix(&frame.header.key),
        owner = %owner.addr, hops = frame.header.hops, "read back");
    for _ in 0..2 {
        let had = holds_here(node, &frame).await?;
        match ask_local(node, &owner, &asking, stream).await {
            Ok(Asked::Relayed) => return Ok(()),
            Err(e) => return Err(End::Fatal(e.to_string())),
            Ok(Asked::NotThere) => {}
        }
        if !had || holds_here(node, &frame).await? {
            break;
        }
    }
    serve_here(node, stream, frame).await
}

/// Sends a read with `LOCAL` set to the node `to` during a hand-over and relays its answer,
/// unless that is a plain `NOT_FOUND` (`Peers::read_through`); counted in `handover_reads`.
async fn ask_local(
    node: &Node,
    to: &PreviousOwner,
    asking: &Frame,
    stream: &mut ClientStream,
) -> std::io::Result<Asked> {
    node.info
        .counters
        .handover_reads
        .fetch_add(1, Ordering::Relaxed);
    node.peers
        .read_through(&to.addr, to.group, asking, stream)
        .await
}

/// Whether this node has a value or a remembered remove for the key `frame` reads.
async fn holds_here(node: &Node, frame: &Frame) -> Result<bool, End> {
    let f = frame.clone();
    node.backend
        .run(move |b| Ok(!dispatch::nothing_here(b, &f)))
        .await
        .map_err(|e| End::Fatal(e.to_string()))
}

/// A remove of a key this node holds nothing of yet, in a range it took over from a node
/// that is alive (`handover_remove.rs`): applied here, and answered OK rather than
/// `NOT_FOUND` if the previous owner held the key (its copy is refused when it arrives).
async fn remove_taken_over(
    node: &Arc<Node>,
    stream: &mut ClientStream,
    frame: Frame,
    routing: Option<&Routing>,
) -> Result<(), End> {
    let held = match handover_remove::removes_through(node, routing, &frame) {
        Some(through) => handover_remove::held_by(node, &through, &frame).await,
        None => false,
    };
    let header = frame.header;
    let served = serve_batch(node, vec![frame], None, dispatch::MAX_BATCH_REPLY_BYTES)
        .await
        .map_err(|e| End::Fatal(e.to_string()))?;
    let not_found = served.outcomes.first() == Some(&Status::NotFound);
    let chunks = match held && not_found {
        true => vec![handover_remove::removed_reply(&header).freeze()],
        false => served.chunks,
    };
    write_chunks(stream, &chunks)
        .await
        .map_err(|e| End::Fatal(e.to_string()))?;
    node.info.watches.publish(served.changes);
    Ok(())
}

/// Serves `frame` from this node's own storage and writes the reply (and a long read's
/// later pieces).
async fn serve_here(node: &Arc<Node>, stream: &mut ClientStream, frame: Frame) -> Result<(), End> {
    let served = serve_batch(node, vec![frame], None, dispatch::MAX_BATCH_REPLY_BYTES)
        .await
        .map_err(|e| End::Fatal(e.to_string()))?;
    write_chunks(stream, &served.chunks)
        .await
        .map_err(|e| End::Fatal(e.to_string()))?;
    // A long read's other pieces follow its first.
    if let Some(rest) = served.stream {
        send_stream(node, stream, rest).await?;
    }
    Ok(())
}

/// Forwards a run of frames, or answers them with the refusal their route gives. Refusals
/// are answered first; then each owner is sent its frames in one write before any reply is
/// awaited (so they travel pipelined, and are served there as one batch), and the owners'
/// replies are relayed one owner after the other.
async fn pass_on(
    node: &Arc<Node>,
    stream: &mut ClientStream,
    frames: &[Frame],
    routes: &[Route],
) -> Result<(), End> {
    let mut refused = BytesMut::new();
    let mut by_owner: Vec<(&str, Vec<(&Frame, u32)>)> = Vec::new();
    for (frame, route) in frames.iter().zip(routes) {
        match route {
            Route::Forward { addr, group } => {
                node.info.counters.forwarded.fetch_add(1, Ordering::Relaxed);
                match by_owner.iter_mut().find(|(a, _)| a == addr) {
                    Some((_, run)) => run.push((frame, *group)),
                    None => by_owner.push((addr, vec![(frame, *group)])),
                }
            }
            Route::Refuse(status, message) => {
                encode_error(&frame.header, *status, message, &mut refused)
            }
            Route::Local => {}
        }
    }
    let fatal = |e: std::io::Error| End::Fatal(e.to_string());
    if !refused.is_empty() {
        stream.write_all(&refused).await.map_err(fatal)?;
    }
    let mut sent = Vec::with_capacity(by_owner.len());
    for (addr, run) in &by_owner {
        sent.push(node.peers.send(addr, run).await);
    }
    let mut to_hint = Vec::new();
    for f in sent {
        to_hint.extend(node.peers.finish(f, stream).await.map_err(fatal)?);
    }
    if !to_hint.is_empty() {
        hint_unanswered(node, stream, to_hint).await?;
    }
    Ok(())
}

/// The next node of `group` after the owner of `key` that is alive and not suspect: where a
/// hinted change goes (`hints.rs`).
fn hint_target<'t>(
    node: &Node,
    table: &'t RouteTable,
    group: u32,
    key: &[u8; 32],
) -> Option<&'t RouteNode> {
    table.owner_skipping(group, key, |n| node.peers.suspects.is_suspect(&n.addr))
}

/// Marks a client's hintable changes whose owner is suspect `HINTED`, so they are served by
/// the owner's successor (this node, or forwarded there) instead of waiting on the owner.
fn hint_suspected(node: &Node, routing: &Routing, batch: &mut [Frame]) {
    // Without suspects, skip the owner lookup per change (`route` does it once anyway).
    if node.peers.suspects.is_empty() {
        return;
    }
    for f in batch.iter_mut() {
        let h = &f.header;
        if h.hops != 0 || h.is_hinted() || !hints::hintable(f) {
            continue;
        }
        let group = target_group(h, node.config.group);
        let suspect = routing
            .owner(group, &h.key)
            .is_some_and(|o| node.peers.suspects.is_suspect(&o.addr));
        if !suspect {
            continue;
        }
        if hint_target(node, routing.table(), group, &h.key).is_some() {
            f.header.group = group;
            f.header.flags |= FLAG_HINTED;
        }
    }
}

/// Where `frame` is served: by [`route`], except a change this node hinted itself (`HINTED`,
/// no hops yet), which goes to the owner's successor, this node or another.
pub(super) fn route_of(node: &Node, routing: Option<&Routing>, frame: &Frame) -> Route {
    let h = &frame.header;
    if let (true, 0, Some(r)) = (h.is_hinted(), h.hops, routing) {
        return match hint_target(node, r.table(), h.group, &h.key) {
            Some(target) if target.name != node.config.name => Route::Forward {
                addr: target.addr.clone(),
                group: h.group,
            },
            _ => Route::Local,
        };
    }
    route(routing, &node.config.name, node.config.group, h)
}

/// Notes the hints of the `HINTED` frames this node is about to serve.
fn note_hints(node: &Node, table: &RouteTable, frames: &[Frame]) {
    for f in frames.iter().filter(|f| f.header.is_hinted()) {
        let h = &f.header;
        let group = target_group(h, node.config.group);
        let Some(owner) = table.owner(group, &h.key) else {
            continue;
        };
        if owner.name == node.config.name {
            continue;
        }
        let c = &node.info.counters;
        c.hinted.fetch_add(1, Ordering::Relaxed);
        if !node.hints.add(&owner.name, h.key) {
            tracing::warn!("hint store full: a hinted change waits for repair instead");
        }
        c.hints_held
            .store(node.hints.len() as u64, Ordering::Relaxed);
    }
}

/// Sends changes the owner did not answer to its successor as hinted changes (same version,
/// new deadline); the successor is this node or another. A change nobody takes is
/// answered `TIMEOUT`.
async fn hint_unanswered(
    node: &Arc<Node>,
    stream: &mut ClientStream,
    frames: Vec<(Frame, u32)>,
) -> Result<(), End> {
    let fatal = |e: std::io::Error| End::Fatal(e.to_string());
    let table = node.info.route_table();
    let now = versions::now_ns();
    for (frame, group) in frames {
        let mut frame = versions::renew_deadline(&frame, now, &node.config.budget());
        frame.header.flags |= FLAG_HINTED;
        frame.header.group = group;
        let target = table
            .as_deref()
            .and_then(|t| hint_target(node, t, group, &frame.header.key));
        match target {
            Some(t) if t.name == node.config.name => {
                if let Some(table) = table.as_deref() {
                    note_hints(node, table, std::slice::from_ref(&frame));
                }
                let served = serve_batch(node, vec![frame], None, dispatch::MAX_BATCH_REPLY_BYTES)
                    .await
                    .map_err(|e| End::Fatal(e.to_string()))?;
                write_chunks(stream, &served.chunks).await.map_err(fatal)?;
            }
            Some(t) => {
                let addr = t.addr.clone();
                node.peers
                    .send_once(&addr, &[(&frame, group)], stream)
                    .await
                    .map_err(fatal)?;
            }
            None => {
                let mut out = BytesMut::new();
                let msg = "the key's owner did not answer and its group has no other live node";
                encode_error(&frame.header, Status::Timeout, msg, &mut out);
                stream.write_all(&out).await.map_err(fatal)?;
            }
        }
    }
    Ok(())
}

/// Frames made room for at once when a read holds many (more are taken by growing).
const TYPICAL_BATCH: usize = 64;

/// Whole frames at the front of `buf`, at most the in-flight cap, and the fatal framing
/// error (bad magic, bad header CRC, oversized length) that stopped the taking, if one did:
/// the frames before it are still served.
fn take_frames(buf: &mut BytesMut) -> (Vec<Frame>, Option<WireError>) {
    // As many as the bytes could hold at the smallest frame (a header), up to a pipeline's
    // worth: growing the batch frame by frame was ~1 % of serving pipelined small GETs.
    let most = (buf.len() / HEADER_LEN).min(TYPICAL_BATCH);
    let mut batch = Vec::with_capacity(most);
    while batch.len() < MAX_IN_FLIGHT_PER_CONNECTION {
        match decode_frame(buf) {
            Ok(Some(f)) => batch.push(f),
            Ok(None) => break,
            Err(e) => return (batch, Some(e)),
        }
    }
    (batch, None)
}

/// Serves a batch: inline first when the backend can refuse what would block (reads from
/// memory or the page cache, whole writes into the write buffer; durable ones then await
/// one shared sync), else — or for what was refused — on the blocking pool.
pub(super) async fn serve_batch(
    node: &Arc<Node>,
    batch: Vec<Frame>,
    routing: Option<Routing>,
    reply_cap: usize,
) -> Result<dispatch::Served, ringblob_backends::Error> {
    let batch = if node.backend.serves_inline() {
        match serve_inline(node, batch, routing.as_ref(), reply_cap).await {
            Ok(served) => return Ok(served),
            Err(batch) => batch,
        }
    } else {
        batch
    };
    let n = node.clone();
    let frames = batch.len();
    let served = node
        .backend
        .run(move |b| {
            let ask_elsewhere = |b: &dyn ringblob_backends::Backend, f: &Frame| {
                asks_previous_owner(&n, routing.as_ref(), b, f)
            };
            let how = (reply_cap, dispatch::Serving::Pool);
            Ok(dispatch::serve_batch(
                b,
                &n.info,
                batch,
                &ask_elsewhere,
                how,
            ))
        })
        .await?;
    count_served(node, frames, &served);
    Ok(served)
}

/// The inline part of [`serve_batch`]: what it served (the rest in `rest`), or the whole
/// batch back if its first frame is for the pool.
async fn serve_inline(
    node: &Arc<Node>,
    batch: Vec<Frame>,
    routing: Option<&Routing>,
    reply_cap: usize,
) -> Result<dispatch::Served, Vec<Frame>> {
    let frames = batch.len();
    let ask_elsewhere =
        |b: &dyn ringblob_backends::Backend, f: &Frame| asks_previous_owner(node, routing, b, f);
    let how = (reply_cap, dispatch::Serving::Inline);
    let b = node.backend.backend().as_ref();
    let mut served = dispatch::serve_batch(b, &node.info, batch, &ask_elsewhere, how);
    let c = &node.info.counters;
    c.served_inline
        .fetch_add(served.outcomes.len() as u64, Ordering::Relaxed);
    if served.refused {
        c.inline_refused.fetch_add(1, Ordering::Relaxed);
    }
    if served.outcomes.is_empty() && !served.ask_first {
        return Err(served.rest);
    }
    if served.needs_sync() {
        let writes = served.unsynced_writes();
        served.settle(node.backend.sync_after_writes(writes).await);
    }
    count_served(node, frames, &served);
    Ok(served)
}

/// Whether `f` is a read this node has nothing for, or a remove of something it holds
/// nothing of, of a key whose range it took over recently: to be asked of the previous
/// owner (`handover.rs`, `handover_remove.rs`).
fn asks_previous_owner(
    node: &Node,
    routing: Option<&Routing>,
    b: &dyn ringblob_backends::Backend,
    f: &Frame,
) -> bool {
    if f.header.command == Command::Remove {
        return handover_remove::removes_through(node, routing, f).is_some_and(|through| {
            let key = ringblob_engine::Key(f.header.key);
            handover_remove::holds_nothing(b, &key, through.column)
        });
    }
    reads_through(node, routing, f).is_some() && dispatch::nothing_here(b, f)
}

fn count_served(node: &Node, frames: usize, served: &dispatch::Served) {
    let served_count = (frames - served.rest.len()) as u64;
    node.info
        .counters
        .requests
        .fetch_add(served_count, Ordering::Relaxed);
}

/// What the access log says of a request: command, key prefix, request bytes.
fn access_entries(batch: &[Frame]) -> Vec<(Command, [u8; 4], usize)> {
    batch
        .iter()
        .map(|f| {
            let mut prefix = [0u8; 4];
            prefix.copy_from_slice(&f.header.key[..4]);
            (f.header.command, prefix, f.payload.len())
        })
        .collect()
}

/// The access log (target `ringblob::access`, level debug): one line per request served.
fn log_access(
    entries: &[(Command, [u8; 4], usize)],
    outcomes: &[Status],
    arrived: Instant,
    peer: Option<IpAddr>,
) {
    let us = arrived.elapsed().as_micros() as u64;
    let peer = peer.map(|p| p.to_string()).unwrap_or_default();
    for ((command, key, bytes), status) in entries.iter().zip(outcomes) {
        let key = hex_prefix(key);
        tracing::debug!(
            target: "ringblob::access",
            command = command.name(),
            key = %key,
            status = status.name(),
            bytes,
            us,
            %peer,
            "request"
        );
    }
}

/// Counts a batch's served frames, each taking the batch's time: runs of one kind at once.
pub(super) fn observe_batch(
    node: &Node,
    kinds: &[(Command, MetricsRoute)],
    outcomes: &[Status],
    secs: f64,
) {
    let mut run: Option<((Command, Status, MetricsRoute), u64)> = None;
    for (&(command, route), &status) in kinds.iter().zip(outcomes) {
        let kind = (command, status, route);
        match &mut run {
            Some((k, n)) if *k == kind => *n += 1,
            _ => {
                if let Some((k, n)) = run.take() {
                    node.metrics.requests(k, secs, n);
                }
                run = Some((kind, 1));
            }
        }
    }
    if let Some((k, n)) = run {
        node.metrics.requests(k, secs, n);
    }
}

/// A served frame's command and route for the metrics: a client's, or a forwarding node's.
pub(super) fn metrics_kind(f: &Frame) -> (Command, MetricsRoute) {
    let route = if f.header.hops > 0 {
        MetricsRoute::Received
    } else {
        MetricsRoute::Local
    };
    (f.header.command, route)
}

/// Sends the rest of a long READ reply a piece at a time: each piece takes its share of the
/// node's reply memory, is read on the blocking pool and is written before the next is
/// read, so a slow reader holds one piece and slows only itself.
async fn send_stream(
    node: &Arc<Node>,
    stream: &mut ClientStream,
    mut rest: ReadStream,
) -> Result<(), End> {
    while !rest.done() {
        let _share = node.reply_budget.take_bytes(rest.next_len()).await;
        let (back, chunks) = node
            .backend
            .run(move |b| {
                let chunks = rest.next_piece(b);
                Ok((rest, chunks))
            })
            .await
            .map_err(|e| End::Fatal(e.to_string()))?;
        rest = back;
        node.metrics.sent(chunks.iter().map(|c| c.len()).sum());
        write_chunks(stream, &chunks)
            .await
            .map_err(|e| End::Fatal(e.to_string()))?;
    }
    Ok(())
}

/// Tells a connection over the cap why it is being closed.
pub async fn refuse(mut stream: TcpStream) {
    let mut out = BytesMut::new();
    // Transaction 0, command 0: it answers no request (docs/PROTOCOL.md).
    let mut h = Header::request(Command::Ping, 0, [0; 32], 0);
    h.command = Command::from_u16(0);
    // In version 1, which every client reads.
    h.version = crate::wire::MIN_PROTOCOL_VERSION;
    encode_error(
        &h,
        Status::ConnectionLimit,
        "node is at its connection limit; try later",
        &mut out,
    );
    let _ = stream.write_all(&out).await;
    let _ = stream.shutdown().await;
}

/// The first 4 bytes of a key in hex, as the logs show keys.
fn hex_prefix(key: &[u8]) -> String {
    key.iter().take(4).map(|b| format!("{b:02x}")).collect()
}
