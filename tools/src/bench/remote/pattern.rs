//! Deterministic bytes for large-value workloads, made as they are needed (never held
//! whole): byte `i` of stream `seed` is a function of both, so any range can be checked.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Byte `i` of stream `seed` (what [`fill`] writes there).
#[cfg(test)]
fn byte_at(seed: u64, i: u64) -> u8 {
    let word = splitmix(seed ^ (i / 8).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    word.to_le_bytes()[(i % 8) as usize]
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fills `out` with bytes `at..at + out.len()` of stream `seed`, a word at a time.
pub fn fill(seed: u64, at: u64, out: &mut [u8]) {
    let mut i = 0usize;
    while i < out.len() {
        let pos = at + i as u64;
        let word = splitmix(seed ^ (pos / 8).wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes();
        let from = (pos % 8) as usize;
        let n = (8 - from).min(out.len() - i);
        out[i..i + n].copy_from_slice(&word[from..from + n]);
        i += n;
    }
}

/// `len` bytes of stream `seed`, as an `AsyncRead`.
pub struct PatternSource {
    seed: u64,
    at: u64,
    len: u64,
}

impl PatternSource {
    pub fn new(seed: u64, len: u64) -> Self {
        PatternSource { seed, at: 0, len }
    }
}

impl AsyncRead for PatternSource {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = (self.len - self.at).min(buf.remaining() as u64) as usize;
        let dst = buf.initialize_unfilled_to(n);
        fill(self.seed, self.at, dst);
        buf.advance(n);
        self.at += n as u64;
        Poll::Ready(Ok(()))
    }
}

/// A destination that takes at most `bytes_per_sec` (a slow reader), checks every byte
/// against stream `seed`, and counts them.
pub struct SlowSink {
    seed: u64,
    pub taken: u64,
    pub wrong: u64,
    bytes_per_sec: u64,
    started: tokio::time::Instant,
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
    expected: Vec<u8>,
}

impl SlowSink {
    pub fn new(seed: u64, bytes_per_sec: u64) -> Self {
        SlowSink {
            seed,
            taken: 0,
            wrong: 0,
            bytes_per_sec: bytes_per_sec.max(1),
            started: tokio::time::Instant::now(),
            wait: None,
            expected: Vec::new(),
        }
    }
}

impl AsyncWrite for SlowSink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(w) = self.wait.as_mut() {
            if w.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.wait = None;
        }
        // Where the stream may be by now at the rate: ahead of it, wait.
        let due = Duration::from_secs_f64(self.taken as f64 / self.bytes_per_sec as f64);
        let at = self.started + due;
        if at > tokio::time::Instant::now() {
            let mut sleep = Box::pin(tokio::time::sleep_until(at));
            if sleep.as_mut().poll(cx).is_pending() {
                self.wait = Some(sleep);
                return Poll::Pending;
            }
        }
        let n = buf.len().min(1 << 20);
        let mut expected = std::mem::take(&mut self.expected);
        expected.resize(n, 0);
        fill(self.seed, self.taken, &mut expected);
        let wrong = buf[..n]
            .iter()
            .zip(&expected)
            .filter(|(a, b)| a != b)
            .count();
        self.expected = expected;
        self.wrong += wrong as u64;
        self.taken += n as u64;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_source_yields_its_stream_and_a_sink_checks_it() {
        let mut src = PatternSource::new(7, 100_000);
        let mut all = Vec::new();
        assert!(src.read_to_end(&mut all).await.is_ok());
        assert_eq!(all.len(), 100_000);
        assert!(all
            .iter()
            .enumerate()
            .all(|(i, &b)| b == byte_at(7, i as u64)));
        let mut part = vec![0u8; 13];
        fill(7, 5, &mut part);
        assert_eq!(part, all[5..18]);
        let mut sink = SlowSink::new(7, u64::MAX / 2);
        assert!(tokio::io::AsyncWriteExt::write_all(&mut sink, &all)
            .await
            .is_ok());
        assert_eq!((sink.taken, sink.wrong), (100_000, 0));
        let mut other = SlowSink::new(8, u64::MAX / 2);
        assert!(tokio::io::AsyncWriteExt::write_all(&mut other, &all)
            .await
            .is_ok());
        assert!(other.wrong > 90_000, "another stream's bytes differ");
    }
}
