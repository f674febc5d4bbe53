//! A value or object as an `AsyncRead`: the caller pulls, and the pull is what drives the
//! transfer (a bounded pipe between a task that streams the reply and the caller), so memory
//! stays at the pipe plus one part however large the value and however slow the caller. A
//! failure mid-way (the node gone, `CHANGED`, a checksum) is the read's error, never a
//! silent early end.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, DuplexStream, ReadBuf};
use tokio::task::JoinHandle;

use crate::client::target::Target;
use crate::client::{Client, ClientError, Result};

/// Bytes the pipe between the transfer and the caller holds.
const PIPE_BYTES: usize = 1 << 20;

/// Reads a value or object of a name as a stream (`Client::reader`).
pub struct ObjectReader {
    pipe: DuplexStream,
    transfer: Option<JoinHandle<Result<u64>>>,
}

impl Client {
    /// `size` bytes (`None`: to the end) from `offset` of the value or object under `key`,
    /// as an `AsyncRead`. Whole-value calls ([`Client::get_object`]) are built on the same
    /// streamed transfer.
    pub fn reader(
        self: &Arc<Self>,
        key: impl Into<Target>,
        range: (u64, Option<u64>),
    ) -> ObjectReader {
        let (mut tx, rx) = tokio::io::duplex(PIPE_BYTES);
        let (client, key) = (self.clone(), key.into());
        let transfer = tokio::spawn(async move { client.get_object_to(key, range, &mut tx).await });
        ObjectReader {
            pipe: rx,
            transfer: Some(transfer),
        }
    }
}

impl AsyncRead for ObjectReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.pipe).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            return Poll::Ready(Ok(()));
        }
        // The pipe ended: the transfer is done, and says whether it was all there.
        let Some(transfer) = self.transfer.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let done = ready!(Pin::new(transfer).poll(cx));
        self.transfer = None;
        match done {
            Ok(Ok(_)) => Poll::Ready(Ok(())),
            Ok(Err(e)) => Poll::Ready(Err(std::io::Error::other(e))),
            Err(e) => Poll::Ready(Err(std::io::Error::other(ClientError::Unexpected(
                format!("the transfer task failed: {e}"),
            )))),
        }
    }
}

impl Drop for ObjectReader {
    fn drop(&mut self) {
        if let Some(t) = self.transfer.take() {
            t.abort();
        }
    }
}
