//! What a call can fail with, and the Python exception each failure becomes. The exception
//! classes live in Python (`ringblob/errors.py`, so they carry docstrings and typed
//! attributes); this file only picks the class and its arguments.

use std::fmt;

use pyo3::prelude::*;
use ringblob_protocol::client::{ClientError, GroupOutcome};
use ringblob_protocol::wire::Status;

/// A failed call.
#[derive(Debug)]
pub enum Failure {
    /// The client or a node said no.
    Client(ClientError),
    /// A replicated write that fewer groups than the write quorum stored.
    Quorum {
        succeeded: Vec<u32>,
        failed: Vec<(u32, String)>,
    },
    /// A bad argument (Python `ValueError`).
    Usage(String),
    /// A local file could not be read (Python `OSError`).
    Io(std::io::Error),
    /// The client cannot be used in this state (Python `RuntimeError`).
    State(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Client(e) => write!(f, "{e}"),
            Failure::Quorum { succeeded, failed } => {
                write!(f, "write quorum not met: stored by groups {succeeded:?}")?;
                for (g, why) in failed {
                    write!(f, "; group {g} failed: {why}")?;
                }
                Ok(())
            }
            Failure::Usage(why) | Failure::State(why) => f.write_str(why),
            Failure::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::Client(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Io(e)
    }
}

impl Failure {
    /// The failure of a replicated write, from its per-group outcome.
    pub fn quorum(o: GroupOutcome) -> Failure {
        Failure::Quorum {
            succeeded: o.succeeded,
            failed: o
                .failed
                .into_iter()
                .map(|(g, e)| (g, e.to_string()))
                .collect(),
        }
    }

    /// Whether the key (or column) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Failure::Client(e) if e.is_not_found())
    }

    /// The Python exception (takes the interpreter: the classes are Python's).
    pub fn into_py_err(self, py: Python<'_>) -> PyErr {
        let message = self.to_string();
        match self {
            Failure::Usage(_) => pyo3::exceptions::PyValueError::new_err(message),
            Failure::State(_) => pyo3::exceptions::PyRuntimeError::new_err(message),
            Failure::Io(e) => PyErr::from(e),
            Failure::Quorum { succeeded, failed } => {
                let failed: std::collections::HashMap<u32, String> = failed.into_iter().collect();
                raise(
                    py,
                    "QuorumNotReached",
                    (message, None::<String>, succeeded, failed),
                )
            }
            Failure::Client(e) => {
                let status = e.status().map(|s| s.name().to_string());
                raise(py, class_of(&e), (message, status))
            }
        }
    }

    /// [`into_py_err`](Self::into_py_err), taking the interpreter first (in async tasks).
    pub fn into_py_err_attached(self) -> PyErr {
        Python::attach(|py| self.into_py_err(py))
    }
}

/// The exception class of a client error: by the node's status, else by what went wrong.
fn class_of(e: &ClientError) -> &'static str {
    if let Some(status) = e.status() {
        return match status {
            Status::NotFound | Status::Removed => "NotFound",
            Status::ChecksumMismatch => "ChecksumMismatch",
            Status::Unauthorized => "Unauthorized",
            Status::Timeout => "Timeout",
            Status::Busy | Status::ConnectionLimit => "Busy",
            Status::Unavailable => "Unavailable",
            Status::TooLarge => "TooLarge",
            Status::BadRequest => "BadRequest",
            Status::ReadOnly => "ReadOnly",
            Status::RangeOutOfBounds => "RangeOutOfBounds",
            Status::Changed => "Changed",
            _ => "RingblobError",
        };
    }
    match e {
        ClientError::Timeout(_) => "Timeout",
        ClientError::Connect { .. } | ClientError::Disconnected(_) => "ConnectionFailed",
        ClientError::Auth(_) => "Unauthorized",
        // Transient: the key moved to another node mid-way; writing again succeeds.
        ClientError::UploadLost(_) => "Unavailable",
        ClientError::Protocol(_) | ClientError::Unexpected(_) | ClientError::BadReply { .. } => {
            "ProtocolError"
        }
        _ => "RingblobError",
    }
}

/// An instance of `ringblob.errors.<class>` built from `args`, as a `PyErr`.
fn raise<'py, A>(py: Python<'py>, class: &str, args: A) -> PyErr
where
    A: pyo3::call::PyCallArgs<'py>,
{
    let built = py
        .import("ringblob.errors")
        .and_then(|m| m.getattr(class))
        .and_then(|cls| cls.call1(args));
    match built {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

/// A `PyResult` from a call's result (sync methods, which hold the interpreter).
pub fn py_result<T>(py: Python<'_>, r: Result<T, Failure>) -> PyResult<T> {
    r.map_err(|f| f.into_py_err(py))
}
