//! The `Backend` trait the node calls, and `Store`: the small set of primitives a storage
//! backend implements. [`StoreBackend`] builds every `Backend` operation (appends, writes at
//! an offset, streaming uploads, paged iteration) from a `Store`.

use ringblob_engine::format::record::MAX_VALUE_LEN;
use ringblob_engine::{Durability, Key, Range, WriteOptions};

use crate::error::{Error, Result};
use crate::key_locks::KeyLocks;
use crate::meta::{BackendStats, DefragSummary, IterPage, IterRequest, Meta, MAX_ITER_LIMIT};
use crate::staging::Staging;

/// Everything a node can ask of its storage. Calls are synchronous and may block on disk:
/// call them from async code through [`crate::AsyncBackend`].
pub trait Backend: Send + Sync {
    /// "blob", "fs" or "mem".
    fn kind(&self) -> &'static str;
    /// Stores a whole value; returns its size.
    fn write(&self, key: &Key, value: &[u8], opts: WriteOptions) -> Result<u64>;
    /// Appends to a value (creating it); returns the new size.
    fn append(&self, key: &Key, bytes: &[u8], opts: WriteOptions) -> Result<u64>;
    /// Writes `bytes` at `offset` inside a value, growing it (zero-filled) if needed.
    fn write_at(&self, key: &Key, offset: u64, bytes: &[u8], opts: WriteOptions) -> Result<u64>;
    /// Starts (or resumes) a streaming upload of up to `reserved` bytes. Uploads are
    /// invisible to reads until committed.
    fn prepare(&self, key: &Key, reserved: u64) -> Result<()>;
    /// Writes one part of an upload.
    fn write_part(&self, key: &Key, offset: u64, bytes: &[u8]) -> Result<()>;
    /// Makes the first `final_size` bytes of the upload the key's value.
    fn commit(&self, key: &Key, final_size: u64, opts: WriteOptions) -> Result<u64>;
    fn read(&self, key: &Key, range: Range) -> Result<Vec<u8>>;
    fn lookup(&self, key: &Key) -> Result<Meta>;
    /// Removes a value; a missing key is `NotFound`.
    fn remove(&self, key: &Key, opts: WriteOptions) -> Result<()>;
    /// One page of live values in `from..=to`, in key order.
    fn iterate(&self, req: &IterRequest) -> Result<IterPage>;
    fn stats(&self) -> Result<BackendStats>;
    /// Makes every acknowledged write durable.
    fn sync(&self) -> Result<()>;
    /// Removes uploads untouched for longer than `max_age`; returns how many.
    fn reclaim_uploads(&self, max_age: std::time::Duration) -> Result<u64>;
    /// False when calls never block (in-memory): async callers may run them inline.
    fn blocking(&self) -> bool {
        true
    }
    /// The durability of writes and removes that do not name one.
    fn default_durability(&self) -> Durability;
    /// Reclaims the space of superseded and removed values now.
    fn defrag(&self) -> Result<DefragSummary>;
}

/// The primitives a storage backend provides.
pub trait Store: Send + Sync {
    fn kind(&self) -> &'static str;
    fn put(&self, key: &Key, value: &[u8], opts: WriteOptions) -> Result<()>;
    fn get(&self, key: &Key, range: Range) -> Result<Vec<u8>>;
    fn meta(&self, key: &Key) -> Result<Meta>;
    fn delete(&self, key: &Key, opts: WriteOptions) -> Result<()>;
    /// Every live value in `from..=to`, in any order.
    fn scan(&self, from: &Key, to: &Key) -> Result<Vec<Meta>>;
    fn stats(&self) -> Result<BackendStats>;
    fn sync(&self) -> Result<()>;
    fn blocking(&self) -> bool {
        true
    }
    fn default_durability(&self) -> Durability;
    /// Reclaims garbage; backends that keep none say `Unsupported`.
    fn defrag(&self) -> Result<DefragSummary> {
        Err(Error::Unsupported(format!(
            "the {} backend has nothing to defragment",
            self.kind()
        )))
    }
}

/// A [`Backend`] made of a [`Store`], per-key locks and an upload staging area.
pub struct StoreBackend<S> {
    store: S,
    locks: KeyLocks,
    staging: Staging,
}

impl<S: Store> StoreBackend<S> {
    pub fn new(store: S, staging: Staging) -> Self {
        StoreBackend {
            store,
            locks: KeyLocks::default(),
            staging,
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// The current value, or empty if the key has none.
    fn current(&self, key: &Key) -> Result<Vec<u8>> {
        match self.store.get(key, Range::all()) {
            Ok(v) => Ok(v),
            Err(Error::NotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

fn check_size(end: u64) -> Result<()> {
    if end > MAX_VALUE_LEN {
        return Err(Error::TooLarge {
            what: "value size",
            got: end,
            limit: MAX_VALUE_LEN,
        });
    }
    Ok(())
}

impl<S: Store> Backend for StoreBackend<S> {
    fn kind(&self) -> &'static str {
        self.store.kind()
    }

    fn write(&self, key: &Key, value: &[u8], opts: WriteOptions) -> Result<u64> {
        check_size(value.len() as u64)?;
        let _g = self.locks.lock(key);
        self.store.put(key, value, opts)?;
        Ok(value.len() as u64)
    }

    fn append(&self, key: &Key, bytes: &[u8], opts: WriteOptions) -> Result<u64> {
        let _g = self.locks.lock(key);
        let mut v = self.current(key)?;
        check_size(v.len() as u64 + bytes.len() as u64)?;
        v.extend_from_slice(bytes);
        self.store.put(key, &v, opts)?;
        Ok(v.len() as u64)
    }

    fn write_at(&self, key: &Key, offset: u64, bytes: &[u8], opts: WriteOptions) -> Result<u64> {
        let end = offset.saturating_add(bytes.len() as u64);
        check_size(end)?;
        let _g = self.locks.lock(key);
        let mut v = self.current(key)?;
        if (v.len() as u64) < end {
            v.resize(end as usize, 0);
        }
        v[offset as usize..end as usize].copy_from_slice(bytes);
        self.store.put(key, &v, opts)?;
        Ok(v.len() as u64)
    }

    fn prepare(&self, key: &Key, reserved: u64) -> Result<()> {
        check_size(reserved)?;
        self.staging.prepare(key, reserved)
    }

    fn write_part(&self, key: &Key, offset: u64, bytes: &[u8]) -> Result<()> {
        self.staging.write_part(key, offset, bytes)
    }

    fn commit(&self, key: &Key, final_size: u64, opts: WriteOptions) -> Result<u64> {
        let _g = self.locks.lock(key);
        let value = self.staging.take(key, final_size)?;
        self.store.put(key, &value, opts)?;
        self.staging.finish(key)?;
        Ok(final_size)
    }

    fn read(&self, key: &Key, range: Range) -> Result<Vec<u8>> {
        self.store.get(key, range)
    }

    fn lookup(&self, key: &Key) -> Result<Meta> {
        self.store.meta(key)
    }

    fn remove(&self, key: &Key, opts: WriteOptions) -> Result<()> {
        let _g = self.locks.lock(key);
        self.store.delete(key, opts)
    }

    fn iterate(&self, req: &IterRequest) -> Result<IterPage> {
        let limit = req.limit.clamp(1, MAX_ITER_LIMIT);
        let mut all = self.store.scan(&req.from, &req.to)?;
        if let Some(after) = req.after {
            all.retain(|m| m.key > after);
        }
        all.sort_unstable_by_key(|m| m.key);
        let more = all.len() > limit;
        all.truncate(limit);
        let next_after = if more {
            all.last().map(|m| m.key)
        } else {
            None
        };
        Ok(IterPage {
            entries: all,
            next_after,
        })
    }

    fn stats(&self) -> Result<BackendStats> {
        let mut s = self.store.stats()?;
        s.uploads_in_progress = self.staging.count()?;
        Ok(s)
    }

    fn sync(&self) -> Result<()> {
        self.store.sync()
    }

    fn reclaim_uploads(&self, max_age: std::time::Duration) -> Result<u64> {
        self.staging.reclaim(max_age)
    }

    fn blocking(&self) -> bool {
        self.store.blocking()
    }

    fn default_durability(&self) -> Durability {
        self.store.default_durability()
    }

    fn defrag(&self) -> Result<DefragSummary> {
        self.store.defrag()
    }
}
