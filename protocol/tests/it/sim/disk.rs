//! A node's simulated disk: a [`MemBackend`] behind a switch that makes it full (every
//! write and remove fails as the engine fails on `ENOSPC`: read-only) or flaky (a share of
//! reads and writes fail with an I/O error), as the chaos decides. Faults are drawn from a
//! seeded generator, so a run stays deterministic.

use std::sync::Arc;

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringblob_backends::{
    Backend, BackendStats, DefragSummary, Error, IterPage, IterRequest, MemBackend, Meta, Removal,
    Result,
};
use ringblob_engine::{Durability, Key, Range, WriteOptions};

/// What is wrong with a disk now.
pub struct Faults {
    pub full: bool,
    /// The share of calls that fail with an I/O error.
    pub error_rate: f64,
    rng: StdRng,
    /// Calls failed so far.
    pub failed: u64,
}

/// A switchable fault state, shared by the sim and the disk.
pub type FaultSwitch = Arc<Mutex<Faults>>;

pub struct SimDisk {
    inner: MemBackend,
    faults: FaultSwitch,
}

impl SimDisk {
    pub fn new(seed: u64) -> (SimDisk, FaultSwitch) {
        let faults = Arc::new(Mutex::new(Faults {
            full: false,
            error_rate: 0.0,
            rng: StdRng::seed_from_u64(seed),
            failed: 0,
        }));
        let disk = SimDisk {
            inner: MemBackend::open_memory(),
            faults: faults.clone(),
        };
        (disk, faults)
    }

    fn check(&self, writes: bool) -> Result<()> {
        let mut f = self.faults.lock();
        if writes && f.full {
            f.failed += 1;
            return Err(Error::ReadOnly(
                "no space left on device (simulated)".into(),
            ));
        }
        let rate = f.error_rate;
        if rate > 0.0 && f.rng.gen_bool(rate) {
            f.failed += 1;
            return Err(Error::Io {
                op: "simulated",
                path: "disk".into(),
                source: std::io::Error::other("simulated I/O error"),
            });
        }
        Ok(())
    }
}

impl Backend for SimDisk {
    fn kind(&self) -> &'static str {
        "sim"
    }
    fn write_column(&self, key: &Key, column: u16, value: &[u8], o: WriteOptions) -> Result<u64> {
        self.check(true)?;
        self.inner.write_column(key, column, value, o)
    }
    fn append_column(&self, key: &Key, column: u16, bytes: &[u8], o: WriteOptions) -> Result<u64> {
        self.check(true)?;
        self.inner.append_column(key, column, bytes, o)
    }
    fn write_at_column(
        &self,
        key: &Key,
        column: u16,
        offset: u64,
        bytes: &[u8],
        o: WriteOptions,
    ) -> Result<u64> {
        self.check(true)?;
        self.inner.write_at_column(key, column, offset, bytes, o)
    }
    fn prepare_column(&self, key: &Key, column: u16, reserved: u64) -> Result<()> {
        self.check(true)?;
        self.inner.prepare_column(key, column, reserved)
    }
    fn write_part_column(&self, key: &Key, column: u16, offset: u64, bytes: &[u8]) -> Result<()> {
        self.check(true)?;
        self.inner.write_part_column(key, column, offset, bytes)
    }
    fn commit_column(&self, key: &Key, column: u16, size: u64, o: WriteOptions) -> Result<u64> {
        self.check(true)?;
        self.inner.commit_column(key, column, size, o)
    }
    fn read_column(&self, key: &Key, column: u16, range: Range) -> Result<Vec<u8>> {
        self.check(false)?;
        self.inner.read_column(key, column, range)
    }
    fn lookup_column(&self, key: &Key, column: u16) -> Result<Meta> {
        self.check(false)?;
        self.inner.lookup_column(key, column)
    }
    fn remove_column(&self, key: &Key, column: u16, o: WriteOptions) -> Result<()> {
        self.check(true)?;
        self.inner.remove_column(key, column, o)
    }
    fn remove(&self, key: &Key, o: WriteOptions) -> Result<()> {
        self.check(true)?;
        self.inner.remove(key, o)
    }
    fn drop_copy(&self, key: &Key, column: u16, timestamp_ns: u64) -> Result<bool> {
        self.check(true)?;
        self.inner.drop_copy(key, column, timestamp_ns)
    }
    fn removes_in(&self, from: &Key, to: &Key) -> Result<Vec<Removal>> {
        self.check(false)?;
        self.inner.removes_in(from, to)
    }
    fn columns(&self, key: &Key) -> Result<Vec<Meta>> {
        self.check(false)?;
        self.inner.columns(key)
    }
    fn iterate(&self, req: &IterRequest) -> Result<IterPage> {
        self.check(false)?;
        self.inner.iterate(req)
    }
    fn stats(&self) -> Result<BackendStats> {
        self.inner.stats()
    }
    fn sync(&self) -> Result<()> {
        self.inner.sync()
    }
    fn reclaim_uploads(&self, max_age: std::time::Duration) -> Result<u64> {
        self.inner.reclaim_uploads(max_age)
    }
    fn drop_uploads(&self, of: &dyn Fn(&Key) -> bool) -> Result<u64> {
        self.inner.drop_uploads(of)
    }
    fn default_durability(&self) -> Durability {
        self.inner.default_durability()
    }
    fn defrag(&self) -> Result<DefragSummary> {
        self.inner.defrag()
    }
}
