//! A destination that looks at a value's first bytes before passing them on: a value that
//! begins like a manifest is held (it is at most `MAX_MANIFEST_LEN`) and decoded once it
//! has all arrived; anything else goes straight through. A whole-value read of a name so
//! costs nothing extra whether it holds a plain value or an object.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::manifest::{Manifest, MANIFEST_MAGIC, MAX_MANIFEST_LEN};

enum State {
    /// Fewer than the magic's length of bytes seen.
    Deciding,
    /// Begins with the magic: held until the end.
    Held,
    /// A plain value: `held[sent..]` goes out before anything else.
    Plain { sent: usize },
}

pub struct Sniffer<'a, W> {
    out: &'a mut W,
    held: Vec<u8>,
    state: State,
    /// Bytes taken in.
    taken: u64,
}

/// What the value turned out to be.
pub enum Sniffed {
    /// A plain value of this many bytes, all written out.
    Plain(u64),
    Object(Manifest),
}

impl<'a, W: AsyncWrite + Unpin> Sniffer<'a, W> {
    pub fn new(out: &'a mut W) -> Self {
        Sniffer {
            out,
            held: Vec::new(),
            state: State::Deciding,
            taken: 0,
        }
    }

    /// After the value's last byte: the manifest it holds, or the plain value written out
    /// (bytes held that do not decode as a manifest are plain data).
    pub async fn finish(self) -> std::io::Result<Sniffed> {
        if let State::Held = self.state {
            if let Ok(m) = Manifest::decode(&self.held) {
                return Ok(Sniffed::Object(m));
            }
        }
        let from = match self.state {
            State::Plain { sent } => sent,
            _ => 0,
        };
        self.out.write_all(&self.held[from..]).await?;
        self.out.flush().await?;
        Ok(Sniffed::Plain(self.taken))
    }

    /// Writes out what is held of a plain value.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while let State::Plain { sent } = &mut self.state {
            if *sent >= self.held.len() {
                self.held = Vec::new();
                self.state = State::Plain { sent: 0 };
                return Poll::Ready(Ok(()));
            }
            let n = ready!(Pin::new(&mut *self.out).poll_write(cx, &self.held[*sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            *sent += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Sniffer<'_, W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        match this.state {
            State::Deciding => {
                let n = buf.len().min(MANIFEST_MAGIC.len() - this.held.len());
                this.held.extend_from_slice(&buf[..n]);
                if this.held.len() == MANIFEST_MAGIC.len() {
                    this.state = if this.held == MANIFEST_MAGIC {
                        State::Held
                    } else {
                        State::Plain { sent: 0 }
                    };
                }
                this.taken += n as u64;
                Poll::Ready(Ok(n))
            }
            State::Held => {
                this.held.extend_from_slice(buf);
                if this.held.len() > MAX_MANIFEST_LEN {
                    // Too long for a manifest: plain data after all.
                    this.state = State::Plain { sent: 0 };
                }
                this.taken += buf.len() as u64;
                Poll::Ready(Ok(buf.len()))
            }
            State::Plain { .. } => {
                ready!(this.poll_drain(cx))?;
                let n = ready!(Pin::new(&mut *this.out).poll_write(cx, buf))?;
                this.taken += n as u64;
                Poll::Ready(Ok(n))
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if let State::Plain { .. } = this.state {
            ready!(this.poll_drain(cx))?;
            return Pin::new(&mut *this.out).poll_flush(cx);
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sniff(parts: &[&[u8]]) -> (Vec<u8>, Option<Manifest>) {
        let mut out = Vec::new();
        let mut s = Sniffer::new(&mut out);
        for p in parts {
            let mut p = *p;
            while !p.is_empty() {
                let n = std::future::poll_fn(|cx| Pin::new(&mut s).poll_write(cx, p))
                    .await
                    .unwrap_or(0);
                assert!(n > 0);
                p = &p[n..];
            }
        }
        let m = match s.finish().await {
            Ok(Sniffed::Object(m)) => Some(m),
            _ => None,
        };
        (out, m)
    }

    #[tokio::test]
    async fn plain_values_pass_through_and_manifests_are_held_whatever_the_parts() {
        let (out, m) = sniff(&[b"ab", b"cdefghij", b"klm"]).await;
        assert_eq!(out, b"abcdefghijklm");
        assert!(m.is_none());
        let (out, m) = sniff(&[b"abc"]).await;
        assert_eq!(out, b"abc", "shorter than the magic");
        assert!(m.is_none());
        let manifest = Manifest {
            size: 5000,
            chunk_size: 4096,
            upload_id: [3; 16],
            crc32: 9,
            chunk_crcs: vec![1, 2],
        };
        let b = manifest.encode();
        let (out, m) = sniff(&[&b[..3], &b[3..20], &b[20..]]).await;
        assert!(out.is_empty());
        assert_eq!(m, Some(manifest));
        // The magic, then something that is not a manifest: plain data, all of it.
        let mut fake = MANIFEST_MAGIC.to_vec();
        fake.extend_from_slice(b"just data");
        let (out, m) = sniff(&[&fake]).await;
        assert_eq!(out, fake);
        assert!(m.is_none());
    }
}
