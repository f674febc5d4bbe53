//! The network and backend halves of the hand-over and repair steps, as the node performs
//! them: backend calls go to the blocking pool (`cluster::local`, the code the simulator
//! runs inline), copies go to the peer as conditional writes (`IF_NEWER`), so the receiver
//! keeps anything newer it holds and the copy keeps its original's timestamp.

use ringblob_backends::{AsyncBackend, Backend, Removal};
use ringblob_engine::Key;

use super::task_error::TaskError;
use crate::client::{Client, ClientError, PutOptions};
use crate::cluster::local::{LocalError, Record};
use crate::wire::Status;

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
    let opts = PutOptions::copy_if_newer(record.timestamp_ns);
    match peer.put_column(key.0, column, record.value, opts).await {
        Ok(_) => Ok(true),
        Err(ClientError::Status {
            status: Status::NotNewer,
            ..
        }) => Ok(false),
        Err(e) => Err(TaskError::peer("copying a record")(e)),
    }
}

/// Sends a remembered remove to `peer` as a copied remove (`REMOVE` with `IF_NEWER`): the
/// peer drops an older value and remembers the remove either way. True if the peer had an
/// older value and dropped it; false if it had none, or a newer one.
pub async fn send_remove(peer: &Client, r: &Removal) -> Result<bool, TaskError> {
    match peer
        .remove_column_if_newer(r.key.0, r.column, r.timestamp_ns)
        .await
    {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.status(), Some(Status::NotFound | Status::NotNewer)) => Ok(false),
        Err(e) => Err(TaskError::peer("copying a remove")(e)),
    }
}
