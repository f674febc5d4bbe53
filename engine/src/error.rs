//! The engine's one error type. Every variant says where and what, so an operator can act.

use std::io;

use crate::key::Key;

/// Result alias for the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An IO call failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    /// Another process (or another engine in this process) holds the directory.
    #[error("data directory {path} is locked by another process (lock file {path}/LOCK)")]
    Locked { path: String },
    /// A checksum did not match: the bytes on disk are not the bytes written.
    #[error("checksum mismatch in {what} of blob {blob} at offset {offset}: expected {expected:#010x}, got {got:#010x}")]
    ChecksumMismatch {
        what: &'static str,
        blob: u32,
        offset: u64,
        expected: u32,
        got: u32,
    },
    /// Bytes that do not form a valid structure of the given kind.
    #[error("corrupt {what} in {file} at offset {offset}: {reason}")]
    Corrupt {
        what: &'static str,
        file: String,
        offset: u64,
        reason: String,
    },
    /// Fewer bytes than a structure needs.
    #[error("truncated {what} at offset {offset}: need {need} bytes, have {have}")]
    Truncated {
        what: &'static str,
        offset: u64,
        need: u64,
        have: u64,
    },
    /// A file written by a format version this build does not read.
    #[error("{file}: unsupported format version {version} (this build reads version {supported})")]
    UnsupportedVersion {
        file: String,
        version: u32,
        supported: u32,
    },
    /// The key has no live value.
    #[error("key {0} not found")]
    NotFound(Key),
    /// A range read starts past the end of the value.
    #[error("range offset {offset} is past the end of a {len}-byte value")]
    RangeOutOfBounds { offset: u64, len: u64 },
    /// A value or setting exceeds a hard limit.
    #[error("{what} of {got} exceeds the limit of {limit}")]
    TooLarge {
        what: &'static str,
        got: u64,
        limit: u64,
    },
    /// A configuration value is out of its allowed range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// An earlier write or sync failed; writes are refused until the engine is reopened.
    #[error("engine is poisoned for writes after an earlier failure ({0}); reopen it")]
    Poisoned(String),
    /// The engine was closed.
    #[error("engine is closed")]
    Closed,
    /// A blob was removed by defragmentation between an index lookup and the read; the
    /// caller looks the key up again.
    #[error("blob {0} was retired by defragmentation")]
    BlobRetired(u32),
    /// Defragmentation would need more space than the disk has.
    #[error("not enough free space for defragmentation: need {need} bytes, {available} available")]
    NoSpace { need: u64, available: u64 },
    /// The disk is (nearly) full: a write is refused, nothing was written, nothing is
    /// poisoned. Removes and defragmentation still run (they may use the reserve); writes
    /// resume as soon as space is free.
    #[error("the disk is full: the write needs {need} bytes free (the reserve included), {available} available; remove or defragment values, or free space on the device")]
    DiskFull { need: u64, available: u64 },
    /// Another defragmentation is running.
    #[error("a defragmentation is already running")]
    Busy,
    /// A lookup kept racing changes of the sealed set (seals, defragmentation retiring
    /// blobs) and gave up rather than answer from a view that may be stale. Try again.
    #[error("the lookup kept racing changes of the sealed blobs; try again")]
    Contended,
    /// A broken invariant of the engine itself (a bug), reported instead of a panic.
    #[error("internal error: {0}")]
    Internal(String),
    /// A write that had to be newer than the stored record was not: nothing was written.
    #[error("not written: the stored record (timestamp {stored_ns} ns) is not older than the write (timestamp {write_ns} ns)")]
    NotNewer { stored_ns: u64, write_ns: u64 },
}

impl Error {
    /// Wraps an IO error with the operation and the path it concerned.
    pub fn io(op: &'static str, path: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// True when the error means the stored bytes are damaged (as opposed to IO or usage errors).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::ChecksumMismatch { .. } | Error::Corrupt { .. } | Error::Truncated { .. }
        )
    }
}
