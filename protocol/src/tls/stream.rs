//! A connection's byte stream: plain TCP, or TLS as the server or the client side.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::MovableTcp;

/// Plain TCP or TLS; reads and writes pass straight through, except that the server side
/// of TLS also sends what its session still holds ([`push_held`]).
pub enum Stream {
    Plain(TcpStream),
    /// A node's side of a client's TLS connection (its socket movable to a connection lane).
    Server(Box<tokio_rustls::server::TlsStream<MovableTcp>>),
    Client(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Server(s) => {
                push_held(s, cx);
                Pin::new(s).poll_read(cx, buf)
            }
            Stream::Client(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Server(s) => {
                let written = Pin::new(&mut **s).poll_write(cx, buf);
                push_held(s, cx);
                written
            }
            Stream::Client(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Server(s) => {
                let written = Pin::new(&mut **s).poll_write_vectored(cx, bufs);
                push_held(s, cx);
                written
            }
            Stream::Client(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Server(s) => s.is_write_vectored(),
            Stream::Client(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Server(s) => Pin::new(s).poll_flush(cx),
            Stream::Client(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Server(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Client(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Sends the TLS records the session still holds. tokio-rustls returns from a write once
/// rustls has taken the bytes, even when the socket took none of the records (its send
/// buffer full, or not yet known writable on a socket just registered with a lane), and
/// sends them only on the next write or a flush; the node flushes nowhere, so the tail of
/// a reply could wait there while the connection waits for a request the client sends only
/// once that reply is whole. Pushing on every write and every read sends it: a push that
/// finds the socket full leaves the task's waker on its write readiness, and the wake-up's
/// read pushes again. A failure here surfaces on the next read or write of the socket.
fn push_held(s: &mut tokio_rustls::server::TlsStream<MovableTcp>, cx: &mut Context<'_>) {
    if s.get_ref().1.wants_write() {
        let _ = Pin::new(s).poll_flush(cx);
    }
}
