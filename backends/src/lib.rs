//! # ringblob-backends
//!
//! The storage a ringblob node serves from, behind one [`Backend`] trait, chosen by
//! configuration (`backend = "blob" | "fs" | "mem"`):
//! - [`BlobBackend`]: the log-structured blob engine (`ringblob-engine`);
//! - [`FsBackend`]: one file per key in hashed sub-directories, written by temp file,
//!   fsync, rename and directory fsync, so a crash leaves the old or the new value;
//! - [`MemBackend`]: a hash map, for tests and caches.
//!
//! ## Columns
//! A key holds several columns (numbered 0..=65535), each a value written, read (with
//! ranges), described and removed on its own; column 0 is "the value", which the methods
//! without `_column` act on. Removing a key removes all its columns, and iteration lists one
//! entry per (key, column).
//!
//! ## Adding a backend
//! Implement [`Store`] (put, get with range, meta, delete of one column, scan of a key
//! range, stats, sync; listing and removing all of a key's columns have defaults) and wrap it in [`StoreBackend`] with a [`Staging`] area: appends, writes at an
//! offset, streaming uploads and paged iteration come from there. (A backend with native
//! appends may implement [`Backend`] directly instead.) Then run the shared conformance suite
//! against it, as `tests/conformance.rs` does for the three built-in ones:
//! `ringblob_backends::conformance::run_all(|| fixture)`. It must pass to be accepted.
//! Finally add a [`BackendKind`] and a branch in [`open_backend`].
//!
//! ## From async code
//! Calls are synchronous. The node calls them through [`AsyncBackend`], which runs them on
//! tokio's blocking pool under a semaphore (see its docs).
//!
//! ```
//! use ringblob_backends::{Backend, MemBackend};
//! use ringblob_engine::{Key, Range, WriteOptions};
//! let b = MemBackend::open_memory();
//! let k = Key::from_name(b"", b"greeting");
//! b.write(&k, b"hello", WriteOptions::default()).unwrap();
//! b.append(&k, b", world", WriteOptions::default()).unwrap();
//! assert_eq!(b.read(&k, Range::new(7, 5)).unwrap(), b"world");
//! b.write_column(&k, 2, b"thumbnail", WriteOptions::default()).unwrap();
//! assert_eq!(b.columns(&k).unwrap().len(), 2);
//! b.remove(&k, WriteOptions::default()).unwrap(); // every column
//! assert!(b.lookup_column(&k, 2).is_err());
//! ```

mod async_backend;
mod backend;
mod blob;
mod column_name;
mod config;
pub mod conformance;
mod error;
mod fs;
mod key_locks;
mod mem;
mod meta;
pub mod names;
pub mod remove_log;
mod shared_sync;
mod staging;
mod store;

pub use async_backend::{AsyncBackend, DEFAULT_MAX_BLOCKING_CALLS};
pub use backend::Backend;
pub use blob::{BlobBackend, BlobStore};
pub use config::{open_backend, BackendConfig, BackendKind, BlobOptions};
pub use error::{Error, Result};
pub use fs::{FsBackend, FsStore, FILE_HEADER_LEN};
pub use key_locks::KeyLocks;
pub use mem::{MemBackend, MemStore};
pub use meta::{
    BackendStats, DamageState, DefragState, DefragSummary, IterPage, IterRequest, Location, Meta,
    Position, RecordCacheState, ScrubState, MAX_ITER_LIMIT,
};
pub use remove_log::{Removal, RemoveLog};
pub use shared_sync::{SharedSync, SyncFn};
pub use staging::Staging;
pub use store::{whole_within, Store, StoreBackend, MAX_GAP_FILL};
