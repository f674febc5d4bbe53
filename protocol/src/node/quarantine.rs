//! A node that was away longer than `remove_retention_secs` must not bring removed values
//! back (`docs/PROTOCOL.md` §15.10, "Quarantine").
//!
//! While a node runs it notes the time in `last_alive` in its data directory (every quarter
//! of the retention, at most every minute). A node that starts and finds that note older
//! than the retention has missed removes that the other nodes no longer remember: any record
//! it holds from before could be one of them. So it starts **quarantined** at the current
//! time T (kept in the file `quarantine` until cleared, so a restart does not end it):
//!
//! - reads (`LOOKUP`, `READ`) answer only from records written at or after T; anything else,
//!   found or not, is `UNAVAILABLE` (replicated reads ask another group);
//! - hand-over sends no record older than T;
//! - repair drops (`Backend::drop_copy`) every record older than T that the peer group lacks
//!   or holds newer, instead of pushing it; the peers' own rounds push what they have;
//! - after two consecutive repair rounds that covered every shared range without a failure
//!   the quarantine ends. A node with no other group to compare with ends it at once (with
//!   a warning): nothing can tell its stale records from live ones.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::versions::now_ns;

const ALIVE_FILE: &str = "last_alive";
const QUARANTINE_FILE: &str = "quarantine";
/// Clean repair rounds in a row that end a quarantine.
const CLEAN_ROUNDS: u32 = 2;

/// The quarantine state of a node (see the module docs).
#[derive(Debug, Default)]
pub struct Quarantine {
    /// Records older than this (Unix ns) are not trusted; 0: not quarantined.
    before_ns: AtomicU64,
    clean_rounds: AtomicU32,
    dir: Option<PathBuf>,
}

impl Quarantine {
    /// A node that keeps no files (tests, single nodes): never quarantined.
    pub fn none() -> Quarantine {
        Quarantine::default()
    }

    /// The state of a node starting on `dir` whose removes are remembered for `retention`:
    /// quarantined if it was quarantined before, or if its `last_alive` note is older than
    /// `retention`.
    pub fn at_start(dir: &Path, retention: Duration) -> io::Result<Quarantine> {
        let q = Quarantine {
            dir: Some(dir.to_path_buf()),
            ..Quarantine::default()
        };
        let now = now_ns();
        let before = match read_ns(&dir.join(QUARANTINE_FILE))? {
            Some(t) => t,
            None => match read_ns(&dir.join(ALIVE_FILE))? {
                Some(alive) if now.saturating_sub(alive) > nanos(retention) => {
                    write_ns(&dir.join(QUARANTINE_FILE), now)?;
                    tracing::warn!(
                        away_secs = now.saturating_sub(alive) / 1_000_000_000,
                        retention_secs = retention.as_secs(),
                        "away longer than the remove retention: records from before now are \
                         quarantined until repair has compared them with the other groups"
                    );
                    now
                }
                _ => 0,
            },
        };
        q.before_ns.store(before, Ordering::Relaxed);
        Ok(q)
    }

    /// Records older than this are not trusted (`None`: not quarantined).
    pub fn before(&self) -> Option<u64> {
        Some(self.before_ns.load(Ordering::Relaxed)).filter(|t| *t != 0)
    }

    /// Whether a record written at `timestamp_ns` is not to be served or handed on.
    pub fn untrusted(&self, timestamp_ns: u64) -> bool {
        self.before().is_some_and(|t| timestamp_ns < t)
    }

    /// Notes that the node is alive now (`last_alive`).
    pub fn mark_alive(&self) -> io::Result<()> {
        match &self.dir {
            Some(dir) => write_ns(&dir.join(ALIVE_FILE), now_ns()),
            None => Ok(()),
        }
    }

    /// How often to [`mark_alive`](Self::mark_alive) for a remove retention of `retention`.
    pub fn mark_every(retention: Duration) -> Duration {
        (retention / 4).clamp(Duration::from_millis(100), Duration::from_secs(60))
    }

    /// A repair round ended; `clean` if it covered every shared range without a failure,
    /// `compared` if there was any other group to compare with.
    pub fn round_done(&self, clean: bool, compared: bool) {
        if self.before().is_none() {
            return;
        }
        if !compared {
            tracing::warn!(
                "quarantine ended with no other group to compare with: records from before \
                 it may include values removed while the node was away"
            );
            self.clear();
            return;
        }
        if !clean {
            self.clean_rounds.store(0, Ordering::Relaxed);
            return;
        }
        if self.clean_rounds.fetch_add(1, Ordering::Relaxed) + 1 >= CLEAN_ROUNDS {
            tracing::info!("quarantine over: repair compared every shared range");
            self.clear();
        }
    }

    fn clear(&self) {
        self.before_ns.store(0, Ordering::Relaxed);
        if let Some(dir) = &self.dir {
            if let Err(e) = std::fs::remove_file(dir.join(QUARANTINE_FILE)) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(error = %e, "removing the quarantine file failed");
                }
            }
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A file holding one u64 (LE); `None` if absent or not 8 bytes (a torn write).
fn read_ns(path: &Path) -> io::Result<Option<u64>> {
    match std::fs::read(path) {
        Ok(b) => Ok(<[u8; 8]>::try_from(b.as_slice())
            .ok()
            .map(u64::from_le_bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes one u64 (LE) to `path` through a temporary file, synced and renamed.
fn write_ns(path: &Path, value: u64) -> io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&value.to_le_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_away_longer_than_the_retention_starts_quarantined_until_two_clean_rounds() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let retention = Duration::from_secs(60);
        let fresh = Quarantine::at_start(dir.path(), retention).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fresh.before(), None, "a first start");
        let long_ago = now_ns() - 120 * 1_000_000_000;
        write_ns(&dir.path().join(ALIVE_FILE), long_ago).unwrap_or_else(|e| panic!("{e}"));
        let q = Quarantine::at_start(dir.path(), retention).unwrap_or_else(|e| panic!("{e}"));
        let t = q.before().unwrap_or_else(|| panic!("not quarantined"));
        assert!(q.untrusted(t - 1) && !q.untrusted(t));
        // A restart keeps it, even once the node marked itself alive.
        q.mark_alive().unwrap_or_else(|e| panic!("{e}"));
        let again = Quarantine::at_start(dir.path(), retention).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.before(), Some(t));
        again.round_done(true, true);
        again.round_done(false, true);
        again.round_done(true, true);
        assert_eq!(
            again.before(),
            Some(t),
            "a failed round starts the count again"
        );
        again.round_done(true, true);
        assert_eq!(again.before(), None);
        let after = Quarantine::at_start(dir.path(), retention).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(after.before(), None, "cleared for good");
    }

    #[test]
    fn a_short_absence_is_no_quarantine() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let q = Quarantine::at_start(dir.path(), Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}"));
        q.mark_alive().unwrap_or_else(|e| panic!("{e}"));
        let q = Quarantine::at_start(dir.path(), Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(q.before(), None);
        assert_eq!(Quarantine::none().before(), None);
    }
}
