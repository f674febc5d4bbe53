//! A device wrapper that fails chosen writes or syncs, to test that the engine reports the
//! failure, stops accepting writes, and loses nothing it acknowledged.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{Device, DeviceFile, DirLock, OpenMode};

/// Which operations fail: the `n`th (1-based, counted across all files) write or sync.
/// A failed write first writes half its bytes, as a torn write would. Only the engine's
/// data files (blobs, index files) are counted and failed: the synced watermark and key
/// journals are advice whose failures are logged, never reported to writers.
#[derive(Debug, Default)]
pub struct FaultPlan {
    pub fail_write_n: Option<u64>,
    pub fail_sync_n: Option<u64>,
    /// The failed write reports a full disk (`ENOSPC`) instead of an IO error.
    pub full_disk: bool,
    writes: AtomicU64,
    syncs: AtomicU64,
}

impl FaultPlan {
    pub fn new(fail_write_n: Option<u64>, fail_sync_n: Option<u64>) -> Arc<Self> {
        Arc::new(FaultPlan {
            fail_write_n,
            fail_sync_n,
            ..FaultPlan::default()
        })
    }

    /// The `n`th write finds the disk full (after writing half its bytes).
    pub fn full_disk_at(n: u64) -> Arc<Self> {
        Arc::new(FaultPlan {
            fail_write_n: Some(n),
            full_disk: true,
            ..FaultPlan::default()
        })
    }

    /// Writes and syncs seen so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.writes.load(Ordering::SeqCst),
            self.syncs.load(Ordering::SeqCst),
        )
    }

    fn hit(counter: &AtomicU64, n: Option<u64>) -> bool {
        let seen = counter.fetch_add(1, Ordering::SeqCst) + 1;
        n == Some(seen)
    }
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected {what} failure"))
}

/// Wraps another device with a [`FaultPlan`].
pub struct FaultDevice<D> {
    inner: D,
    plan: Arc<FaultPlan>,
}

impl<D: Device> FaultDevice<D> {
    pub fn new(inner: D, plan: Arc<FaultPlan>) -> Self {
        FaultDevice { inner, plan }
    }
}

struct FaultFile {
    inner: Arc<dyn DeviceFile>,
    plan: Arc<FaultPlan>,
}

impl DeviceFile for FaultFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if FaultPlan::hit(&self.plan.writes, self.plan.fail_write_n) {
            self.inner.write_all_at(&buf[..buf.len() / 2], offset)?;
            if self.plan.full_disk {
                return Err(io::Error::from(io::ErrorKind::StorageFull));
            }
            return Err(injected("write"));
        }
        self.inner.write_all_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        if FaultPlan::hit(&self.plan.syncs, self.plan.fail_sync_n) {
            return Err(injected("sync"));
        }
        self.inner.sync_data()
    }
}

impl<D: Device> Device for FaultDevice<D> {
    fn describe(&self) -> String {
        format!("faulty {}", self.inner.describe())
    }
    fn lock(&self) -> io::Result<Box<dyn DirLock>> {
        self.inner.lock()
    }
    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }
    fn open(&self, name: &str, mode: OpenMode) -> io::Result<Arc<dyn DeviceFile>> {
        if name == crate::watermark::WATERMARK_FILE || name.ends_with(".journal") {
            return self.inner.open(name, mode);
        }
        Ok(Arc::new(FaultFile {
            inner: self.inner.open(name, mode)?,
            plan: self.plan.clone(),
        }))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.inner.remove(name)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn free_space(&self) -> io::Result<Option<u64>> {
        self.inner.free_space()
    }
    fn sync_dir(&self) -> io::Result<()> {
        if FaultPlan::hit(&self.plan.syncs, self.plan.fail_sync_n) {
            return Err(injected("directory sync"));
        }
        self.inner.sync_dir()
    }
}
