//! [`Cluster`]: one node's cluster state machine. Inputs are datagrams, timers and local
//! events; outputs are [`Effect`]s. No IO, no clock: the shell sends, sleeps and persists.
//!
//! It combines SWIM membership (foca) with route-table anti-entropy: every
//! `route_sync_interval` a node sends a summary of its table to a few random members, who
//! answer with newer entries. A node's own entry is kept by the node alone: when the table
//! says otherwise (it was declared dead, it restarted, its IDs collided) it raises its
//! incarnation, which also renews its SWIM identity. SWIM's "down" verdicts mark entries
//! dead at the incarnation SWIM saw, so a newer entry of a restarted node still wins.

use foca::{Foca, NoCustomBroadcast};

use super::outbox::Outbox;
use super::route_sync::digest_of;
use super::{
    ClusterConfig, ClusterError, ClusterMessage, ClusterTimer, Effect, MemberId, SwimCodec,
    SwimRng, Transfer, TransferPlan, TransferProgress,
};
use crate::ring::{choose_ids, NodeIx, RingId, RouteNode, RouteTable};

pub(crate) type Swim = Foca<MemberId, SwimCodec, SwimRng, NoCustomBroadcast>;

/// Where a node is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting to learn the route table before choosing ring IDs.
    Joining,
    /// Holding IDs, owning keys.
    Active,
    /// Marked dead in its own entry; streaming its ranges away.
    Leaving,
    /// Gone: every input is ignored.
    Left,
}

/// What a node kept from its previous run.
#[derive(Clone, Debug, Default)]
pub struct Restart {
    /// Its ring IDs (the IDs file); empty if it never chose any.
    pub ids: Vec<RingId>,
    /// The last route table it persisted ([`Effect::RouteTableChanged`]).
    pub table: Option<RouteTable>,
    /// Its unfinished outgoing transfers.
    pub transfers: Vec<TransferProgress>,
}

/// One node's cluster logic. See the module docs.
pub struct Cluster {
    pub(crate) config: ClusterConfig,
    pub(crate) swim: Swim,
    pub(crate) rng: SwimRng,
    pub(crate) phase: Phase,
    pub(crate) ids: Vec<RingId>,
    pub(crate) incarnation: u64,
    pub(crate) table: RouteTable,
    pub(crate) plan: TransferPlan,
    /// A peer answered a digest with nothing newer: this node has caught up.
    pub(crate) caught_up: bool,
    /// The group's ring as last checked for balance (`balance.rs`).
    pub(crate) ring_watch: super::balance::RingWatch,
    /// Members SWIM declared down, oldest first, each with a [`ClusterTimer::DownGrace`]
    /// pending: marked dead in the table when it fires, unless they came back.
    pub(crate) down_pending: std::collections::VecDeque<MemberId>,
    /// A leave was asked for and starts once the group's ring has settled.
    pub(crate) leave_requested: bool,
}

impl Cluster {
    /// Starts a node: fresh (`restart` = `None`) or from what it kept. Announces to the
    /// seeds and schedules the first timers.
    pub fn start(
        config: ClusterConfig,
        restart: Option<Restart>,
    ) -> Result<(Cluster, Vec<Effect>), ClusterError> {
        let restart = restart.unwrap_or_default();
        let table = restart.table.unwrap_or_default();
        let last = table.node(&config.name).map_or(0, |n| n.incarnation);
        let incarnation = last.saturating_add(1);
        let me = member_id(&config, incarnation);
        let mut rng = SwimRng::new(config.rng_seed);
        let swim_rng = SwimRng::new(rng.next_word());
        let swim = Foca::new(me, config.swim.clone(), swim_rng, SwimCodec);
        let phase = match restart.ids.is_empty() {
            true => Phase::Joining,
            false => Phase::Active,
        };
        let mut cluster = Cluster {
            config,
            swim,
            rng,
            phase,
            ids: restart.ids,
            incarnation,
            table,
            plan: TransferPlan::resume(restart.transfers),
            caught_up: false,
            ring_watch: Default::default(),
            down_pending: Default::default(),
            leave_requested: false,
        };
        let mut out = Outbox::default();
        cluster.boot(&mut out)?;
        let effects = cluster.drain(out)?;
        Ok((cluster, effects))
    }

    fn boot(&mut self, out: &mut Outbox) -> Result<(), ClusterError> {
        let before = RouteTable::default();
        if self.phase == Phase::Joining && self.config.seeds.is_empty() {
            self.choose_first_ids(out)?;
        }
        self.settle(before, out)?;
        self.announce_to_seeds(out)?;
        out.schedule(self.config.route_sync_interval, ClusterTimer::RouteSync);
        out.schedule(self.config.join_check_interval, ClusterTimer::JoinCheck);
        if let Some(every) = self.config.repair_interval {
            out.schedule(every, ClusterTimer::Repair);
        }
        Ok(())
    }

    /// Handles one datagram from another member.
    pub fn handle_message(&mut self, bytes: &[u8]) -> Result<Vec<Effect>, ClusterError> {
        if self.phase == Phase::Left {
            return Ok(Vec::new());
        }
        let mut out = Outbox::default();
        match ClusterMessage::decode(bytes)? {
            ClusterMessage::Swim(packet) => self.swim.handle_data(&packet, &mut out)?,
            ClusterMessage::RouteDigest {
                from_addr, entries, ..
            } => self.answer_digest(&from_addr, &entries, &mut out)?,
            ClusterMessage::RouteUpdate {
                from_addr,
                version,
                entries,
                want,
            } => self.take_update(&from_addr, version, entries, &want, &mut out)?,
        }
        self.drain(out)
    }

    /// Handles a timer the shell scheduled on an earlier [`Effect::Schedule`].
    pub fn handle_timer(&mut self, timer: ClusterTimer) -> Result<Vec<Effect>, ClusterError> {
        if self.phase == Phase::Left {
            return Ok(Vec::new());
        }
        let mut out = Outbox::default();
        match timer {
            ClusterTimer::Swim(timer) => self.swim.handle_timer(timer, &mut out)?,
            ClusterTimer::RouteSync => self.route_sync(&mut out)?,
            ClusterTimer::JoinCheck => self.join_check(&mut out)?,
            ClusterTimer::Repair => {
                out.effects.push(Effect::Repair(self.repair_tasks()));
                if let Some(every) = self.config.repair_interval {
                    out.schedule(every, ClusterTimer::Repair);
                }
            }
            ClusterTimer::DownGrace => self.down_grace_over(&mut out)?,
        }
        self.drain(out)
    }

    /// Starts a graceful leave: the node marks its own entry leaving, streams its ranges to
    /// their new owners, then leaves SWIM and emits [`Effect::Left`]. An active node whose
    /// group's ring is still moving (a join or balancing round under way) first waits for
    /// it to settle ([`Cluster::ready_to_leave`], checked at every join check): a leave
    /// that moved ranges again before every node knew where they were could send reads of
    /// them to a node that never held them.
    pub fn leave(&mut self) -> Result<Vec<Effect>, ClusterError> {
        let mut out = Outbox::default();
        match self.phase {
            // Alone (no member to wait for), there is no ring to settle.
            Phase::Active if !self.ready_to_leave() && self.swim.num_members() > 0 => {
                self.leave_requested = true
            }
            Phase::Active | Phase::Joining => self.start_leaving(&mut out)?,
            Phase::Leaving | Phase::Left => {}
        }
        self.drain(out)
    }

    /// Whether a leave was asked for and waits for the ring to settle.
    pub fn leave_requested(&self) -> bool {
        self.leave_requested
    }

    pub(crate) fn start_leaving(&mut self, out: &mut Outbox) -> Result<(), ClusterError> {
        self.leave_requested = false;
        self.phase = Phase::Leaving;
        let before = self.table.clone();
        self.settle(before, out)?;
        self.route_sync(out)
    }

    /// Cancels a leave that has not finished (`undrain`): the node takes its entry back as
    /// alive at a higher incarnation (a leaving entry outranks an alive one of the same
    /// incarnation), so its ranges come back to it and their new owners hand back what they
    /// were sent; its own unfinished transfers are dropped by the re-plan. A node that has
    /// left cannot stay: [`ClusterError::AlreadyLeft`].
    pub fn stay(&mut self) -> Result<Vec<Effect>, ClusterError> {
        let mut out = Outbox::default();
        self.leave_requested = false;
        match self.phase {
            Phase::Left => return Err(ClusterError::AlreadyLeft),
            Phase::Leaving => {
                self.phase = match self.ids.is_empty() {
                    true => Phase::Joining,
                    false => Phase::Active,
                };
                let before = self.table.clone();
                self.settle(before, &mut out)?;
                self.route_sync(&mut out)?;
            }
            Phase::Joining | Phase::Active => {}
        }
        self.drain(out)
    }

    /// Records that transfer `id` delivered every key up to `cursor` (see [`Transfer`]).
    pub fn transfer_progress(
        &mut self,
        id: u64,
        cursor: crate::wire::KeyId,
    ) -> Result<Vec<Effect>, ClusterError> {
        self.plan.advance(id, cursor)?;
        let mut out = Outbox::default();
        self.finish_leave_if_done(&mut out)?;
        self.drain(out)
    }

    /// Records that transfer `id` delivered everything.
    pub fn transfer_done(&mut self, id: u64) -> Result<Vec<Effect>, ClusterError> {
        self.plan.finish(id);
        let mut out = Outbox::default();
        self.finish_leave_if_done(&mut out)?;
        self.drain(out)
    }

    /// The pending outgoing transfers.
    pub fn transfers(&self) -> &[Transfer] {
        self.plan.transfers()
    }

    /// The route table as this node knows it.
    pub fn route_table(&self) -> &RouteTable {
        &self.table
    }

    /// The node's phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The node's ring IDs (empty while joining).
    pub fn ids(&self) -> &[RingId] {
        &self.ids
    }

    /// The node's current SWIM identity.
    pub fn me(&self) -> MemberId {
        member_id(&self.config, self.incarnation)
    }

    /// The members SWIM believes alive (not this node).
    pub fn live_members(&self) -> Vec<MemberId> {
        self.swim.iter_members().map(|m| m.id().clone()).collect()
    }

    /// Ranges to compare with the other groups ([`super::repair_tasks`] for this node).
    pub fn repair_tasks(&self) -> Vec<super::RepairTask> {
        super::repair_tasks(&self.table, &self.config.name)
    }

    /// The entry this node wants in the table (`None` while joining).
    pub(crate) fn desired_entry(&self) -> Option<RouteNode> {
        let (alive, leaving) = match self.phase {
            Phase::Joining => return None,
            Phase::Active => (true, false),
            Phase::Leaving => (false, true),
            Phase::Left => (false, false),
        };
        // A node that has left owns no IDs in the table: that is how the rest of the group
        // tells a finished leave (everything handed over) from a death (`RouteNode::has_left`).
        let ids = match self.phase {
            Phase::Left => Vec::new(),
            _ => self.ids.clone(),
        };
        Some(RouteNode {
            name: self.config.name.clone(),
            addr: self.config.addr.clone(),
            group: self.config.group,
            ids,
            alive,
            leaving,
            incarnation: self.incarnation,
        })
    }

    /// The first IDs of a node: chosen against its group's ring as the table shows it.
    pub(crate) fn choose_first_ids(&mut self, out: &mut Outbox) -> Result<(), ClusterError> {
        let rings = self.table.rings();
        let ring = rings.get(&self.config.group).cloned().unwrap_or_default();
        let ring = self.without_me(ring);
        self.ids = choose_ids(&ring, self.config.ids_per_node, &mut self.rng)?;
        out.effects.push(Effect::IdsChosen(self.ids.clone()));
        self.phase = Phase::Active;
        Ok(())
    }

    /// `ring` without this node's IDs.
    pub(crate) fn without_me(&self, ring: crate::ring::GroupRing) -> crate::ring::GroupRing {
        match self.my_index() {
            Some(ix) => ring.without_node(ix),
            None => ring,
        }
    }

    /// This node's number in the table's rings.
    pub(crate) fn my_index(&self) -> Option<NodeIx> {
        let at = self
            .table
            .nodes
            .iter()
            .position(|n| n.name == self.config.name)?;
        u32::try_from(at).ok().map(NodeIx)
    }

    /// Hands foca's notifications to [`Cluster::react`] until none are left.
    fn drain(&mut self, mut out: Outbox) -> Result<Vec<Effect>, ClusterError> {
        while !out.notifications.is_empty() {
            for notification in std::mem::take(&mut out.notifications) {
                self.react(notification, &mut out)?;
            }
        }
        Ok(out.effects)
    }
}

/// The SWIM identity of the node `config` describes at `incarnation`.
pub(crate) fn member_id(config: &ClusterConfig, incarnation: u64) -> MemberId {
    MemberId {
        name: config.name.clone(),
        addr: config.addr.clone(),
        group: config.group,
        incarnation,
    }
}

/// A summary of `table` as one datagram to `from_addr`'s peers.
pub(crate) fn digest_message(from_addr: &str, table: &RouteTable) -> ClusterMessage {
    ClusterMessage::RouteDigest {
        from_addr: from_addr.to_string(),
        version: table.version,
        entries: digest_of(table),
    }
}
