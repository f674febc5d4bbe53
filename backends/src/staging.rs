//! Streaming uploads in progress: parts land in a staging area (a directory of sparse files,
//! or memory) and become a value only at commit. Staged files survive a restart, so an
//! upload can resume; untouched uploads are reclaimed after a timeout.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use ringblob_engine::Key;

use crate::error::{at, Error, Result};

/// Where uploads are staged.
pub enum Staging {
    /// One file per upload, `<dir>/<key hex>.upload`, sized to the reservation.
    Dir(PathBuf),
    /// In memory (for the in-memory backend: gone with the process, like its values).
    Memory(Mutex<HashMap<Key, (Vec<u8>, Instant)>>),
}

fn too_large(end: u64, limit: u64) -> Error {
    Error::TooLarge {
        what: "upload part end",
        got: end,
        limit,
    }
}

impl Staging {
    /// A staging directory, created if missing.
    pub fn dir(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        fs::create_dir_all(&path)
            .map_err(|e| Error::io("create", path.display().to_string(), e))?;
        Ok(Staging::Dir(path))
    }

    pub fn memory() -> Self {
        Staging::Memory(Mutex::new(HashMap::new()))
    }

    fn file_path(dir: &Path, key: &Key) -> PathBuf {
        dir.join(format!("{}.upload", key.to_hex()))
    }

    fn open(dir: &Path, key: &Key) -> Result<(File, PathBuf)> {
        let p = Self::file_path(dir, key);
        match OpenOptions::new().read(true).write(true).open(&p) {
            Ok(f) => Ok((f, p)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NoUpload(*key)),
            Err(e) => Err(Error::io("open", p.display().to_string(), e)),
        }
    }

    /// Starts an upload, or keeps an existing one (resume) if its reservation is the same or larger.
    pub fn prepare(&self, key: &Key, reserved: u64) -> Result<()> {
        match self {
            Staging::Dir(dir) => {
                let p = Self::file_path(dir, key);
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
                f.sync_all().map_err(at("fsync", &p))?;
                File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(at("sync dir for", &p))
            }
            Staging::Memory(m) => {
                let mut m = m.lock();
                let e = m
                    .entry(*key)
                    .or_insert_with(|| (Vec::new(), Instant::now()));
                if (e.0.len() as u64) < reserved {
                    e.0.resize(reserved as usize, 0);
                }
                e.1 = Instant::now();
                Ok(())
            }
        }
    }

    /// Writes a part; it must fit in the reservation. Parts are durable when this returns.
    pub fn write_part(&self, key: &Key, offset: u64, bytes: &[u8]) -> Result<()> {
        let end = offset.saturating_add(bytes.len() as u64);
        match self {
            Staging::Dir(dir) => {
                let (f, p) = Self::open(dir, key)?;
                let reserved = f.metadata().map_err(at("stat", &p))?.len();
                if end > reserved {
                    return Err(too_large(end, reserved));
                }
                f.write_all_at(bytes, offset).map_err(at("write", &p))?;
                f.sync_data().map_err(at("fdatasync", &p))
            }
            Staging::Memory(m) => {
                let mut m = m.lock();
                let (buf, touched) = m.get_mut(key).ok_or(Error::NoUpload(*key))?;
                if end > buf.len() as u64 {
                    return Err(too_large(end, buf.len() as u64));
                }
                buf[offset as usize..end as usize].copy_from_slice(bytes);
                *touched = Instant::now();
                Ok(())
            }
        }
    }

    /// The first `final_size` bytes of the upload (which stays until [`finish`](Self::finish)).
    pub fn take(&self, key: &Key, final_size: u64) -> Result<Vec<u8>> {
        match self {
            Staging::Dir(dir) => {
                let (f, p) = Self::open(dir, key)?;
                let reserved = f.metadata().map_err(at("stat", &p))?.len();
                if final_size > reserved {
                    return Err(too_large(final_size, reserved));
                }
                let mut v = vec![0u8; final_size as usize];
                f.read_exact_at(&mut v, 0).map_err(at("read", &p))?;
                Ok(v)
            }
            Staging::Memory(m) => {
                let m = m.lock();
                let (buf, _) = m.get(key).ok_or(Error::NoUpload(*key))?;
                buf.get(..final_size as usize)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| too_large(final_size, buf.len() as u64))
            }
        }
    }

    /// Drops a committed upload.
    pub fn finish(&self, key: &Key) -> Result<()> {
        match self {
            Staging::Dir(dir) => {
                let p = Self::file_path(dir, key);
                fs::remove_file(&p).map_err(|e| Error::io("remove", p.display().to_string(), e))
            }
            Staging::Memory(m) => {
                m.lock().remove(key);
                Ok(())
            }
        }
    }

    /// Uploads in progress.
    pub fn count(&self) -> Result<u64> {
        match self {
            Staging::Dir(dir) => Ok(upload_files(dir)?.len() as u64),
            Staging::Memory(m) => Ok(m.lock().len() as u64),
        }
    }

    /// Removes uploads untouched for longer than `max_age`.
    pub fn reclaim(&self, max_age: Duration) -> Result<u64> {
        match self {
            Staging::Dir(dir) => {
                let mut n = 0;
                for (p, modified) in upload_files(dir)? {
                    if SystemTime::now()
                        .duration_since(modified)
                        .unwrap_or_default()
                        > max_age
                    {
                        fs::remove_file(&p)
                            .map_err(|e| Error::io("remove", p.display().to_string(), e))?;
                        n += 1;
                    }
                }
                Ok(n)
            }
            Staging::Memory(m) => {
                let mut m = m.lock();
                let before = m.len();
                m.retain(|_, (_, t)| t.elapsed() <= max_age);
                Ok((before - m.len()) as u64)
            }
        }
    }
}

fn upload_files(dir: &Path) -> Result<Vec<(PathBuf, SystemTime)>> {
    let io = |e| Error::io("list", dir.display().to_string(), e);
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "upload") {
            let modified = entry.metadata().and_then(|m| m.modified()).map_err(io)?;
            out.push((p, modified));
        }
    }
    Ok(out)
}
