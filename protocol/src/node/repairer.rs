//! Background repair between groups: for each range this node shares with a node of another
//! group, the two digest trees are compared first (`RANGE_DIGEST`); in the sub-ranges where
//! they differ, both sides' metas are listed page by page (this node's backend, the peer's
//! `ITERATE`) and every (key, column) the peer lacks, or holds older with other bytes, is
//! written to it. Each side pushes what it has, so a round on both ends converges them.
//!
//! Removes are carried too: each side remembers its removes for a retention period (the
//! backend's remove log) and sends a conditional remove for every value the peer holds
//! older than one; copies older than a remembered remove are refused by the receiver.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ringblob_backends::{AsyncBackend, Backend, Meta};

use super::copy;
use super::key_span::{self, RangePages};
use crate::client::{Client, ClientConfig};
use crate::cluster::{depth_for, DigestTree, RepairTask};
use crate::ring::{KeyRange, RouteTable};
use crate::wire::{
    IterPosition, IterateEnd, IterateRequest, RangeDigestRequest, Status, ValueMeta,
    MAX_RANGE_DIGEST_DEPTH,
};

/// Entries compared per page.
const PAGE: usize = 1000;

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
}

impl Repairer {
    pub fn new(
        backend: Arc<dyn Backend>,
        name: &str,
        quarantine: Arc<super::Quarantine>,
    ) -> Repairer {
        Repairer {
            backend: AsyncBackend::new(backend, 1),
            name: name.to_string(),
            running: AtomicBool::new(false),
            counters: Arc::default(),
            quarantine,
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

    async fn repair(&self, t: &RepairTask, table: &RouteTable) -> Result<(), String> {
        let addr = table
            .node(&t.peer)
            .filter(|n| n.alive)
            .map(|n| n.addr.clone())
            .ok_or("peer not alive")?;
        let config = ClientConfig {
            name: format!("{} (repair)", self.name),
            group: t.peer_group,
            ..ClientConfig::default()
        };
        let peer = Client::connect(&addr, config)
            .await
            .map_err(|e| e.to_string())?;
        for span in self.differing(&peer, t.range).await? {
            self.repair_span(&peer, &span).await?;
        }
        Ok(())
    }

    /// The sub-ranges of `range` where this node and the peer differ, found by comparing
    /// digest trees (one `RANGE_DIGEST` round trip); the whole range if the peer predates
    /// `RANGE_DIGEST`.
    async fn differing(&self, peer: &Client, range: KeyRange) -> Result<Vec<KeyRange>, String> {
        let mine = self
            .backend
            .run(move |b| key_span::digest_entries(b, &range))
            .await
            .map_err(|e| e.to_string())?;
        let depth = depth_for(mine.len()).min(MAX_RANGE_DIGEST_DEPTH);
        let req = RangeDigestRequest {
            start_excl: range.start_excl.0,
            end_incl: range.end_incl.0,
            depth,
        };
        let theirs = match peer.range_digest(req).await {
            Ok(reply) => reply,
            Err(e) if e.status() == Some(Status::UnknownCommand) => return Ok(vec![range]),
            Err(e) => return Err(e.to_string()),
        };
        let theirs = DigestTree::from_leaves(range, depth, theirs.leaves)
            .ok_or("the peer's digest does not fit the range")?;
        let differing = DigestTree::build(range, depth, &mine)
            .diff(&theirs)
            .map_err(|e| e.to_string())?;
        if differing.is_empty() {
            self.counters.ranges_in_sync.fetch_add(1, Ordering::Relaxed);
        }
        Ok(differing)
    }

    /// Compares every value of `span` with the peer's, page by page, and pushes what the
    /// peer lacks or holds older.
    async fn repair_span(&self, peer: &Client, span: &KeyRange) -> Result<(), String> {
        let mut pages = RangePages::new(*span, PAGE);
        while let Some(page) = pages.next(&self.backend).await? {
            let mine: Vec<&Meta> = page.entries.iter().collect();
            self.repair_page(peer, &mine).await?;
        }
        self.push_removes(peer, span).await
    }

    /// Carries the removes this node remembers in `span` to the peer as copied removes
    /// (`IF_NEWER`): the peer drops a value older than the remove, and remembers the remove
    /// either way, so its own round does not push the value back. Only differing spans get
    /// here, so a converged range sends nothing.
    async fn push_removes(&self, peer: &Client, span: &KeyRange) -> Result<(), String> {
        for r in copy::removes_in(&self.backend, span).await? {
            if copy::send_remove(peer, &r).await? {
                self.counters.removes_pushed.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Compares one page of this node's metas with the peer's over the same key span and
    /// pushes what the peer lacks or holds older.
    async fn repair_page(&self, peer: &Client, mine: &[&Meta]) -> Result<(), String> {
        let (Some(first), Some(last)) = (mine.first(), mine.last()) else {
            return Ok(());
        };
        let theirs = peer_metas(peer, first.key.0, last.key.0).await?;
        self.counters
            .records_compared
            .fetch_add(mine.len() as u64, Ordering::Relaxed);
        for m in mine {
            let theirs = theirs.get(&(m.key.0, m.column));
            if self.quarantine.untrusted(m.timestamp_ns) {
                // Quarantined: a record the peer lacks may be a value removed while this
                // node was away (and forgotten since); one the peer holds newer (other
                // bytes) is stale. The same bytes are kept, whatever their timestamps.
                let newer =
                    |t: &&ValueMeta| t.checksum != m.checksum && t.timestamp_ns > m.timestamp_ns;
                if theirs.is_none_or(|t| newer(&t)) {
                    self.drop_untrusted(m).await?;
                }
                continue;
            }
            let stale = match theirs {
                None => true,
                Some(t) => t.checksum != m.checksum && t.timestamp_ns < m.timestamp_ns,
            };
            if stale {
                self.push(peer, m).await?;
            }
        }
        Ok(())
    }

    /// Drops a quarantined record (`Backend::drop_copy`: not a remove).
    async fn drop_untrusted(&self, m: &Meta) -> Result<(), String> {
        let (key, column, ts) = (m.key, m.column, m.timestamp_ns);
        let dropped = self
            .backend
            .run(move |b| b.drop_copy(&key, column, ts))
            .await
            .map_err(|e| e.to_string())?;
        if dropped {
            self.counters
                .quarantine_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Pushes one (key, column) as a conditional copy: a peer that meanwhile got a newer
    /// write keeps it.
    async fn push(&self, peer: &Client, m: &Meta) -> Result<(), String> {
        let Some(record) = copy::read_record(&self.backend, m.key, m.column).await? else {
            return Ok(());
        };
        if copy::send_copy(peer, m.key, m.column, record).await? {
            self.counters.records_pushed.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// The peer's metas of every (key, column) in `from..=to`.
async fn peer_metas(
    peer: &Client,
    from: [u8; 32],
    to: [u8; 32],
) -> Result<HashMap<([u8; 32], u16), ValueMeta>, String> {
    let mut out = HashMap::new();
    let mut after: Option<IterPosition> = None;
    loop {
        let req = IterateRequest {
            from,
            to,
            after,
            limit: PAGE as u32,
        };
        let (entries, end) = peer.iterate(req).await.map_err(|e| e.to_string())?;
        for e in entries {
            out.insert((e.key, e.meta.column), e.meta);
        }
        match end {
            IterateEnd::Done => return Ok(out),
            IterateEnd::ResumeAfter(p) => after = Some(p),
        }
    }
}
