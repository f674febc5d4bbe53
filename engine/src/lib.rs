//! # ringblob-engine
//!
//! An eblob-style log-structured blob engine. Every write appends one checksummed record to
//! the active blob file; removes append tombstones; nothing is rewritten in place. An
//! in-memory index maps each key to its newest record; index files let `open` skip
//! rescanning sealed data. Values are stored as frames (optionally Snappy-compressed) with
//! a CRC each, so a range read decompresses and verifies only the frames it touches.
//!
//! It is not a network server (see `ringblob-protocol`) and never uses an async runtime:
//! every call is synchronous, and the engine is `Send + Sync`.
//!
//! The on-disk format is specified byte for byte in `docs/FORMAT.md`.
//!
//! ```
//! use ringblob_engine::{Config, Engine, Key, Range, WriteOptions};
//! # fn main() -> Result<(), ringblob_engine::Error> {
//! let dir = tempfile::tempdir().map_err(|e| ringblob_engine::Error::io("tempdir", "", e))?;
//! let engine = Engine::open(dir.path(), Config::default())?;
//! let key = Key::from_name(b"photos", b"cat.jpg");
//! engine.write(&key, b"meow, in JPEG", WriteOptions::default())?;
//! assert_eq!(engine.read(&key, Range::new(6, 2))?, b"in");
//! engine.close()?;
//! # Ok(())
//! # }
//! ```

pub mod alloc_tuning;
pub mod blob;
pub mod checkpoint;
pub mod coarse_clock;
mod commit;
pub mod config;
pub mod damage;
mod defrag;
mod engine;
pub mod error;
pub mod format;
mod huge_pages;
pub mod index;
pub mod io;
mod iter;
pub mod journal;
pub mod key;
mod keys;
pub mod locator;
mod lock_order;
mod log;
mod lookup;
pub mod pace;
mod patch;
mod reader;
mod record_cache;
mod recovery;
mod recovery_scan;
pub mod scan;
mod scrub;
mod sealed;
mod sealing;
mod sorting;
mod space;
mod stream;
mod upkeep;
pub mod watermark;
mod writer;

pub use config::{Config, Durability, IndexMode, IoKind, Range, UnknownChoice, WriteOptions};
pub use defrag::{BlobUsage, DefragOptions, DefragReport};
pub use engine::{Engine, Meta, Stats};
pub use error::{Error, Result};
pub use iter::Iter;
pub use key::Key;
pub use patch::WriteAt;
pub use reader::{Stamped, WholeRead};
pub use record_cache::RecordCacheFigures;
pub use scrub::ScrubStatus;
pub use upkeep::DefragStatus;
