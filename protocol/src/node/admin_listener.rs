//! The admin listener's connections: plain TCP, or TLS with the node's certificate (a
//! listener beyond loopback on a node that requires keys, where `/metrics` takes an admin
//! key that must not cross the network in clear). TLS handshakes run in their own tasks, at
//! most [`MAX_HANDSHAKES`] at once and each within [`HANDSHAKE_TIMEOUT`], so a client that
//! stalls its handshake holds up no one else.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};

use crate::tls::{Stream, TlsServer};

/// Handshakes in progress at most; more connections wait to be accepted.
pub const MAX_HANDSHAKES: usize = 64;
/// How long a client has to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepted connections, ready for HTTP.
pub struct AdminListener {
    local: SocketAddr,
    source: Source,
}

enum Source {
    Plain(TcpListener),
    /// Streams whose handshake completed, from the accepting task.
    Tls(mpsc::Receiver<(Stream, SocketAddr)>),
}

impl AdminListener {
    /// Plain HTTP on `tcp`.
    pub fn plain(tcp: TcpListener) -> std::io::Result<AdminListener> {
        Ok(AdminListener {
            local: tcp.local_addr()?,
            source: Source::Plain(tcp),
        })
    }

    /// HTTPS on `tcp` with `tls`. The accepting task ends when the listener is dropped.
    pub fn tls(tcp: TcpListener, tls: TlsServer) -> std::io::Result<AdminListener> {
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(MAX_HANDSHAKES);
        tokio::spawn(accept_tls(tcp, Arc::new(tls), tx));
        Ok(AdminListener {
            local,
            source: Source::Tls(rx),
        })
    }
}

async fn accept_tls(tcp: TcpListener, tls: Arc<TlsServer>, tx: mpsc::Sender<(Stream, SocketAddr)>) {
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    while !tx.is_closed() {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::debug!(error = %e, "admin listener: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Replies go out at once (no Nagle wait for the client's delayed ACK).
        let _ = stream.set_nodelay(true);
        let (tls, tx) = (tls.clone(), tx.clone());
        tokio::spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                Ok(Ok(s)) => {
                    let _ = tx.send((Stream::Server(Box::new(s)), peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "admin TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "admin TLS handshake timed out"),
            }
        });
    }
}

impl Listener for AdminListener {
    type Io = Stream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Stream, SocketAddr) {
        match &mut self.source {
            // axum's accept for TCP: retries failed accepts itself.
            Source::Plain(tcp) => {
                let (s, peer) = Listener::accept(tcp).await;
                // A reply larger than a segment would otherwise wait ~40 ms for the
                // client's delayed ACK on every reused connection (Nagle).
                let _ = s.set_nodelay(true);
                (Stream::Plain(s), peer)
            }
            Source::Tls(rx) => match rx.recv().await {
                Some(accepted) => accepted,
                // The accepting task ended: nothing more will come.
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// The client's address, for the handlers (`ConnectInfo<PeerAddr>`).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, AdminListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, AdminListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}
