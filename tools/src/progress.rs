//! Progress of large transfers on stderr (indicatif): shown only when stderr is a terminal,
//! the transfer is larger than a few MB (or of unknown size), and `--quiet` is not given.

use std::io::IsTerminal;
use std::pin::Pin;
use std::task::{Context, Poll};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::AsyncWrite;

/// Transfers smaller than this show no progress.
pub const MIN_SHOWN: u64 = 4 << 20;

/// A bar for a transfer of `total` bytes (`None`: unknown), or none.
pub fn bar(total: Option<u64>, quiet: bool) -> Option<ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() || total.is_some_and(|t| t < MIN_SHOWN) {
        return None;
    }
    let bar = match total {
        Some(t) => ProgressBar::new(t),
        None => ProgressBar::new_spinner(),
    };
    let template = match total {
        Some(_) => "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        None => "{spinner} {bytes} {bytes_per_sec}",
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    Some(bar)
}

/// A writer that moves a progress bar by the bytes written through it.
pub struct Counted<W> {
    inner: W,
    bar: Option<ProgressBar>,
}

impl<W> Counted<W> {
    pub fn new(inner: W, bar: Option<ProgressBar>) -> Self {
        Counted { inner, bar }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Counted<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let (Poll::Ready(Ok(n)), Some(b)) = (&r, &self.bar) {
            b.inc(*n as u64);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
