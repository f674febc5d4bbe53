//! fjall 3 behind the [`Store`] interface (one keyspace, default database settings).

use std::path::Path;

use anyhow::{Context, Result};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, KvSeparationOptions, PersistMode};
use ringblob_engine::{Durability, Key};

use super::data::ValuePool;
use super::store::{Figures, Store};

/// Values at least this large are stored with key-value separation.
const KV_SEPARATION_FROM: usize = 1024;

pub struct FjallStore {
    db: Database,
    keyspace: Keyspace,
    /// fdatasync the journal after every put (`batch` and `sync`).
    sync_each_put: bool,
}

impl FjallStore {
    pub fn open(dir: &Path, durability: Durability, value_size: usize) -> Result<Self> {
        let db = Database::builder(dir)
            .open()
            .with_context(|| format!("opening fjall in {}", dir.display()))?;
        let separate = value_size >= KV_SEPARATION_FROM;
        let keyspace = db
            .keyspace("bench", || {
                let opts = KeyspaceCreateOptions::default();
                if separate {
                    opts.with_kv_separation(Some(KvSeparationOptions::default()))
                } else {
                    opts
                }
            })
            .context("opening fjall keyspace")?;
        Ok(FjallStore {
            db,
            keyspace,
            sync_each_put: durability != Durability::None,
        })
    }
}

impl Store for FjallStore {
    fn put(&self, key: &Key, value: &[u8]) -> Result<()> {
        self.keyspace.insert(key.as_bytes(), value)?;
        if self.sync_each_put {
            self.db.persist(PersistMode::SyncData)?;
        }
        Ok(())
    }

    fn get(&self, key: &Key) -> Result<Option<usize>> {
        Ok(self.keyspace.get(key.as_bytes())?.map(|v| v.len()))
    }

    fn load(&self, keys: &[Key], values: &ValuePool) -> Result<()> {
        for (i, key) in (0u64..).zip(keys) {
            self.keyspace.insert(key.as_bytes(), values.value(i))?;
        }
        Ok(())
    }

    fn figures(&self) -> Figures {
        Figures::default()
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }
}
