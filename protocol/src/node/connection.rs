//! One client connection: frames are read, served in batches on the blocking pool, and the
//! replies written back in one write per batch. A connection's first frame must be a
//! HANDSHAKE with a version both sides speak.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::forward::{route, Route};
use super::handover::PreviousOwner;
use super::{dispatch, Node};
use crate::ring::RouteTable;
use crate::wire::{
    decode_frame, encode_error, Command, Frame, Header, Request, Status, WireError, FLAG_LOCAL,
    MAX_IN_FLIGHT_PER_CONNECTION,
};

/// Why a connection ended, for the log.
#[derive(Debug)]
enum End {
    Closed,
    Idle,
    SlowFrame,
    Shutdown,
    Fatal(String),
}

/// Serves `stream` until the peer closes, misbehaves, idles out, or the node shuts down.
pub async fn serve(node: Arc<Node>, mut stream: TcpStream, mut shutdown: watch::Receiver<bool>) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    match run(&node, &mut stream, &mut shutdown).await {
        End::Fatal(why) => tracing::info!(%peer, %why, "connection dropped"),
        End::SlowFrame => {
            tracing::info!(%peer, "connection dropped: frame not completed within the read timeout")
        }
        end => tracing::debug!(%peer, ?end, "connection closed"),
    }
    let _ = stream.shutdown().await;
}

async fn run(
    node: &Arc<Node>,
    stream: &mut TcpStream,
    shutdown: &mut watch::Receiver<bool>,
) -> End {
    let mut buf = BytesMut::with_capacity(64 << 10);
    let mut greeted = false;
    let mut partial_since: Option<Instant> = None;
    loop {
        let batch = match take_frames(&mut buf) {
            Ok(b) => b,
            Err(e) => {
                node.info
                    .counters
                    .bad_frames
                    .fetch_add(1, Ordering::Relaxed);
                // A header that passed its CRC (e.g. an oversized length) gets an error
                // reply before the close; garbage gets just the close.
                if let Ok(h) = Header::decode(&buf) {
                    let mut out = BytesMut::new();
                    encode_error(&h, e.status(), &e.to_string(), &mut out);
                    let _ = stream.write_all(&out).await;
                }
                return End::Fatal(e.to_string());
            }
        };
        if !batch.is_empty() {
            if !greeted {
                if let Err(reply) = check_handshake(node, &batch[0]) {
                    let _ = stream.write_all(&reply).await;
                    return End::Fatal("no valid handshake".into());
                }
                greeted = true;
            }
            if let Err(end) = serve_frames(node, stream, batch).await {
                return end;
            }
            continue;
        }
        partial_since = if buf.is_empty() {
            None
        } else {
            partial_since.or(Some(Instant::now()))
        };
        let wait = match partial_since {
            None => node.config.idle_timeout,
            Some(t) => node.config.read_timeout.saturating_sub(t.elapsed()),
        };
        tokio::select! {
            r = tokio::time::timeout(wait, stream.read_buf(&mut buf)) => match r {
                Err(_) if partial_since.is_some() => return End::SlowFrame,
                Err(_) => return End::Idle,
                Ok(Ok(0)) => return End::Closed,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return End::Fatal(e.to_string()),
            },
            _ = shutdown.changed() => return End::Shutdown,
        }
    }
}

/// Serves a batch in order: runs of frames this node serves go to the backend together;
/// a frame another node owns is forwarded to it and its replies relayed (`forward.rs`).
async fn serve_frames(
    node: &Arc<Node>,
    stream: &mut TcpStream,
    mut batch: Vec<Frame>,
) -> Result<(), End> {
    let table = node.info.route_table();
    let me = node.config.name.as_str();
    while !batch.is_empty() {
        let routes: Vec<Route> = batch
            .iter()
            .map(|f| route(table.as_deref(), me, node.config.group, &f.header))
            .collect();
        let through = |f: &Frame| reads_through(node, table.as_deref(), f);
        if let (Some(Route::Local), Some(prev)) = (routes.first(), batch.first().and_then(through))
        {
            let rest = batch.split_off(1);
            if let Some(frame) = batch.pop() {
                serve_or_ask_previous(node, stream, frame, &prev).await?;
            }
            batch = rest;
            continue;
        }
        let local = routes
            .iter()
            .zip(&batch)
            .take_while(|(r, f)| **r == Route::Local && through(f).is_none())
            .count();
        if local == 0 {
            let n = routes.iter().take_while(|r| **r != Route::Local).count();
            let rest = batch.split_off(n);
            pass_on(node, stream, &batch, &routes[..n]).await?;
            batch = rest;
            continue;
        }
        let later = batch.split_off(local);
        let (chunks, rest) = serve_batch(node, batch).await.map_err(End::Fatal)?;
        for chunk in &chunks {
            stream
                .write_all(chunk)
                .await
                .map_err(|e| End::Fatal(e.to_string()))?;
        }
        batch = rest;
        batch.extend(later);
    }
    Ok(())
}

/// The previous owner to ask about `frame` if this node cannot answer it: a `LOOKUP` or
/// `READ` (not itself `LOCAL`) of a key in a range taken over recently.
fn reads_through(node: &Node, table: Option<&RouteTable>, frame: &Frame) -> Option<PreviousOwner> {
    let h = &frame.header;
    if !node.handovers.any()
        || h.is_local()
        || !matches!(h.command, Command::Lookup | Command::Read)
    {
        return None;
    }
    node.handovers.previous_owner(&h.key, table?)
}

/// Serves a read of a key in a range taken over recently; if this node has no value and
/// remembers no remove of it, the previous owner is asked instead (`LOCAL`: from its own
/// storage) and its reply relayed (`docs/PROTOCOL.md` §15.10).
async fn serve_or_ask_previous(
    node: &Arc<Node>,
    stream: &mut TcpStream,
    frame: Frame,
    prev: &PreviousOwner,
) -> Result<(), End> {
    let (chunks, _) = serve_batch(node, vec![frame.clone()])
        .await
        .map_err(End::Fatal)?;
    let not_found = chunks
        .first()
        .and_then(|c| Header::decode(c).ok())
        .is_some_and(|h| h.status == Status::NotFound);
    if !not_found || removed_here(node, &frame).await {
        for chunk in &chunks {
            stream
                .write_all(chunk)
                .await
                .map_err(|e| End::Fatal(e.to_string()))?;
        }
        return Ok(());
    }
    let mut ask = frame;
    ask.header.flags |= FLAG_LOCAL;
    node.info
        .counters
        .handover_reads
        .fetch_add(1, Ordering::Relaxed);
    node.peers
        .forward(&prev.addr, prev.group, &ask, stream)
        .await
        .map_err(|e| End::Fatal(e.to_string()))
}

/// Whether this node remembers a remove of the (key, column) `frame` reads.
async fn removed_here(node: &Node, frame: &Frame) -> bool {
    let column = match Request::decode(frame) {
        Ok(Request::Lookup(l)) => l.column,
        Ok(Request::Read(r)) => r.column,
        _ => return false,
    };
    let key = ringblob_engine::Key(frame.header.key);
    let removes = node.backend.run(move |b| b.removes_in(&key, &key)).await;
    // If the log cannot be read, do not risk bringing a removed value back.
    removes.map_or(true, |rs| rs.iter().any(|r| r.column == column))
}

/// Forwards a run of frames (all sent before any reply is awaited, so they travel to their
/// owners pipelined), or answers them with the refusal their route gives; replies are
/// written in the frames' order.
async fn pass_on(
    node: &Arc<Node>,
    stream: &mut TcpStream,
    frames: &[Frame],
    routes: &[Route],
) -> Result<(), End> {
    let mut in_flight = Vec::with_capacity(frames.len());
    for (frame, route) in frames.iter().zip(routes) {
        if let Route::Forward { addr, group } = route {
            node.info.counters.forwarded.fetch_add(1, Ordering::Relaxed);
            in_flight.push(Some(node.peers.send(addr, *group, frame).await));
        } else {
            in_flight.push(None);
        }
    }
    for ((frame, route), sent) in frames.iter().zip(routes).zip(in_flight) {
        let written = match (sent, route) {
            (Some(f), _) => node.peers.finish(f, stream).await,
            (None, Route::Refuse(status, message)) => {
                let mut out = BytesMut::new();
                encode_error(&frame.header, *status, message, &mut out);
                stream.write_all(&out).await
            }
            (None, _) => Ok(()),
        };
        written.map_err(|e| End::Fatal(e.to_string()))?;
    }
    Ok(())
}

/// Whole frames at the front of `buf`, at most the in-flight cap; a fatal framing error
/// (bad magic, bad header CRC, oversized length) ends the connection.
fn take_frames(buf: &mut BytesMut) -> Result<Vec<Frame>, WireError> {
    let mut batch = Vec::new();
    while batch.len() < MAX_IN_FLIGHT_PER_CONNECTION {
        match decode_frame(buf) {
            Ok(Some(f)) => batch.push(f),
            Ok(None) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(batch)
}

/// The first frame must be a handshake with a shared version; otherwise the error reply to send.
fn check_handshake(node: &Node, first: &Frame) -> Result<(), BytesMut> {
    let mut out = BytesMut::new();
    let h = &first.header;
    if h.command != Command::Handshake {
        encode_error(
            h,
            Status::BadRequest,
            "the first frame of a connection must be HANDSHAKE",
            &mut out,
        );
        return Err(out);
    }
    let shared = match Request::decode(first) {
        Ok(Request::Handshake(hs)) => node.info.handshake_reply(&hs).map(|_| ()),
        Ok(_) => Err((Status::BadRequest, "not a handshake".to_string())),
        Err(e) => Err((e.status(), e.to_string())),
    };
    shared.map_err(|(status, msg)| {
        encode_error(h, status, &msg, &mut out);
        out
    })
}

/// Serves a batch on the blocking pool (inline for non-blocking backends).
/// Serves a batch on the blocking pool (inline for non-blocking backends); returns the
/// reply chunks and the frames left for the next round (see `MAX_BATCH_REPLY_BYTES`).
async fn serve_batch(
    node: &Arc<Node>,
    batch: Vec<Frame>,
) -> Result<(Vec<Bytes>, Vec<Frame>), String> {
    let n = node.clone();
    let frames = batch.len();
    let (chunks, rest) = node
        .backend
        .run(move |b| Ok(dispatch::serve_batch(b, &n.info, batch)))
        .await
        .map_err(|e| e.to_string())?;
    let served = (frames - rest.len()) as u64;
    node.info
        .counters
        .requests
        .fetch_add(served, Ordering::Relaxed);
    Ok((chunks, rest))
}

/// Tells a connection over the cap why it is being closed.
pub async fn refuse(mut stream: TcpStream) {
    let mut out = BytesMut::new();
    // Transaction 0, command 0: it answers no request (docs/PROTOCOL.md).
    let mut h = Header::request(Command::Ping, 0, [0; 32], 0);
    h.command = Command::from_u16(0);
    encode_error(
        &h,
        Status::ConnectionLimit,
        "node is at its connection limit; try later",
        &mut out,
    );
    let _ = stream.write_all(&out).await;
    let _ = stream.shutdown().await;
}
