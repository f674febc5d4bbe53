//! A streamed upload: Python hands the value over piece by piece (`write`), the Rust client
//! stores it as the pieces arrive (`Client::put_object`, or to every group), and `finish`
//! returns the stored size once the value and its name record are written. At most
//! [`QUEUED`] pieces wait between the two, so memory stays bounded whatever the size; a
//! failed upload stops taking pieces, and an upload that ends any other way than `finish`
//! (`abort`, dropped, the Python side raising) fails the store before its commit, so
//! nothing half-written becomes the value.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use pyo3::prelude::*;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::io::StreamReader;

use crate::core::{Inner, WriteAsk};
use crate::failure::Failure;
use crate::run::{awaitable, block, runtime};
use crate::target::NameArg;

/// Pieces queued between Python and the upload.
pub const QUEUED: usize = 4;

type Piece = io::Result<Bytes>;

/// An upload in progress (`Client.upload` drives it).
#[pyclass(frozen, module = "ringblob")]
pub struct Upload {
    tx: Mutex<Option<mpsc::Sender<Piece>>>,
    task: Mutex<Option<JoinHandle<Result<u64, Failure>>>>,
    /// Set by `finish` before the last sender is dropped: the value ends there. Any other
    /// end of the pieces (abort, drop, a Python exception) is an error to the store.
    finished: Arc<AtomicBool>,
}

impl Upload {
    /// Starts storing `name` from the pieces to come.
    pub fn start(
        inner: Arc<Inner>,
        name: NameArg,
        ask: WriteAsk,
        size_hint: Option<u64>,
    ) -> Result<Self, Failure> {
        let (tx, rx) = mpsc::channel::<Piece>(QUEUED);
        let finished = Arc::new(AtomicBool::new(false));
        let ended = finished.clone();
        let task = runtime()?.spawn(async move {
            let pieces = Box::pin(futures_util::stream::unfold(
                (rx, ended, false),
                |(mut rx, ended, over)| async move {
                    if over {
                        return None;
                    }
                    match rx.recv().await {
                        Some(piece) => Some((piece, (rx, ended, false))),
                        None if ended.load(Ordering::Acquire) => None,
                        None => {
                            let cut = io::Error::other("the upload ended without finish()");
                            Some((Err(cut), (rx, ended, true)))
                        }
                    }
                },
            ));
            let mut reader = StreamReader::new(pieces);
            inner.put_streamed(&name, &mut reader, size_hint, ask).await
        });
        Ok(Upload {
            tx: Mutex::new(Some(tx)),
            task: Mutex::new(Some(task)),
            finished,
        })
    }

    /// Ends the value: what was sent is all of it.
    fn end(&self) -> Option<JoinHandle<Result<u64, Failure>>> {
        self.finished.store(true, Ordering::Release);
        self.close()
    }

    fn sender(&self) -> Option<mpsc::Sender<Piece>> {
        self.tx.lock().ok().and_then(|t| t.clone())
    }

    fn close(&self) -> Option<JoinHandle<Result<u64, Failure>>> {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        self.task.lock().ok().and_then(|mut t| t.take())
    }
}

/// The upload's outcome once its task ended.
async fn outcome(task: Option<JoinHandle<Result<u64, Failure>>>) -> Result<u64, Failure> {
    match task {
        None => Err(Failure::Usage("the upload is finished already".into())),
        Some(t) => t
            .await
            .map_err(|e| Failure::Usage(format!("the upload task failed: {e}")))?,
    }
}

/// Sends one piece; if the upload stopped taking pieces, its failure.
async fn send(
    tx: Option<mpsc::Sender<Piece>>,
    piece: Bytes,
    task: impl FnOnce() -> Option<JoinHandle<Result<u64, Failure>>>,
) -> Result<(), Failure> {
    let Some(tx) = tx else {
        return Err(Failure::Usage("the upload is finished already".into()));
    };
    if tx.send(Ok(piece)).await.is_ok() {
        return Ok(());
    }
    drop(tx);
    match outcome(task()).await {
        Err(f) => Err(f),
        Ok(_) => Err(Failure::Usage(
            "the upload ended before its last piece".into(),
        )),
    }
}

#[pymethods]
impl Upload {
    /// Queues the next piece (blocks while [`QUEUED`] pieces wait).
    fn write(&self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        let piece = Bytes::copy_from_slice(data);
        let tx = self.sender();
        block(py, send(tx, piece, || self.close()))
    }

    fn write_async<'py>(self_: Bound<'py, Self>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        let piece = Bytes::copy_from_slice(data);
        let tx = self_.get().sender();
        let me = self_.clone().unbind();
        awaitable(self_.py(), async move {
            send(tx, piece, || me.get().close()).await
        })
    }

    /// Ends the value and waits for it (and its name record) to be stored: its size.
    fn finish(&self, py: Python<'_>) -> PyResult<u64> {
        let task = self.end();
        block(py, outcome(task))
    }

    fn finish_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let task = self.end();
        awaitable(py, outcome(task))
    }

    /// Abandons the upload: the store fails before its commit (nothing is written as the
    /// value). Returns at once (the upload's task ends by itself), so it is safe from an
    /// event loop and on cancellation.
    fn abort(&self) {
        drop(self.close());
    }
}
