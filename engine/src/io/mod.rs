//! How bytes reach storage. The engine sees a [`Device`] (a directory of named files) and
//! [`DeviceFile`]s (positional read, write, length, sync). The real ones are [`OsDevice`]
//! (`pread`/`pwrite`), [`MmapDevice`] (reads from memory maps) and [`UringDevice`]
//! (io_uring), chosen by [`IoKind`] through [`open_device`]; tests swap in [`MemDevice`]
//! (with crash images) and [`FaultDevice`] (injected failures).

mod fault;
mod mem;
mod mmap;
pub mod nowait;
mod os;
pub(crate) mod sigbus;
mod uring;

use std::io;
use std::path::Path;
use std::sync::{Arc, Once};

pub use crate::config::IoKind;
pub use fault::{FaultDevice, FaultPlan};
pub use mem::MemDevice;
pub use mmap::MmapDevice;
pub use os::OsDevice;
pub use uring::UringDevice;

/// Opens (creating if needed) the directory `path` as a device doing IO the `kind` way.
/// If the kernel refuses io_uring, `Uring` falls back to `Pread` and logs a warning (once
/// per process).
pub fn open_device(path: &Path, kind: IoKind) -> io::Result<Arc<dyn Device>> {
    Ok(match kind {
        IoKind::Pread => Arc::new(OsDevice::open(path)?),
        IoKind::Mmap => Arc::new(MmapDevice::open(path)?),
        IoKind::Uring => {
            let os = OsDevice::open(path)?;
            match UringDevice::new(os.clone()) {
                Ok(dev) => Arc::new(dev),
                Err(e) => {
                    static WARNED: Once = Once::new();
                    WARNED.call_once(|| {
                        tracing::warn!(error = %e, "io_uring unavailable; using pread/pwrite instead");
                    });
                    Arc::new(os)
                }
            }
        }
    })
}

/// How to open a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create a new file; fails if it exists.
    CreateNew,
    /// Open an existing file for reading and writing.
    ReadWrite,
    /// Open an existing file for reading only.
    ReadOnly,
}

/// One open file. Reads and writes are positional and may run concurrently.
#[allow(clippy::len_without_is_empty)] // a file's length is a size, not a collection's
pub trait DeviceFile: Send + Sync {
    /// Fills `buf` from `offset`; a read past the end is an `UnexpectedEof` error.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Truncates or extends.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes written data durable (fdatasync).
    fn sync_data(&self) -> io::Result<()>;
    /// The whole file mapped read-only, for a file that will never change again (a sealed
    /// blob's sorted index): `None` where the device has no files to map.
    fn map_immutable(&self) -> io::Result<Option<memmap2::Mmap>> {
        Ok(None)
    }
}

/// Held while the engine owns a directory; dropping it releases the directory.
pub trait DirLock: Send + Sync {}

/// A directory of named files.
pub trait Device: Send + Sync {
    /// A name for messages (the path, for a real directory).
    fn describe(&self) -> String;
    /// Takes the directory's exclusive lock, or fails with `WouldBlock` if someone holds it.
    fn lock(&self) -> io::Result<Box<dyn DirLock>>;
    /// Names of the files in the directory.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Opens a file.
    fn open(&self, name: &str, mode: OpenMode) -> io::Result<Arc<dyn DeviceFile>>;
    /// Removes a file.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Atomically renames a file, replacing `to`.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Makes creates, renames and removes durable (fsync of the directory).
    fn sync_dir(&self) -> io::Result<()>;
    /// Bytes free for new data, if the device knows.
    fn free_space(&self) -> io::Result<Option<u64>> {
        Ok(None)
    }
}

/// Reads up to `buf.len()` bytes at `offset`, stopping at the end of the file; returns the count.
pub fn read_up_to(file: &dyn DeviceFile, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let len = file.len()?;
    let n = len.saturating_sub(offset).min(buf.len() as u64) as usize;
    file.read_exact_at(&mut buf[..n], offset)?;
    Ok(n)
}
