//! A TCP socket that can move to another runtime's reactor after its TLS handshake.
//!
//! A node with connection lanes runs each client connection on one lane's single thread.
//! A TLS handshake costs milliseconds of CPU (key exchange and signature), so a burst of
//! them on a lane would hold up every other connection of that lane for as long. The node
//! therefore completes the handshake on a runtime kept for handshakes (`ringblob-tls-N`)
//! and only then gives the connection to a lane. tokio-rustls cannot rebuild a `TlsStream` around a socket taken
//! out of it, but it lends its transport mutably: the transport is this wrapper, whose
//! socket is swapped in place for the same socket registered with the lane's reactor
//! ([`MovableTcp::rehome`]); the TLS session, with any bytes it already holds, moves along
//! untouched inside the stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP socket registered with one runtime's reactor, movable to another's.
#[derive(Debug)]
pub struct MovableTcp {
    /// `None` only if a move failed half way (the socket is then closed).
    tcp: Option<TcpStream>,
}

impl MovableTcp {
    pub fn new(tcp: TcpStream) -> Self {
        MovableTcp { tcp: Some(tcp) }
    }

    /// Registers the socket with the reactor of the runtime this is called on (leaving the
    /// one it was registered with). Must be called from within a runtime. A socket that
    /// cannot be registered is closed, and every later read or write fails.
    pub fn rehome(&mut self) -> io::Result<()> {
        let tcp = self.tcp.take().ok_or_else(lost)?;
        self.tcp = Some(TcpStream::from_std(tcp.into_std()?)?);
        Ok(())
    }

    fn get(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        self.tcp.as_mut().map(Pin::new).ok_or_else(lost)
    }
}

fn lost() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the connection's socket was lost moving it to a connection lane",
    )
}

impl AsyncRead for MovableTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut().get() {
            Ok(s) => s.poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for MovableTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().get() {
            Ok(s) => s.poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().get() {
            Ok(s) => s.poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().get() {
            Ok(s) => s.poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().get() {
            Ok(s) => s.poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn or_panic<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
        r.unwrap_or_else(|e| panic!("{e}"))
    }

    /// A socket accepted on one runtime, moved to a second one (which then serves it after
    /// the first is gone), keeps the bytes already sent to it.
    #[test]
    fn a_socket_moved_to_another_runtime_keeps_serving() {
        let first = or_panic(tokio::runtime::Runtime::new());
        let (mut moved, mut peer) = first.block_on(async {
            let listener = or_panic(tokio::net::TcpListener::bind("127.0.0.1:0").await);
            let addr = or_panic(listener.local_addr());
            let peer = or_panic(TcpStream::connect(addr).await);
            let (server, _) = or_panic(listener.accept().await);
            (MovableTcp::new(server), MovableTcp::new(peer))
        });
        first.block_on(async {
            or_panic(peer.write_all(b"sent before the move").await);
            let mut got = [0u8; 4];
            or_panic(moved.read_exact(&mut got).await);
            assert_eq!(&got, b"sent");
        });
        let second = or_panic(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
        );
        second.block_on(async {
            or_panic(moved.rehome());
            or_panic(peer.rehome());
        });
        drop(first);
        second.block_on(async {
            let mut got = [0u8; 16];
            or_panic(moved.read_exact(&mut got).await);
            assert_eq!(&got, b" before the move");
            or_panic(moved.write_all(b"answered after it").await);
            let mut got = [0u8; 17];
            or_panic(peer.read_exact(&mut got).await);
            assert_eq!(&got, b"answered after it");
        });
    }

    /// A socket lost in a failed move fails reads and writes instead of panicking.
    #[test]
    fn a_lost_socket_fails_its_reads_and_writes() {
        let rt = or_panic(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
        );
        rt.block_on(async {
            let mut lost = MovableTcp { tcp: None };
            assert!(lost.rehome().is_err());
            let mut got = [0u8; 1];
            assert!(lost.read(&mut got).await.is_err());
            assert!(lost.write_all(b"x").await.is_err());
            assert!(!lost.is_write_vectored());
        });
    }
}
