//! Standard output for reports: buffered, one line at a time, and quiet about a reader that
//! went away (`blob-inspect list DIR | head` ends the output, not the inspection).

use std::io::{self, BufWriter, Stdout, Write};

use serde::Serialize;

/// Buffered stdout that stops writing, without error, once the pipe is closed.
pub struct Out {
    w: BufWriter<Stdout>,
    closed: bool,
}

impl Default for Out {
    fn default() -> Self {
        Self::new()
    }
}

impl Out {
    pub fn new() -> Self {
        Out {
            w: BufWriter::new(io::stdout()),
            closed: false,
        }
    }

    /// Writes `s` and a newline.
    pub fn line(&mut self, s: &str) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let r = self
            .w
            .write_all(s.as_bytes())
            .and_then(|()| self.w.write_all(b"\n"));
        self.absorb(r)
    }

    /// Writes `v` as one JSON line.
    pub fn json<T: Serialize>(&mut self, v: &T) -> io::Result<()> {
        let s = serde_json::to_string(v).map_err(io::Error::other)?;
        self.line(&s)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let r = self.w.flush();
        self.absorb(r)
    }

    fn absorb(&mut self, r: io::Result<()>) -> io::Result<()> {
        match r {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            r => r,
        }
    }
}
