//! `MemBackend`: values in a hash map. Nothing survives the process; calls never block.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;
use ringblob_engine::{Key, Range, WriteOptions};

use crate::backend::{Store, StoreBackend};
use crate::error::{Error, Result};
use crate::meta::{BackendStats, Location, Meta};
use crate::staging::Staging;

struct Entry {
    value: Arc<Vec<u8>>,
    timestamp_ns: u64,
    checksum: u32,
}

/// The in-memory store.
#[derive(Default)]
pub struct MemStore {
    map: RwLock<HashMap<Key, Entry>>,
    bytes: AtomicU64,
}

/// The in-memory backend.
pub type MemBackend = StoreBackend<MemStore>;

impl MemBackend {
    pub fn open_memory() -> Self {
        StoreBackend::new(MemStore::default(), Staging::memory())
    }
}

pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn meta(key: &Key, e: &Entry) -> Meta {
    Meta {
        key: *key,
        size: e.value.len() as u64,
        stored_size: e.value.len() as u64,
        timestamp_ns: e.timestamp_ns,
        checksum: e.checksum,
        location: Location::Memory,
    }
}

impl Store for MemStore {
    fn kind(&self) -> &'static str {
        "mem"
    }

    fn put(&self, key: &Key, value: &[u8], _opts: WriteOptions) -> Result<()> {
        let entry = Entry {
            value: Arc::new(value.to_vec()),
            timestamp_ns: now_ns(),
            checksum: crc32fast::hash(value),
        };
        let old = self.map.write().insert(*key, entry);
        self.bytes.fetch_add(value.len() as u64, Ordering::Relaxed);
        if let Some(o) = old {
            self.bytes
                .fetch_sub(o.value.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    fn get(&self, key: &Key, range: Range) -> Result<Vec<u8>> {
        let value = self
            .map
            .read()
            .get(key)
            .map(|e| e.value.clone())
            .ok_or(Error::NotFound(*key))?;
        let (off, len) = range.resolve(value.len() as u64)?;
        Ok(value[off as usize..(off + len) as usize].to_vec())
    }

    fn meta(&self, key: &Key) -> Result<Meta> {
        self.map
            .read()
            .get(key)
            .map(|e| meta(key, e))
            .ok_or(Error::NotFound(*key))
    }

    fn delete(&self, key: &Key, _opts: WriteOptions) -> Result<()> {
        let old = self.map.write().remove(key).ok_or(Error::NotFound(*key))?;
        self.bytes
            .fetch_sub(old.value.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn scan(&self, from: &Key, to: &Key) -> Result<Vec<Meta>> {
        let map = self.map.read();
        Ok(map
            .iter()
            .filter(|(k, _)| *k >= from && *k <= to)
            .map(|(k, e)| meta(k, e))
            .collect())
    }

    fn stats(&self) -> Result<BackendStats> {
        let live = self.bytes.load(Ordering::Relaxed);
        Ok(BackendStats {
            kind: "mem".into(),
            keys: self.map.read().len() as u64,
            live_bytes: live,
            ..BackendStats::default()
        })
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn blocking(&self) -> bool {
        false
    }

    fn default_durability(&self) -> ringblob_engine::Durability {
        ringblob_engine::Durability::None
    }
}
