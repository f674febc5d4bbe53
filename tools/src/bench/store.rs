//! One interface over the engines under test.
//!
//! # Durability mapping (`--durability`)
//!
//! | flag  | ringblob                   | fjall                                        | redb (one txn per put)   |
//! |-------|----------------------------|----------------------------------------------|--------------------------|
//! | none  | `Durability::None`: acked in the 1 MiB write buffer, no fsync | `insert` only: fjall's default writes the journal entry to the OS (`PersistMode::Buffer`) per insert, no fsync | `Durability::None`: commit without fsync |
//! | batch | `Durability::Batch`: group commit, one fdatasync shared by concurrent writers | `insert` + `persist(SyncData)`: one fdatasync per put (fjall has no group commit) | `Durability::Immediate`: fsync per commit (redb has one writer at a time) |
//! | sync  | `Durability::Sync`         | as batch                                     | as batch                 |
//!
//! Closing makes everything durable on every engine (ringblob `close`: flush, fdatasync and
//! index checkpoint; fjall `persist(SyncAll)`; redb an empty `Immediate` commit).
//! ringblob writes with `compress: Some(false)`; fjall keeps its default LZ4 block compression
//! and, for values ≥ 1 KiB, key-value separation (its recommended setting for blobs); redb
//! does not compress. The values are incompressible, so compression gains nothing.

use std::path::Path;

use anyhow::Result;
use ringblob_engine::{Durability, Key};

use super::cli::Peer;
use super::data::ValuePool;
use super::workload::Params;

/// Figures an engine can report about itself (`None` where it cannot).
#[derive(Debug, Clone, Copy, Default)]
pub struct Figures {
    pub keys: Option<u64>,
    pub index_bytes: Option<u64>,
    pub syncs: Option<u64>,
    /// Reads answered from the record cache, and those looked up there in vain.
    pub record_cache_hits: Option<u64>,
    pub record_cache_misses: Option<u64>,
}

/// An open key-value store under test. Shared by reference across client threads.
pub trait Store: Send + Sync {
    /// One put with the durability the store was opened with.
    fn put(&self, key: &Key, value: &[u8]) -> Result<()>;

    /// The length of the value under `key`, `None` if absent.
    fn get(&self, key: &Key) -> Result<Option<usize>>;

    /// Untimed bulk load of `keys` (value `i` for key `i`), as fast as the engine allows.
    fn load(&self, keys: &[Key], values: &ValuePool) -> Result<()>;

    fn figures(&self) -> Figures;

    /// Makes everything durable and closes.
    fn close(self: Box<Self>) -> Result<()>;
}

/// The engines this tool can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineKind {
    Ringblob,
    Fjall,
    Redb,
}

impl From<Peer> for EngineKind {
    fn from(p: Peer) -> Self {
        match p {
            Peer::Fjall => EngineKind::Fjall,
            Peer::Redb => EngineKind::Redb,
        }
    }
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Ringblob => "ringblob",
            EngineKind::Fjall => "fjall",
            EngineKind::Redb => "redb",
        }
    }

    /// Opens (creating if needed) this engine's store in `dir`, with puts of durability
    /// `durability` (the rest of the settings from `p`).
    pub fn open(self, dir: &Path, p: &Params, durability: Durability) -> Result<Box<dyn Store>> {
        use super::ringblob_store::RingblobStore;
        #[cfg(feature = "peers")]
        use super::{fjall_store::FjallStore, redb_store::RedbStore};
        Ok(match self {
            EngineKind::Ringblob => Box::new(RingblobStore::open(dir, durability, p)?),
            #[cfg(feature = "peers")]
            EngineKind::Fjall => Box::new(FjallStore::open(dir, durability, p.value_size)?),
            #[cfg(feature = "peers")]
            EngineKind::Redb => Box::new(RedbStore::open(dir, durability)?),
            #[cfg(not(feature = "peers"))]
            EngineKind::Fjall | EngineKind::Redb => anyhow::bail!(
                "{} is a peer engine, not in this build: rebuild with \
                 `cargo build --release -p ringblob-tools --features peers`",
                self.name()
            ),
        })
    }
}
