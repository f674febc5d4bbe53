//! One log line per hand-over instead of one per key range: a hand-over starts when this
//! node first has ranges to give away and ends when it has none left; the summary says how
//! many ranges went to which nodes, what was sent, and how long it took. Per-range lines
//! are at `debug`.

use std::collections::BTreeSet;
use std::time::Instant;

use super::mover::MoveCounters;

/// What the mover had sent when the hand-over began.
#[derive(Default, Clone, Copy)]
struct Sent {
    records: u64,
    removes: u64,
    bytes: u64,
    skipped: u64,
}

impl Sent {
    fn of(c: &MoveCounters) -> Sent {
        use std::sync::atomic::Ordering::Relaxed;
        Sent {
            records: c.records_sent.load(Relaxed),
            removes: c.removes_sent.load(Relaxed),
            bytes: c.bytes_sent.load(Relaxed),
            skipped: c.records_skipped.load(Relaxed),
        }
    }
}

/// The hand-over under way, if any.
#[derive(Default)]
pub struct HandoverLog {
    current: Option<(Instant, Sent, u64, BTreeSet<String>)>,
    failures: u64,
}

impl HandoverLog {
    /// A transfer of a range to `to` starts (or starts again after a failure).
    pub fn started(&mut self, to: &str, counters: &MoveCounters) {
        let (_, _, ranges, nodes) = self.current.get_or_insert_with(|| {
            tracing::info!("handing key ranges over to their new owners");
            (Instant::now(), Sent::of(counters), 0, BTreeSet::new())
        });
        *ranges += 1;
        nodes.insert(to.to_string());
    }

    /// A transfer failed (it is retried).
    pub fn failed(&mut self) {
        self.failures += 1;
    }

    /// Transfers left after a change: none ends the hand-over with its summary.
    pub fn left(&mut self, pending: usize, counters: &MoveCounters) {
        if pending > 0 {
            return;
        }
        let Some((started, before, ranges, nodes)) = self.current.take() else {
            return;
        };
        let now = Sent::of(counters);
        tracing::info!(
            ranges,
            to = ?nodes,
            records = now.records - before.records,
            removes = now.removes - before.removes,
            bytes = now.bytes - before.bytes,
            already_there = now.skipped - before.skipped,
            retries = self.failures,
            secs = started.elapsed().as_secs_f64(),
            "hand-over finished"
        );
        self.failures = 0;
    }
}
