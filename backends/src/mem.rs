//! `MemBackend`: values in a hash map of keys to their columns. Nothing survives the
//! process; calls never block.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;
use ringblob_engine::{Key, Range, WriteOptions};

use crate::error::{Error, Result};
use crate::meta::{BackendStats, Location, Meta};
use crate::remove_log::{RemoveLog, DEFAULT_REMOVE_RETENTION};
use crate::staging::Staging;
use crate::store::{Store, StoreBackend};

struct Entry {
    value: Arc<Vec<u8>>,
    timestamp_ns: u64,
    checksum: u32,
}

/// A key's live columns.
type Columns = BTreeMap<u16, Entry>;

/// The in-memory store: keys to their columns (a key with no column has no entry).
#[derive(Default)]
pub struct MemStore {
    map: RwLock<HashMap<Key, Columns>>,
    bytes: AtomicU64,
    /// Live values, one per (key, column).
    values: AtomicU64,
}

/// The in-memory backend.
pub type MemBackend = StoreBackend<MemStore>;

impl MemBackend {
    pub fn open_memory() -> Self {
        let removes = RemoveLog::memory(DEFAULT_REMOVE_RETENTION);
        StoreBackend::new(MemStore::default(), Staging::memory(), removes)
    }
}

pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn meta(key: &Key, column: u16, e: &Entry) -> Meta {
    Meta {
        key: *key,
        column,
        size: e.value.len() as u64,
        stored_size: e.value.len() as u64,
        timestamp_ns: e.timestamp_ns,
        checksum: e.checksum,
        location: Location::Memory,
    }
}

impl MemStore {
    /// Accounts for values gone from the store.
    fn forget<'a>(&self, gone: impl IntoIterator<Item = &'a Entry>) {
        for e in gone {
            self.bytes
                .fetch_sub(e.value.len() as u64, Ordering::Relaxed);
            self.values.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Store for MemStore {
    fn kind(&self) -> &'static str {
        "mem"
    }

    fn put(&self, key: &Key, column: u16, value: &[u8], opts: WriteOptions) -> Result<()> {
        let (timestamp_ns, if_newer) = opts.newer_than_stored(now_ns);
        let entry = Entry {
            value: Arc::new(value.to_vec()),
            timestamp_ns,
            checksum: crc32fast::hash(value),
        };
        // Counters change under the map lock, so they never pass below zero meanwhile.
        let mut map = self.map.write();
        let stored = map.get(key).and_then(|c| c.get(&column));
        Error::unless_newer(stored.map(|e| e.timestamp_ns), if_newer)?;
        let old = map.entry(*key).or_default().insert(column, entry);
        self.bytes.fetch_add(value.len() as u64, Ordering::Relaxed);
        self.values.fetch_add(1, Ordering::Relaxed);
        self.forget(old.as_ref());
        Ok(())
    }

    fn get(&self, key: &Key, column: u16, range: Range) -> Result<Vec<u8>> {
        let value = self
            .map
            .read()
            .get(key)
            .and_then(|c| c.get(&column))
            .map(|e| e.value.clone())
            .ok_or(Error::NotFound(*key))?;
        let (off, len) = range.resolve(value.len() as u64)?;
        Ok(value[off as usize..(off + len) as usize].to_vec())
    }

    fn meta(&self, key: &Key, column: u16) -> Result<Meta> {
        self.map
            .read()
            .get(key)
            .and_then(|c| c.get(&column))
            .map(|e| meta(key, column, e))
            .ok_or(Error::NotFound(*key))
    }

    fn delete(&self, key: &Key, column: u16, _opts: WriteOptions) -> Result<()> {
        let mut map = self.map.write();
        let columns = map.get_mut(key).ok_or(Error::NotFound(*key))?;
        let old = columns.remove(&column).ok_or(Error::NotFound(*key))?;
        if columns.is_empty() {
            map.remove(key);
        }
        self.forget([&old]);
        Ok(())
    }

    fn delete_all(&self, key: &Key, _opts: WriteOptions) -> Result<()> {
        let mut map = self.map.write();
        let old = map.remove(key).ok_or(Error::NotFound(*key))?;
        self.forget(old.values());
        Ok(())
    }

    fn columns(&self, key: &Key) -> Result<Vec<Meta>> {
        let map = self.map.read();
        let Some(columns) = map.get(key) else {
            return Ok(Vec::new());
        };
        Ok(columns.iter().map(|(c, e)| meta(key, *c, e)).collect())
    }

    fn scan(&self, from: &Key, to: &Key) -> Result<Vec<Meta>> {
        let map = self.map.read();
        Ok(map
            .iter()
            .filter(|(k, _)| *k >= from && *k <= to)
            .flat_map(|(k, columns)| columns.iter().map(move |(c, e)| meta(k, *c, e)))
            .collect())
    }

    fn stats(&self) -> Result<BackendStats> {
        let live = self.bytes.load(Ordering::Relaxed);
        Ok(BackendStats {
            kind: "mem".into(),
            keys: self.values.load(Ordering::Relaxed),
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
