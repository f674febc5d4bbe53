//! The remove log: when each (key, column) was last removed, remembered for a retention
//! period. Copies between nodes (hand-over, repair: conditional writes) check it, so a copy
//! older than a remove never brings the value back, whatever the backend keeps of its own
//! tombstones; repair reads it to carry removes to groups that missed them.
//!
//! On disk (`removes.log` in the data directory, `docs/FORMAT.md` §16): an 8-byte header,
//! then fixed 48-byte entries appended as removes happen, each with its own CRC. Opening
//! keeps the newest entry per (key, column) still within the retention, skips damaged
//! entries (a torn tail after a crash), and rewrites the file when it holds more dead
//! entries than live ones.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use ringblob_engine::Key;

use crate::error::{at, Result};

/// `b"RBRL"`.
pub const REMOVE_LOG_MAGIC: [u8; 4] = *b"RBRL";
/// Version 2 added the whole-key flag (§16 of `docs/FORMAT.md`); version 1 files are read
/// as they are (their entries never carry it).
pub const REMOVE_LOG_VERSION: u16 = 2;
/// The versions read.
pub const REMOVE_LOG_VERSIONS_READ: [u16; 2] = [1, 2];
/// magic[4], version u16, reserved u16.
pub const REMOVE_LOG_HEADER_LEN: usize = 8;
/// key[32], column u16, flags u8, reserved u8, timestamp_ns u64, crc u32 (CRC-32 of bytes
/// 0..44).
pub const REMOVE_ENTRY_LEN: usize = 48;
/// Entry flag: every column of the key was removed (the entry's column is 0).
pub const REMOVE_WHOLE_KEY: u8 = 1;
/// The log's file name in a backend's data directory.
pub const REMOVE_LOG_FILE: &str = "removes.log";
/// How long removes are remembered unless configured (`remove_retention_secs`): a group
/// that was cut off longer than this can get a removed value back from repair.
pub const DEFAULT_REMOVE_RETENTION: std::time::Duration =
    std::time::Duration::from_secs(2 * 86_400);
/// Removes recorded between two sweeps of expired entries.
const SWEEP_EVERY: u64 = 4096;

/// One remembered remove: of one column, or (`whole_key`) of every column the key had or
/// would get from a copy made before it — a remove of a key this node holds nothing of yet
/// (its values may be on their way from another node) must refuse every column's copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removal {
    pub key: Key,
    /// The column removed; 0 for a whole-key remove.
    pub column: u16,
    pub timestamp_ns: u64,
    /// Every column of the key was removed at `timestamp_ns`.
    pub whole_key: bool,
}

impl Removal {
    /// A remove of one column.
    pub fn of_column(key: Key, column: u16, timestamp_ns: u64) -> Removal {
        Removal {
            key,
            column,
            timestamp_ns,
            whole_key: false,
        }
    }

    /// A remove of every column of `key`.
    pub fn of_key(key: Key, timestamp_ns: u64) -> Removal {
        Removal {
            key,
            column: 0,
            timestamp_ns,
            whole_key: true,
        }
    }

    /// Whether this remove removed `column` of its key.
    pub fn covers(&self, column: u16) -> bool {
        self.whole_key || self.column == column
    }

    pub fn encode(&self) -> [u8; REMOVE_ENTRY_LEN] {
        let mut b = [0u8; REMOVE_ENTRY_LEN];
        b[..32].copy_from_slice(&self.key.0);
        b[32..34].copy_from_slice(&self.column.to_le_bytes());
        if self.whole_key {
            b[34] = REMOVE_WHOLE_KEY;
        }
        b[36..44].copy_from_slice(&self.timestamp_ns.to_le_bytes());
        let crc = crc32fast::hash(&b[..44]);
        b[44..48].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// `None` if the entry fails its CRC, has an unknown flag or reserved byte set, or is a
    /// whole-key remove naming a column.
    pub fn decode(b: &[u8; REMOVE_ENTRY_LEN]) -> Option<Removal> {
        let crc = u32::from_le_bytes([b[44], b[45], b[46], b[47]]);
        if crc != crc32fast::hash(&b[..44]) || b[34] & !REMOVE_WHOLE_KEY != 0 || b[35] != 0 {
            return None;
        }
        let whole_key = b[34] == REMOVE_WHOLE_KEY;
        if whole_key && b[32..34] != [0, 0] {
            return None;
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&b[..32]);
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[36..44]);
        Some(Removal {
            key: Key(key),
            column: u16::from_le_bytes([b[32], b[33]]),
            timestamp_ns: u64::from_le_bytes(ts),
            whole_key,
        })
    }

    /// [`Removal::decode`] for an entry of a file of `version`: version 1 had no flags (byte
    /// 34 was reserved), so a whole-key entry there is damage.
    pub fn decode_in(version: u16, b: &[u8; REMOVE_ENTRY_LEN]) -> Option<Removal> {
        Removal::decode(b).filter(|r| !(r.whole_key && version == 1))
    }
}

/// What a remove log file holds: its valid entries in file order and the number of entries
/// that failed their check. An unknown header is an error (the file is not ours, or from a
/// later version): it is never overwritten.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// The file's version (0 for an empty file).
    pub version: u16,
    pub entries: Vec<Removal>,
    pub damaged: u64,
}

/// Why a remove log file cannot be read at all (damaged entries are skipped, not errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoveLogError {
    #[error("remove log shorter than its header")]
    ShorterThanHeader,
    #[error("remove log: bad magic")]
    BadMagic,
    #[error("remove log: unsupported version {0} (or reserved bytes set)")]
    UnsupportedVersion(u16),
}

/// Decodes a whole remove log file. Bounded: at most one entry per 48 input bytes; a
/// partial entry at the end (a torn append) counts as damaged.
pub fn decode_log(bytes: &[u8]) -> std::result::Result<Decoded, RemoveLogError> {
    if bytes.is_empty() {
        return Ok(Decoded::default());
    }
    let header = bytes
        .get(..REMOVE_LOG_HEADER_LEN)
        .ok_or(RemoveLogError::ShorterThanHeader)?;
    if header[..4] != REMOVE_LOG_MAGIC {
        return Err(RemoveLogError::BadMagic);
    }
    let version = u16::from_le_bytes([header[4], header[5]]);
    if !REMOVE_LOG_VERSIONS_READ.contains(&version) || header[6..8] != [0, 0] {
        return Err(RemoveLogError::UnsupportedVersion(version));
    }
    let body = &bytes[REMOVE_LOG_HEADER_LEN..];
    let mut out = Decoded {
        version,
        entries: Vec::with_capacity(body.len() / REMOVE_ENTRY_LEN),
        damaged: u64::from(!body.len().is_multiple_of(REMOVE_ENTRY_LEN)),
    };
    for chunk in body.chunks_exact(REMOVE_ENTRY_LEN) {
        let mut entry = [0u8; REMOVE_ENTRY_LEN];
        entry.copy_from_slice(chunk);
        match Removal::decode_in(version, &entry) {
            Some(r) => out.entries.push(r),
            None => out.damaged += 1,
        }
    }
    Ok(out)
}

/// A duration in nanoseconds, saturating (a retention of centuries is "forever").
fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn header() -> [u8; REMOVE_LOG_HEADER_LEN] {
    let mut h = [0u8; REMOVE_LOG_HEADER_LEN];
    h[..4].copy_from_slice(&REMOVE_LOG_MAGIC);
    h[4..6].copy_from_slice(&REMOVE_LOG_VERSION.to_le_bytes());
    h
}

struct LogFile {
    path: PathBuf,
    file: File,
    /// Entries appended since the last fsync.
    dirty: bool,
    /// Entries in the file, live or not.
    entries: u64,
}

impl LogFile {
    fn len(&self) -> u64 {
        REMOVE_LOG_HEADER_LEN as u64 + self.entries * REMOVE_ENTRY_LEN as u64
    }

    /// Appends one entry. A failed append is cut back, so the next one stays aligned.
    fn append(&mut self, entry: &[u8; REMOVE_ENTRY_LEN]) -> Result<()> {
        let before = self.len();
        if let Err(e) = self.file.write_all(entry) {
            if let Err(cut) = self.file.set_len(before) {
                tracing::error!(path = %self.path.display(), error = %cut, "remove log: could not cut back a failed append; entries after it are lost at the next open");
            }
            return Err(at("append to", &self.path)(e));
        }
        self.dirty = true;
        self.entries += 1;
        Ok(())
    }
}

/// Where a remove is kept in [`State::newest`]: (key, column), or (key, [`WHOLE`]) for a
/// whole-key remove — after the key's column removes in key order.
type Slot = (Key, u32);
/// The slot number of a whole-key remove (past every column).
const WHOLE: u32 = 1 << 16;

impl Removal {
    fn slot(&self) -> Slot {
        match self.whole_key {
            true => (self.key, WHOLE),
            false => (self.key, u32::from(self.column)),
        }
    }

    fn at_slot(&(key, slot): &Slot, timestamp_ns: u64) -> Removal {
        match u16::try_from(slot) {
            Ok(column) => Removal::of_column(key, column, timestamp_ns),
            Err(_) => Removal::of_key(key, timestamp_ns),
        }
    }
}

struct State {
    newest: BTreeMap<Slot, u64>,
    file: Option<LogFile>,
    retention_ns: u64,
    recorded_since_sweep: u64,
}

/// Removes remembered for `retention`, in memory and (unless in-memory) in a file.
pub struct RemoveLog {
    state: Mutex<State>,
}

impl RemoveLog {
    /// A log kept in memory only (the in-memory backend).
    pub fn memory(retention: std::time::Duration) -> Self {
        RemoveLog {
            state: Mutex::new(State {
                newest: BTreeMap::new(),
                file: None,
                retention_ns: nanos(retention),
                recorded_since_sweep: 0,
            }),
        }
    }

    /// Opens (or creates) the log file at `path`.
    pub fn open(path: &Path, retention: std::time::Duration) -> Result<Self> {
        let log = RemoveLog::memory(retention);
        let decoded = match fs::read(path) {
            Ok(bytes) => decode_log(&bytes)
                .map_err(|why| crate::Error::Corrupt(format!("{}: {why}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Decoded::default(),
            Err(e) => return Err(at("read", path)(e)),
        };
        if decoded.damaged > 0 {
            tracing::warn!(path = %path.display(), damaged = decoded.damaged, "remove log: skipped damaged entries");
        }
        {
            let mut s = log.state.lock();
            let now = crate::mem::now_ns();
            for r in &decoded.entries {
                s.remember(*r, now);
            }
            let kept = s.newest.len() as u64;
            let on_disk = decoded.entries.len() as u64 + decoded.damaged;
            // An older version's file is rewritten before anything is appended to it.
            let older = decoded.version != REMOVE_LOG_VERSION;
            let file = if on_disk > kept || decoded.damaged > 0 || on_disk == 0 || older {
                rewrite(path, &s.newest)?
            } else {
                append_to(path, on_disk)?
            };
            s.file = Some(file);
        }
        Ok(log)
    }

    /// Changes how long removes are remembered (from now on).
    pub fn set_retention(&self, retention: std::time::Duration) {
        self.state.lock().retention_ns = nanos(retention);
    }

    /// When (key, column) was last removed — alone or with the whole key —, if that is
    /// within the retention.
    pub fn removed_at(&self, key: &Key, column: u16) -> Option<u64> {
        let s = self.state.lock();
        let of_column = s.newest.get(&(*key, u32::from(column)));
        let of_key = s.newest.get(&(*key, WHOLE));
        let at = *of_column.into_iter().chain(of_key).max()?;
        (at >= crate::mem::now_ns().saturating_sub(s.retention_ns)).then_some(at)
    }

    /// Remembers a remove (the newest per (key, column) counts). Durable after [`sync`].
    ///
    /// [`sync`]: RemoveLog::sync
    pub fn record(&self, removal: Removal) -> Result<()> {
        let mut s = self.state.lock();
        let now = crate::mem::now_ns();
        if !s.is_news(&removal, now) {
            return Ok(());
        }
        if let Some(f) = s.file.as_mut() {
            f.append(&removal.encode())?;
        }
        s.remember(removal, now);
        s.recorded_since_sweep += 1;
        if s.recorded_since_sweep >= SWEEP_EVERY {
            s.sweep(now)?;
        }
        Ok(())
    }

    /// Makes every recorded remove durable. The `fdatasync` runs outside the lock, so
    /// lookups and other removes go on meanwhile.
    pub fn sync(&self) -> Result<()> {
        let (file, path) = {
            let mut s = self.state.lock();
            let Some(f) = s.file.as_mut().filter(|f| f.dirty) else {
                return Ok(());
            };
            let file = f.file.try_clone().map_err(at("reopen", &f.path))?;
            f.dirty = false;
            (file, f.path.clone())
        };
        let synced = file.sync_data().map_err(at("fdatasync", &path));
        if synced.is_err() {
            if let Some(f) = self.state.lock().file.as_mut() {
                f.dirty = true;
            }
        }
        synced
    }

    /// Removes of keys in `from..=to` within the retention, in key order; a key's column
    /// removes in column order, then its whole-key remove.
    pub fn in_span(&self, from: &Key, to: &Key) -> Vec<Removal> {
        let s = self.state.lock();
        let oldest = crate::mem::now_ns().saturating_sub(s.retention_ns);
        s.newest
            .range((*from, 0)..=(*to, WHOLE))
            .filter(|(_, at)| **at >= oldest)
            .map(|(slot, at)| Removal::at_slot(slot, *at))
            .collect()
    }

    /// Removes remembered (some may have expired since the last sweep).
    pub fn len(&self) -> usize {
        self.state.lock().newest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl State {
    /// Whether `r` is within the retention and newer than what is known of its column.
    fn is_news(&self, r: &Removal, now: u64) -> bool {
        r.timestamp_ns >= now.saturating_sub(self.retention_ns)
            && self
                .newest
                .get(&r.slot())
                .is_none_or(|known| *known < r.timestamp_ns)
    }

    /// Keeps `r` if it is news; true if kept.
    fn remember(&mut self, r: Removal, now: u64) -> bool {
        if !self.is_news(&r, now) {
            return false;
        }
        self.newest.insert(r.slot(), r.timestamp_ns);
        true
    }

    /// Forgets expired removes; rewrites the file when most of it is dead.
    fn sweep(&mut self, now: u64) -> Result<()> {
        self.recorded_since_sweep = 0;
        let oldest = now.saturating_sub(self.retention_ns);
        self.newest.retain(|_, at| *at >= oldest);
        let live = self.newest.len() as u64;
        if let Some(f) = &self.file {
            if f.entries > 2 * live + SWEEP_EVERY {
                let path = f.path.clone();
                self.file = Some(rewrite(&path, &self.newest)?);
            }
        }
        Ok(())
    }
}

/// Writes `newest` as a fresh log (temp file, fsync, rename, directory fsync) and opens it
/// for appending.
fn rewrite(path: &Path, newest: &BTreeMap<Slot, u64>) -> Result<LogFile> {
    let tmp = path.with_extension("log.tmp");
    let mut bytes = Vec::with_capacity(REMOVE_LOG_HEADER_LEN + newest.len() * REMOVE_ENTRY_LEN);
    bytes.extend_from_slice(&header());
    for (slot, at) in newest {
        bytes.extend_from_slice(&Removal::at_slot(slot, *at).encode());
    }
    let mut f = File::create(&tmp).map_err(at("create", &tmp))?;
    f.write_all(&bytes).map_err(at("write", &tmp))?;
    f.sync_all().map_err(at("fsync", &tmp))?;
    fs::rename(&tmp, path).map_err(at("rename", &tmp))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(at("fsync", dir))?;
    }
    append_to(path, newest.len() as u64)
}

fn append_to(path: &Path, entries: u64) -> Result<LogFile> {
    let file = OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(at("open", path))?;
    Ok(LogFile {
        path: path.to_path_buf(),
        file,
        dirty: false,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn removal(i: u8, column: u16, timestamp_ns: u64) -> Removal {
        Removal::of_column(Key([i; 32]), column, timestamp_ns)
    }

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn entries_round_trip_and_any_flipped_bit_is_caught() {
        let r = removal(7, 3, 0x0102_0304_0506_0708);
        let b = r.encode();
        assert_eq!(Removal::decode(&b), Some(r));
        for bit in 0..REMOVE_ENTRY_LEN * 8 {
            let mut c = b;
            c[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(Removal::decode(&c), None, "bit {bit}");
        }
    }

    #[test]
    fn the_newest_remove_wins_survives_reopen_and_torn_tails_are_skipped() -> crate::Result<()> {
        let dir = tempfile::tempdir().map_err(|e| crate::Error::io("tempdir", "", e))?;
        let path = dir.path().join("removes.log");
        let now = crate::mem::now_ns();
        {
            let log = RemoveLog::open(&path, DAY)?;
            log.record(removal(1, 0, now - 10))?;
            log.record(removal(1, 0, now - 20))?; // older: ignored
            log.record(removal(2, 5, now - 5))?;
            log.record(removal(3, 0, now - 2 * DAY.as_nanos() as u64))?; // expired
            log.sync()?;
            assert_eq!(log.removed_at(&Key([1; 32]), 0), Some(now - 10));
            assert_eq!(log.removed_at(&Key([3; 32]), 0), None);
        }
        // A torn append after a crash.
        let mut f = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| crate::Error::io("open", "", e))?;
        f.write_all(&[0xAB; 20])
            .map_err(|e| crate::Error::io("write", "", e))?;
        drop(f);
        let log = RemoveLog::open(&path, DAY)?;
        assert_eq!(log.removed_at(&Key([1; 32]), 0), Some(now - 10));
        assert_eq!(log.removed_at(&Key([2; 32]), 5), Some(now - 5));
        assert_eq!(log.removed_at(&Key([2; 32]), 0), None);
        let span = log.in_span(&Key([0; 32]), &Key([1; 32]));
        assert_eq!(span, vec![removal(1, 0, now - 10)]);
        // The rewrite dropped the damage: the file is whole entries again.
        let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as usize;
        assert_eq!((len - REMOVE_LOG_HEADER_LEN) % REMOVE_ENTRY_LEN, 0);
        Ok(())
    }

    #[test]
    fn a_whole_key_remove_covers_every_column_and_survives_reopen() -> crate::Result<()> {
        let dir = tempfile::tempdir().map_err(|e| crate::Error::io("tempdir", "", e))?;
        let path = dir.path().join("removes.log");
        let now = crate::mem::now_ns();
        let key = Key([4; 32]);
        {
            let log = RemoveLog::open(&path, DAY)?;
            log.record(removal(4, 7, now - 30))?;
            log.record(Removal::of_key(key, now - 20))?;
            log.record(removal(4, 9, now - 10))?;
            log.sync()?;
        }
        let log = RemoveLog::open(&path, DAY)?;
        assert_eq!(
            log.removed_at(&key, 7),
            Some(now - 20),
            "the key's remove is newer"
        );
        assert_eq!(
            log.removed_at(&key, 9),
            Some(now - 10),
            "the column's is newer"
        );
        assert_eq!(log.removed_at(&key, 65534), Some(now - 20), "any column");
        assert_eq!(log.removed_at(&Key([5; 32]), 0), None);
        let span = log.in_span(&key, &key);
        assert_eq!(
            span,
            vec![
                removal(4, 7, now - 30),
                removal(4, 9, now - 10),
                Removal::of_key(key, now - 20)
            ]
        );
        // Encoded: flag byte 34, column 0; a whole-key entry naming a column is damage.
        let b = Removal::of_key(key, 5).encode();
        assert_eq!((b[32], b[33], b[34], b[35]), (0, 0, REMOVE_WHOLE_KEY, 0));
        let mut named = b;
        named[32] = 1;
        let crc = crc32fast::hash(&named[..44]).to_le_bytes();
        named[44..].copy_from_slice(&crc);
        assert_eq!(Removal::decode(&named), None);
        Ok(())
    }

    #[test]
    fn a_version_1_file_is_read_and_rewritten_as_version_2() -> crate::Result<()> {
        let dir = tempfile::tempdir().map_err(|e| crate::Error::io("tempdir", "", e))?;
        let path = dir.path().join("removes.log");
        let now = crate::mem::now_ns();
        let mut v1 = header();
        v1[4..6].copy_from_slice(&1u16.to_le_bytes());
        let mut bytes = v1.to_vec();
        bytes.extend_from_slice(&removal(1, 3, now - 5).encode());
        // A flag in a version 1 file is a reserved byte set: damage.
        bytes.extend_from_slice(&Removal::of_key(Key([2; 32]), now - 5).encode());
        fs::write(&path, &bytes).map_err(|e| crate::Error::io("write", "", e))?;
        let log = RemoveLog::open(&path, DAY)?;
        assert_eq!(log.removed_at(&Key([1; 32]), 3), Some(now - 5));
        assert_eq!(log.removed_at(&Key([2; 32]), 3), None);
        log.record(Removal::of_key(Key([2; 32]), now - 1))?;
        log.sync()?;
        let on_disk = fs::read(&path).map_err(|e| crate::Error::io("read", "", e))?;
        let decoded = decode_log(&on_disk).map_err(|e| crate::Error::Corrupt(e.to_string()))?;
        assert_eq!(decoded.version, REMOVE_LOG_VERSION);
        assert_eq!(decoded.damaged, 0);
        assert_eq!(decoded.entries.len(), 2);
        Ok(())
    }

    #[test]
    fn a_file_that_is_not_a_remove_log_is_refused_and_kept() -> crate::Result<()> {
        let dir = tempfile::tempdir().map_err(|e| crate::Error::io("tempdir", "", e))?;
        let path = dir.path().join("removes.log");
        fs::write(&path, b"something else entirely")
            .map_err(|e| crate::Error::io("write", "", e))?;
        assert!(RemoveLog::open(&path, DAY).is_err());
        assert_eq!(
            fs::read(&path).ok().as_deref(),
            Some(&b"something else entirely"[..])
        );
        Ok(())
    }
}
