//! [`TaskError`]: why a hand-over stream or a repair of a range stopped. The task is retried
//! later; the error is logged and counted.

use crate::client::ClientError;
use crate::cluster::local::LocalError;
use crate::cluster::ClusterError;

/// Why a background transfer or repair task failed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The peer could not be reached.
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: ClientError,
    },
    /// The peer refused or failed a request.
    #[error("{what}: {source}")]
    Peer {
        what: &'static str,
        #[source]
        source: ClientError,
    },
    /// The peer is not alive in the route table.
    #[error("peer {0} is not alive")]
    PeerDown(String),
    /// The local backend failed.
    #[error(transparent)]
    Local(#[from] LocalError),
    /// The backend's blocking pool failed (the call never ran).
    #[error("backend: {0}")]
    Backend(#[from] ringblob_backends::Error),
    /// The state machine refused an answer (a bug in the driver).
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl TaskError {
    pub(super) fn peer(what: &'static str) -> impl FnOnce(ClientError) -> TaskError {
        move |source| TaskError::Peer { what, source }
    }
}
