//! A progress bar on stderr for long runs; hidden when stderr is not a terminal, so scripts
//! and pipes see nothing of it.

use std::cell::Cell;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Updates closer together than this many bytes are skipped (drawing is rate-limited
/// anyway; this keeps the per-record cost to a compare).
const STEP_BYTES: u64 = 1 << 20;

/// Bytes done out of a known total.
pub struct Progress {
    bar: ProgressBar,
    last: Cell<u64>,
}

impl Progress {
    /// A bar for `total_bytes`, drawn only when `wanted` and stderr is a terminal.
    pub fn new(total_bytes: u64, wanted: bool) -> Self {
        let bar = if wanted && std::io::stderr().is_terminal() {
            let style = ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr())
                .with_style(style)
        } else {
            ProgressBar::hidden()
        };
        Progress {
            bar,
            last: Cell::new(0),
        }
    }

    /// A bar that never draws.
    pub fn hidden() -> Self {
        Self::new(0, false)
    }

    /// `pos` bytes are done.
    pub fn set(&self, pos: u64) {
        if pos.saturating_sub(self.last.get()) >= STEP_BYTES {
            self.last.set(pos);
            self.bar.set_position(pos);
        }
    }

    /// Names what is being read now.
    pub fn file(&self, name: &str) {
        self.bar.set_message(name.to_string());
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
