//! Running an operation from Python: the sync client blocks on it with the interpreter
//! released (other Python threads run meanwhile), on a runtime of its own that the blocked
//! thread drives ([`Local`]); the async client gets an asyncio future, resolved by the
//! process's tokio runtime (no thread per request; many results share one wake-up of the
//! event loop, [`ENDED`]).
//!
//! The runtime's threads do not survive `fork()` (multiprocessing's default start method on
//! Linux, pre-forking servers): a child process that used its parent's runtime would wait
//! forever. So the runtime belongs to the process that made it, and a forked child that
//! uses either client gets a runtime of its own. Clients (and their connections) are still
//! to be made in the process that uses them.

use std::future::Future;
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::{intern, IntoPyObject, IntoPyObjectExt};
use tokio::runtime::Runtime;

use crate::failure::{py_result, Failure};

/// The runtime of the process that made it (pid, runtime).
static RUNTIME: Mutex<Option<(u32, &'static Runtime)>> = Mutex::new(None);

/// This process's runtime (made on first use; a forked child makes its own).
pub fn runtime() -> Result<&'static Runtime, Failure> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((owner, rt)) = *slot {
        if owner == pid {
            return Ok(rt);
        }
        // A forked child: results the parent's runtime had yet to hand over belong to the
        // parent's event loops, which do not run here (forgotten, not released: their
        // objects are the parent's).
        let mut ended = ENDED.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::forget(std::mem::take(&mut *ended));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ringblob")
        .enable_all()
        .build()
        .map_err(Failure::Io)?;
    let rt: &'static Runtime = Box::leak(Box::new(rt));
    *slot = Some((pid, rt));
    Ok(rt)
}

/// A sync client's runtime: a current-thread scheduler, driven by whichever thread blocks on
/// it, so a reply wakes the very thread that waits for it. On the process's runtime a reply
/// woke a runtime thread (its epoll) that then woke the caller: two wake-ups per call, and
/// 50-59 µs of client CPU per 100-byte put against 39-40 here (measured). Nothing on it runs
/// between calls, so work that must go on while Python does something else (reads ahead,
/// uploads) runs on the process's runtime, with a connection of its own.
#[derive(Default)]
pub struct Local {
    rt: std::sync::OnceLock<Runtime>,
}

impl Local {
    fn runtime(&self) -> Result<&Runtime, Failure> {
        if let Some(rt) = self.rt.get() {
            return Ok(rt);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Failure::Io)?;
        // Two threads making it at once: one is kept, the other dropped unused.
        Ok(self.rt.get_or_init(|| rt))
    }

    /// Runs `op` to its end on this runtime, the interpreter released meanwhile. Several
    /// threads may block on it at once: one drives it, the others wait for their own result.
    pub fn block<T, F>(&self, py: Python<'_>, op: F) -> PyResult<T>
    where
        T: Send,
        F: Future<Output = Result<T, Failure>> + Send,
    {
        let r = py.detach(|| self.runtime().and_then(|rt| rt.block_on(op)));
        py_result(py, r)
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // Not a blocking shutdown: the last reference may go on a thread that is inside a
        // runtime (dropping a runtime there would panic), and nothing on it is waited for.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Runs `op` to its end on the process's runtime, the interpreter released meanwhile.
pub fn block<T, F>(py: Python<'_>, op: F) -> PyResult<T>
where
    T: Send,
    F: Future<Output = Result<T, Failure>> + Send,
{
    let r = py.detach(|| runtime().and_then(|rt| rt.block_on(op)));
    py_result(py, r)
}

/// An asyncio awaitable of `op`: a future of the running event loop, resolved when `op`
/// ends on the runtime (`deliver`).
pub fn awaitable<'py, T, F>(py: Python<'py>, op: F) -> PyResult<Bound<'py, PyAny>>
where
    T: for<'a> IntoPyObject<'a> + Send + 'static,
    F: Future<Output = Result<T, Failure>> + Send + 'static,
{
    let rt = py_result(py, runtime())?;
    let event_loop = running_loop(py)?;
    let future = event_loop.call_method0(intern!(py, "create_future"))?;
    let (lp, fut) = (event_loop.unbind(), future.clone().unbind());
    rt.spawn(async move {
        let outcome = op.await;
        let make: Make = Box::new(move |py| match outcome {
            Ok(v) => v.into_py_any(py),
            Err(e) => Err(e.into_py_err(py)),
        });
        deliver(lp, fut, make);
    });
    Ok(future)
}

/// `asyncio.get_running_loop()` (looked up once).
fn running_loop(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static GET: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let get = GET.get_or_try_init(py, || {
        py.import("asyncio")
            .and_then(|m| m.getattr("get_running_loop"))
            .map(Bound::unbind)
    })?;
    get.bind(py).call0()
}

/// Builds an operation's result (or exception) once the interpreter is held.
type Make = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

/// Operations that ended, by event loop (its object's address), waiting to be handed to
/// their futures. Many results share one wake-up of the loop: the operation that finds its
/// loop's list empty schedules [`Drain`] with `call_soon_threadsafe` (the one moment a
/// runtime thread takes the interpreter lock); the rest only join the list. Without this
/// every result took the lock and woke the loop on its own (measured: 1,000 concurrent gets
/// ran at 0.9× redis.asyncio).
static ENDED: Mutex<Vec<(usize, Vec<Ended>)>> = Mutex::new(Vec::new());

/// An operation's future and its outcome.
type Ended = (Py<PyAny>, Make);

fn deliver(event_loop: Py<PyAny>, future: Py<PyAny>, make: Make) {
    let key = event_loop.as_ptr() as usize;
    let first = {
        let mut ended = ENDED.lock().unwrap_or_else(|e| e.into_inner());
        match ended.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => {
                list.push((future, make));
                list.len() == 1
            }
            None => {
                ended.push((key, vec![(future, make)]));
                true
            }
        }
    };
    if !first {
        // Another result already woke the loop; its drain takes this one too. (The loop's
        // reference is released the next time the interpreter is held.)
        drop(event_loop);
        return;
    }
    Python::attach(|py| {
        let drain = Drain { key };
        let scheduled = event_loop
            .bind(py)
            .call_method1(intern!(py, "call_soon_threadsafe"), (drain,));
        if scheduled.is_err() {
            // The loop is closed: nobody will await these futures.
            drop(take_ended(key));
        }
        drop(event_loop);
    });
}

/// The results ended for the loop `key`, taken off the list.
fn take_ended(key: usize) -> Vec<Ended> {
    let mut ended = ENDED.lock().unwrap_or_else(|e| e.into_inner());
    match ended.iter().position(|(k, _)| *k == key) {
        Some(at) => ended.swap_remove(at).1,
        None => Vec::new(),
    }
}

/// Run by the event loop: hands every ended operation of the loop its result (a future
/// cancelled meanwhile is left alone).
#[pyclass(module = "ringblob._ringblob")]
struct Drain {
    key: usize,
}

#[pymethods]
impl Drain {
    fn __call__(&self, py: Python<'_>) {
        for (future, make) in take_ended(self.key) {
            // One future that cannot take its result (cancelled, or done some other way)
            // must not keep the others from theirs.
            let _ = resolve(future.bind(py), make(py));
        }
    }
}

fn resolve(future: &Bound<'_, PyAny>, outcome: PyResult<Py<PyAny>>) -> PyResult<()> {
    let py = future.py();
    if future.call_method0(intern!(py, "cancelled"))?.is_truthy()? {
        return Ok(());
    }
    match outcome {
        Ok(v) => future.call_method1(intern!(py, "set_result"), (v,))?,
        Err(e) => future.call_method1(intern!(py, "set_exception"), (e,))?,
    };
    Ok(())
}
