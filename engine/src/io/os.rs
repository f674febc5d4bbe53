//! The real device: files in a directory, positional `pread`/`pwrite`, `fdatasync`.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use super::{Device, DeviceFile, DirLock, OpenMode};

/// Extra tries to take a held directory lock, and the pause between them (0.5 s in all).
const LOCK_RETRIES: u32 = 25;
const LOCK_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// A directory on the local file system.
#[derive(Debug, Clone)]
pub struct OsDevice {
    root: PathBuf,
}

impl OsDevice {
    /// The directory at `root`, created if missing.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        Ok(OsDevice { root })
    }

    /// An existing directory at `root`; never creates anything (for read-only tools).
    pub fn existing(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        if !fs::metadata(&root)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                root.display().to_string(),
            ));
        }
        Ok(OsDevice { root })
    }

    /// Opens `name` as a std `File` (shared with the mmap and io_uring devices), with
    /// `O_NOATIME` where the file's owner allows it: a read then leaves the inode alone.
    /// With `relatime` every read asked the clock and the inode whether to update it (3 % of
    /// a point get), and updated it — dirtying the inode — whenever the file had been
    /// written since its last update: every read of the blob being written. Opened without
    /// it when refused (`EPERM`: not the file's owner and no `CAP_FOWNER`).
    pub(super) fn open_file(&self, name: &str, mode: OpenMode) -> io::Result<File> {
        use std::os::unix::fs::OpenOptionsExt;
        let open = |flags: i32| {
            let mut o = OpenOptions::new();
            match mode {
                OpenMode::CreateNew => o.read(true).write(true).create_new(true),
                OpenMode::ReadWrite => o.read(true).write(true),
                OpenMode::ReadOnly => o.read(true),
            };
            o.custom_flags(flags).open(self.root.join(name))
        };
        match open(libc::O_NOATIME) {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(0),
            opened => opened,
        }
    }
}

struct OsFile(File);

impl DeviceFile for OsFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if super::nowait::active() {
            use std::os::fd::AsFd;
            return super::nowait::read_exact_at_nowait(self.0.as_fd(), buf, offset);
        }
        self.0.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    #[allow(unsafe_code)]
    fn map_immutable(&self) -> io::Result<Option<memmap2::Mmap>> {
        if self.0.metadata()?.len() == 0 {
            return Ok(None);
        }
        // SAFETY: callers map only files that never change once written (sorted indexes:
        // written whole, synced and renamed into place before they are opened, then only
        // read until they are unlinked, which leaves a map valid). No one truncates them
        // while the engine holds the data directory's lock, so no byte of the map lies past
        // the end of the file (no SIGBUS), and the bytes are only read.
        unsafe { memmap2::Mmap::map(&self.0) }.map(Some)
    }
}

struct OsLock(#[allow(dead_code)] File);
impl DirLock for OsLock {}

impl Device for OsDevice {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    /// Takes the directory lock, trying again for a moment when it is held: a process that
    /// forks (to run a child) while the engine that held the lock closes keeps the lock's
    /// open file in the child until the child `exec`s, so a reopen right after a close can
    /// find it held for an instant. A lock still held after that is another process's.
    fn lock(&self) -> io::Result<Box<dyn DirLock>> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join("LOCK"))?;
        for attempt in 0..=LOCK_RETRIES {
            match f.try_lock() {
                Ok(()) => return Ok(Box::new(OsLock(f))),
                Err(fs::TryLockError::WouldBlock) if attempt < LOCK_RETRIES => {
                    std::thread::sleep(LOCK_RETRY_PAUSE);
                }
                Err(fs::TryLockError::WouldBlock) => break,
                Err(fs::TryLockError::Error(e)) => return Err(e),
            }
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for e in fs::read_dir(&self.root)? {
            let e = e?;
            if e.file_type()?.is_file() {
                names.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }

    fn open(&self, name: &str, mode: OpenMode) -> io::Result<Arc<dyn DeviceFile>> {
        Ok(Arc::new(OsFile(self.open_file(name, mode)?)))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.root.join(name))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.root.join(from), self.root.join(to))
    }

    fn free_space(&self) -> io::Result<Option<u64>> {
        let st = rustix::fs::statvfs(&self.root).map_err(io::Error::from)?;
        Ok(Some(st.f_bavail.saturating_mul(st.f_frsize)))
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.root)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_a_directory_would_block() {
        let dir = tempfile::tempdir().ok();
        let dev = dir.as_ref().and_then(|d| OsDevice::open(d.path()).ok());
        let dev = dev.as_ref();
        let first = dev.map(|d| d.lock());
        assert!(matches!(first, Some(Ok(_))));
        let second = dev.map(|d| d.lock().map(|_| ()).map_err(|e| e.kind()));
        assert_eq!(second, Some(Err(io::ErrorKind::WouldBlock)));
        drop(first);
        assert!(
            dev.is_some_and(|d| d.lock().is_ok()),
            "lock is released on drop"
        );
    }
}
