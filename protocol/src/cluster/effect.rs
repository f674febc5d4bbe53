//! What the cluster state machine asks its shell to do: [`Effect`]s, and the timers it
//! hands back when they fire ([`ClusterTimer`]).

use std::time::Duration;

use super::{MemberId, RepairTask};
use crate::ring::{RingId, RouteTable};

/// A timer the shell must hand back through [`Cluster::handle_timer`](super::Cluster::handle_timer)
/// after the requested delay. Timers are never cancelled: a stale one is ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterTimer {
    /// A SWIM (foca) timer.
    Swim(foca::Timer<MemberId>),
    /// Time to send route digests to random members.
    RouteSync,
    /// Time to check the join: choose IDs, or announce to the seeds again.
    JoinCheck,
    /// Time to compare ranges with the other groups.
    Repair,
    /// A member SWIM declared down `down_grace` ago: mark it dead in the route table now,
    /// unless it came back (the oldest such member first).
    DownGrace,
}

/// One thing for the shell to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Send `bytes` (one cluster message) to the member at `to` (`host:port`). Loss is
    /// tolerated; order does not matter.
    Send { to: String, bytes: Vec<u8> },
    /// Hand `timer` back after `after`.
    Schedule {
        after: Duration,
        timer: ClusterTimer,
    },
    /// SWIM found a member alive.
    MemberUp(MemberId),
    /// SWIM declared a member down (or it left).
    MemberDown(MemberId),
    /// The route table changed: persist it (it seeds a restart) and serve it as `ROUTE_LIST`.
    RouteTableChanged(RouteTable),
    /// This node chose (or re-chose) its ring IDs: write the IDs file before serving.
    IdsChosen(Vec<RingId>),
    /// The list of outgoing transfers changed: read [`Cluster::transfers`](super::Cluster::transfers),
    /// persist their progress records and (re)start the streams.
    TransfersChanged,
    /// Compare these ranges with the named peers (digest trees, then copy the differences).
    Repair(Vec<RepairTask>),
    /// A leave finished: every transfer is done and SWIM was told; the node may stop.
    Left,
}
