//! How a [`Cluster`] reacts: to route exchanges, to SWIM's verdicts, to its own timers, and
//! after every table change (keep its own entry, resolve ID collisions, re-plan transfers).

use foca::OwnedNotification;

use super::outbox::Outbox;
use super::route_sync::{answer_digest, entries_named};
use super::state::{digest_message, member_id, Phase};
use super::{Cluster, ClusterError, ClusterMessage, ClusterTimer, Effect, EntrySummary, MemberId};
use crate::ring::{choose_ids, RouteNode, RouteTable};

impl Cluster {
    /// Answers a digest: entries the sender lacks or holds older, and names to send back.
    /// Always answers, so an empty answer tells a joining node it has caught up.
    pub(crate) fn answer_digest(
        &mut self,
        from_addr: &str,
        theirs: &[EntrySummary],
        out: &mut Outbox,
    ) -> Result<(), ClusterError> {
        let rotate = usize::try_from(self.rng.next_word() % 4096).unwrap_or(0);
        let cap = self.config.max_route_update_bytes;
        let (entries, want) = answer_digest(&self.table, theirs, cap, rotate);
        let answer = ClusterMessage::RouteUpdate {
            from_addr: self.config.addr.clone(),
            version: self.table.version,
            entries,
            want,
        };
        out.send(from_addr, answer.encode()?);
        Ok(())
    }

    /// Merges an update and sends back the entries it asks for.
    pub(crate) fn take_update(
        &mut self,
        from_addr: &str,
        version: u64,
        entries: Vec<RouteNode>,
        want: &[String],
        out: &mut Outbox,
    ) -> Result<(), ClusterError> {
        if entries.is_empty() {
            self.caught_up = true;
        }
        let before = self.table.clone();
        self.table.merge(&RouteTable::new(version, entries));
        self.settle(before, out)?;
        if !want.is_empty() {
            let cap = self.config.max_route_update_bytes;
            let back = ClusterMessage::RouteUpdate {
                from_addr: self.config.addr.clone(),
                version: self.table.version,
                entries: entries_named(&self.table, want, cap),
                want: Vec::new(),
            };
            out.send(from_addr, back.encode()?);
        }
        Ok(())
    }

    /// After the table may have changed from `before`: keeps this node's entry, resolves
    /// ID collisions, re-plans transfers and reports the change.
    pub(crate) fn settle(
        &mut self,
        before: RouteTable,
        out: &mut Outbox,
    ) -> Result<(), ClusterError> {
        self.assert_own_entry(out)?;
        if self.resolve_id_collision(out)? {
            self.assert_own_entry(out)?;
        }
        if self.table != before {
            // The table first: the shell routes by it before any transfer of the new plan
            // starts. A copy sent while this node still routed by the old table could come
            // back to it (a receiver that has not heard of the change forwards it to its old
            // owner), be stored here as "not newer", and the record then be dropped here as
            // handed over.
            out.effects
                .push(Effect::RouteTableChanged(self.table.clone()));
            if self.plan.replan(&before, &self.table, &self.config.name) {
                out.effects.push(Effect::TransfersChanged);
            }
        }
        self.finish_leave_if_done(out)
    }

    /// Puts this node's entry in the table; if the table holds one that ranks at least as
    /// high but differs (a death report, a stale copy from before a restart), raises the
    /// incarnation above it and renews the SWIM identity.
    fn assert_own_entry(&mut self, out: &mut Outbox) -> Result<(), ClusterError> {
        let Some(mut want) = self.desired_entry() else {
            return Ok(());
        };
        let current = self.table.node(&self.config.name).cloned();
        if current.as_ref() == Some(&want) {
            return Ok(());
        }
        if let Some(current) = current {
            let outranks = (current.incarnation, current.liveness_rank())
                >= (want.incarnation, want.liveness_rank());
            if outranks && self.phase == Phase::Active {
                self.incarnation = current.incarnation.saturating_add(1);
                want.incarnation = self.incarnation;
                let me = member_id(&self.config, self.incarnation);
                self.swim.change_identity(me, &mut *out)?;
            }
        }
        let version = self.table.version.saturating_add(1);
        self.table.merge(&RouteTable::new(version, vec![want]));
        Ok(())
    }

    /// If another node holds some of this node's IDs (it is listed first, so it wins them),
    /// chooses new IDs; true if it did.
    fn resolve_id_collision(&mut self, out: &mut Outbox) -> Result<bool, ClusterError> {
        let Some(ix) = self.my_index() else {
            return Ok(false);
        };
        if self.phase != Phase::Active {
            return Ok(false);
        }
        let rings = self.table.rings();
        let Some(ring) = rings.get(&self.config.group) else {
            return Ok(false);
        };
        if !ring.shadowed().iter().any(|(_, node)| *node == ix) {
            return Ok(false);
        }
        let others = ring.without_node(ix);
        self.ids = choose_ids(&others, self.config.ids_per_node, &mut self.rng)?;
        out.effects.push(Effect::IdsChosen(self.ids.clone()));
        Ok(true)
    }

    /// Ends a leave once nothing is left to stream: the node's entry turns from leaving to
    /// dead (nothing is left to read through it) and is pushed to a few members, since a
    /// node that has left answers no more route exchanges.
    pub(crate) fn finish_leave_if_done(&mut self, out: &mut Outbox) -> Result<(), ClusterError> {
        if self.phase == Phase::Leaving && self.plan.is_empty() {
            let targets: Vec<String> = self
                .swim
                .iter_members()
                .map(|m| m.id().addr.clone())
                .take(self.config.route_sync_fanout.max(1))
                .collect();
            self.swim.leave_cluster(&mut *out)?;
            self.phase = Phase::Left;
            // Past any "down" verdict SWIM may have given at the leaving incarnation: the
            // entry that says the leave finished must win over one that says it died.
            self.incarnation = self.incarnation.saturating_add(1);
            let before = self.table.clone();
            self.assert_own_entry(out)?;
            if let Some(mine) = self.table.node(&self.config.name).cloned() {
                let update = ClusterMessage::RouteUpdate {
                    from_addr: self.config.addr.clone(),
                    version: self.table.version,
                    entries: vec![mine],
                    want: Vec::new(),
                };
                let bytes = update.encode()?;
                for to in &targets {
                    out.send(to, bytes.clone());
                }
            }
            if self.table != before {
                out.effects
                    .push(Effect::RouteTableChanged(self.table.clone()));
            }
            out.effects.push(Effect::Left);
        }
        Ok(())
    }

    /// Reacts to one SWIM notification.
    pub(crate) fn react(
        &mut self,
        notification: OwnedNotification<MemberId>,
        out: &mut Outbox,
    ) -> Result<(), ClusterError> {
        match notification {
            OwnedNotification::MemberUp(id) => {
                let digest = digest_message(&self.config.addr, &self.table);
                out.send(&id.addr, digest.encode()?);
                out.effects.push(Effect::MemberUp(id));
            }
            OwnedNotification::MemberDown(id) => {
                if self.config.down_grace.is_zero() {
                    self.mark_down(&id, out)?;
                } else {
                    self.down_pending.push_back(id.clone());
                    out.schedule(self.config.down_grace, ClusterTimer::DownGrace);
                }
                out.effects.push(Effect::MemberDown(id));
            }
            OwnedNotification::Rejoin(id) => {
                self.incarnation = self.incarnation.max(id.incarnation);
                let before = self.table.clone();
                self.settle(before, out)?;
            }
            OwnedNotification::Defunct if self.phase == Phase::Active => {
                self.incarnation = self.incarnation.saturating_add(1);
                let me = member_id(&self.config, self.incarnation);
                self.swim.change_identity(me, &mut *out)?;
                let before = self.table.clone();
                self.settle(before, out)?;
                self.announce_to_seeds(out)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The grace of the member declared down longest ago is over: it is marked dead in the
    /// table (its ranges move) unless SWIM sees it alive again.
    pub(crate) fn down_grace_over(&mut self, out: &mut Outbox) -> Result<(), ClusterError> {
        let Some(id) = self.down_pending.pop_front() else {
            return Ok(());
        };
        let back = self.swim.iter_members().any(|m| m.id().name == id.name);
        if !back {
            self.mark_down(&id, out)?;
        }
        Ok(())
    }

    /// Marks `id`'s entry dead at the incarnation SWIM saw, unless the entry is newer or
    /// SWIM already knows a newer identity of the same node.
    fn mark_down(&mut self, id: &MemberId, out: &mut Outbox) -> Result<(), ClusterError> {
        if id.name == self.config.name {
            return Ok(());
        }
        let Some(entry) = self.table.node(&id.name) else {
            return Ok(());
        };
        let renewed = self
            .swim
            .iter_members()
            .any(|m| m.id().name == id.name && m.id().incarnation > id.incarnation);
        if !entry.reachable() || entry.incarnation > id.incarnation || renewed {
            return Ok(());
        }
        let dead = RouteNode {
            alive: false,
            leaving: false,
            incarnation: id.incarnation,
            ..entry.clone()
        };
        let before = self.table.clone();
        self.table
            .merge(&RouteTable::new(self.table.version, vec![dead]));
        self.settle(before, out)
    }

    /// Sends digests to `route_sync_fanout` random live members (the seeds if none).
    pub(crate) fn route_sync(&mut self, out: &mut Outbox) -> Result<(), ClusterError> {
        let mut targets: Vec<String> = self
            .swim
            .iter_members()
            .map(|m| m.id().addr.clone())
            .collect();
        if targets.is_empty() {
            targets = self.config.seeds.clone();
        }
        let digest = digest_message(&self.config.addr, &self.table).encode()?;
        for _ in 0..self.config.route_sync_fanout.min(targets.len()) {
            let pick = usize::try_from(
                self.rng.next_word() % crate::cluster::reader::as_u64(targets.len()),
            );
            let Some(to) = pick.ok().map(|at| targets.swap_remove(at)) else {
                break;
            };
            out.send(&to, digest.clone());
        }
        if self.phase != Phase::Left {
            out.schedule(self.config.route_sync_interval, ClusterTimer::RouteSync);
        }
        Ok(())
    }

    /// Joining: choose IDs once caught up, else ask the seeds again. Joined: start a leave
    /// asked for once the ring has settled; else announce to the seeds if SWIM knows nobody
    /// (isolated, or everyone else restarted), else check that the group's ring is
    /// balanced (`balance.rs`).
    pub(crate) fn join_check(&mut self, out: &mut Outbox) -> Result<(), ClusterError> {
        match self.phase {
            Phase::Joining if self.caught_up => {
                let before = self.table.clone();
                self.choose_first_ids(out)?;
                self.settle(before, out)?;
            }
            Phase::Joining => self.announce_to_seeds(out)?,
            Phase::Active if self.leave_requested => self.leave_check(out)?,
            Phase::Active if self.swim.num_members() == 0 => self.announce_to_seeds(out)?,
            Phase::Active => self.balance_check(out)?,
            _ => {}
        }
        if self.phase != Phase::Left {
            out.schedule(self.config.join_check_interval, ClusterTimer::JoinCheck);
        }
        Ok(())
    }

    /// SWIM announce and a route digest to every seed, and every other member of the route
    /// table this node kept (but one that left), but not this node itself: a node that
    /// restarts finds its cluster again through the members it knew, seeds given or not —
    /// a whole cluster restarted without `--seed` forms one membership again, not one per
    /// node serving tables that drift apart.
    pub(crate) fn announce_to_seeds(&mut self, out: &mut Outbox) -> Result<(), ClusterError> {
        let digest = digest_message(&self.config.addr, &self.table).encode()?;
        for seed in self.announce_targets() {
            self.swim.announce(MemberId::seed(&seed), &mut *out)?;
            out.send(&seed, digest.clone());
        }
        Ok(())
    }

    /// The seeds, then the addresses of the table's other members (left ones aside),
    /// without this node and without repeats.
    fn announce_targets(&self) -> Vec<String> {
        let known = self
            .table
            .nodes
            .iter()
            .filter(|n| n.name != self.config.name && !n.has_left())
            .map(|n| n.addr.clone());
        let mut targets: Vec<String> = Vec::new();
        for addr in self.config.seeds.iter().cloned().chain(known) {
            if addr != self.config.addr && !targets.contains(&addr) {
                targets.push(addr);
            }
        }
        targets
    }
}
