//! A client connection's stream with a write timeout: a write (or flush) that makes no
//! progress for `write_timeout` fails with `TimedOut`, so a client that pipelines requests
//! and never reads the replies cannot pin the node's reply memory (or a task) forever.
//! Reads pass through unchanged (the connection loop times them itself).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `S` with a stall timeout on writes.
pub struct TimedStream<S> {
    inner: S,
    write_timeout: Duration,
    /// Armed while a write is pending; reset whenever one makes progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> TimedStream<S> {
    pub fn new(inner: S, write_timeout: Duration) -> Self {
        TimedStream {
            inner,
            write_timeout,
            stalled: None,
        }
    }

    /// `Pending` becomes `TimedOut` once the write has stalled for the timeout.
    fn check_stall<T>(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.stalled = None;
            return r;
        }
        let timeout = self.write_timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.stalled = None;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the peer read no reply for {timeout:?} (write timeout)"),
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

use std::future::Future;

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.check_stall(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.check_stall(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.check_stall(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.check_stall(cx, r)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_write_nobody_reads_times_out_and_one_that_drains_does_not() {
        let (a, unread) = tokio::io::duplex(1024);
        let mut a = TimedStream::new(a, Duration::from_secs(5));
        // The pipe takes 1 KiB; nobody reads the rest.
        let r = a.write_all(&[7u8; 4096]).await;
        assert_eq!(r.map_err(|e| e.kind()), Err(io::ErrorKind::TimedOut));
        // A reader that keeps draining, slower than the timeout overall: no error.
        drop(unread);
        let (a, mut b) = tokio::io::duplex(1024);
        let mut a = TimedStream::new(a, Duration::from_secs(5));
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut chunk = [0u8; 512];
            while got.len() < 16 * 1024 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let n = b.read(&mut chunk).await.unwrap_or(0);
                got.extend_from_slice(&chunk[..n]);
            }
            got.len()
        });
        assert!(a.write_all(&[1u8; 16 * 1024]).await.is_ok());
        assert_eq!(reader.await.ok(), Some(16 * 1024));
    }
}
