//! A connection's writes: runs sent while others are in flight leave together.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWrite;

use super::{Conn, Reader, Writer};
use crate::client::ClientError;
use crate::wire::{Command, Frame, Header};

/// Takes every byte at once and notes the size of each write.
#[derive(Clone, Default)]
struct CountingWriter {
    writes: Arc<parking_lot::Mutex<Vec<usize>>>,
}

impl AsyncWrite for CountingWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.writes.lock().push(buf.len());
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn read_frame(trans: u64, buf: &mut BytesMut) -> Result<Header, ClientError> {
    let header = Header::request(Command::Read, trans, [7; 32], 0);
    Frame {
        header,
        payload: Bytes::new(),
    }
    .encode(buf)?;
    Ok(header)
}

/// A connection writing to a [`CountingWriter`], whose replies never come (the other end
/// of the duplex is returned, to keep it open).
fn counted_conn() -> (Arc<Conn>, CountingWriter, tokio::io::DuplexStream) {
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    let writer = CountingWriter::default();
    let rd: Reader = Box::new(ours);
    let wr: Writer = Box::new(writer.clone());
    (Arc::new(Conn::start(rd, wr)), writer, theirs)
}

#[tokio::test]
async fn runs_sent_while_others_are_in_flight_leave_in_one_write() -> Result<(), ClientError> {
    let (conn, writer, _theirs) = counted_conn();
    // Alone on the connection: written at once.
    let first = conn.send_run(1, |_, t, buf| read_frame(t, buf)).await?;
    assert_eq!(first.sent().len(), 1);
    assert_eq!(writer.writes.lock().len(), 1);
    // Fifty callers while that one waits for its reply.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let conn = conn.clone();
        tasks.spawn(async move { conn.send_run(1, |_, t, buf| read_frame(t, buf)).await });
    }
    let mut trans = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let run = done.map_err(|e| ClientError::Unexpected(e.to_string()))??;
        trans.extend_from_slice(run.sent());
    }
    trans.sort_unstable();
    trans.dedup();
    assert_eq!(trans.len(), 50, "every run has its own transaction");
    let writes = writer.writes.lock().clone();
    let frame_len = writes[0];
    assert_eq!(writes.iter().sum::<usize>(), 51 * frame_len);
    assert!(
        writes.len() <= 3,
        "50 runs queued together should leave in one write or two: {writes:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_lone_call_is_written_before_it_returns() -> Result<(), ClientError> {
    let (conn, writer, _theirs) = counted_conn();
    for n in 1..=3 {
        let sent = conn.send_all(1, |_, t, buf| read_frame(t, buf)).await?;
        assert_eq!(sent.len(), 1);
        assert_eq!(writer.writes.lock().len(), n);
    }
    Ok(())
}
