//! The pure cluster logic: membership, route-table gossip, data-movement plans and repair
//! digests, as sans-IO state machines. No sockets, no tokio, no clock: a shell (the node,
//! or the seeded simulator in `tests/it/sim.rs`) feeds in datagrams and timer events and
//! carries out the [`Effect`]s that come back. `docs/ARCHITECTURE.md` ("Cluster logic")
//! describes the design; `docs/PROTOCOL.md` §15.8–15.9 the bytes.
//!
//! - [`Cluster`]: one node. SWIM (the `foca` crate) says who is alive; route tables
//!   ([`crate::ring::RouteTable`]) spread by anti-entropy ([`ClusterMessage::RouteDigest`],
//!   [`ClusterMessage::RouteUpdate`]) and converge because their merge is a join.
//! - [`TransferPlan`]: the ranges a node must stream to new owners after a ring change,
//!   each with a cursor; [`TransferProgress`] is the record that resumes one after a crash.
//! - [`HandoverStream`]: the steps of streaming one transfer (removes, then values page by
//!   page, then progress), and [`RepairRange`]: the steps of repairing one range with a
//!   peer. The node's mover and repairer and the simulator drive these same machines; the
//!   backend half of their steps is [`local`].
//! - [`DigestTree`]: a 16-way Merkle summary of a range's records; [`DigestTree::diff`]
//!   finds the smallest sub-ranges two replicas disagree on. [`repair_tasks`] says which
//!   peer of each other group to compare which range with.
//!
//! ```
//! use ringblob_protocol::cluster::{Cluster, ClusterConfig, ClusterError, Effect, Phase};
//!
//! # fn main() -> Result<(), ClusterError> {
//! // The first node of a cluster has no seeds: it chooses its ring IDs at once.
//! let config = ClusterConfig::new("n1", "10.0.0.1:7000", 0, 3);
//! let (node, effects) = Cluster::start(config, None)?;
//! assert_eq!(node.phase(), Phase::Active);
//! assert!(effects.iter().any(|e| matches!(e, Effect::IdsChosen(ids) if ids.len() == 64)));
//! let owner = node.route_table().owner(0, &[7; 32]).map(|n| n.name.as_str());
//! assert_eq!(owner, Some("n1"));
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

mod arith;
mod balance;
mod config;
mod digest;
mod effect;
mod error;
mod handed_over;
mod handover;
mod identity;
pub mod local;
mod message;
mod outbox;
mod progress;
mod range_walk;
mod react;
mod read_through;
mod reader;
mod repair;
mod repair_round;
mod replica;
mod route_sync;
pub mod seal;
mod split;
mod state;
mod swim_codec;
mod swim_rng;
mod transfer;

pub use balance::{rebalancer, BALANCE_FACTOR, STABLE_CHECKS};
pub use config::{ClusterConfig, DEFAULT_DOWN_GRACE};
pub use digest::{
    depth_for, DigestEntry, DigestTree, Hash, DIGEST_FANOUT, MAX_DIGEST_DEPTH, RECORDS_PER_LEAF,
};
pub use effect::{ClusterTimer, Effect};
pub use error::ClusterError;
pub use handed_over::owner_agrees;
pub use handover::{HandoverAnswer, HandoverStep, HandoverStream, HANDOVER_PAGE};
pub use identity::MemberId;
pub use message::{
    entry_hash, ClusterMessage, EntrySummary, CLUSTER_MESSAGE_VERSION, MAX_CLUSTER_MESSAGE_LEN,
};
pub use progress::{TransferProgress, MAX_PROGRESS_LEN, PROGRESS_MAGIC, PROGRESS_VERSION};
pub use range_walk::{linear_parts, RangePage, RangeWalk};
pub use read_through::{Awaited, IncomingRanges, ReadThrough};
pub use reader::MAX_TEXT_LEN;
pub use repair::{repair_tasks, RepairTask};
pub use repair_round::{RepairAnswer, RepairRange, RepairStep, RepairTally, REPAIR_PAGE};
pub use replica::{
    GroupAnswer, Quorum, ReadDone, ReadStep, ReplicatedRead, UnknownQuorum, WriteQuorum,
};
pub use route_sync::{answer_digest, digest_of, entries_named};
pub use state::{Cluster, Phase, Restart};
pub use swim_codec::SwimCodec;
pub use swim_rng::SwimRng;
pub use transfer::{Transfer, TransferPlan};
