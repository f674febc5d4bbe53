//! The network and backend halves of the hand-over and repair steps, as the node performs
//! them: backend calls go to the blocking pool (`cluster::local`, the code the simulator
//! runs inline), copies go to the peer as conditional writes (`IF_NEWER`), so the receiver
//! keeps anything newer it holds and the copy keeps its original's timestamp.

use ringblob_backends::{AsyncBackend, Backend, Removal};
use ringblob_engine::Key;

use super::task_error::TaskError;
use crate::client::{Client, ClientError, PutOptions};
use crate::cluster::local::{LocalError, Record};
use bytes::BytesMut;

use crate::wire::payload::text::decode_message;
use crate::wire::{
    parse_removed_message, Command, Frame, Header, LookupRequest, Reply, Request, Status,
    FLAG_LOCAL, MAX_FORWARD_HOPS,
};

/// Runs a `cluster::local` call on the backend's blocking pool.
pub async fn local<T, F>(backend: &AsyncBackend, f: F) -> Result<T, TaskError>
where
    T: Send + 'static,
    F: FnOnce(&dyn Backend) -> Result<T, LocalError> + Send + 'static,
{
    Ok(backend.run(move |b| Ok(f(b))).await??)
}

/// Sends `record` to `peer` as a conditional copy. True if the peer stored it; false if it
/// already held a record at least as new (nothing to do).
pub async fn send_copy(
    peer: &Client,
    key: Key,
    column: u16,
    record: Record,
) -> Result<bool, TaskError> {
    let timestamp_ns = record.timestamp_ns;
    let opts = PutOptions::copy_if_newer(timestamp_ns);
    match peer.put_column(key.0, column, record.value, opts).await {
        Ok(_) => Ok(true),
        Err(ClientError::Status {
            status: Status::NotNewer,
            ..
        }) => match holds_at_least(peer, key, column, timestamp_ns).await? {
            true => Ok(false),
            // Not the peer that said "not newer" but a node it forwarded the copy to: while
            // route tables disagree that can be this very node. Nothing is dropped on that
            // answer; the transfer tries again.
            false => Err(TaskError::Peer {
                what: "copying a record",
                source: ClientError::Unexpected(
                    "\"not newer\" came from another node than the new owner (route tables \
                     still disagree)"
                        .into(),
                ),
            }),
        },
        Err(e) => Err(TaskError::peer("copying a record")(e)),
    }
}

/// Whether `peer` itself — asked with `LOCAL` and the last hop, so it answers from its own
/// storage, never routing nor reading through — holds a value or a remembered remove of
/// (`key`, `column`) at least as new as `timestamp_ns`.
pub async fn holds_at_least(
    peer: &Client,
    key: Key,
    column: u16,
    timestamp_ns: u64,
) -> Result<bool, TaskError> {
    let failed = |e: String| TaskError::Peer {
        what: "asking the new owner what it holds",
        source: ClientError::Unexpected(e),
    };
    let mut payload = BytesMut::new();
    Request::Lookup(LookupRequest { column })
        .encode_payload(&mut payload)
        .map_err(|e| failed(e.to_string()))?;
    let mut header = Header::request(Command::Lookup, 0, key.0, 0);
    header.flags |= FLAG_LOCAL;
    header.hops = MAX_FORWARD_HOPS - 1;
    header.payload_len = u32::try_from(payload.len()).map_err(|e| failed(e.to_string()))?;
    let frame = Frame {
        header,
        payload: payload.freeze(),
    };
    let mut run = peer
        .relay_all(&[(&frame, 0)])
        .await
        .map_err(|e| failed(e.to_string()))?;
    let trans = *run
        .sent()
        .first()
        .ok_or_else(|| failed("nothing sent".into()))?;
    let reply = match tokio::time::timeout(peer.timeout(), run.next(trans)).await {
        Ok(Some(reply)) => reply,
        Ok(None) => return Err(failed("connection closed".into())),
        Err(_) => {
            peer.forget(trans).await;
            return Err(failed("timed out".into()));
        }
    };
    Ok(match reply.header.status {
        Status::Ok => match Reply::decode(&reply) {
            Ok(Reply::Meta(m)) => m.timestamp_ns >= timestamp_ns,
            other => return Err(failed(format!("unexpected reply {other:?}"))),
        },
        Status::Removed => decode_message(&reply.payload)
            .ok()
            .and_then(|m| parse_removed_message(&m))
            .is_some_and(|at| at >= timestamp_ns),
        _ => false,
    })
}

/// Sends a remembered remove to `peer` as a copied remove (`REMOVE` with `IF_NEWER`): the
/// peer drops an older value and remembers the remove either way. True if the peer had an
/// older value and dropped it; false if it had none, or a newer one.
///
/// A whole-key remove goes as one (`REMOVE` with `IF_NEWER` and no column); a peer from
/// before that request (`BAD_REQUEST`) gets it as a remove of column 0, as it was sent then.
pub async fn send_remove(peer: &Client, r: &Removal) -> Result<bool, TaskError> {
    let sent = match r.whole_key {
        true => match peer.remove_if_newer(r.key.0, r.timestamp_ns).await {
            Err(e) if e.status() == Some(Status::BadRequest) => {
                peer.remove_column_if_newer(r.key.0, 0, r.timestamp_ns)
                    .await
            }
            other => other,
        },
        false => {
            peer.remove_column_if_newer(r.key.0, r.column, r.timestamp_ns)
                .await
        }
    };
    match sent {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.status(), Some(Status::NotFound | Status::NotNewer)) => Ok(false),
        Err(e) => Err(TaskError::peer("copying a remove")(e)),
    }
}
