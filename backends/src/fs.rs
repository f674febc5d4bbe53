//! `FsBackend`: one file per (key, column) under `<data dir>/objects/<k0>/<k1>/<name>`, where
//! k0 and k1 are the key's first two bytes in hex and the name is `<key hex>` for column 0
//! (the name files had before columns existed) and `<key hex>.<column>` for the others.
//! Each file is a 32-byte header (see [`FILE_HEADER_LEN`]) then the value. A write goes to a temp file in the same directory,
//! is fsynced, then renamed over the old file, so a crash leaves the old or the new value,
//! never a mix; the directory is fsynced for `batch`/`sync` durability (or at `sync()`).

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use ringblob_engine::io::{Device, DirLock, OsDevice};
use ringblob_engine::{Durability, Key, Range, WriteOptions};

use crate::column_name::{column_name, parse_column_name};
use crate::error::{at, Error, Result};
use crate::mem::now_ns;
use crate::meta::{BackendStats, Location, Meta};
use crate::remove_log::{RemoveLog, DEFAULT_REMOVE_RETENTION, REMOVE_LOG_FILE};
use crate::staging::Staging;
use crate::store::{Store, StoreBackend};
use std::time::Duration;

/// `RBFS`, then version 1.
const FILE_MAGIC: [u8; 4] = *b"RBFS";
const FILE_VERSION: u16 = 1;
/// magic[4] version u16 reserved u16 value_len u64 timestamp_ns u64 value_crc u32 header_crc u32.
pub const FILE_HEADER_LEN: usize = 32;

/// A file found in the store, with the (key, column) it holds (`None` for temp files).
type Found = (PathBuf, Option<(Key, u16)>);

/// Files, one per (key, column).
pub struct FsStore {
    objects: PathBuf,
    dirty_dirs: Mutex<HashSet<PathBuf>>,
    tmp_seq: AtomicU64,
    _lock: Box<dyn DirLock>,
}

/// The file-per-key backend.
pub type FsBackend = StoreBackend<FsStore>;

impl FsBackend {
    /// Opens (creating) the store in `dir`, remembering removes for the default retention.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with_retention(dir, DEFAULT_REMOVE_RETENTION)
    }

    /// Opens (creating) the store in `dir`; removes temp files a crash left behind.
    pub fn open_with_retention(dir: &Path, remove_retention: Duration) -> Result<Self> {
        // The engine's directory lock (`LOCK`, flock), with its short retry.
        let device = OsDevice::open(dir).map_err(at("create", dir))?;
        let lock = device.lock().map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock => Error::Locked(dir.display().to_string()),
            _ => Error::io("lock", dir.join("LOCK").display().to_string(), e),
        })?;
        // Only after the lock: a refused second process must not change the directory.
        let objects = dir.join("objects");
        fs::create_dir_all(&objects).map_err(at("create", &objects))?;
        let store = FsStore {
            objects,
            dirty_dirs: Mutex::new(HashSet::new()),
            tmp_seq: AtomicU64::new(0),
            _lock: lock,
        };
        for (path, _) in store.walk(true)? {
            fs::remove_file(&path)
                .map_err(|e| Error::io("remove", path.display().to_string(), e))?;
        }
        let staging = Staging::dir(dir.join("uploads"))?;
        let removes = RemoveLog::open(&dir.join(REMOVE_LOG_FILE), remove_retention)?;
        Ok(StoreBackend::new(store, staging, removes))
    }
}

struct FileHeader {
    value_len: u64,
    timestamp_ns: u64,
    value_crc: u32,
}

impl FileHeader {
    fn encode(&self) -> [u8; FILE_HEADER_LEN] {
        let mut b = [0u8; FILE_HEADER_LEN];
        b[0..4].copy_from_slice(&FILE_MAGIC);
        b[4..6].copy_from_slice(&FILE_VERSION.to_le_bytes());
        b[8..16].copy_from_slice(&self.value_len.to_le_bytes());
        b[16..24].copy_from_slice(&self.timestamp_ns.to_le_bytes());
        b[24..28].copy_from_slice(&self.value_crc.to_le_bytes());
        let crc = crc32fast::hash(&b[0..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8; FILE_HEADER_LEN], file_len: u64, path: &Path) -> Result<Self> {
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or_default());
        let bad = |why: &str| Error::Corrupt(format!("{}: {why}", path.display()));
        if b[0..4] != FILE_MAGIC || u32_at(28) != crc32fast::hash(&b[0..28]) {
            return Err(bad("bad magic or header checksum"));
        }
        if u16::from_le_bytes([b[4], b[5]]) != FILE_VERSION {
            return Err(bad("unsupported file version"));
        }
        let h = FileHeader {
            value_len: u64_at(8),
            timestamp_ns: u64_at(16),
            value_crc: u32_at(24),
        };
        if h.value_len.checked_add(FILE_HEADER_LEN as u64) != Some(file_len) {
            return Err(bad("length does not match the file size"));
        }
        Ok(h)
    }
}

impl FsStore {
    fn dir_of(&self, key: &Key) -> PathBuf {
        self.objects
            .join(format!("{:02x}", key.0[0]))
            .join(format!("{:02x}", key.0[1]))
    }

    fn path_of(&self, key: &Key, column: u16) -> PathBuf {
        self.dir_of(key).join(column_name(key, column))
    }

    /// Opens a column's file and checks its header.
    fn open_value(&self, key: &Key, column: u16) -> Result<(File, FileHeader, PathBuf)> {
        let path = self.path_of(key, column);
        let f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(*key))
            }
            Err(e) => return Err(Error::io("open", path.display().to_string(), e)),
        };
        let len = f.metadata().map_err(at("stat", &path))?.len();
        let mut b = [0u8; FILE_HEADER_LEN];
        f.read_exact_at(&mut b, 0)
            .map_err(|_| Error::Corrupt(format!("{}: truncated header", path.display())))?;
        let h = FileHeader::decode(&b, len, &path)?;
        Ok((f, h, path))
    }

    /// Every value file (or, with `temps`, every leftover temp file) with its path.
    fn walk(&self, temps: bool) -> Result<Vec<Found>> {
        let mut out = Vec::new();
        for d1 in read_dir(&self.objects)? {
            for d2 in read_dir(&d1)? {
                out.extend(files_in(&d2, temps)?);
            }
        }
        Ok(out)
    }

    /// Creates the key directory `objects/k0/k1` and returns the directories it created.
    fn make_dirs(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let mut created = Vec::new();
        if let Some(k0) = dir.parent() {
            if !k0.exists() {
                created.push(k0.to_path_buf());
            }
        }
        if !dir.exists() {
            created.push(dir.to_path_buf());
        }
        fs::create_dir_all(dir).map_err(at("create", dir))?;
        Ok(created)
    }

    fn sync_dir(dir: &Path) -> Result<()> {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("sync dir", dir.display().to_string(), e))
    }

    fn meta_of(&self, key: &Key, column: u16) -> Result<Meta> {
        let (_, h, path) = self.open_value(key, column)?;
        Ok(Meta {
            key: *key,
            column,
            size: h.value_len,
            stored_size: h.value_len + FILE_HEADER_LEN as u64,
            timestamp_ns: h.timestamp_ns,
            checksum: h.value_crc,
            location: Location::File(path),
        })
    }

    /// Adds a column's meta to `out`, unless its file was removed meanwhile.
    fn push_meta(&self, key: &Key, column: u16, out: &mut Vec<Meta>) -> Result<()> {
        match self.meta_of(key, column) {
            Ok(m) => out.push(m),
            Err(Error::NotFound(_)) => {} // removed while we walked
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Removes a column's file (not yet durably).
    fn unlink(&self, key: &Key, column: u16) -> Result<()> {
        let path = self.path_of(key, column);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound(*key)),
            Err(e) => Err(Error::io("remove", path.display().to_string(), e)),
        }
    }

    /// Makes removals from the key's directory durable now, or at the next `sync` for
    /// durability `none`.
    fn removed_from(&self, key: &Key, opts: WriteOptions) -> Result<()> {
        let dir = self.dir_of(key);
        if opts.durability == Some(Durability::None) {
            self.dirty_dirs.lock().insert(dir);
            return Ok(());
        }
        Self::sync_dir(&dir)
    }
}

/// The value files in one directory with the (key, column) each holds (or, with `temps`,
/// the leftover temp files).
fn files_in(dir: &Path, temps: bool) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    for f in read_dir(dir)? {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let is_temp = name.starts_with('.') && name.contains(".tmp");
        match (temps, is_temp) {
            (true, true) => out.push((f, None)),
            (false, false) => {
                if let Some(id) = parse_column_name(&name) {
                    out.push((f, Some(id)));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |e| Error::io("list", dir.display().to_string(), e);
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(io)? {
        out.push(e.map_err(io)?.path());
    }
    Ok(out)
}

impl Store for FsStore {
    fn kind(&self) -> &'static str {
        "fs"
    }

    /// The caller holds the key's lock, so a conditional write's check stays true until its
    /// rename.
    fn put(&self, key: &Key, column: u16, value: &[u8], opts: WriteOptions) -> Result<()> {
        let (timestamp_ns, if_newer) = opts.newer_than_stored(now_ns);
        if if_newer.is_some() {
            let stored = match self.meta_of(key, column) {
                Ok(m) => Some(m.timestamp_ns),
                Err(Error::NotFound(_)) => None,
                Err(e) => return Err(e),
            };
            Error::unless_newer(stored, if_newer)?;
        }
        let dir = self.dir_of(key);
        let new_dirs = self.make_dirs(&dir)?;
        let seq = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(
            ".{}.tmp-{}-{seq}",
            column_name(key, column),
            std::process::id()
        ));
        let header = FileHeader {
            value_len: value.len() as u64,
            timestamp_ns,
            value_crc: crc32fast::hash(value),
        };
        let mut f = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&tmp)
            .map_err(at("create", &tmp))?;
        f.write_all(&header.encode())
            .and_then(|()| f.write_all(value))
            .map_err(at("write", &tmp))?;
        f.sync_data().map_err(at("fdatasync", &tmp))?;
        fs::rename(&tmp, self.path_of(key, column)).map_err(at("rename", &tmp))?;
        // The new file's directory entry, and the entries of any directory just created
        // for it, are durable only once each parent directory is fsynced.
        let mut to_sync = vec![dir];
        to_sync.extend(
            new_dirs
                .iter()
                .filter_map(|d| d.parent().map(Path::to_path_buf)),
        );
        if opts.durability == Some(Durability::None) {
            self.dirty_dirs.lock().extend(to_sync);
            return Ok(());
        }
        to_sync.iter().try_for_each(|d| Self::sync_dir(d))
    }

    fn get(&self, key: &Key, column: u16, range: Range) -> Result<Vec<u8>> {
        let (f, h, path) = self.open_value(key, column)?;
        let (off, len) = range.resolve(h.value_len)?;
        let mut v = vec![0u8; len as usize];
        f.read_exact_at(&mut v, FILE_HEADER_LEN as u64 + off)
            .map_err(|e| Error::io("read", path.display().to_string(), e))?;
        if len == h.value_len && crc32fast::hash(&v) != h.value_crc {
            return Err(Error::Corrupt(format!(
                "{}: value checksum mismatch",
                path.display()
            )));
        }
        Ok(v)
    }

    fn meta(&self, key: &Key, column: u16) -> Result<Meta> {
        self.meta_of(key, column)
    }

    fn delete(&self, key: &Key, column: u16, opts: WriteOptions) -> Result<()> {
        self.unlink(key, column)?;
        self.removed_from(key, opts)
    }

    fn delete_all(&self, key: &Key, opts: WriteOptions) -> Result<()> {
        let mut removed = false;
        for m in self.columns(key)? {
            match self.unlink(key, m.column) {
                // Removed meanwhile by someone else: gone either way.
                Ok(()) | Err(Error::NotFound(_)) => removed = true,
                Err(e) => return Err(e),
            }
        }
        if !removed {
            return Err(Error::NotFound(*key));
        }
        self.removed_from(key, opts)
    }

    fn columns(&self, key: &Key) -> Result<Vec<Meta>> {
        let dir = self.dir_of(key);
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for (_, id) in files_in(&dir, false)? {
            match id.filter(|(k, _)| k == key) {
                Some((k, c)) => self.push_meta(&k, c, &mut out)?,
                None => continue,
            }
        }
        out.sort_unstable_by_key(|m| m.column);
        Ok(out)
    }

    fn scan(&self, from: &Key, to: &Key) -> Result<Vec<Meta>> {
        let mut out = Vec::new();
        for (_, id) in self.walk(false)? {
            let Some((k, c)) = id.filter(|(k, _)| k >= from && k <= to) else {
                continue;
            };
            self.push_meta(&k, c, &mut out)?;
        }
        Ok(out)
    }

    fn stats(&self) -> Result<BackendStats> {
        let mut s = BackendStats {
            kind: "fs".into(),
            ..BackendStats::default()
        };
        for (path, _) in self.walk(false)? {
            let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            s.keys += 1;
            s.bytes_on_disk += len;
            s.live_bytes += len;
        }
        Ok(s)
    }

    fn default_durability(&self) -> Durability {
        Durability::Batch
    }

    fn sync(&self) -> Result<()> {
        let dirs: Vec<PathBuf> = self.dirty_dirs.lock().iter().cloned().collect();
        for d in dirs {
            // Forget a directory only once it is synced: a failure leaves it (and the rest)
            // for the next sync.
            Self::sync_dir(&d)?;
            self.dirty_dirs.lock().remove(&d);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;

    #[test]
    fn column_0_keeps_the_file_name_of_before_columns_and_others_get_a_suffix() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", "", e))?;
        let b = FsBackend::open(dir.path())?;
        let k = Key::from_name(b"", b"photo");
        b.write(&k, b"value", WriteOptions::default())?;
        b.write_column(&k, 2, b"thumb", WriteOptions::default())?;
        let hex = k.to_hex();
        let shard = dir.path().join("objects").join(&hex[0..2]).join(&hex[2..4]);
        let value = std::fs::read(shard.join(&hex)).map_err(at("read", &shard))?;
        assert_eq!(&value[FILE_HEADER_LEN..], b"value");
        let thumb = std::fs::read(shard.join(format!("{hex}.2"))).map_err(at("read", &shard))?;
        assert_eq!(&thumb[FILE_HEADER_LEN..], b"thumb");
        b.remove(&k, WriteOptions::default())?;
        let left = std::fs::read_dir(&shard)
            .map_err(at("list", &shard))?
            .count();
        assert_eq!(left, 0, "removing the key removes every column file");
        Ok(())
    }
}
