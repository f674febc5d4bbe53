//! A device whose file reads are served from a read-only memory map (`memmap2`), falling back
//! to `pread` past the mapped length; writes, syncs and directory operations are
//! [`OsDevice`]'s.
//!
//! A file's map is created lazily, exactly as long as the file is at that moment, and
//! recreated when a read falls past it (the active blob grows by appends). Every handle this
//! device opens on one inode shares that inode's map, so `set_len` through any handle drops
//! the map before the file shrinks.
//!
//! # Why the maps are sound
//! Touching a mapped page past the end of its file raises `SIGBUS`. The map never covers more
//! than the file's length when it was made, and a file only gets shorter by
//! [`DeviceFile::set_len`], which takes the map's write lock and unmaps first. That holds
//! because the data directory is locked by this process, blob files are append-only, and other
//! processes (`blob-inspect`) only read. Unlinking or renaming a mapped file is harmless. A
//! page the kernel cannot fill all the same (a read error on the disk, or a file cut short
//! by hand) is reported as `EIO` rather than ending the process (`sigbus`).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use memmap2::{Mmap, MmapOptions};
use parking_lot::{Mutex, RwLock};

use super::{Device, DeviceFile, DirLock, OpenMode, OsDevice};

/// One inode's map, shared by every handle the device opened on it.
#[derive(Default)]
struct MapState {
    /// `None` until the first read, and after `set_len`; never longer than the file.
    map: RwLock<Option<Mmap>>,
}

/// Maps of the open inodes, by (device, inode) number.
type MapTable = HashMap<(u64, u64), Weak<MapState>>;

/// A directory on the local file system, read through memory maps.
#[derive(Clone)]
pub struct MmapDevice {
    os: OsDevice,
    maps: Arc<Mutex<MapTable>>,
}

impl MmapDevice {
    /// The directory at `root`, created if missing.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        Ok(MmapDevice {
            os: OsDevice::open(root)?,
            maps: Arc::default(),
        })
    }

    /// The map state of `file`'s inode, shared with other handles on it.
    fn state_for(&self, file: &File) -> io::Result<Arc<MapState>> {
        let meta = file.metadata()?;
        let id = (meta.dev(), meta.ino());
        let mut maps = self.maps.lock();
        maps.retain(|_, w| w.strong_count() > 0);
        if let Some(state) = maps.get(&id).and_then(Weak::upgrade) {
            return Ok(state);
        }
        let state = Arc::new(MapState::default());
        maps.insert(id, Arc::downgrade(&state));
        Ok(state)
    }
}

/// Maps the first `len` bytes of `file` read-only (`len` > 0).
#[allow(unsafe_code)]
fn map_file(file: &File, len: usize) -> io::Result<Mmap> {
    // SAFETY: the map covers exactly `len` bytes, the file's length measured by our caller
    // while it holds the map's write lock. The file cannot get shorter while the map lives:
    // the data directory is locked by this process, blob files are append-only, truncation
    // only goes through `set_len`, which takes the same lock and drops the map first, and
    // other processes (blob-inspect) only read. So no byte of the map ever lies past the end
    // of the file (no SIGBUS), and the `&[u8]` we hand out is only ever copied from.
    unsafe { MmapOptions::new().len(len).map(file) }
}

struct MmapFile {
    file: File,
    state: Arc<MapState>,
}

impl MmapFile {
    /// Copies `buf.len()` bytes at `offset` from the map; `false` if the map does not hold
    /// them all. A page the kernel cannot fill (a disk read error, or the file cut short by
    /// another process) is `EIO` (`sigbus`), and the map, which then holds a zero page
    /// there, is dropped: later reads map the file as it is then.
    fn copy_from_map(&self, buf: &mut [u8], offset: u64) -> io::Result<bool> {
        let copied = {
            let map = self.state.map.read();
            let Some(map) = map.as_ref() else {
                return Ok(false);
            };
            let Ok(start) = usize::try_from(offset) else {
                return Ok(false);
            };
            match start
                .checked_add(buf.len())
                .and_then(|end| map.get(start..end))
            {
                Some(src) => super::sigbus::copy(buf, src),
                None => return Ok(false),
            }
        };
        match copied {
            Ok(()) => Ok(true),
            Err(e) => {
                *self.state.map.write() = None;
                Err(e)
            }
        }
    }

    /// Remaps to the file's current length if the file grew past the map.
    fn extend_map(&self) -> io::Result<()> {
        let mut map = self.state.map.write();
        let len = self.file.metadata()?.len();
        let len = usize::try_from(len).map_err(|_| io::Error::other("file too large to map"))?;
        if len == 0 || map.as_ref().is_some_and(|m| m.len() >= len) {
            return Ok(());
        }
        // Unmap first so the old and the new map never both take address space.
        *map = None;
        *map = Some(map_file(&self.file, len)?);
        Ok(())
    }
}

impl DeviceFile for MmapFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if super::nowait::active() {
            // A page fault on the map cannot be refused (it waits for the disk): read with
            // `RWF_NOWAIT` instead, which refuses only what is not in the page cache.
            return super::nowait::read_exact_at_nowait(self.file.as_fd(), buf, offset);
        }
        if self.copy_from_map(buf, offset)? {
            return Ok(());
        }
        self.extend_map()?;
        if self.copy_from_map(buf, offset)? {
            return Ok(());
        }
        // Past the end (an `UnexpectedEof`), or an empty buffer: `pread` says which.
        self.file.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        // Holding the write lock, no reader is inside the map while the file shrinks.
        let mut map = self.state.map.write();
        *map = None;
        self.file.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

impl Device for MmapDevice {
    fn describe(&self) -> String {
        self.os.describe()
    }
    fn lock(&self) -> io::Result<Box<dyn DirLock>> {
        self.os.lock()
    }
    fn list(&self) -> io::Result<Vec<String>> {
        self.os.list()
    }
    fn open(&self, name: &str, mode: OpenMode) -> io::Result<Arc<dyn DeviceFile>> {
        let file = self.os.open_file(name, mode)?;
        let state = self.state_for(&file)?;
        Ok(Arc::new(MmapFile { file, state }))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.os.remove(name)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.os.rename(from, to)
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.os.sync_dir()
    }

    fn free_space(&self) -> io::Result<Option<u64>> {
        self.os.free_space()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(f: &dyn DeviceFile, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; len];
        f.read_exact_at(&mut buf, offset).map(|()| buf)
    }

    #[test]
    fn map_follows_growth_and_truncation_across_handles() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let dev = MmapDevice::open(dir.path())?;
        let a = dev.open("f", OpenMode::CreateNew)?;
        let b = dev.open("f", OpenMode::ReadOnly)?;
        a.write_all_at(&[7; 5000], 0)?;
        assert_eq!(read(b.as_ref(), 4000, 1000)?, vec![7; 1000], "first map");
        a.write_all_at(&[9; 3000], 5000)?;
        assert_eq!(read(b.as_ref(), 4999, 2)?, vec![7, 9], "map extended");
        // Truncating through `a` must drop the map `b` made, or `b` would fault (SIGBUS).
        a.set_len(10)?;
        let past = read(b.as_ref(), 4096, 10).map_err(|e| e.kind());
        assert_eq!(past, Err(io::ErrorKind::UnexpectedEof));
        assert_eq!(read(b.as_ref(), 0, 10)?, vec![7; 10]);
        assert_eq!(dev.maps.lock().len(), 1, "one shared map state per inode");
        Ok(())
    }

    #[test]
    fn empty_file_is_never_mapped() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let dev = MmapDevice::open(dir.path())?;
        let f = dev.open("e", OpenMode::CreateNew)?;
        assert_eq!(read(f.as_ref(), 0, 0)?, Vec::<u8>::new());
        let eof = read(f.as_ref(), 0, 1).map_err(|e| e.kind());
        assert_eq!(eof, Err(io::ErrorKind::UnexpectedEof));
        Ok(())
    }

    /// Serving without waiting, a mapped file is read with `RWF_NOWAIT` (cached bytes
    /// served, others refused) and never through its map, whose page faults would wait.
    #[test]
    fn without_waiting_reads_skip_the_map() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let dev = MmapDevice::open(dir.path())?;
        let f = dev.open("n", OpenMode::CreateNew)?;
        f.write_all_at(b"hello, map", 0)?;
        let (got, refused) = super::super::nowait::without_waiting(|| read(f.as_ref(), 7, 3));
        match got {
            // Just written: in the page cache.
            Ok(bytes) => {
                assert!(!refused);
                assert_eq!(bytes, b"map");
            }
            // A file system without RWF_NOWAIT refuses: never wrong bytes.
            Err(e) => {
                assert!(refused);
                assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
            }
        }
        let state = dev.state_for(&std::fs::File::open(dir.path().join("n"))?)?;
        assert!(state.map.read().is_none(), "no map made without waiting");
        assert_eq!(read(f.as_ref(), 7, 3)?, b"map", "waiting: through the map");
        assert!(state.map.read().is_some());
        Ok(())
    }

    /// A file cut short behind the map (by another process, not through the device): the
    /// read of a page past its new end is `EIO`, not the end of the process, and later
    /// reads see the file as it is.
    #[test]
    fn a_page_cut_from_under_the_map_is_an_error_not_a_crash() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let dev = MmapDevice::open(dir.path())?;
        let f = dev.open("cut", OpenMode::CreateNew)?;
        f.write_all_at(&[5; 3 * 4096], 0)?;
        assert_eq!(
            read(f.as_ref(), 8192, 10)?,
            vec![5; 10],
            "mapped, three pages"
        );
        let other = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("cut"))?;
        other.set_len(4096)?;
        let cut = read(f.as_ref(), 8192, 10).map_err(|e| e.raw_os_error());
        assert_eq!(cut, Err(Some(libc::EIO)));
        assert_eq!(read(f.as_ref(), 0, 10)?, vec![5; 10], "mapped again");
        let past = read(f.as_ref(), 8192, 10).map_err(|e| e.kind());
        assert_eq!(past, Err(io::ErrorKind::UnexpectedEof));
        Ok(())
    }
}
