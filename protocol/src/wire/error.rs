//! The one error type of the wire codec, and how each error maps to a reply status.

use super::command::Command;
use super::status::Status;

/// Why bytes could not be decoded (or values could not be encoded) as protocol frames.
///
/// Two kinds matter to a node (see [`WireError::is_fatal`]): *framing* errors mean the
/// stream cannot be trusted any more and the connection must be closed; every other error
/// concerns one frame whose header was intact, so the node answers it with
/// [`WireError::status`] and a message (the `Display` text) and keeps the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The first four bytes are not `RBWP`: not a ringblob peer, or the stream lost sync.
    #[error("bad frame magic {got:02x?} (expected \"RBWP\"): not a ringblob peer or the stream lost sync")]
    BadMagic { got: [u8; 4] },

    /// The header CRC does not match its bytes: corruption or lost sync.
    #[error("header CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    HeaderChecksum { stored: u32, computed: u32 },

    /// The header announces a payload over [`MAX_PAYLOAD_LEN`](super::MAX_PAYLOAD_LEN).
    /// Found before any payload byte is buffered.
    #[error("frame payload of {len} bytes is over the limit of {max} bytes")]
    FrameTooLarge { len: u64, max: u64 },

    /// The frame is in a protocol version this crate does not speak.
    #[error("protocol version {got} is not supported (this node speaks {min}..={max})")]
    UnsupportedVersion { got: u8, min: u8, max: u8 },

    /// The command number is not defined in this version.
    #[error("unknown command number {code}")]
    UnknownCommand { code: u16 },

    /// Flag bits this version does not define are set.
    #[error("unknown header flag bits {bits:#x}")]
    UnknownFlags { bits: u32 },

    /// A header field holds a value not allowed here (reserved field not zero, a status in
    /// a request, a reply flag on a request, …).
    #[error("header field `{field}` = {value:#x} is invalid: {why}")]
    BadHeaderField {
        field: &'static str,
        value: u64,
        why: &'static str,
    },

    /// The frame was forwarded more than [`MAX_FORWARD_HOPS`](super::MAX_FORWARD_HOPS) times.
    #[error("frame has {hops} forwarding hops, the limit is {max}")]
    TooManyHops { hops: u8, max: u8 },

    /// Fewer bytes than a fixed field or a declared length needs.
    #[error("{what}: truncated, needs {need} bytes but only {have} remain")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },

    /// Bytes left over after the last field of a payload.
    #[error("{what}: {extra} unexpected trailing bytes")]
    TrailingBytes { what: &'static str, extra: usize },

    /// A length or count is over a protocol limit.
    #[error("{what}: {len} is over the limit of {max}")]
    LimitExceeded {
        what: &'static str,
        len: u64,
        max: u64,
    },

    /// Text that must be UTF-8 is not.
    #[error("{what}: not valid UTF-8")]
    InvalidUtf8 { what: &'static str },

    /// A field holds a value outside its defined set (enum byte, reserved bytes not zero,
    /// inconsistent fields).
    #[error("{what}: invalid value {value:#x}")]
    InvalidValue { what: &'static str, value: u64 },

    /// A reply frame answers a different command than the decoder expected.
    #[error("expected a reply to {expected}, got {got}")]
    CommandMismatch { expected: Command, got: Command },
}

impl WireError {
    /// `true` when the byte stream can no longer be trusted: the node closes the connection
    /// (after a best-effort `TOO_LARGE` reply for [`WireError::FrameTooLarge`], whose header
    /// is intact) instead of answering and reading on.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            WireError::BadMagic { .. }
                | WireError::HeaderChecksum { .. }
                | WireError::FrameTooLarge { .. }
        )
    }

    /// The status a node replies with when a request fails to decode with this error.
    pub fn status(&self) -> Status {
        match self {
            WireError::FrameTooLarge { .. } | WireError::LimitExceeded { .. } => Status::TooLarge,
            WireError::UnsupportedVersion { .. } => Status::UnsupportedVersion,
            WireError::UnknownCommand { .. } => Status::UnknownCommand,
            WireError::TooManyHops { .. } => Status::TooManyHops,
            WireError::BadMagic { .. }
            | WireError::HeaderChecksum { .. }
            | WireError::UnknownFlags { .. }
            | WireError::BadHeaderField { .. }
            | WireError::Truncated { .. }
            | WireError::TrailingBytes { .. }
            | WireError::InvalidUtf8 { .. }
            | WireError::InvalidValue { .. }
            | WireError::CommandMismatch { .. } => Status::BadRequest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_errors_are_fatal_and_others_are_not() {
        assert!(WireError::BadMagic { got: *b"HTTP" }.is_fatal());
        assert!(WireError::HeaderChecksum {
            stored: 1,
            computed: 2
        }
        .is_fatal());
        assert!(WireError::FrameTooLarge {
            len: 1 << 40,
            max: 1
        }
        .is_fatal());
        let e = WireError::UnknownCommand { code: 99 };
        assert!(!e.is_fatal());
        assert_eq!(e.status(), Status::UnknownCommand);
        let e = WireError::LimitExceeded {
            what: "bulk key count",
            len: 2000,
            max: 1024,
        };
        assert_eq!(e.status(), Status::TooLarge);
        assert_eq!(
            e.to_string(),
            "bulk key count: 2000 is over the limit of 1024"
        );
    }
}
