//! A read started before it is asked for: `open()`'s file object starts the next range while
//! Python consumes the current one, so a sequential read keeps the link busy instead of
//! waiting one round trip per range. One range ahead at most (bounded memory); dropped when
//! the reader seeks elsewhere — its read then finishes and is discarded (not aborted: a
//! reply cut in the middle would cost the connection every request it carries).

use std::sync::Mutex;

use bytes::Bytes;
use pyo3::prelude::*;
use tokio::task::JoinHandle;

use crate::failure::Failure;
use crate::run::{block, runtime};

/// A range being read in the background.
#[pyclass(frozen, module = "ringblob", name = "_Ahead")]
pub struct Ahead {
    task: Mutex<Option<JoinHandle<Result<Bytes, Failure>>>>,
}

impl Ahead {
    pub fn start<F>(read: F) -> Result<Ahead, Failure>
    where
        F: std::future::Future<Output = Result<Bytes, Failure>> + Send + 'static,
    {
        Ok(Ahead {
            task: Mutex::new(Some(runtime()?.spawn(read))),
        })
    }

    fn take(&self) -> Option<JoinHandle<Result<Bytes, Failure>>> {
        self.task.lock().ok().and_then(|mut t| t.take())
    }
}

#[pymethods]
impl Ahead {
    /// The bytes read (waiting for them, the interpreter released).
    fn wait(&self, py: Python<'_>) -> PyResult<Bytes> {
        let task = self.take();
        block(py, async move {
            match task {
                None => Err(Failure::Usage("this read was taken already".into())),
                Some(t) => t
                    .await
                    .map_err(|e| Failure::Usage(format!("the read task failed: {e}")))?,
            }
        })
    }
}
