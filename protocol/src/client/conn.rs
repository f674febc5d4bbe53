//! One pipelined connection: requests are written by whichever caller finds no write under
//! way, together with every request queued meanwhile (one write for many callers), and a
//! reader task routes reply frames to their waiting caller by transaction id, so many
//! requests are in flight at once and replies may arrive in any order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::error::ClientError;
use super::run_replies::RunReplies;
use crate::wire::{decode_frame, Frame, Header};

type Waiters = Arc<Mutex<HashMap<u64, Waiter>>>;

/// Reply frames a streaming reader may have waiting: the connection's reader waits (and so
/// the node's sending) while a streamed transaction's consumer is behind.
pub const STREAM_FRAMES_BUFFERED: usize = 8;

/// Where a transaction's reply frames go: an unbounded channel (replies the caller collects
/// whole), or a bounded one (streamed replies: backpressure instead of memory).
enum Waiter {
    Unbounded(mpsc::UnboundedSender<Frame>),
    Bounded(mpsc::Sender<Frame>),
}
type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// Requests encoded and waiting to be written, and whether a caller is writing.
#[derive(Default)]
struct Outbox {
    queued: BytesMut,
    writing: bool,
}

/// A live connection to a node.
pub struct Conn {
    writer: tokio::sync::Mutex<Writer>,
    outbox: Mutex<Outbox>,
    waiters: Waiters,
    next_trans: AtomicU64,
    /// The protocol version request headers are written in (the negotiated one).
    version: AtomicU8,
    dead: Arc<AtomicBool>,
    /// Why the node's side closed, when reading failed (e.g. a TLS alert).
    closed_by: Arc<Mutex<Option<String>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Conn {
    /// Connects to `addr` (within `connect_timeout`, TLS handshake included).
    pub async fn open(
        addr: &str,
        connect_timeout: Duration,
        tls: Option<&crate::tls::TlsClient>,
    ) -> Result<Conn, ClientError> {
        let failed = |source| ClientError::Connect {
            addr: addr.to_string(),
            source,
        };
        let connect = async {
            let stream = TcpStream::connect(addr).await?;
            let _ = stream.set_nodelay(true);
            let halves: (Reader, Writer) = match tls {
                None => {
                    let (rd, wr) = stream.into_split();
                    (Box::new(rd), Box::new(wr))
                }
                Some(tls) => {
                    let (rd, wr) = tokio::io::split(tls.connect(stream, addr).await?);
                    (Box::new(rd), Box::new(wr))
                }
            };
            Ok(halves)
        };
        let (rd, wr) = match tokio::time::timeout(connect_timeout, connect).await {
            Ok(connected) => connected.map_err(failed)?,
            Err(_) => return Err(failed(std::io::ErrorKind::TimedOut.into())),
        };
        Ok(Conn::start(rd, wr))
    }

    /// A connection over the stream halves `rd` and `wr`, its reader task started.
    fn start(rd: Reader, wr: Writer) -> Conn {
        let waiters: Waiters = Arc::default();
        let dead = Arc::new(AtomicBool::new(false));
        let closed_by = Arc::new(Mutex::new(None));
        let reader = tokio::spawn(read_replies(
            rd,
            waiters.clone(),
            dead.clone(),
            closed_by.clone(),
        ));
        Conn {
            writer: tokio::sync::Mutex::new(wr),
            outbox: Mutex::default(),
            waiters,
            next_trans: AtomicU64::new(1),
            version: AtomicU8::new(crate::wire::PROTOCOL_VERSION),
            dead,
            closed_by,
            reader,
        }
    }

    /// The protocol version of request headers on this connection.
    pub fn version(&self) -> u8 {
        self.version.load(Ordering::Relaxed)
    }

    pub fn set_version(&self, version: u8) {
        self.version.store(version, Ordering::Relaxed);
    }

    /// Why the connection ended, in words: the read error if there was one.
    pub fn closed_reason(&self, default: &str) -> String {
        match self.closed_by.lock().as_deref() {
            Some(why) => format!("{default}: {why}"),
            None => default.to_string(),
        }
    }

    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    /// Sends one request frame built by `encode` (given a fresh transaction id) and returns
    /// the channel its reply frames arrive on.
    pub async fn send(
        &self,
        encode: impl FnOnce(u64, &mut BytesMut) -> Result<Header, ClientError>,
    ) -> Result<(u64, mpsc::UnboundedReceiver<Frame>), ClientError> {
        let mut encode = Some(encode);
        let mut sent = self
            .send_all(1, |_, trans, buf| match encode.take() {
                Some(e) => e(trans, buf),
                None => Err(ClientError::Unexpected("one frame encoded twice".into())),
            })
            .await?;
        sent.pop()
            .ok_or_else(|| ClientError::Unexpected("no frame sent".into()))
    }

    /// Sends `count` request frames, the `i`-th built by `encode(i, trans, buf)`, in one
    /// write; returns each one's transaction id and reply channel, in order.
    pub async fn send_all(
        &self,
        count: usize,
        encode: impl FnMut(usize, u64, &mut BytesMut) -> Result<Header, ClientError>,
    ) -> Result<Vec<(u64, mpsc::UnboundedReceiver<Frame>)>, ClientError> {
        let (buf, ids) = self.encode_frames(count, encode)?;
        let mut sent = Vec::with_capacity(count);
        let mut senders = Vec::with_capacity(count);
        for trans in ids {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.push((trans, Waiter::Unbounded(tx)));
            sent.push((trans, rx));
        }
        self.waiters.lock().extend(senders);
        self.write(buf, false).await?;
        Ok(sent)
    }

    /// `count` request frames, the `i`-th built by `encode(i, trans, buf)` under a fresh
    /// transaction id, and those ids in order (refused on a dead connection).
    fn encode_frames(
        &self,
        count: usize,
        mut encode: impl FnMut(usize, u64, &mut BytesMut) -> Result<Header, ClientError>,
    ) -> Result<(BytesMut, Vec<u64>), ClientError> {
        if self.is_dead() {
            return Err(ClientError::Disconnected("connection closed".into()));
        }
        let mut buf = BytesMut::new();
        let mut ids = Vec::with_capacity(count);
        for i in 0..count {
            let trans = self.next_trans.fetch_add(1, Ordering::Relaxed);
            encode(i, trans, &mut buf)?;
            ids.push(trans);
        }
        Ok((buf, ids))
    }

    /// Sends `count` request frames like [`send_all`](Self::send_all), their replies
    /// arriving on one channel ([`RunReplies`]). When other transactions are in flight on
    /// the connection, the write waits for the runtime's other ready tasks first, so the
    /// runs of many callers (a forwarding node's client connections) leave in one write and
    /// reach the node as one batch; alone, it writes at once.
    pub async fn send_run(
        &self,
        count: usize,
        encode: impl FnMut(usize, u64, &mut BytesMut) -> Result<Header, ClientError>,
    ) -> Result<RunReplies, ClientError> {
        let (buf, sent) = self.encode_frames(count, encode)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let busy = {
            let mut waiters = self.waiters.lock();
            let busy = !waiters.is_empty();
            for trans in &sent {
                waiters.insert(*trans, Waiter::Unbounded(tx.clone()));
            }
            busy
        };
        self.write(buf, busy).await?;
        Ok(RunReplies::new(sent, rx))
    }

    /// Sends one request frame whose replies are streamed: they arrive on a bounded channel,
    /// and the connection stops reading while it is full (the node's sending waits), so a
    /// slow consumer holds at most [`STREAM_FRAMES_BUFFERED`] frames. Other transactions on
    /// the connection wait meanwhile: use a connection of its own for a long stream.
    pub async fn send_streamed(
        &self,
        encode: impl FnOnce(u64, &mut BytesMut) -> Result<Header, ClientError>,
    ) -> Result<(u64, mpsc::Receiver<Frame>), ClientError> {
        if self.is_dead() {
            return Err(ClientError::Disconnected("connection closed".into()));
        }
        let mut buf = BytesMut::new();
        let trans = self.next_trans.fetch_add(1, Ordering::Relaxed);
        encode(trans, &mut buf)?;
        let (tx, rx) = mpsc::channel(STREAM_FRAMES_BUFFERED);
        self.waiters.lock().insert(trans, Waiter::Bounded(tx));
        self.write(buf, false).await?;
        Ok((trans, rx))
    }

    /// Queues `buf`; unless another caller is writing already (and so writes it too), writes
    /// everything queued until nothing is — with `gather`, after letting the runtime's other
    /// ready tasks run (and queue theirs). A failed or abandoned write kills the connection:
    /// every waiter is told, and the next call reconnects.
    async fn write(&self, buf: BytesMut, gather: bool) -> Result<(), ClientError> {
        {
            let mut outbox = self.outbox.lock();
            outbox.queued.unsplit(buf);
            if outbox.writing {
                return Ok(());
            }
            outbox.writing = true;
        }
        let mut guard = Writing {
            conn: self,
            done: false,
        };
        if gather {
            tokio::task::yield_now().await;
        }
        let mut writer = self.writer.lock().await;
        loop {
            let chunk = {
                let mut outbox = self.outbox.lock();
                if outbox.queued.is_empty() {
                    outbox.writing = false;
                    guard.done = true;
                    return Ok(());
                }
                outbox.queued.split()
            };
            if let Err(e) = writer.write_all(&chunk).await {
                return Err(ClientError::Disconnected(e.to_string()));
            }
            // Over TLS a write returns once rustls has taken the bytes, and records the
            // socket had no room for wait for the next write or a flush: without this, the
            // tail of a request could wait there for the next request while the node waits
            // for the tail (a plain socket's flush does nothing).
            if let Err(e) = writer.flush().await {
                return Err(ClientError::Disconnected(e.to_string()));
            }
        }
    }

    /// Ends the connection: nothing more is sent on it, every waiter is woken.
    fn kill(&self) {
        self.dead.store(true, Ordering::SeqCst);
        self.waiters.lock().clear();
        let mut outbox = self.outbox.lock();
        outbox.queued.clear();
        outbox.writing = false;
    }

    /// Stops waiting for a transaction (after a timeout).
    pub fn forget(&self, trans: u64) {
        self.waiters.lock().remove(&trans);
    }
}

/// The caller writing the outbox; if it stops before the outbox is empty (an error, or its
/// future dropped mid-write) the stream may hold part of a frame: the connection is killed.
struct Writing<'a> {
    conn: &'a Conn,
    done: bool,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.conn.kill();
        }
    }
}

async fn read_replies(
    mut rd: Reader,
    waiters: Waiters,
    dead: Arc<AtomicBool>,
    closed_by: Arc<Mutex<Option<String>>>,
) {
    let mut buf = BytesMut::with_capacity(64 << 10);
    'read: loop {
        loop {
            match decode_frame(&mut buf) {
                Ok(Some(frame)) => {
                    if let Some((tx, frame)) = route(&waiters, frame) {
                        // A streamed transaction: wait for its consumer (backpressure).
                        let _ = tx.send(frame).await;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "bad frame from node; dropping connection");
                    break 'read;
                }
            }
        }
        // A long frame's room at once: growing by doubling would copy it several times.
        if let Some(total) = crate::wire::announced_frame_len(&buf) {
            buf.reserve(total.saturating_sub(buf.len()));
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) => break,
            Err(e) => {
                *closed_by.lock() = Some(e.to_string());
                break;
            }
            Ok(_) => {}
        }
    }
    dead.store(true, Ordering::SeqCst);
    // Dropping the senders wakes every waiter with "disconnected".
    waiters.lock().clear();
}

/// Delivers `frame` to its transaction's channel; a frame for a streamed transaction is
/// returned with its sender, to be awaited outside the lock.
fn route(waiters: &Waiters, frame: Frame) -> Option<(mpsc::Sender<Frame>, Frame)> {
    let trans = frame.header.trans;
    let last = !frame.header.has_more();
    let mut w = waiters.lock();
    let Some(waiter) = w.get(&trans) else {
        // A connection-level error (e.g. CONNECTION_LIMIT) has transaction 0: fail everyone.
        if trans == 0 {
            for waiter in w.values() {
                match waiter {
                    Waiter::Unbounded(tx) => drop(tx.send(frame.clone())),
                    Waiter::Bounded(tx) => drop(tx.try_send(frame.clone())),
                }
            }
        }
        return None;
    };
    let streamed = match waiter {
        Waiter::Unbounded(tx) => {
            let _ = tx.send(frame);
            None
        }
        Waiter::Bounded(tx) => Some((tx.clone(), frame)),
    };
    if last {
        w.remove(&trans);
    }
    streamed
}

#[cfg(test)]
mod tests;
