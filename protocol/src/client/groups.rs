//! Replication across groups, done by the client (as in Elliptics): a write goes to every
//! group it names (each through the node the client talks to, which forwards it to the
//! group's owner) and succeeds when W of them acknowledge; a read asks each group for the
//! value's meta, reads from the newest replica (preference order breaking ties, falling over
//! on errors and timeouts) and writes that value back to groups that miss it or hold an
//! older one (read repair). The decisions are `cluster::{WriteQuorum, ReplicatedRead}`,
//! which the simulator drives too; this file does the network. One write (or remove) sent
//! to several groups carries one version, chosen here, so every group stores it at the same
//! timestamp and no group's copy is "newer" than another's by clock difference alone.

use std::fmt;

use bytes::Bytes;
use tokio::task::JoinSet;

use super::{Client, ClientError, PutOptions, Target};
use crate::clock::now_ns;
pub use crate::cluster::Quorum;
use crate::cluster::{GroupAnswer, ReadStep, ReplicatedRead, WriteQuorum};
use crate::wire::{Status, ValueMeta};

/// What happened in each group.
#[derive(Debug, Default)]
pub struct GroupOutcome {
    pub succeeded: Vec<u32>,
    pub failed: Vec<(u32, ClientError)>,
    /// A streamed write whose quorum was missed: the size and CRC-32 of what the groups in
    /// `succeeded` stored, when any did.
    pub stored: Option<(u64, u32)>,
}

impl fmt::Display for GroupOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ok: Vec<String> = self.succeeded.iter().map(u32::to_string).collect();
        write!(
            f,
            "groups {}",
            if ok.is_empty() {
                "none".into()
            } else {
                ok.join(",")
            }
        )?;
        for (g, e) in &self.failed {
            write!(f, "; group {g} failed: {e}")?;
        }
        Ok(())
    }
}

/// A replicated read: the value, the group it came from, and the groups repaired.
#[derive(Debug)]
pub struct GroupRead {
    pub value: Bytes,
    pub group: u32,
    pub repaired: Vec<u32>,
}

impl Client {
    /// A client for group `group` over the same connection.
    pub fn in_group(&self, group: u32) -> Client {
        let conn = self.conn.try_lock().ok().and_then(|c| c.clone());
        let mut config = self.config.clone();
        config.group = group;
        Client {
            addr: self.addr.clone(),
            config,
            conn: tokio::sync::Mutex::new(conn),
        }
    }

    /// A client like this one with a connection of its own (made on its first request):
    /// for a long streamed reply, whose slow reader would otherwise hold up every other
    /// request sharing the connection (`Conn::send_streamed`).
    pub fn with_own_connection(&self) -> Client {
        Client {
            addr: self.addr.clone(),
            config: self.config.clone(),
            conn: tokio::sync::Mutex::new(None),
        }
    }

    /// Writes a column to every group in `groups`, concurrently, with one version for all
    /// (the options', or now); succeeds when `w` of them acknowledge. The outcome says which
    /// did; one failed group never fails a write that met `w`.
    pub async fn put_groups(
        &self,
        key: impl Into<Target>,
        column: u16,
        data: Bytes,
        o: PutOptions,
        groups: &[u32],
        w: Quorum,
    ) -> Result<GroupOutcome, GroupOutcome> {
        let (key, o) = (key.into(), one_version(o));
        let mut tasks = JoinSet::new();
        for &g in groups {
            let (c, data, key) = (self.in_group(g), data.clone(), key.clone());
            tasks.spawn(async move { (g, c.put_column(key, column, data, o).await.map(|_| ())) });
        }
        quorum_of(tasks, groups.len(), w).await
    }

    /// [`put_small`](Self::put_small) — a small value with its name record, one round trip
    /// — in every group at once; as [`put_groups`](Self::put_groups).
    pub async fn put_small_groups(
        &self,
        key: impl Into<Target>,
        (data, record): (Bytes, Option<Bytes>),
        o: PutOptions,
        groups: &[u32],
        w: Quorum,
    ) -> Result<GroupOutcome, GroupOutcome> {
        let (key, o) = (key.into(), one_version(o));
        let mut tasks = JoinSet::new();
        for &g in groups {
            let (c, key) = (self.in_group(g), key.clone());
            let (data, record) = (data.clone(), record.clone());
            tasks.spawn(async move { (g, c.put_small(key, data, record, o).await.map(|_| ())) });
        }
        quorum_of(tasks, groups.len(), w).await
    }

    /// Removes a key (every column) in every group at one version (now); as
    /// [`put_groups`](Self::put_groups). A group where the key is already absent counts as
    /// done.
    pub async fn remove_groups(
        &self,
        key: impl Into<Target>,
        durability: crate::wire::Durability,
        groups: &[u32],
        w: Quorum,
    ) -> Result<GroupOutcome, GroupOutcome> {
        let (key, version) = (key.into(), now_ns());
        let mut tasks = JoinSet::new();
        for &g in groups {
            let (c, key) = (self.in_group(g), key.clone());
            tasks.spawn(async move {
                let r = match c.remove_at(key, durability, version).await {
                    Err(e) if e.is_not_found() => Ok(()),
                    other => other,
                };
                (g, r)
            });
        }
        quorum_of(tasks, groups.len(), w).await
    }

    /// Reads a column from the group holding its newest version (`groups` in preference
    /// order), falling over to the next on errors, and repairs groups that miss it or hold
    /// an older one. A remove is a version too: when the newest version a group reports is
    /// a remove (`REMOVED` at T), the read is `REMOVED` and groups still holding an older
    /// value are sent the remove. `NotFound` only if no group has anything.
    pub async fn get_groups(
        &self,
        key: impl Into<Target>,
        column: u16,
        groups: &[u32],
    ) -> Result<GroupRead, ClientError> {
        let key = key.into();
        let answers = self.lookup_groups(key.clone(), column, groups).await;
        let mut read = ReplicatedRead::new(answers.into_iter().map(classify).collect());
        loop {
            match read.next_step() {
                ReadStep::ReadFrom { group } => {
                    match self
                        .in_group(group)
                        .get_column(key.clone(), column, 0, None)
                        .await
                    {
                        Ok(value) => {
                            let done = read.read_ok(group, crc32fast::hash(&value));
                            let copy = PutOptions::copy_if_newer(done.timestamp_ns);
                            let repaired = self
                                .repair(key.clone(), column, &value, copy, &done.repair)
                                .await;
                            return Ok(GroupRead {
                                value,
                                group,
                                repaired,
                            });
                        }
                        Err(e) => {
                            let damaged = e.status() == Some(Status::ChecksumMismatch);
                            read.read_failed(group, e, damaged);
                        }
                    }
                }
                ReadStep::Removed { at, repair, error } => {
                    self.repair_remove(key.clone(), column, at, &repair).await;
                    return Err(error);
                }
                ReadStep::Failed(error) => {
                    return Err(error.unwrap_or(ClientError::Status {
                        status: Status::NotFound,
                        message: "no group was asked".into(),
                    }))
                }
            }
        }
    }

    /// The group holding the newest version of (`key`, `column`) among `groups` and its
    /// meta, chosen as [`get_groups`](Self::get_groups) chooses where to read (every group
    /// looked up at once; a newer remove wins over older values), without reading the value
    /// or repairing anything: for lookups, and for streamed reads from that group.
    pub async fn newest_group(
        &self,
        key: impl Into<Target>,
        column: u16,
        groups: &[u32],
    ) -> Result<(u32, ValueMeta), ClientError> {
        let answers = self.lookup_groups(key.into(), column, groups).await;
        let metas: Vec<(u32, ValueMeta)> = answers
            .iter()
            .filter_map(|(g, a)| a.as_ref().ok().map(|m| (*g, *m)))
            .collect();
        let mut read = ReplicatedRead::new(answers.into_iter().map(classify).collect());
        match read.next_step() {
            ReadStep::ReadFrom { group } => metas
                .into_iter()
                .find(|(g, _)| *g == group)
                .ok_or_else(|| ClientError::Unexpected(format!("group {group} had no meta"))),
            ReadStep::Removed { error, .. } => Err(error),
            ReadStep::Failed(error) => Err(error.unwrap_or(ClientError::Status {
                status: Status::NotFound,
                message: "no group was asked".into(),
            })),
        }
    }

    /// Sends the remove at `removed_at` to `groups` (those whose answer was an older value,
    /// or nothing): a conditional copy, so a group written meanwhile keeps its newer value.
    async fn repair_remove(&self, key: Target, column: u16, removed_at: u64, groups: &[u32]) {
        for g in groups {
            let c = self.in_group(*g);
            if let Err(e) = c
                .remove_column_if_newer(key.clone(), column, removed_at)
                .await
            {
                tracing::debug!(group = g, error = %e, "read repair of a remove failed");
            }
        }
    }

    async fn lookup_groups(
        &self,
        key: Target,
        column: u16,
        groups: &[u32],
    ) -> Vec<(u32, Result<ValueMeta, ClientError>)> {
        let mut tasks = JoinSet::new();
        for (i, &g) in groups.iter().enumerate() {
            let (c, key) = (self.in_group(g), key.clone());
            tasks.spawn(async move { (i, g, c.lookup_column(key, column).await) });
        }
        let mut out = Vec::new();
        while let Some(Ok(r)) = tasks.join_next().await {
            out.push(r);
        }
        out.sort_by_key(|(i, _, _)| *i);
        out.into_iter().map(|(_, g, m)| (g, m)).collect()
    }

    /// Writes `value` to `groups` as a conditional copy carrying its timestamp (a group
    /// written meanwhile keeps its newer value); returns those that took it.
    async fn repair(
        &self,
        key: Target,
        column: u16,
        value: &Bytes,
        copy: PutOptions,
        groups: &[u32],
    ) -> Vec<u32> {
        let mut done = Vec::new();
        for &g in groups {
            let c = self.in_group(g);
            match c.put_column(key.clone(), column, value.clone(), copy).await {
                Ok(_) => done.push(g),
                Err(e) => tracing::debug!(group = g, error = %e, "read repair failed"),
            }
        }
        done
    }
}

/// `o` with a version chosen now unless it has one (or is a copy, which keeps its
/// original's): every group then stores the write at the same version (PROTOCOL.md §7.4).
fn one_version(o: PutOptions) -> PutOptions {
    if o.version.is_some() || o.if_newer.is_some() {
        return o;
    }
    PutOptions {
        version: Some(now_ns()),
        ..o
    }
}

/// A group's lookup answer, as the replicated read weighs it.
fn classify(
    (group, answer): (u32, Result<ValueMeta, ClientError>),
) -> (u32, GroupAnswer<ClientError>) {
    let answer = match answer {
        Ok(m) => GroupAnswer::Value {
            timestamp_ns: m.timestamp_ns,
            checksum: m.checksum,
        },
        Err(e) => match (e.removed_at(), e.status()) {
            (Some(at), _) => GroupAnswer::Removed { at, error: e },
            (None, Some(Status::NotFound | Status::Removed)) => GroupAnswer::NotFound(e),
            (None, Some(Status::Unavailable)) => GroupAnswer::Unavailable(e),
            (None, Some(Status::ChecksumMismatch)) => GroupAnswer::Damaged(e),
            (None, _) => GroupAnswer::Failed(e),
        },
    };
    (group, answer)
}

/// The outcome of `tasks`, one per group of `groups`: `Ok` when `w` of them succeeded.
async fn quorum_of(
    tasks: JoinSet<(u32, Result<(), ClientError>)>,
    groups: usize,
    w: Quorum,
) -> Result<GroupOutcome, GroupOutcome> {
    let (quorum, outcome) = collect(tasks, WriteQuorum::new(groups, w)).await;
    if quorum.met() {
        Ok(outcome)
    } else {
        Err(outcome)
    }
}

async fn collect(
    mut tasks: JoinSet<(u32, Result<(), ClientError>)>,
    mut quorum: WriteQuorum,
) -> (WriteQuorum, GroupOutcome) {
    let mut outcome = GroupOutcome::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((g, Ok(()))) => {
                quorum.ack(g);
                outcome.succeeded.push(g);
            }
            Ok((g, Err(e))) => {
                quorum.fail(g);
                outcome.failed.push((g, e));
            }
            Err(e) => tracing::error!(error = %e, "replica write task failed"),
        }
    }
    outcome.succeeded.sort_unstable();
    outcome.failed.sort_by_key(|(g, _)| *g);
    (quorum, outcome)
}
