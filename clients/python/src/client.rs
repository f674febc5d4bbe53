//! `_Core`: the native half of `ringblob.Client` and `ringblob.AsyncClient` (the Python
//! classes in `python/ringblob/` add docstrings, file-like objects and iteration). Every
//! operation comes twice — `op` blocks with the interpreter released, `op_async` returns an
//! awaitable — over the one implementation in `core.rs`.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use pyo3::prelude::*;

use crate::ahead::Ahead;
use crate::core::{durability, Inner, WriteAsk};
use crate::failure::{py_result, Failure};
use crate::run::{awaitable, Local};
use crate::settings::{Settings, TlsAsk};
use crate::target::NameArg;
use crate::upload::Upload;
use crate::values::{attrs_of, AttrPairs, Entry, Found, Meta};

/// A page of a query: what it found and the token to go on after it.
type FindPage = (Vec<Found>, Option<String>);

#[pyclass(frozen, module = "ringblob", name = "_Core")]
pub struct Core {
    /// The sync methods' client: its connections belong to `local` (declared first: they
    /// are dropped before the runtime is).
    sync: Arc<Inner>,
    local: Local,
    /// The async methods', reads ahead and uploads: on the process's runtime, which runs
    /// them while Python does something else.
    shared: Arc<Inner>,
}

/// `tls` as the Python side passes it: CA file, client certificate, its key, server name.
type TlsTuple = (
    Option<PathBuf>,
    Option<PathBuf>,
    Option<PathBuf>,
    Option<String>,
);
/// One page of a listing: entries and the token of the next page.
type ListPage = (Vec<Entry>, Option<Bytes>);
/// One page of an iteration: metas and where to resume.
type IterPage = (Vec<Meta>, Option<(Bytes, u16)>);

fn ask(
    column: Option<u16>,
    compress: bool,
    d: Option<&str>,
    attrs: Option<AttrPairs>,
) -> Result<WriteAsk, Failure> {
    Ok(WriteAsk {
        column,
        compress,
        durability: durability(d)?,
        attrs: attrs_of(attrs)?,
    })
}

#[pymethods]
impl Core {
    #[new]
    #[pyo3(signature = (addrs, namespace, groups, w, key, tls, timeout))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        addrs: Vec<String>,
        namespace: String,
        groups: Vec<u32>,
        w: &str,
        key: Option<&str>,
        tls: Option<TlsTuple>,
        timeout: f64,
    ) -> PyResult<Self> {
        let tls = tls.map(|(ca, cert, key, server_name)| TlsAsk {
            ca,
            cert,
            key,
            server_name,
        });
        let settings = Settings::new(addrs, (namespace, groups, w), key, tls, timeout);
        let settings = py_result(py, settings)?;
        Ok(Core {
            sync: Arc::new(Inner::new(settings.clone())),
            local: Local::default(),
            shared: Arc::new(Inner::new(settings)),
        })
    }

    fn connect(&self, py: Python<'_>) -> PyResult<()> {
        let inner = self.sync.clone();
        self.local
            .block(py, async move { inner.client().await.map(|_| ()) })
    }

    #[pyo3(signature = (name, data, column=None, compress=false, durability=None, append=false, offset=None, attrs=None))]
    #[allow(clippy::too_many_arguments)]
    fn put(
        &self,
        py: Python<'_>,
        name: NameArg,
        data: &[u8],
        column: Option<u16>,
        compress: bool,
        durability: Option<&str>,
        append: bool,
        offset: Option<u64>,
        attrs: Option<AttrPairs>,
    ) -> PyResult<u64> {
        let a = py_result(py, ask(column, compress, durability, attrs))?;
        let (inner, data) = (self.sync.clone(), Bytes::copy_from_slice(data));
        self.local.block(py, async move {
            inner.put(&name, data, a, (append, offset)).await
        })
    }

    #[pyo3(signature = (name, data, column=None, compress=false, durability=None, append=false, offset=None, attrs=None))]
    #[allow(clippy::too_many_arguments)]
    fn put_async<'py>(
        &self,
        py: Python<'py>,
        name: NameArg,
        data: &[u8],
        column: Option<u16>,
        compress: bool,
        durability: Option<&str>,
        append: bool,
        offset: Option<u64>,
        attrs: Option<AttrPairs>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let a = py_result(py, ask(column, compress, durability, attrs))?;
        let (inner, data) = (self.shared.clone(), Bytes::copy_from_slice(data));
        awaitable(py, async move {
            inner.put(&name, data, a, (append, offset)).await
        })
    }

    #[pyo3(signature = (name, path, column=None, compress=false, durability=None, attrs=None))]
    #[allow(clippy::too_many_arguments)]
    fn put_path(
        &self,
        py: Python<'_>,
        name: NameArg,
        path: PathBuf,
        column: Option<u16>,
        compress: bool,
        durability: Option<&str>,
        attrs: Option<AttrPairs>,
    ) -> PyResult<u64> {
        let a = py_result(py, ask(column, compress, durability, attrs))?;
        let inner = self.sync.clone();
        self.local
            .block(py, async move { inner.put_path(&name, path, a).await })
    }

    #[pyo3(signature = (name, path, column=None, compress=false, durability=None, attrs=None))]
    #[allow(clippy::too_many_arguments)]
    fn put_path_async<'py>(
        &self,
        py: Python<'py>,
        name: NameArg,
        path: PathBuf,
        column: Option<u16>,
        compress: bool,
        durability: Option<&str>,
        attrs: Option<AttrPairs>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let a = py_result(py, ask(column, compress, durability, attrs))?;
        let inner = self.shared.clone();
        awaitable(py, async move { inner.put_path(&name, path, a).await })
    }

    /// An upload fed piece by piece (`Upload.write`, then `finish`).
    #[pyo3(signature = (name, column=None, compress=false, durability=None, size=None, attrs=None))]
    #[allow(clippy::too_many_arguments)]
    fn upload(
        &self,
        py: Python<'_>,
        name: NameArg,
        column: Option<u16>,
        compress: bool,
        durability: Option<&str>,
        size: Option<u64>,
        attrs: Option<AttrPairs>,
    ) -> PyResult<Upload> {
        let a = py_result(py, ask(column, compress, durability, attrs))?;
        // Checked now, so a bad name fails here rather than at the first piece.
        py_result(py, self.shared.target(&name))?;
        py_result(py, Upload::start(self.shared.clone(), name, a, size))
    }

    #[pyo3(signature = (name, column=None, offset=0, size=None))]
    fn get(
        &self,
        py: Python<'_>,
        name: NameArg,
        column: Option<u16>,
        offset: u64,
        size: Option<u64>,
    ) -> PyResult<Bytes> {
        let inner = self.sync.clone();
        self.local.block(
            py,
            async move { inner.get(&name, column, (offset, size)).await },
        )
    }

    #[pyo3(signature = (name, column=None, offset=0, size=None))]
    fn get_async<'py>(
        &self,
        py: Python<'py>,
        name: NameArg,
        column: Option<u16>,
        offset: u64,
        size: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.shared.clone();
        awaitable(
            py,
            async move { inner.get(&name, column, (offset, size)).await },
        )
    }

    /// `size` bytes from `offset`, of `version` (`object`: a chunked object's) when given.
    #[pyo3(signature = (name, column, offset, size, group, version=None, object=false))]
    #[allow(clippy::too_many_arguments)]
    fn read_range(
        &self,
        py: Python<'_>,
        name: NameArg,
        column: Option<u16>,
        offset: u64,
        size: u64,
        group: Option<u32>,
        version: Option<u64>,
        object: bool,
    ) -> PyResult<Bytes> {
        let inner = self.sync.clone();
        let (range, at) = ((offset, Some(size)), (group, version, object));
        self.local.block(py, async move {
            inner.read_range(&name, column, range, at).await
        })
    }

    #[pyo3(signature = (name, column, offset, size, group, version=None, object=false))]
    #[allow(clippy::too_many_arguments)]
    fn read_range_async<'py>(
        &self,
        py: Python<'py>,
        name: NameArg,
        column: Option<u16>,
        offset: u64,
        size: u64,
        group: Option<u32>,
        version: Option<u64>,
        object: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.shared.clone();
        let (range, at) = ((offset, Some(size)), (group, version, object));
        awaitable(py, async move {
            inner.read_range(&name, column, range, at).await
        })
    }

    /// [`read_range`](Self::read_range) started now, taken later (`_Ahead.wait`).
    #[pyo3(signature = (name, column, offset, size, group, version=None, object=false))]
    #[allow(clippy::too_many_arguments)]
    fn read_range_ahead(
        &self,
        py: Python<'_>,
        name: NameArg,
        column: Option<u16>,
        offset: u64,
        size: u64,
        group: Option<u32>,
        version: Option<u64>,
        object: bool,
    ) -> PyResult<Ahead> {
        let inner = self.shared.clone();
        let (range, at) = ((offset, Some(size)), (group, version, object));
        let started = Ahead::start(async move { inner.read_range(&name, column, range, at).await });
        py_result(py, started)
    }

    #[pyo3(signature = (name, column=None))]
    fn lookup(&self, py: Python<'_>, name: NameArg, column: Option<u16>) -> PyResult<Meta> {
        let inner = self.sync.clone();
        self.local
            .block(py, async move { inner.lookup(&name, column).await })
    }

    #[pyo3(signature = (name, column=None))]
    fn lookup_async<'py>(
        &self,
        py: Python<'py>,
        name: NameArg,
        column: Option<u16>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.shared.clone();
        awaitable(py, async move { inner.lookup(&name, column).await })
    }

    #[pyo3(signature = (name, column=None))]
    fn exists(&self, py: Python<'_>, name: NameArg, column: Option<u16>) -> PyResult<bool> {
        let inner = self.sync.clone();
        self.local
            .block(py, async move { inner.exists(&name, column).await })
    }

    #[pyo3(signature = (name, column=None))]
    fn exists_async<'py>(
        &self,
        py: Python<'py>,
        name: NameArg,
        column: Option<u16>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.shared.clone();
        awaitable(py, async move { inner.exists(&name, column).await })
    }

    #[pyo3(signature = (name, column=None, durability=None))]
    fn remove(
        &self,
        py: Python<'_>,
        name: NameArg,
        column: Option<u16>,
        durability: Option<&str>,
    ) -> PyResult<()> {
        let d = py_result(py, crate::core::durability(durability))?;
        let inner = self.sync.clone();
        self.local
            .block(py, async move { inner.remove(&name, column, d).await })
    }

    #[pyo3(signature = (name, column=None, durability=None))]
    fn remove_async<'py>(
        &self,
        py: Python<'py>,
        name: NameArg,
        column: Option<u16>,
        durability: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let d = py_result(py, crate::core::durability(durability))?;
        let inner = self.shared.clone();
        awaitable(py, async move { inner.remove(&name, column, d).await })
    }

    #[pyo3(signature = (namespace, prefix, after, limit))]
    fn ls(
        &self,
        py: Python<'_>,
        namespace: Option<String>,
        prefix: String,
        after: Option<Vec<u8>>,
        limit: u32,
    ) -> PyResult<ListPage> {
        let inner = self.sync.clone();
        self.local.block(py, async move {
            inner.ls(namespace, prefix, after, limit).await
        })
    }

    #[pyo3(signature = (namespace, prefix, after, limit))]
    fn ls_async<'py>(
        &self,
        py: Python<'py>,
        namespace: Option<String>,
        prefix: String,
        after: Option<Vec<u8>>,
        limit: u32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.shared.clone();
        awaitable(py, async move {
            inner.ls(namespace, prefix, after, limit).await
        })
    }

    #[pyo3(signature = (namespace, words, exact, after, limit))]
    fn find(
        &self,
        py: Python<'_>,
        namespace: Option<String>,
        words: Vec<String>,
        exact: bool,
        after: Option<String>,
        limit: usize,
    ) -> PyResult<FindPage> {
        let inner = self.sync.clone();
        self.local.block(py, async move {
            inner.find(namespace, (words, exact), after, limit).await
        })
    }

    #[pyo3(signature = (namespace, words, exact, after, limit))]
    fn find_async<'py>(
        &self,
        py: Python<'py>,
        namespace: Option<String>,
        words: Vec<String>,
        exact: bool,
        after: Option<String>,
        limit: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.shared.clone();
        awaitable(py, async move {
            inner.find(namespace, (words, exact), after, limit).await
        })
    }

    #[pyo3(signature = (names, column=None))]
    fn bulk_get(
        &self,
        py: Python<'_>,
        names: Vec<NameArg>,
        column: Option<u16>,
    ) -> PyResult<Vec<Option<Bytes>>> {
        let inner = self.sync.clone();
        self.local
            .block(py, async move { inner.bulk_get(&names, column).await })
    }

    #[pyo3(signature = (names, column=None))]
    fn bulk_get_async<'py>(
        &self,
        py: Python<'py>,
        names: Vec<NameArg>,
        column: Option<u16>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.shared.clone();
        awaitable(py, async move { inner.bulk_get(&names, column).await })
    }

    fn stat(&self, py: Python<'_>) -> PyResult<String> {
        let inner = self.sync.clone();
        self.local.block(py, async move { inner.stat().await })
    }

    fn stat_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.shared.clone();
        awaitable(py, async move { inner.stat().await })
    }

    fn routes(&self, py: Python<'_>) -> PyResult<String> {
        let inner = self.sync.clone();
        self.local.block(py, async move { inner.routes().await })
    }

    fn routes_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.shared.clone();
        awaitable(py, async move { inner.routes().await })
    }

    #[pyo3(signature = (after, limit))]
    fn iterate(
        &self,
        py: Python<'_>,
        after: Option<(Vec<u8>, u16)>,
        limit: u32,
    ) -> PyResult<IterPage> {
        let inner = self.sync.clone();
        self.local
            .block(py, async move { inner.iterate(after, limit).await })
    }

    #[pyo3(signature = (after, limit))]
    fn iterate_async<'py>(
        &self,
        py: Python<'py>,
        after: Option<(Vec<u8>, u16)>,
        limit: u32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.shared.clone();
        awaitable(py, async move { inner.iterate(after, limit).await })
    }

    /// The namespace names are keyed in.
    #[getter]
    fn namespace(&self) -> String {
        self.sync.settings.namespace.clone()
    }

    /// The replica groups, in preference order (empty: the node's own).
    #[getter]
    fn groups(&self) -> Vec<u32> {
        self.sync.settings.groups.clone()
    }
}
