//! # ringblob-backends
//!
//! The storage a ringblob node serves from, behind one [`Backend`] trait, chosen by
//! configuration (`backend = "blob" | "fs" | "mem"`):
//! - [`BlobBackend`]: the log-structured blob engine (`ringblob-engine`);
//! - [`FsBackend`]: one file per key in hashed sub-directories, written by temp file,
//!   fsync, rename and directory fsync, so a crash leaves the old or the new value;
//! - [`MemBackend`]: a hash map, for tests and caches.
//!
//! ## Adding a backend
//! Implement [`Store`] (put, get with range, meta, delete, scan of a key range, stats,
//! sync) and wrap it in [`StoreBackend`] with a [`Staging`] area: appends, writes at an
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
//! ```

mod async_backend;
mod backend;
mod blob;
mod config;
pub mod conformance;
mod error;
mod fs;
mod key_locks;
mod mem;
mod meta;
mod staging;

pub use async_backend::{AsyncBackend, DEFAULT_MAX_BLOCKING_CALLS};
pub use backend::{Backend, Store, StoreBackend};
pub use blob::{BlobBackend, BlobStore};
pub use config::{open_backend, BackendConfig, BackendKind, BlobOptions};
pub use error::{Error, Result};
pub use fs::{FsBackend, FsStore, FILE_HEADER_LEN};
pub use key_locks::KeyLocks;
pub use mem::{MemBackend, MemStore};
pub use meta::{
    BackendStats, DefragState, DefragSummary, IterPage, IterRequest, Location, Meta, MAX_ITER_LIMIT,
};
pub use staging::Staging;
