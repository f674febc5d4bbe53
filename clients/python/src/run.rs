//! Running an operation from Python: the sync client blocks on it with the interpreter
//! released (other Python threads run meanwhile); the async client gets an asyncio
//! awaitable, driven by the shared tokio runtime (no thread per request).

use std::future::Future;

use pyo3::prelude::*;
use pyo3::IntoPyObject;

use crate::failure::{py_result, Failure};

/// The runtime every client's connections and tasks live on.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// Runs `op` to its end, the interpreter released meanwhile.
pub fn block<T, F>(py: Python<'_>, op: F) -> PyResult<T>
where
    T: Send,
    F: Future<Output = Result<T, Failure>> + Send,
{
    let r = py.detach(|| runtime().block_on(op));
    py_result(py, r)
}

/// An asyncio awaitable of `op`.
pub fn awaitable<'py, T, F>(py: Python<'py>, op: F) -> PyResult<Bound<'py, PyAny>>
where
    T: for<'a> IntoPyObject<'a> + Send + 'static,
    F: Future<Output = Result<T, Failure>> + Send + 'static,
{
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        op.await.map_err(Failure::into_py_err_attached)
    })
}
