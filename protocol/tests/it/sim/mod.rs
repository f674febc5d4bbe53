//! A seeded, deterministic simulation of a ringblob cluster that runs the code that ships:
//! the membership and route-table state machine (`Cluster`), the hand-over streams
//! ([`HandoverStream`](ringblob_protocol::cluster::HandoverStream)) and the repair rounds
//! ([`RepairRange`](ringblob_protocol::cluster::RepairRange)), the replicated writes and
//! reads (`WriteQuorum`, `ReplicatedRead`) of `ringblob_protocol::cluster`,
//! with each step's backend half (`cluster::local`) performed on a real in-memory backend
//! ([`MemBackend`](ringblob_backends::MemBackend)) per node, whose disk the chaos fills up or
//! makes fail. Only the network, the clock and process crashes are
//! simulated: messages are delayed (reordered), dropped, duplicated and cut by partitions;
//! a crash loses a node's memory (streams, state machine) but not its backend, as a disk.
//!
//! - `world.rs`: the event queue, network, nodes, crashes and restarts.
//! - `disk.rs`: each node's backend, which the chaos can fill up or make fail.
//! - `handover.rs`: drives each node's hand-over streams over the simulated network.
//! - `live_reads.rs`: replicated reads during the chaos, with hand-over read-through.
//! - `reads.rs`: replicated reads (`ReplicatedRead`) of every acknowledged key, with read
//!   repair.
//! - `repair.rs`: drives repair rounds between nodes of different groups.
//! - `checks.rs`: the invariants.
//! - `scenarios.rs`: the tests; a failure prints a one-line replay command.

mod checks;
mod disk;
mod handover;
mod live_reads;
mod reads;
mod repair;
mod scenarios;
mod world;
