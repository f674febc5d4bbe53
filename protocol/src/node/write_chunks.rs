//! A batch's reply chunks written with as few system calls as the socket allows: one
//! vectored write of all of them (up to [`MAX_SLICES`] at once), again from where a short
//! write stopped. Written one `write` per chunk, a reply whose value goes out as a shared
//! slice (`output.rs`) cost a second system call and a segment of its own for its 80-byte
//! header.

use std::io::{self, IoSlice};

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Chunks handed to one vectored write at most (Linux takes up to 1,024).
pub const MAX_SLICES: usize = 64;

/// Writes every byte of `chunks`, in order.
pub async fn write_chunks<W: AsyncWrite + Unpin>(w: &mut W, chunks: &[Bytes]) -> io::Result<()> {
    if let [one] = chunks {
        return w.write_all(one).await;
    }
    let (mut i, mut at) = (0, 0);
    while i < chunks.len() {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let mut n = 0;
        for (k, c) in chunks[i..].iter().enumerate().take(MAX_SLICES) {
            let from = if k == 0 { at } else { 0 };
            slices[n] = IoSlice::new(c.get(from..).unwrap_or(&[]));
            n += 1;
        }
        let mut written = w.write_vectored(&slices[..n]).await?;
        if written == 0 && slices[..n].iter().any(|s| !s.is_empty()) {
            return Err(io::ErrorKind::WriteZero.into());
        }
        // Past what was written, and past empty chunks.
        while i < chunks.len() {
            let left = chunks[i].len() - at;
            if written < left {
                at += written;
                break;
            }
            written -= left;
            (i, at) = (i + 1, 0);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;

    /// Takes at most `per_call` bytes a call, vectored, and counts the calls.
    struct Short {
        got: Vec<u8>,
        per_call: usize,
        calls: usize,
    }

    impl AsyncWrite for Short {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.poll_write_vectored(cx, &[IoSlice::new(buf)])
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.calls += 1;
            let mut room = self.per_call;
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(room);
                self.got.extend_from_slice(&b[..take]);
                (room, n) = (room - take, n + take);
            }
            Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn chunks() -> Vec<Bytes> {
        let mut c: Vec<Bytes> = (0..150u32)
            .map(|i| Bytes::from(vec![i as u8; (i as usize * 37) % 300]))
            .collect();
        c.insert(3, Bytes::new());
        c
    }

    #[tokio::test]
    async fn every_byte_goes_out_in_order_whatever_each_write_takes() -> io::Result<()> {
        let want = chunks().concat();
        for per_call in [1, 7, 80, 4096, usize::MAX] {
            let mut w = Short {
                got: Vec::new(),
                per_call,
                calls: 0,
            };
            write_chunks(&mut w, &chunks()).await?;
            assert_eq!(w.got, want, "{per_call} bytes a call");
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_header_and_its_shared_value_leave_in_one_write() -> io::Result<()> {
        let mut w = Short {
            got: Vec::new(),
            per_call: usize::MAX,
            calls: 0,
        };
        let reply = [Bytes::from(vec![1u8; 80]), Bytes::from(vec![2u8; 65536])];
        write_chunks(&mut w, &reply).await?;
        assert_eq!(w.calls, 1);
        let mut w = Short {
            got: Vec::new(),
            per_call: usize::MAX,
            calls: 0,
        };
        write_chunks(&mut w, &chunks()).await?;
        assert_eq!(w.calls, 3, "151 chunks, 64 a call");
        Ok(())
    }
}
