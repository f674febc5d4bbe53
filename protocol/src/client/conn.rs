//! One pipelined connection: requests are written under a lock, a reader task routes reply
//! frames to their waiting caller by transaction id, so many requests are in flight at once
//! and replies may arrive in any order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::error::ClientError;
use crate::wire::{decode_frame, Frame, Header};

type Waiters = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Frame>>>>;

/// A live connection to a node.
pub struct Conn {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    waiters: Waiters,
    next_trans: AtomicU64,
    dead: Arc<AtomicBool>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Conn {
    pub async fn open(addr: &str, connect_timeout: Duration) -> Result<Conn, ClientError> {
        let failed = |source| ClientError::Connect {
            addr: addr.to_string(),
            source,
        };
        let stream = match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(connected) => connected.map_err(failed)?,
            Err(_) => return Err(failed(std::io::ErrorKind::TimedOut.into())),
        };
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let waiters: Waiters = Arc::default();
        let dead = Arc::new(AtomicBool::new(false));
        let reader = tokio::spawn(read_replies(rd, waiters.clone(), dead.clone()));
        Ok(Conn {
            writer: tokio::sync::Mutex::new(wr),
            waiters,
            next_trans: AtomicU64::new(1),
            dead,
            reader,
        })
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
        if self.is_dead() {
            return Err(ClientError::Disconnected("connection closed".into()));
        }
        let trans = self.next_trans.fetch_add(1, Ordering::Relaxed);
        let mut buf = BytesMut::new();
        encode(trans, &mut buf)?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.waiters.lock().insert(trans, tx);
        let written = self.writer.lock().await.write_all(&buf).await;
        if let Err(e) = written {
            self.waiters.lock().remove(&trans);
            self.dead.store(true, Ordering::SeqCst);
            return Err(ClientError::Disconnected(e.to_string()));
        }
        Ok((trans, rx))
    }

    /// Stops waiting for a transaction (after a timeout).
    pub fn forget(&self, trans: u64) {
        self.waiters.lock().remove(&trans);
    }
}

async fn read_replies(mut rd: OwnedReadHalf, waiters: Waiters, dead: Arc<AtomicBool>) {
    let mut buf = BytesMut::with_capacity(64 << 10);
    'read: loop {
        loop {
            match decode_frame(&mut buf) {
                Ok(Some(frame)) => route(&waiters, frame),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "bad frame from node; dropping connection");
                    break 'read;
                }
            }
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    dead.store(true, Ordering::SeqCst);
    // Dropping the senders wakes every waiter with "disconnected".
    waiters.lock().clear();
}

fn route(waiters: &Waiters, frame: Frame) {
    let trans = frame.header.trans;
    let last = !frame.header.has_more();
    let mut w = waiters.lock();
    let Some(tx) = w.get(&trans) else {
        // A connection-level error (e.g. CONNECTION_LIMIT) has transaction 0: fail everyone.
        if trans == 0 {
            for tx in w.values() {
                let _ = tx.send(frame.clone());
            }
        }
        return;
    };
    let _ = tx.send(frame);
    if last {
        w.remove(&trans);
    }
}
