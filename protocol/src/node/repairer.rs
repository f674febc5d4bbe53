//! Background repair between groups (the driver of `cluster::RepairRange`, which makes every
//! decision): for each range this node shares with a node of another
//! group, the two digest trees are compared first (`RANGE_DIGEST`); in the sub-ranges where
//! they differ, both sides' metas are listed page by page (this node's backend, the peer's
//! `ITERATE`) and every (key, column) the peer lacks, or holds older with other bytes, is
//! written to it. Each side pushes what it has, so a round on both ends converges them.
//!
//! Removes are carried too: each side remembers its removes for a retention period (the
//! backend's remove log) and sends a conditional remove for every value the peer holds
//! older than one; copies older than a remembered remove are refused by the receiver.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ringblob_backends::{AsyncBackend, Backend};

use super::copy;
use super::task_error::TaskError;
use crate::client::{Client, ClientConfig, ClientSecurity};
use crate::cluster::local::{self, LocalError};
use crate::cluster::{RepairAnswer, RepairRange, RepairStep, RepairTally, RepairTask};
use crate::ring::RouteTable;
use crate::wire::Status;

/// Totals for `stat`.
#[derive(Default, Debug)]
pub struct RepairCounters {
    pub rounds: AtomicU64,
    pub records_compared: AtomicU64,
    /// Ranges whose digests matched the peer's: nothing was listed or copied.
    pub ranges_in_sync: AtomicU64,
    pub records_pushed: AtomicU64,
    /// Removes carried to a peer that still held an older value.
    pub removes_pushed: AtomicU64,
    /// Quarantined records dropped: the peer group lacked them or held them newer.
    pub quarantine_dropped: AtomicU64,
    pub failures: AtomicU64,
}

/// Runs repair rounds, one at a time.
pub struct Repairer {
    backend: AsyncBackend,
    name: String,
    running: AtomicBool,
    pub counters: Arc<RepairCounters>,
    /// While quarantined, older records the peer lacks or holds newer are dropped, not
    /// pushed (`quarantine.rs`).
    quarantine: Arc<super::Quarantine>,
    /// The cluster key this node proves to its peers.
    security: ClientSecurity,
}

impl Repairer {
    pub fn new(
        backend: Arc<dyn Backend>,
        name: &str,
        quarantine: Arc<super::Quarantine>,
        security: ClientSecurity,
    ) -> Repairer {
        Repairer {
            backend: AsyncBackend::new(backend, 1),
            name: name.to_string(),
            running: AtomicBool::new(false),
            counters: Arc::default(),
            quarantine,
            security,
        }
    }

    /// Starts a round over `tasks` unless one is still running.
    pub fn start(self: &Arc<Self>, tasks: Vec<RepairTask>, table: Arc<RouteTable>) {
        if self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let mut clean = true;
            for t in &tasks {
                if let Err(e) = me.repair(t, &table).await {
                    clean = false;
                    me.counters.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(peer = %t.peer, error = %e, "repair of a range failed");
                }
            }
            let compared = table
                .rings()
                .keys()
                .any(|g| Some(*g) != table.node(&me.name).map(|n| n.group));
            me.quarantine.round_done(clean, compared);
            me.counters.rounds.fetch_add(1, Ordering::Relaxed);
            me.running.store(false, Ordering::Release);
        });
    }

    async fn repair(&self, t: &RepairTask, table: &RouteTable) -> Result<(), TaskError> {
        let addr = table
            .node(&t.peer)
            .filter(|n| n.alive)
            .map(|n| n.addr.clone())
            .ok_or_else(|| TaskError::PeerDown(t.peer.clone()))?;
        let config = ClientConfig {
            name: format!("{} (repair)", self.name),
            security: self.security.clone(),
            group: t.peer_group,
            ..ClientConfig::default()
        };
        let peer = Client::connect(&addr, config)
            .await
            .map_err(|source| TaskError::Connect { addr, source })?;
        let mut round = RepairRange::new(t, self.quarantine.before());
        let mut answer = RepairAnswer::Start;
        let done = loop {
            match round.advance(answer) {
                Ok(RepairStep::Done) => break Ok(()),
                Ok(step) => match self.perform(&peer, step).await {
                    Ok(a) => answer = a,
                    Err(e) => break Err(e),
                },
                Err(e) => break Err(e.into()),
            }
        };
        self.count(round.tally());
        done
    }

    /// Adds one range's tally to the counters.
    fn count(&self, tally: RepairTally) {
        let c = &self.counters;
        c.records_compared
            .fetch_add(tally.records_compared, Ordering::Relaxed);
        c.ranges_in_sync
            .fetch_add(u64::from(tally.in_sync), Ordering::Relaxed);
        c.records_pushed
            .fetch_add(tally.records_pushed, Ordering::Relaxed);
        c.removes_pushed
            .fetch_add(tally.removes_pushed, Ordering::Relaxed);
        c.quarantine_dropped
            .fetch_add(tally.quarantine_dropped, Ordering::Relaxed);
    }

    /// Carries out one step of a range's repair.
    async fn perform(&self, peer: &Client, step: RepairStep) -> Result<RepairAnswer, TaskError> {
        let b = &self.backend;
        Ok(match step {
            RepairStep::DigestMine(range) => RepairAnswer::Digest(
                copy::local(b, move |b| {
                    local::digest_entries(b, &range).map_err(|source| LocalError::Backend {
                        what: "summarising a range",
                        source,
                    })
                })
                .await?,
            ),
            RepairStep::PeerDigest(req) => match peer.range_digest(req).await {
                Ok(reply) => RepairAnswer::PeerDigest(Some(reply)),
                Err(e) if e.status() == Some(Status::UnknownCommand) => {
                    RepairAnswer::PeerDigest(None)
                }
                Err(e) => return Err(TaskError::peer("asking for a range digest")(e)),
            },
            RepairStep::ListPage(req) => {
                RepairAnswer::Page(copy::local(b, move |b| local::list(b, &req)).await?)
            }
            RepairStep::PeerList(req) => {
                let (entries, end) = peer
                    .iterate(req)
                    .await
                    .map_err(TaskError::peer("listing the peer's values"))?;
                RepairAnswer::PeerPage { entries, end }
            }
            RepairStep::ReadRecord { key, column } => RepairAnswer::Record(
                copy::local(b, move |b| local::read_record(b, key, column)).await?,
            ),
            RepairStep::SendCopy {
                key,
                column,
                record,
            } => RepairAnswer::Sent(copy::send_copy(peer, key, column, record).await?),
            RepairStep::DropCopy {
                key,
                column,
                timestamp_ns,
            } => RepairAnswer::Dropped(
                copy::local(b, move |b| local::drop_copy(b, key, column, timestamp_ns)).await?,
            ),
            RepairStep::ListRemoves(span) => {
                RepairAnswer::Removes(copy::local(b, move |b| local::removes_in(b, &span)).await?)
            }
            RepairStep::SendRemove(r) => RepairAnswer::Sent(copy::send_remove(peer, &r).await?),
            RepairStep::Done => RepairAnswer::Start,
        })
    }
}
