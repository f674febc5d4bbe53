//! Running an operation from Python: the sync client blocks on it with the interpreter
//! released (other Python threads run meanwhile); the async client gets an asyncio
//! awaitable, driven by the same tokio runtime (no thread per request).
//!
//! The runtime's threads do not survive `fork()` (multiprocessing's default start method on
//! Linux, pre-forking servers): a child process that blocks on its parent's runtime would
//! wait forever. So the runtime belongs to the process that made it: a forked child that
//! uses the blocking client gets a runtime of its own, and the asyncio client — whose
//! runtime is fixed for the life of the process — refuses with a clear error there. Clients
//! are to be made in the process that uses them.

use std::future::Future;
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::IntoPyObject;
use tokio::runtime::Runtime;

use crate::failure::{py_result, Failure};

/// The runtime of the process that made it (pid, runtime).
static RUNTIME: Mutex<Option<(u32, &'static Runtime)>> = Mutex::new(None);
/// The process whose runtime drives asyncio awaitables (set once, with the first runtime).
static ASYNC_PID: Mutex<Option<u32>> = Mutex::new(None);

/// This process's runtime (made on first use; a forked child makes its own).
pub fn runtime() -> Result<&'static Runtime, Failure> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((owner, rt)) = *slot {
        if owner == pid {
            return Ok(rt);
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ringblob")
        .enable_all()
        .build()
        .map_err(Failure::Io)?;
    let rt: &'static Runtime = Box::leak(Box::new(rt));
    *slot = Some((pid, rt));
    let mut async_pid = ASYNC_PID.lock().unwrap_or_else(|e| e.into_inner());
    if async_pid.is_none() && pyo3_async_runtimes::tokio::init_with_runtime(rt).is_ok() {
        *async_pid = Some(pid);
    }
    Ok(rt)
}

/// Runs `op` to its end, the interpreter released meanwhile.
pub fn block<T, F>(py: Python<'_>, op: F) -> PyResult<T>
where
    T: Send,
    F: Future<Output = Result<T, Failure>> + Send,
{
    let r = py.detach(|| runtime().and_then(|rt| rt.block_on(op)));
    py_result(py, r)
}

/// An asyncio awaitable of `op`.
pub fn awaitable<'py, T, F>(py: Python<'py>, op: F) -> PyResult<Bound<'py, PyAny>>
where
    T: for<'a> IntoPyObject<'a> + Send + 'static,
    F: Future<Output = Result<T, Failure>> + Send + 'static,
{
    py_result(py, runtime())?;
    let owner = *ASYNC_PID.lock().unwrap_or_else(|e| e.into_inner());
    if owner != Some(std::process::id()) {
        return Err(Failure::State(
            "the asyncio client cannot run in a process forked after ringblob started its \
             runtime: make clients in the process that uses them (multiprocessing: the \
             'spawn' or 'forkserver' start method)"
                .into(),
        )
        .into_py_err(py));
    }
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        op.await.map_err(Failure::into_py_err_attached)
    })
}
