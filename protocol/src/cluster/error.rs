//! The one error type of the cluster module: undecodable messages and records, limits,
//! and failures reported by the SWIM layer.

use crate::ring::RingError;

/// Why a cluster message, progress record or digest could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The input ended before a field `what` could be read.
    #[error("{what}: truncated, needs {need} more bytes, has {have}")]
    Truncated {
        what: &'static str,
        need: u64,
        have: u64,
    },

    /// Bytes follow the end of a complete message or record.
    #[error("{what}: {extra} bytes after its end")]
    TrailingBytes { what: &'static str, extra: u64 },

    /// A message or record is larger than its limit.
    #[error("{what}: {len} bytes is over the limit of {max}")]
    TooLarge {
        what: &'static str,
        len: u64,
        max: u64,
    },

    /// A record does not start with its magic bytes.
    #[error("{what}: bad magic {got:02x?}")]
    BadMagic { what: &'static str, got: [u8; 4] },

    /// A message or record of a format version this build cannot read.
    #[error("{what}: format version {got} is not supported (this build reads {supported})")]
    UnsupportedVersion {
        what: &'static str,
        got: u8,
        supported: u8,
    },

    /// An enumeration byte (message kind, SWIM message, member state, flag) is unknown.
    #[error("{what}: unknown tag {got}")]
    BadTag { what: &'static str, got: u8 },

    /// A leave cannot be cancelled: the node has already handed everything over and left.
    #[error("the node has already left the cluster: restart it to join again")]
    AlreadyLeft,

    /// A name or address is empty, too long or not UTF-8.
    #[error("{what}: not 1 to {max} bytes of UTF-8")]
    BadText { what: &'static str, max: u8 },

    /// A count is over its limit.
    #[error("{what}: {count} is over the limit of {max}")]
    TooMany {
        what: &'static str,
        count: u64,
        max: u64,
    },

    /// The stored CRC-32 of a record does not match its bytes.
    #[error("{what}: CRC mismatch, stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        what: &'static str,
        stored: u32,
        computed: u32,
    },

    /// A cursor lies outside the range it is a position in.
    #[error("transfer cursor is outside its range")]
    CursorOutsideRange,

    /// Two digest trees cover different ranges or have different depths.
    #[error("digest trees differ in shape (range or depth); they cannot be compared")]
    DigestShapeMismatch,

    /// A hand-over or repair state machine was given an answer to a step it did not ask.
    #[error("{machine}: got {got} while waiting for {waiting}")]
    UnexpectedAnswer {
        machine: &'static str,
        waiting: String,
        got: &'static str,
    },

    /// The SWIM layer (foca) refused an input or failed to encode.
    #[error("membership: {message}")]
    Swim { message: String },

    /// Ring maths failed (choosing IDs).
    #[error(transparent)]
    Ring(#[from] RingError),
}

impl From<foca::Error> for ClusterError {
    fn from(e: foca::Error) -> ClusterError {
        ClusterError::Swim {
            message: e.to_string(),
        }
    }
}
