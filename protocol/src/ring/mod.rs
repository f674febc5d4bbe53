//! The pure ring and routing maths of the cluster: positions on the 2^256 ring, who owns a
//! key in a replica group, how a joining node picks its IDs, which ranges move when
//! membership changes, the route table clients and nodes exchange, and the file a node
//! keeps its IDs in. No sockets, no tokio, no clocks; the only randomness is an injected
//! RNG — so a seeded simulator can drive it. `docs/PROTOCOL.md` ("Ring and ownership")
//! specifies the rules and formats.
//!
//! ```
//! use rand::{rngs::StdRng, SeedableRng};
//! use ringblob_protocol::ring::{choose_ids, moved_ranges, GroupRing, NodeIx, RingError};
//!
//! # fn main() -> Result<(), RingError> {
//! let mut rng = StdRng::seed_from_u64(1);
//! let mut ring = GroupRing::default();
//! for node in 0..3 {
//!     let ids = choose_ids(&ring, 64, &mut rng)?;
//!     ring = ring.with_node(NodeIx(node), &ids);
//! }
//! let ids = choose_ids(&ring, 64, &mut rng)?;
//! let joined = ring.with_node(NodeIx(3), &ids);
//! let moves = moved_ranges(&ring, &joined);
//! assert!(moves.iter().all(|m| m.to == NodeIx(3)));
//! let moved: f64 = moves.iter().map(|m| m.range.fraction()).sum();
//! assert!((moved - joined.share_of(NodeIx(3))).abs() < 1e-9);
//! # Ok(())
//! # }
//! ```

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod choose;
mod error;
#[cfg(test)]
pub(crate) mod fixtures;
mod group;
mod id;
mod ids_file;
mod movement;
mod range;
mod route;
mod route_index;
#[cfg(test)]
mod route_tests;
mod wide;

pub use choose::{choose_ids, DEFAULT_IDS_PER_NODE, MAX_IDS_PER_NODE};
pub use error::RingError;
pub use group::{next_key, prev_key, GroupRing};
pub use id::{RingId, RING_ID_LEN};
pub use ids_file::{
    decode_ids_file, encode_ids_file, IDS_FILE_HEADER_LEN, IDS_FILE_MAGIC, IDS_FILE_VERSION,
};
pub use movement::{moved_ranges, Move};
pub use range::{KeyRange, NodeIx};
pub use route::{RouteMove, RouteNode, RouteTable, MAX_ROUTE_NODES};
pub use route_index::{OwnerLookup, Routing};
