//! Streaming uploads in progress: parts land in a staging area (a directory of sparse files,
//! or memory) and become a value only at commit. Staged files survive a restart, so an
//! upload can resume; untouched uploads are reclaimed after a timeout.
//!
//! Uploads are per (key, column). One upload per (key, column) at a time: a PREPARE whose
//! upload was touched within [`UPLOAD_HOLD`] is refused as busy (two clients streaming the
//! same value would otherwise interleave their parts into one value). After that the upload
//! is taken over as it is — the way a client resumes after a crash. Uploads found on disk when
//! the staging area opens belong to nobody (the node restarted) and are taken over at once.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use ringblob_engine::Key;

use crate::column_name::{column_name, parse_column_name};
use crate::error::{at, Error, Result};

/// How long an upload belongs to whoever last touched it.
pub const UPLOAD_HOLD: Duration = Duration::from_secs(30);

/// An upload held in memory: bytes written so far (grown as parts arrive, never allocated up
/// front), the reservation, and when it was last touched.
struct MemUpload {
    data: Vec<u8>,
    reserved: u64,
    touched: Instant,
}

/// What an upload fills: one column of one key.
type Target = (Key, u16);

enum Area {
    /// One file per upload, `<dir>/<key hex>.upload` for column 0 and
    /// `<dir>/<key hex>.<column>.upload` for the others, sized to the reservation (sparse);
    /// and the targets whose uploads were already there when the area opened.
    Dir(PathBuf, std::collections::HashSet<Target>),
    /// In memory (for the in-memory backend: gone with the process, like its values).
    Memory(HashMap<Target, MemUpload>),
}

/// Where uploads are staged.
pub struct Staging {
    area: Mutex<Area>,
}

fn too_large(end: u64, limit: u64) -> Error {
    Error::TooLarge {
        what: "upload part end",
        got: end,
        limit,
    }
}

fn busy(key: &Key, column: u16) -> Error {
    Error::Busy(format!(
        "an upload of key {key} column {column} is in progress (touched less than {}s ago)",
        UPLOAD_HOLD.as_secs()
    ))
}

impl Staging {
    /// A staging directory, created if missing.
    pub fn dir(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        fs::create_dir_all(&path).map_err(at("create", &path))?;
        let orphans = upload_files(&path)?
            .iter()
            .filter_map(|(p, _)| {
                p.file_stem()
                    .and_then(|s| parse_column_name(&s.to_string_lossy()))
            })
            .collect();
        Ok(Staging {
            area: Mutex::new(Area::Dir(path, orphans)),
        })
    }

    pub fn memory() -> Self {
        Staging {
            area: Mutex::new(Area::Memory(HashMap::new())),
        }
    }

    fn file_path(dir: &Path, key: &Key, column: u16) -> PathBuf {
        dir.join(format!("{}.upload", column_name(key, column)))
    }

    fn open(dir: &Path, key: &Key, column: u16) -> Result<(File, PathBuf)> {
        let p = Self::file_path(dir, key, column);
        match OpenOptions::new().read(true).write(true).open(&p) {
            Ok(f) => Ok((f, p)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NoUpload(*key)),
            Err(e) => Err(Error::io("open", p.display().to_string(), e)),
        }
    }

    /// Starts an upload, or takes over one nobody touched for [`UPLOAD_HOLD`] (resume),
    /// growing its reservation if needed.
    pub fn prepare(&self, key: &Key, column: u16, reserved: u64) -> Result<()> {
        match &mut *self.area.lock() {
            Area::Dir(dir, orphans) => {
                let orphan = orphans.remove(&(*key, column));
                prepare_file(dir, key, column, reserved, orphan)
            }
            Area::Memory(m) => {
                if let Some(u) = m.get_mut(&(*key, column)) {
                    if u.touched.elapsed() < UPLOAD_HOLD {
                        return Err(busy(key, column));
                    }
                    u.reserved = u.reserved.max(reserved);
                    u.touched = Instant::now();
                    return Ok(());
                }
                m.insert(
                    (*key, column),
                    MemUpload {
                        data: Vec::new(),
                        reserved,
                        touched: Instant::now(),
                    },
                );
                Ok(())
            }
        }
    }

    /// Writes a part; it must fit in the reservation. Parts are durable when this returns.
    pub fn write_part(&self, key: &Key, column: u16, offset: u64, bytes: &[u8]) -> Result<()> {
        let end = offset.saturating_add(bytes.len() as u64);
        match &mut *self.area.lock() {
            Area::Dir(dir, _) => {
                let (f, p) = Self::open(dir, key, column)?;
                let reserved = f.metadata().map_err(at("stat", &p))?.len();
                if end > reserved {
                    return Err(too_large(end, reserved));
                }
                f.write_all_at(bytes, offset).map_err(at("write", &p))?;
                f.sync_data().map_err(at("fdatasync", &p))
            }
            Area::Memory(m) => {
                let u = m.get_mut(&(*key, column)).ok_or(Error::NoUpload(*key))?;
                if end > u.reserved {
                    return Err(too_large(end, u.reserved));
                }
                if (u.data.len() as u64) < end {
                    u.data.resize(end as usize, 0);
                }
                u.data[offset as usize..end as usize].copy_from_slice(bytes);
                u.touched = Instant::now();
                Ok(())
            }
        }
    }

    /// The first `final_size` bytes of the upload (which stays until [`finish`](Self::finish)).
    pub fn take(&self, key: &Key, column: u16, final_size: u64) -> Result<Vec<u8>> {
        match &*self.area.lock() {
            Area::Dir(dir, _) => {
                let (f, p) = Self::open(dir, key, column)?;
                let reserved = f.metadata().map_err(at("stat", &p))?.len();
                if final_size > reserved {
                    return Err(too_large(final_size, reserved));
                }
                let mut v = vec![0u8; final_size as usize];
                f.read_exact_at(&mut v, 0).map_err(at("read", &p))?;
                Ok(v)
            }
            Area::Memory(m) => {
                let u = m.get(&(*key, column)).ok_or(Error::NoUpload(*key))?;
                if final_size > u.reserved {
                    return Err(too_large(final_size, u.reserved));
                }
                let mut v = u
                    .data
                    .get(..(final_size as usize).min(u.data.len()))
                    .unwrap_or(&[])
                    .to_vec();
                v.resize(final_size as usize, 0);
                Ok(v)
            }
        }
    }

    /// A reader of the first `final_size` bytes of the upload, for committing it without
    /// holding it whole (a staged file is read as it is; an in-memory upload is copied).
    pub fn reader(
        &self,
        key: &Key,
        column: u16,
        final_size: u64,
    ) -> Result<Box<dyn std::io::Read + Send>> {
        let dir = match &*self.area.lock() {
            Area::Dir(dir, _) => Some(dir.clone()),
            Area::Memory(_) => None,
        };
        let Some(dir) = dir else {
            let v = self.take(key, column, final_size)?;
            return Ok(Box::new(std::io::Cursor::new(v)));
        };
        let (f, p) = Self::open(&dir, key, column)?;
        let reserved = f.metadata().map_err(at("stat", &p))?.len();
        if final_size > reserved {
            return Err(too_large(final_size, reserved));
        }
        Ok(Box::new(std::io::Read::take(f, final_size)))
    }

    /// Drops a committed upload.
    pub fn finish(&self, key: &Key, column: u16) -> Result<()> {
        match &mut *self.area.lock() {
            Area::Dir(dir, _) => {
                let p = Self::file_path(dir, key, column);
                fs::remove_file(&p).map_err(at("remove", &p))
            }
            Area::Memory(m) => {
                m.remove(&(*key, column));
                Ok(())
            }
        }
    }

    /// Uploads in progress.
    pub fn count(&self) -> Result<u64> {
        match &*self.area.lock() {
            Area::Dir(dir, _) => Ok(upload_files(dir)?.len() as u64),
            Area::Memory(m) => Ok(m.len() as u64),
        }
    }

    /// Removes the uploads of the keys `of` selects, touched or not; returns how many. A node
    /// drops them when it takes a key range over: an upload it holds there was prepared
    /// while it last owned the range, and a part sent since the range came back must never
    /// land in it (`docs/PROTOCOL.md` §7.4).
    pub fn drop_where(&self, of: &dyn Fn(&Key) -> bool) -> Result<u64> {
        match &mut *self.area.lock() {
            Area::Dir(dir, orphans) => {
                let mut n = 0;
                for (p, _) in upload_files(dir)? {
                    let target = p
                        .file_stem()
                        .and_then(|s| parse_column_name(&s.to_string_lossy()));
                    let Some((key, column)) = target.filter(|(k, _)| of(k)) else {
                        continue;
                    };
                    fs::remove_file(&p).map_err(at("remove", &p))?;
                    orphans.remove(&(key, column));
                    n += 1;
                }
                Ok(n)
            }
            Area::Memory(m) => {
                let before = m.len();
                m.retain(|(k, _), _| !of(k));
                Ok((before - m.len()) as u64)
            }
        }
    }

    /// Removes uploads untouched for longer than `max_age`.
    pub fn reclaim(&self, max_age: Duration) -> Result<u64> {
        match &mut *self.area.lock() {
            Area::Dir(dir, _) => {
                let mut n = 0;
                for (p, modified) in upload_files(dir)? {
                    if SystemTime::now()
                        .duration_since(modified)
                        .unwrap_or_default()
                        > max_age
                    {
                        fs::remove_file(&p).map_err(at("remove", &p))?;
                        n += 1;
                    }
                }
                Ok(n)
            }
            Area::Memory(m) => {
                let before = m.len();
                m.retain(|_, u| u.touched.elapsed() <= max_age);
                Ok((before - m.len()) as u64)
            }
        }
    }
}

/// Creates (or takes over) a staging file sized to `reserved`; durable when it returns.
fn prepare_file(dir: &Path, key: &Key, column: u16, reserved: u64, orphan: bool) -> Result<()> {
    let p = Staging::file_path(dir, key, column);
    if let (false, Ok(meta)) = (orphan, fs::metadata(&p)) {
        let age = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok());
        if age.is_some_and(|a| a < UPLOAD_HOLD) {
            return Err(busy(key, column));
        }
    }
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&p)
        .map_err(at("create", &p))?;
    let len = f.metadata().map_err(at("stat", &p))?.len();
    if len < reserved {
        f.set_len(reserved).map_err(at("reserve", &p))?;
    }
    // Touch it: the hold starts now, also for a taken-over upload.
    f.set_modified(SystemTime::now()).map_err(at("touch", &p))?;
    f.sync_all().map_err(at("fsync", &p))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(at("sync dir for", &p))
}

fn upload_files(dir: &Path) -> Result<Vec<(PathBuf, SystemTime)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(at("list", dir))? {
        let entry = entry.map_err(at("list", dir))?;
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "upload") {
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .map_err(at("stat", &p))?;
            out.push((p, modified));
        }
    }
    Ok(out)
}
