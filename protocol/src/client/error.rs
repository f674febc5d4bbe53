//! The client's error type.

use crate::wire::{Status, WireError};

/// What a client call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The node answered with an error status.
    #[error("{status}: {message}")]
    Status { status: Status, message: String },
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connection lost: {0}")]
    Disconnected(String),
    #[error("no reply within {0:?}")]
    Timeout(std::time::Duration),
    #[error("protocol error: {0}")]
    Protocol(#[from] WireError),
    #[error("unexpected reply: {0}")]
    Unexpected(String),
    /// A JSON reply (`STAT`, `DEFRAG`, `ROUTE_LIST`) that does not parse as documented.
    #[error("{what} reply is not valid: {why}")]
    BadReply { what: &'static str, why: String },
    /// Authentication failed or could not be attempted (the node refused the key, or
    /// could not prove it holds it, or does not authenticate at all).
    #[error("authentication: {0}")]
    Auth(String),
    /// Reading a streamed value from its source failed.
    #[error("reading the value: {0}")]
    Input(String),
    /// Writing a streamed value to its destination failed.
    #[error("writing the value out: {0}")]
    Output(String),
    /// A streamed write's upload was gone from where its parts went: a `PART` or `COMMIT`
    /// answered `BAD_REQUEST` after the `PREPARE` was acknowledged. The key's range moved to
    /// another node meanwhile (a join, leave or rebalance), or the upload was reclaimed.
    /// Nothing was stored; the write can be made again from the start
    /// ([`restarting`](super::restarting) does so for sources that can be read again).
    #[error("the upload was lost mid-way (its key moved to another node?); nothing was stored, write it again: {0}")]
    UploadLost(String),
}

impl ClientError {
    /// The node's status, if the node answered.
    pub fn status(&self) -> Option<Status> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when the key does not exist (never written, or removed).
    pub fn is_not_found(&self) -> bool {
        matches!(self.status(), Some(Status::NotFound | Status::Removed))
    }

    /// The remove's version when the node answered `REMOVED`.
    pub fn removed_at(&self) -> Option<u64> {
        match self {
            ClientError::Status {
                status: Status::Removed,
                message,
            } => crate::wire::parse_removed_message(message),
            _ => None,
        }
    }

    /// True when a streamed write lost its upload mid-way and can be made again
    /// ([`ClientError::UploadLost`]).
    pub fn is_upload_lost(&self) -> bool {
        matches!(self, ClientError::UploadLost(_))
    }

    /// Errors where the request may not have reached the node (or the node was too busy),
    /// so an idempotent request can be sent again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. } | ClientError::Disconnected(_) | ClientError::Timeout(_)
        ) || self.status() == Some(Status::Busy)
    }
}
