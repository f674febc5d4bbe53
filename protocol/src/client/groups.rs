//! Replication across groups, done by the client (as in Elliptics): a write goes to every
//! group it names (each through the node the client talks to, which forwards it to the
//! group's owner) and succeeds when W of them acknowledge; a read asks each group for the
//! value's meta, reads from the newest replica (preference order breaking ties, falling over
//! on errors and timeouts) and writes that value back to groups that miss it or hold an
//! older one (read repair).

use std::fmt;

use bytes::Bytes;
use tokio::task::JoinSet;

use super::{Client, ClientError, PutOptions};
use crate::wire::{KeyId, Status, ValueMeta};

/// How many groups must acknowledge a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quorum {
    One,
    /// More than half.
    #[default]
    Majority,
    All,
}

impl Quorum {
    /// Acknowledgements needed out of `n` groups.
    pub fn needed(self, n: usize) -> usize {
        match self {
            Quorum::One => 1.min(n),
            Quorum::Majority => n / 2 + 1,
            Quorum::All => n,
        }
    }
}

impl std::str::FromStr for Quorum {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "one" => Ok(Quorum::One),
            "quorum" | "majority" => Ok(Quorum::Majority),
            "all" => Ok(Quorum::All),
            other => Err(format!(
                "unknown write quorum {other:?} (one, quorum or all)"
            )),
        }
    }
}

/// What happened in each group.
#[derive(Debug, Default)]
pub struct GroupOutcome {
    pub succeeded: Vec<u32>,
    pub failed: Vec<(u32, ClientError)>,
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

    /// Writes a column to every group in `groups`, concurrently; succeeds when `w` of them
    /// acknowledge. The outcome says which did; one failed group never fails a write that
    /// met `w`.
    pub async fn put_groups(
        &self,
        key: KeyId,
        column: u16,
        data: Bytes,
        o: PutOptions,
        groups: &[u32],
        w: Quorum,
    ) -> Result<GroupOutcome, GroupOutcome> {
        let mut tasks = JoinSet::new();
        for &g in groups {
            let (c, data) = (self.in_group(g), data.clone());
            tasks.spawn(async move { (g, c.put_column(key, column, data, o).await.map(|_| ())) });
        }
        let outcome = collect(tasks).await;
        if outcome.succeeded.len() >= w.needed(groups.len()) {
            Ok(outcome)
        } else {
            Err(outcome)
        }
    }

    /// Removes a key (every column) in every group; as [`put_groups`](Self::put_groups). A
    /// group where the key is already absent counts as done.
    pub async fn remove_groups(
        &self,
        key: KeyId,
        durability: crate::wire::Durability,
        groups: &[u32],
        w: Quorum,
    ) -> Result<GroupOutcome, GroupOutcome> {
        let mut tasks = JoinSet::new();
        for &g in groups {
            let c = self.in_group(g);
            tasks.spawn(async move {
                let r = match c.remove(key, durability).await {
                    Err(e) if e.is_not_found() => Ok(()),
                    other => other,
                };
                (g, r)
            });
        }
        let outcome = collect(tasks).await;
        if outcome.succeeded.len() >= w.needed(groups.len()) {
            Ok(outcome)
        } else {
            Err(outcome)
        }
    }

    /// Reads a column from the group holding its newest version (`groups` in preference
    /// order), falling over to the next on errors, and repairs groups that miss it or hold
    /// an older one. A remove is a version too: when the newest version a group reports is
    /// a remove (`REMOVED` at T), the read is `REMOVED` and groups still holding an older
    /// value are sent the remove. `NotFound` only if no group has anything.
    pub async fn get_groups(
        &self,
        key: KeyId,
        column: u16,
        groups: &[u32],
    ) -> Result<GroupRead, ClientError> {
        let metas = self.lookup_groups(key, column, groups).await;
        let newest_value = metas
            .iter()
            .filter_map(|(_, m)| m.as_ref().ok())
            .map(|m| m.timestamp_ns)
            .max();
        let newest_remove = metas
            .iter()
            .filter_map(|(_, m)| m.as_ref().err().and_then(ClientError::removed_at))
            .max();
        if let Some(removed_at) = newest_remove.filter(|r| newest_value.is_none_or(|v| *r >= v)) {
            self.repair_remove(key, column, removed_at, &metas).await;
            return Err(ClientError::Status {
                status: Status::Removed,
                message: crate::wire::removed_message(removed_at),
            });
        }
        let mut order: Vec<&(u32, Result<ValueMeta, ClientError>)> = metas.iter().collect();
        // Newest first; the sort is stable, so preference order breaks ties.
        order.sort_by_key(|(_, m)| std::cmp::Reverse(m.as_ref().map_or(0, |m| m.timestamp_ns)));
        let mut last_err = None;
        // Groups whose copy of the value failed its checks when read: repaired like stale ones.
        let mut damaged = Vec::new();
        for (g, m) in order {
            let Ok(meta) = m else { continue };
            match self.in_group(*g).get_column(key, column, 0, None).await {
                Ok(value) => {
                    let mut stale = stale_groups(&metas, meta);
                    for d in &damaged {
                        if !stale.contains(d) {
                            stale.push(*d);
                        }
                    }
                    let repaired = self.repair(key, column, &value, meta, &stale).await;
                    return Ok(GroupRead {
                        value,
                        group: *g,
                        repaired,
                    });
                }
                Err(e) => {
                    if e.status() == Some(Status::ChecksumMismatch) {
                        damaged.push(*g);
                    }
                    last_err = Some(e);
                }
            }
        }
        // No group could serve the value: a group that says it is absent (or removed)
        // answers for the others that could not tell (UNAVAILABLE, TIMEOUT).
        let errors: Vec<ClientError> = metas.into_iter().filter_map(|(_, m)| m.err()).collect();
        let absent = errors.iter().position(ClientError::is_not_found);
        let first_error = match absent {
            Some(at) => errors.into_iter().nth(at),
            None => errors.into_iter().next(),
        };
        Err(last_err.or(first_error).unwrap_or(ClientError::Status {
            status: Status::NotFound,
            message: "no group was asked".into(),
        }))
    }

    /// Sends the remove at `removed_at` to the groups whose answer was an older value (or
    /// nothing): a conditional copy, so a group written meanwhile keeps its newer value.
    async fn repair_remove(
        &self,
        key: KeyId,
        column: u16,
        removed_at: u64,
        metas: &[(u32, Result<ValueMeta, ClientError>)],
    ) {
        for (g, m) in metas {
            let older = match m {
                Ok(m) => m.timestamp_ns < removed_at,
                Err(e) => e.status() == Some(Status::NotFound),
            };
            if !older {
                continue;
            }
            let c = self.in_group(*g);
            if let Err(e) = c.remove_column_if_newer(key, column, removed_at).await {
                tracing::debug!(group = g, error = %e, "read repair of a remove failed");
            }
        }
    }

    async fn lookup_groups(
        &self,
        key: KeyId,
        column: u16,
        groups: &[u32],
    ) -> Vec<(u32, Result<ValueMeta, ClientError>)> {
        let mut tasks = JoinSet::new();
        for (i, &g) in groups.iter().enumerate() {
            let c = self.in_group(g);
            tasks.spawn(async move { (i, g, c.lookup_column(key, column).await) });
        }
        let mut out = Vec::new();
        while let Some(Ok(r)) = tasks.join_next().await {
            out.push(r);
        }
        out.sort_by_key(|(i, _, _)| *i);
        out.into_iter().map(|(_, g, m)| (g, m)).collect()
    }

    /// Writes `value`, described by `meta`, to `groups` as a conditional copy carrying
    /// its timestamp (a group written meanwhile keeps its newer value); returns those that
    /// took it. A value that is not the one `meta` describes (overwritten between lookup
    /// and read) repairs nothing: its timestamp is unknown.
    async fn repair(
        &self,
        key: KeyId,
        column: u16,
        value: &Bytes,
        meta: &ValueMeta,
        groups: &[u32],
    ) -> Vec<u32> {
        let mut done = Vec::new();
        if crc32fast::hash(value) != meta.checksum {
            return done;
        }
        let copy = PutOptions::copy_if_newer(meta.timestamp_ns);
        for &g in groups {
            let c = self.in_group(g);
            match c.put_column(key, column, value.clone(), copy).await {
                Ok(_) => done.push(g),
                Err(e) => tracing::debug!(group = g, error = %e, "read repair failed"),
            }
        }
        done
    }
}

/// Groups that answered `NotFound`, `Unavailable` or `ChecksumMismatch` (their newest
/// record is damaged: a copy of the same version replaces it), remember a remove older than
/// `newest`, or hold a value older than `newest` with other bytes.
fn stale_groups(metas: &[(u32, Result<ValueMeta, ClientError>)], newest: &ValueMeta) -> Vec<u32> {
    metas
        .iter()
        .filter(|(_, m)| match m {
            Ok(m) => m.checksum != newest.checksum && m.timestamp_ns < newest.timestamp_ns,
            // UNAVAILABLE: the group's owner took the range over from a node that is down;
            // the conditional copy fills it in (it never replaces anything newer).
            Err(e) => {
                matches!(
                    e.status(),
                    Some(Status::NotFound | Status::Unavailable | Status::ChecksumMismatch)
                ) || e.removed_at().is_some_and(|r| r < newest.timestamp_ns)
            }
        })
        .map(|(g, _)| *g)
        .collect()
}

async fn collect(mut tasks: JoinSet<(u32, Result<(), ClientError>)>) -> GroupOutcome {
    let mut outcome = GroupOutcome::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((g, Ok(()))) => outcome.succeeded.push(g),
            Ok((g, Err(e))) => outcome.failed.push((g, e)),
            Err(e) => tracing::error!(error = %e, "replica write task failed"),
        }
    }
    outcome.succeeded.sort_unstable();
    outcome.failed.sort_by_key(|(g, _)| *g);
    outcome
}
