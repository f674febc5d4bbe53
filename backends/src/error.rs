//! The backends' error type.

use ringblob_engine::Key;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a backend call can fail with. The node maps each variant to a wire status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("key {0} not found")]
    NotFound(Key),
    #[error("range offset {offset} is past the end of a {len}-byte value")]
    RangeOutOfBounds { offset: u64, len: u64 },
    #[error("{what} of {got} exceeds the limit of {limit}")]
    TooLarge {
        what: &'static str,
        got: u64,
        limit: u64,
    },
    #[error("no upload in progress for key {0} (prepare it first)")]
    NoUpload(Key),
    /// Stored bytes failed a checksum or structural check.
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// The backend refuses writes (e.g. after a failed fsync) until it is reopened.
    #[error("backend is read-only: {0}")]
    ReadOnly(String),
    #[error("invalid backend configuration: {0}")]
    InvalidConfig(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("data directory {0} is locked by another process")]
    Locked(String),
    #[error("backend call failed: {0}")]
    Internal(String),
    /// The backend does not do this (e.g. defragmenting a file-per-key store).
    #[error("not supported by this backend: {0}")]
    Unsupported(String),
    /// The disk is full: nothing was written; reads, removes and defragmentation go on,
    /// and writes resume once space is free.
    #[error("no space: {0}")]
    NoSpace(String),
    /// The request itself is wrong (e.g. a name record that does not decode).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The same long operation is already running.
    #[error("busy: {0}")]
    Busy(String),
    /// A copy that had to be newer than the stored record was not: nothing was written.
    #[error("not written: the stored record (timestamp {stored_ns} ns) is not older than the write (timestamp {write_ns} ns)")]
    NotNewer { stored_ns: u64, write_ns: u64 },
}

impl Error {
    /// `NotNewer` unless `write_ns` (a conditional write's timestamp, if it is one) is newer
    /// than `stored_ns` (the stored record's, if there is one).
    pub fn unless_newer(stored_ns: Option<u64>, write_ns: Option<u64>) -> Result<()> {
        match (stored_ns, write_ns) {
            (Some(stored_ns), Some(write_ns)) if stored_ns >= write_ns => Err(Error::NotNewer {
                stored_ns,
                write_ns,
            }),
            _ => Ok(()),
        }
    }

    pub fn io(op: &'static str, path: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

impl From<ringblob_engine::Error> for Error {
    fn from(e: ringblob_engine::Error) -> Self {
        use ringblob_engine::Error as E;
        match e {
            E::NotFound(k) => Error::NotFound(k),
            E::RangeOutOfBounds { offset, len } => Error::RangeOutOfBounds { offset, len },
            E::TooLarge { what, got, limit } => Error::TooLarge { what, got, limit },
            E::Poisoned(why) => Error::ReadOnly(why),
            E::Locked { path } => Error::Locked(path),
            E::InvalidConfig(m) => Error::InvalidConfig(m),
            E::Busy => Error::Busy("a defragmentation is already running".into()),
            E::Contended => Error::Busy(E::Contended.to_string()),
            E::NotNewer {
                stored_ns,
                write_ns,
            } => Error::NotNewer {
                stored_ns,
                write_ns,
            },
            e @ (E::DiskFull { .. } | E::NoSpace { .. }) => Error::NoSpace(e.to_string()),
            E::Io { op, path, source } if source.kind() == std::io::ErrorKind::StorageFull => {
                Error::NoSpace(format!("{op} {path}: {source}"))
            }
            E::Io { op, path, source } => Error::Io { op, path, source },
            e if e.is_corruption() => Error::Corrupt(e.to_string()),
            e => Error::Internal(e.to_string()),
        }
    }
}

/// `map_err` helper: an IO error during `op` on `path`.
pub(crate) fn at(op: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.display().to_string();
    move |e| Error::io(op, path, e)
}
