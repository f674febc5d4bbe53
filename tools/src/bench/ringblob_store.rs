//! The ringblob engine behind the [`Store`] interface.

use std::path::Path;

use anyhow::{Context, Result};
use ringblob_engine::{Config, Durability, Engine, Error, Key, Range, WriteOptions};

use super::data::ValuePool;
use super::store::{Figures, Store};
use super::workload::Params;

pub struct RingblobStore {
    engine: Engine,
    opts: WriteOptions,
}

impl RingblobStore {
    /// Opens with the default [`Config`] but the bench's IO, index and record cache; puts
    /// use `durability` and no compression.
    pub fn open(dir: &Path, durability: Durability, p: &Params) -> Result<Self> {
        let default = Config::default();
        let config = Config {
            io: p.io,
            index: p.index,
            record_cache_bytes: p
                .record_cache_mb
                .map_or(default.record_cache_bytes, |mb| mb << 20),
            ..default
        };
        let engine = Engine::open(dir, config)
            .with_context(|| format!("opening ringblob in {}", dir.display()))?;
        let opts = WriteOptions {
            compress: Some(false),
            durability: Some(durability),
            ..WriteOptions::default()
        };
        Ok(RingblobStore { engine, opts })
    }
}

impl Store for RingblobStore {
    fn put(&self, key: &Key, value: &[u8]) -> Result<()> {
        Ok(self.engine.write(key, value, self.opts)?)
    }

    fn get(&self, key: &Key) -> Result<Option<usize>> {
        match self.engine.read(key, Range::all()) {
            Ok(v) => Ok(Some(v.len())),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn load(&self, keys: &[Key], values: &ValuePool) -> Result<()> {
        let opts = WriteOptions {
            durability: Some(Durability::None),
            ..self.opts
        };
        for (i, key) in (0u64..).zip(keys) {
            self.engine.write(key, values.value(i), opts)?;
        }
        Ok(())
    }

    fn figures(&self) -> Figures {
        let s = self.engine.stats();
        Figures {
            keys: Some(s.keys),
            index_bytes: Some(s.index_bytes),
            syncs: Some(s.syncs),
            record_cache_hits: Some(s.record_cache.hits),
            record_cache_misses: Some(s.record_cache.misses),
        }
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(self.engine.close()?)
    }
}
