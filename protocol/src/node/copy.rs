//! Copying one (key, column) — or a remembered remove of one — to another node, as hand-over
//! and repair do: the value is read
//! together with the timestamp it was written at, and sent as a conditional copy
//! (`IF_NEWER`), so the receiver keeps anything newer it holds — a write that reached it
//! meanwhile is never overwritten by an older copy, and the copy keeps its original's
//! timestamp instead of looking newly written.

use bytes::Bytes;
use ringblob_backends::{AsyncBackend, Error, Removal};
use ringblob_engine::{Key, Range};

use crate::client::{Client, ClientError, PutOptions};
use crate::wire::Status;

/// Reads of a value that keeps changing between its lookup and its read before giving up.
const READ_TRIES: usize = 4;

/// A value and the timestamp it was written at.
pub struct Record {
    pub value: Vec<u8>,
    pub timestamp_ns: u64,
}

/// The current value of (key, column) with its timestamp, or `None` if it is gone. The
/// value's checksum must match the looked-up one, so the pair belongs to one write.
pub async fn read_record(
    backend: &AsyncBackend,
    key: Key,
    column: u16,
) -> Result<Option<Record>, String> {
    for _ in 0..READ_TRIES {
        let read = backend
            .run(move |b| {
                let meta = b.lookup_column(&key, column)?;
                let value = b.read_column(&key, column, Range::all())?;
                Ok((meta, value))
            })
            .await;
        let (meta, value) = match read {
            Ok(found) => found,
            Err(Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        if crc32fast::hash(&value) == meta.checksum {
            return Ok(Some(Record {
                value,
                timestamp_ns: meta.timestamp_ns,
            }));
        }
    }
    Err(format!(
        "{key} column {column} kept changing while it was read"
    ))
}

/// Sends `record` to `peer` as a conditional copy. True if the peer stored it; false if it
/// already held a record at least as new (nothing to do).
pub async fn send_copy(
    peer: &Client,
    key: Key,
    column: u16,
    record: Record,
) -> Result<bool, String> {
    let opts = PutOptions::copy_if_newer(record.timestamp_ns);
    match peer
        .put_column(key.0, column, Bytes::from(record.value), opts)
        .await
    {
        Ok(_) => Ok(true),
        Err(ClientError::Status {
            status: Status::NotNewer,
            ..
        }) => Ok(false),
        Err(e) => Err(format!("copying {key} column {column}: {e}")),
    }
}

/// Sends a remembered remove to `peer` as a copied remove (`REMOVE` with `IF_NEWER`): the
/// peer drops an older value and remembers the remove either way. True if the peer had an
/// older value and dropped it; false if it had none, or a newer one.
pub async fn send_remove(peer: &Client, r: &Removal) -> Result<bool, String> {
    match peer
        .remove_column_if_newer(r.key.0, r.column, r.timestamp_ns)
        .await
    {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.status(), Some(Status::NotFound | Status::NotNewer)) => Ok(false),
        Err(e) => Err(format!("removing {} column {}: {e}", r.key, r.column)),
    }
}

/// The removes `backend` remembers in `range`, in key order.
pub async fn removes_in(
    backend: &AsyncBackend,
    range: &crate::ring::KeyRange,
) -> Result<Vec<Removal>, String> {
    let mut out = Vec::new();
    for (from, to) in super::key_span::linear_parts(range) {
        let found = backend
            .run(move |b| b.removes_in(&from, &to))
            .await
            .map_err(|e| e.to_string())?;
        out.extend(found.into_iter().filter(|r| range.contains(&r.key.0)));
    }
    Ok(out)
}
