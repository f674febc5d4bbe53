//! Library half of the ringblob tools: the pieces the binaries share.

pub mod bench;
pub mod cluster_stat;
pub mod column;
pub mod inspect;
pub mod node_keys;
pub mod routes_view;
