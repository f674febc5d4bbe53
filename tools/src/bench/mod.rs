//! `ringblob-bench`: embedded load generator for the ringblob engine and its peers
//! (fjall, redb), with machine-readable results.
//!
//! Each engine × workload is measured in a child process of its own (`single`), started and
//! read by the parent (`run`, `child`). Every workload prepares its own data under `--dir/<engine>-<workload>/` (wiped first), so
//! any one can run alone. The timed region covers only the operations; keys (SHA-256) and
//! values are computed before the clock starts.

pub mod appends;
pub mod child;
pub mod cli;
pub mod data;
pub mod defrag;
pub mod disk;
#[cfg(feature = "peers")]
pub mod fjall_store;
pub mod index_memory;
pub mod measure;
pub mod parallel;
pub mod raw_pread;
#[cfg(feature = "peers")]
pub mod redb_store;
pub mod remote;
pub mod reopen;
pub mod report;
pub mod ringblob_store;
pub mod rss;
pub mod run;
pub mod sealed_gets;
pub mod sealed_load;
pub mod single;
pub mod store;
pub mod workload;
pub mod zipf;
