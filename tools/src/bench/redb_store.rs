//! redb 4 behind the [`Store`] interface: one file, one table, one transaction per operation.

use std::path::Path;

use anyhow::{Context, Result};
use redb::{Database, ReadableDatabase, TableDefinition};
use ringblob_engine::{Durability, Key};

use super::data::ValuePool;
use super::store::{Figures, Store};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bench");

/// Keys per write transaction during the untimed bulk load.
const LOAD_BATCH: usize = 10_000;

pub struct RedbStore {
    db: Database,
    durability: redb::Durability,
}

impl RedbStore {
    pub fn open(dir: &Path, durability: Durability) -> Result<Self> {
        let path = dir.join("bench.redb");
        let db =
            Database::create(&path).with_context(|| format!("opening redb {}", path.display()))?;
        let durability = match durability {
            Durability::None => redb::Durability::None,
            Durability::Batch | Durability::Sync => redb::Durability::Immediate,
        };
        Ok(RedbStore { db, durability })
    }

    /// One write transaction that inserts `pairs` and commits with `durability`.
    fn commit<'a>(
        &self,
        pairs: impl Iterator<Item = (&'a Key, &'a [u8])>,
        durability: redb::Durability,
    ) -> Result<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(durability)?;
        {
            let mut table = txn.open_table(TABLE)?;
            for (key, value) in pairs {
                table.insert(key.as_bytes().as_slice(), value)?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

impl Store for RedbStore {
    fn put(&self, key: &Key, value: &[u8]) -> Result<()> {
        self.commit(std::iter::once((key, value)), self.durability)
    }

    fn get(&self, key: &Key) -> Result<Option<usize>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        Ok(table
            .get(key.as_bytes().as_slice())?
            .map(|v| v.value().len()))
    }

    fn load(&self, keys: &[Key], values: &ValuePool) -> Result<()> {
        for (n, chunk) in keys.chunks(LOAD_BATCH).enumerate() {
            let first = (n * LOAD_BATCH) as u64;
            let pairs = (first..).zip(chunk).map(|(i, k)| (k, values.value(i)));
            self.commit(pairs, redb::Durability::None)?;
        }
        Ok(())
    }

    fn figures(&self) -> Figures {
        Figures::default()
    }

    fn close(self: Box<Self>) -> Result<()> {
        // An empty durable commit makes every earlier non-durable one durable.
        self.commit(std::iter::empty(), redb::Durability::Immediate)
    }
}
