//! Library half of the ringblob tools: the pieces the binaries share.

pub use ringblob_engine::alloc_tuning;

/// `--version` of every binary: the crate version and the git commit built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("RINGBLOB_COMMIT"),
    ")"
);
pub mod bench;
pub mod client_args;
pub mod cluster_stat;
pub mod column;
pub mod export;
pub mod find;
pub mod inspect;
pub mod ls;
pub mod node_keys;
pub mod progress;
pub mod routes_view;
pub mod status_view;
pub mod watch;
