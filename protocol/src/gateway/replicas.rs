//! Objects across replica groups, as a client with `--groups` handles them: a write goes to
//! every group of the route table at once and succeeds when the configured quorum stored
//! it (the body is read once and fed to each group through a bounded channel, so memory does
//! not grow with the object); a remove likewise; a read asks the node's own group first and
//! falls over to the next group when a group cannot answer or has never heard of the key (a
//! remembered remove, `REMOVED`, ends the read: removed means gone).

use std::io;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::io::StreamReader;

use crate::client::{Client, ClientError, GroupOutcome, PutOptions, Quorum, Target};
use crate::cluster::WriteQuorum;
use crate::wire::{Durability, Status};

/// Bytes read from the body at a time and fed to each group.
const FEED_PIECE: usize = 256 << 10;
/// Pieces queued per group.
const FEED_DEPTH: usize = 4;

/// The error a write that did not meet its quorum answers: the groups' own error when they
/// all failed the same way (a key refused everywhere is 403, not 503), else `UNAVAILABLE`.
pub fn quorum_error(outcome: &GroupOutcome) -> ClientError {
    let statuses: Vec<Option<Status>> = outcome.failed.iter().map(|(_, e)| e.status()).collect();
    if let (Some(first), Some((_, e))) = (statuses.first(), outcome.failed.first()) {
        if first.is_some()
            && statuses.iter().all(|s| s == first)
            && *first != Some(Status::Unavailable)
        {
            return ClientError::Status {
                status: first.unwrap_or(Status::Unavailable),
                message: e.to_string(),
            };
        }
    }
    ClientError::Status {
        status: Status::Unavailable,
        message: format!("write quorum not met: {outcome}"),
    }
}

/// Stores the bytes of `source` as the object under `target` (column 0; another column
/// holds a plain value) in each of `groups`; once `w` of them stored it whole, its size and
/// CRC-32 (the content's, which a lookup reports as the value's checksum or a chunked
/// object's manifest CRC). A body that fails (a bad hash, a cut connection) fails every
/// group's upload before its commit.
pub async fn put_object(
    client: &Client,
    (target, column): (&Target, u16),
    source: &mut (dyn AsyncRead + Unpin + Send),
    hint_options: (Option<u64>, PutOptions),
    groups_w: (&[u32], Quorum),
) -> Result<(u64, u32), ClientError> {
    let layout = match column {
        0 => Layout::Object,
        _ => Layout::Plain,
    };
    let at = (target, column, layout);
    stream_to_groups(client, at, source, hint_options, groups_w)
        .await
        .map_err(|f| match f {
            GroupsFailure::Source(e) => e,
            GroupsFailure::Quorum(outcome) => quorum_error(&outcome),
        })
}

/// Stores a PUT's body as the object under `target` (column 0) in every group, with the name
/// record `describe` makes of its size and CRC-32 beside it: a body of known length that
/// fits a small put (`Client::fits_small_put`: one part, no manifest magic) is read whole —
/// the memory a streamed write holds anyway — and sent with its record, one round trip per
/// group; any other body streams, then its record is written. Returns the size stored and
/// the record.
pub async fn put_named_object(
    client: &Client,
    target: &Target,
    source: &mut (dyn AsyncRead + Unpin + Send),
    (size_hint, o): (Option<u64>, PutOptions),
    (groups, w): (&[u32], Quorum),
    describe: impl FnOnce(u64, u32) -> ringblob_backends::names::NameRecord,
) -> Result<(u64, ringblob_backends::names::NameRecord), ClientError> {
    let small = small_body(client, source, size_hint).await?;
    let (mut memory, mut describe, mut described) = (None, Some(describe), None);
    let source: &mut (dyn AsyncRead + Unpin + Send) = match small {
        Some(data) if client.fits_small_put(&data) => {
            let (size, crc) = (data.len() as u64, crc32fast::hash(&data));
            let Some(record) = describe.take().map(|f| f(size, crc)) else {
                return Err(ClientError::Unexpected("described twice".into()));
            };
            if record.attrs.is_empty() {
                let bytes = record
                    .encode()
                    .map_err(|e| ClientError::Input(format!("name record: {e}")))?;
                client
                    .put_small_groups(target.clone(), (data, Some(bytes.into())), o, groups, w)
                    .await
                    .map_err(|outcome| quorum_error(&outcome))?;
                return Ok((size, record));
            }
            // Attributes: index entries first, then the record (put_name_record).
            described = Some(record);
            memory.insert(std::io::Cursor::new(data))
        }
        Some(data) => memory.insert(std::io::Cursor::new(data)),
        None => source,
    };
    let at = (target, 0, Layout::Object);
    let (size, crc) = match stream_to_groups(client, at, source, (size_hint, o), (groups, w)).await
    {
        Ok(stored) => stored,
        Err(GroupsFailure::Source(e)) => return Err(e),
        Err(GroupsFailure::Quorum(outcome)) => {
            let whole = outcome
                .stored
                .filter(|(n, _)| size_hint.is_none_or(|h| h == *n));
            if let Some((size, crc)) = whole {
                if let Some(record) = described.or_else(|| describe.take().map(|f| f(size, crc))) {
                    name_where_stored(client, &record, &outcome.succeeded, o).await;
                }
            }
            return Err(quorum_error(&outcome));
        }
    };
    if size_hint.is_some_and(|n| n != size) {
        // Not named: the caller answers the short body as the client's error.
        return Err(ClientError::Input(format!(
            "the body ended after {size} bytes, before its declared length"
        )));
    }
    let record = described.or_else(|| describe.take().map(|f| f(size, crc)));
    let record = record.ok_or_else(|| ClientError::Unexpected("no record".into()))?;
    put_name_record(client, &record, o, (groups, w)).await?;
    Ok((size, record))
}

/// After a streamed write missed its quorum: the groups that did store the value get its
/// name record too (best effort), so a group that serves the object by name also lists it
/// — as a small put, which sends both together, leaves them. The write is still answered
/// as failed (503): the client does not know it happened, and the object is on fewer
/// groups than asked until repair copies it.
async fn name_where_stored(
    client: &Client,
    record: &ringblob_backends::names::NameRecord,
    stored: &[u32],
    o: PutOptions,
) {
    if let Err(e) = put_name_record(client, record, o, (stored, Quorum::All)).await {
        tracing::warn!(error = %e, groups = ?stored, "the name record of a write that missed its quorum was not stored where the value was");
    }
}

/// A body of known length no longer than a small put takes, read whole (and one byte past
/// its length, so a longer body is seen); `None`, with nothing read, for any other. A body
/// shorter or longer than its declared length is the client's error, and nothing is stored.
async fn small_body(
    client: &Client,
    source: &mut (dyn AsyncRead + Unpin + Send),
    size_hint: Option<u64>,
) -> Result<Option<Bytes>, ClientError> {
    let Some(n) = size_hint.filter(|&n| n <= client.small_put_limit() as u64) else {
        return Ok(None);
    };
    let mut source = source;
    let buf = crate::client::read_up_to(&mut source, n as usize + 1).await?;
    if buf.len() as u64 != n {
        return Err(ClientError::Input(format!(
            "the body is not its declared length of {n} bytes ({} read)",
            buf.len()
        )));
    }
    Ok(Some(buf.freeze()))
}

/// How a value streamed to groups is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A plain value up to one chunk, a chunked object past it (column 0 only).
    Object,
    /// A plain value whatever its size (up to the largest value), as `--groups` writes.
    Plain,
}

/// Why a streamed write to groups failed.
#[derive(Debug)]
pub enum GroupsFailure {
    /// The source failed: no group committed it.
    Source(ClientError),
    /// Fewer groups than the quorum stored it: each group's outcome.
    Quorum(GroupOutcome),
}

/// Streams `source` into `target`'s `column` in each of `groups` at once (one read of the
/// source, fed through bounded channels), stored as `layout` says; once `w` of them stored
/// it whole, its size and CRC-32.
pub async fn stream_to_groups(
    client: &Client,
    (target, column, layout): (&Target, u16, Layout),
    source: &mut (dyn AsyncRead + Unpin + Send),
    (size_hint, o): (Option<u64>, PutOptions),
    (groups, w): (&[u32], Quorum),
) -> Result<(u64, u32), GroupsFailure> {
    let mut feeds = Vec::with_capacity(groups.len());
    let mut tasks = JoinSet::new();
    for &g in groups {
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(FEED_DEPTH);
        let (c, t) = (client.in_group(g), target.clone());
        tasks.spawn(async move {
            let pieces = Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|piece| (piece, rx))
            }));
            let mut reader = StreamReader::new(pieces);
            let hint = (size_hint, o);
            let stored = match layout {
                Layout::Object if column == 0 => c.put_object(t, &mut reader, hint, |_| {}).await,
                _ => c.put_stream(t, column, &mut reader, hint, |_| {}).await,
            };
            (g, stored)
        });
        feeds.push(Some(tx));
    }
    let mut crc = crc32fast::Hasher::new();
    let fed = feed(source, &mut feeds, &mut crc).await;
    drop(feeds);
    let mut quorum = WriteQuorum::new(groups.len(), w);
    let mut outcome = GroupOutcome::default();
    let mut size = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((g, Ok(n))) => {
                quorum.ack(g);
                outcome.succeeded.push(g);
                size = n;
            }
            Ok((g, Err(e))) => {
                quorum.fail(g);
                outcome.failed.push((g, e));
            }
            Err(e) => tracing::error!(error = %e, "a replica upload task failed"),
        }
    }
    fed.map_err(|e| GroupsFailure::Source(ClientError::Input(e.to_string())))?;
    if !quorum.met() {
        outcome.failed.sort_by_key(|(g, _)| *g);
        outcome.stored = (!outcome.succeeded.is_empty()).then(|| (size, crc.finalize()));
        return Err(GroupsFailure::Quorum(outcome));
    }
    Ok((size, crc.finalize()))
}

/// Reads `source` to its end into every live feed, summing it into `crc`; on a read error
/// every feed gets it (so no group commits a cut body).
async fn feed(
    source: &mut (dyn AsyncRead + Unpin + Send),
    feeds: &mut [Option<mpsc::Sender<io::Result<Bytes>>>],
    crc: &mut crc32fast::Hasher,
) -> io::Result<()> {
    let mut buf = BytesMut::with_capacity(FEED_PIECE);
    loop {
        buf.reserve(FEED_PIECE);
        let read = (&mut *source)
            .take(FEED_PIECE as u64)
            .read_buf(&mut buf)
            .await;
        match read {
            Ok(0) => return Ok(()),
            Ok(_) => {
                let piece = buf.split().freeze();
                crc.update(&piece);
                for slot in feeds.iter_mut() {
                    let Some(tx) = slot else { continue };
                    // A group whose upload ended early (it failed) takes no more.
                    if tx.send(Ok(piece.clone())).await.is_err() {
                        *slot = None;
                    }
                }
                if feeds.iter().all(Option::is_none) {
                    return Ok(());
                }
            }
            Err(e) => {
                for tx in feeds.iter().flatten() {
                    let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string()))).await;
                }
                return Err(e);
            }
        }
    }
}

/// Removes the object under `target` (every column, an object's chunks too) in each of
/// `groups` at one version; a group where it is absent counts as done.
pub async fn remove_object(
    client: &Client,
    target: &Target,
    d: Durability,
    (groups, w): (&[u32], Quorum),
) -> Result<(), ClientError> {
    let (mut tasks, version) = (JoinSet::new(), crate::clock::now_ns());
    for &g in groups {
        let (c, t) = (client.in_group(g), target.clone());
        tasks.spawn(async move { (g, c.remove_object_at(t, d, version).await) });
    }
    let mut quorum = WriteQuorum::new(groups.len(), w);
    let mut outcome = GroupOutcome::default();
    let mut absent = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((g, Ok(()))) => {
                quorum.ack(g);
                outcome.succeeded.push(g);
            }
            Ok((g, Err(e))) if e.is_not_found() => {
                absent += 1;
                quorum.ack(g);
                outcome.succeeded.push(g);
            }
            Ok((g, Err(e))) => {
                quorum.fail(g);
                outcome.failed.push((g, e));
            }
            Err(e) => tracing::error!(error = %e, "a replica remove task failed"),
        }
    }
    if absent == groups.len() {
        return Err(ClientError::Status {
            status: Status::NotFound,
            message: "no such name in any group".into(),
        });
    }
    if !quorum.met() {
        return Err(quorum_error(&outcome));
    }
    Ok(())
}

/// Stores a small value (a name record, a bucket record) in each of `groups`.
pub async fn put_small(
    client: &Client,
    (target, column): (&Target, u16),
    data: Bytes,
    o: PutOptions,
    (groups, w): (&[u32], Quorum),
) -> Result<(), ClientError> {
    client
        .put_groups(target.clone(), column, data, o, groups, w)
        .await
        .map(|_| ())
        .map_err(|outcome| quorum_error(&outcome))
}

/// Stores `record` beside its value in each of `groups`.
pub async fn put_name_record(
    client: &Client,
    record: &ringblob_backends::names::NameRecord,
    o: PutOptions,
    groups: (&[u32], Quorum),
) -> Result<(), ClientError> {
    let bytes = record
        .encode()
        .map_err(|e| ClientError::Input(format!("name record: {e}")))?;
    // Attributes: their index entries first, in every group (docs/ATTRIBUTES.md §5); those
    // of the attributes this record replaces die with the old record.
    if !record.attrs.is_empty() {
        let space = client.attribute_space(&record.namespace).await?;
        for (key, entry) in Client::index_entries(record, &space) {
            let column = crate::attrs::ENTRY_COLUMN;
            put_small(client, (&Target::Id(key), column), entry, o, groups).await?;
        }
    }
    let target = Target::named(&record.namespace, record.name.clone());
    let column = ringblob_backends::names::NAME_COLUMN;
    put_small(client, (&target, column), Bytes::from(bytes), o, groups).await
}

/// Removes one column in each of `groups` at one version (absent counts as done; absent
/// everywhere is `NOT_FOUND`).
pub async fn remove_column_groups(
    client: &Client,
    (target, column): (&Target, u16),
    d: Durability,
    (groups, w): (&[u32], Quorum),
) -> Result<(), ClientError> {
    let mut quorum = WriteQuorum::new(groups.len(), w);
    let mut outcome = GroupOutcome::default();
    let (mut absent, version) = (0, crate::clock::now_ns());
    for &g in groups {
        match client
            .in_group(g)
            .remove_column_at(target.clone(), column, d, version)
            .await
        {
            Ok(()) => quorum.ack(g),
            Err(e) if e.is_not_found() => {
                absent += 1;
                quorum.ack(g);
            }
            Err(e) => {
                quorum.fail(g);
                outcome.failed.push((g, e));
            }
        }
    }
    if absent == groups.len() {
        return Err(ClientError::Status {
            status: Status::NotFound,
            message: "no such column in any group".into(),
        });
    }
    match quorum.met() {
        true => Ok(()),
        false => Err(quorum_error(&outcome)),
    }
}

/// Whether a read that failed so in one group is asked of the next: the group cannot
/// answer, or has never heard of the key.
pub fn fall_over(e: &ClientError) -> bool {
    match e.status() {
        Some(Status::NotFound | Status::Unavailable | Status::Timeout | Status::Busy) => true,
        Some(_) => false,
        None => matches!(
            e,
            ClientError::Connect { .. } | ClientError::Disconnected(_) | ClientError::Timeout(_)
        ),
    }
}

/// Runs `read` against each group in turn (`groups` in preference order) until one answers
/// or fails in a way the next group cannot change; the answer and the group's client.
pub async fn read_in_groups<T, F, Fut>(
    client: &Client,
    groups: &[u32],
    read: F,
) -> Result<(T, Arc<Client>), ClientError>
where
    F: Fn(Arc<Client>) -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    let mut last = None;
    for &g in groups {
        let c = Arc::new(client.in_group(g));
        match read(c.clone()).await {
            Ok(v) => return Ok((v, c)),
            Err(e) if fall_over(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| ClientError::Status {
        status: Status::Unavailable,
        message: "no group to read from".into(),
    }))
}
