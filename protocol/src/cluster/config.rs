//! [`ClusterConfig`]: who this node is and how often it talks.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use crate::ring::DEFAULT_IDS_PER_NODE;

/// Settings of one node's cluster state machine.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Unique node name.
    pub name: String,
    /// `host:port` other members send cluster messages to (the advertised address).
    pub addr: String,
    /// Where the UDP socket binds, when not `addr` (a node listening on `0.0.0.0` that
    /// advertises one of its addresses).
    pub bind: Option<String>,
    /// Replica group.
    pub group: u32,
    /// Addresses to announce to when joining (none: start a new cluster).
    pub seeds: Vec<String>,
    /// Ring IDs to choose on first join.
    pub ids_per_node: u32,
    /// SWIM settings.
    pub swim: foca::Config,
    /// How often route digests go out.
    pub route_sync_interval: Duration,
    /// How many random members get each round of digests.
    pub route_sync_fanout: usize,
    /// How often a joining node retries (and a joined one checks it is not alone).
    pub join_check_interval: Duration,
    /// Soft cap on the entries of one route update, in bytes (at least one entry is sent).
    pub max_route_update_bytes: usize,
    /// How often to emit [`Effect::Repair`](super::Effect::Repair) (`None`: only on demand).
    pub repair_interval: Option<Duration>,
    /// Seed of the random choices (whom to probe, gossip to, first IDs).
    pub rng_seed: u64,
    /// How long a member SWIM declares down keeps owning its ranges before the route table
    /// marks it dead and they move (zero: at once). Meanwhile its writes are hinted to its
    /// successor and its reads answered `UNAVAILABLE` (`docs/PROTOCOL.md` §9.2).
    pub down_grace: Duration,
}

/// The default [`ClusterConfig::down_grace`].
pub const DEFAULT_DOWN_GRACE: Duration = Duration::from_secs(30);

impl ClusterConfig {
    /// Defaults for a LAN cluster of about `expected_nodes` nodes: SWIM probes every
    /// second, route digests every 500 ms to 2 members, joins checked every second.
    pub fn new(name: &str, addr: &str, group: u32, expected_nodes: u32) -> ClusterConfig {
        let mut swim = foca::Config::new_lan(NonZeroU32::MIN.saturating_add(expected_nodes));
        swim.periodic_announce = Some(foca::PeriodicParams {
            frequency: Duration::from_secs(10),
            num_members: NonZeroUsize::MIN,
        });
        swim.periodic_announce_to_down_members = Some(foca::PeriodicParams {
            frequency: Duration::from_secs(5),
            num_members: NonZeroUsize::MIN.saturating_add(1),
        });
        ClusterConfig {
            name: name.to_string(),
            addr: addr.to_string(),
            bind: None,
            group,
            seeds: Vec::new(),
            ids_per_node: DEFAULT_IDS_PER_NODE,
            swim,
            route_sync_interval: Duration::from_millis(500),
            route_sync_fanout: 2,
            join_check_interval: Duration::from_secs(1),
            max_route_update_bytes: 60_000,
            repair_interval: None,
            rng_seed: 0,
            down_grace: DEFAULT_DOWN_GRACE,
        }
    }
}
