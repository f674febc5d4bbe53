//! The conformance suite against every built-in backend.

use std::sync::Arc;

use ringblob_backends::conformance::{run_all, Fixture};
use ringblob_backends::{Backend, BlobBackend, FsBackend, MemBackend, RemoveLog};
use ringblob_engine::Config;

fn tempdir() -> Arc<tempfile::TempDir> {
    match tempfile::tempdir() {
        Ok(d) => Arc::new(d),
        Err(e) => panic!("tempdir: {e}"),
    }
}

fn fixture(dir: Arc<tempfile::TempDir>, open: fn(&std::path::Path) -> Arc<dyn Backend>) -> Fixture {
    let reopen_dir = dir.clone();
    Fixture {
        backend: Some(open(dir.path())),
        reopen: Some(Box::new(move || open(reopen_dir.path()))),
        guard: Box::new(dir),
    }
}

fn open_blob(p: &std::path::Path) -> Arc<dyn Backend> {
    let config = Config {
        frame_len: 64 << 10,
        max_blob_size: 1 << 20,
        ..Config::default()
    };
    match BlobBackend::open(p, config) {
        Ok(b) => Arc::new(b),
        Err(e) => panic!("open blob backend: {e}"),
    }
}

fn open_fs(p: &std::path::Path) -> Arc<dyn Backend> {
    match FsBackend::open(p) {
        Ok(b) => Arc::new(b),
        Err(e) => panic!("open fs backend: {e}"),
    }
}

#[test]
fn blob_backend_conforms() {
    run_all(|| fixture(tempdir(), open_blob));
}

#[test]
fn fs_backend_conforms() {
    run_all(|| fixture(tempdir(), open_fs));
}

#[test]
fn mem_backend_conforms() {
    run_all(|| Fixture {
        backend: Some(Arc::new(MemBackend::open_memory())),
        reopen: None,
        guard: Box::new(()),
    });
}

/// A store that ignores ranges: the suite must reject it (the suite can fail).
struct IgnoresRanges(ringblob_backends::MemStore);

impl ringblob_backends::Store for IgnoresRanges {
    fn kind(&self) -> &'static str {
        "broken"
    }
    fn put(
        &self,
        k: &ringblob_engine::Key,
        c: u16,
        v: &[u8],
        o: ringblob_engine::WriteOptions,
    ) -> ringblob_backends::Result<()> {
        self.0.put(k, c, v, o)
    }
    fn get(
        &self,
        k: &ringblob_engine::Key,
        c: u16,
        _r: ringblob_engine::Range,
    ) -> ringblob_backends::Result<Vec<u8>> {
        self.0.get(k, c, ringblob_engine::Range::all())
    }
    fn meta(
        &self,
        k: &ringblob_engine::Key,
        c: u16,
    ) -> ringblob_backends::Result<ringblob_backends::Meta> {
        self.0.meta(k, c)
    }
    fn delete(
        &self,
        k: &ringblob_engine::Key,
        c: u16,
        o: ringblob_engine::WriteOptions,
    ) -> ringblob_backends::Result<()> {
        self.0.delete(k, c, o)
    }
    fn scan(
        &self,
        a: &ringblob_engine::Key,
        b: &ringblob_engine::Key,
    ) -> ringblob_backends::Result<Vec<ringblob_backends::Meta>> {
        self.0.scan(a, b)
    }
    fn stats(&self) -> ringblob_backends::Result<ringblob_backends::BackendStats> {
        self.0.stats()
    }
    fn default_durability(&self) -> ringblob_engine::Durability {
        ringblob_engine::Durability::None
    }
    fn sync(&self) -> ringblob_backends::Result<()> {
        self.0.sync()
    }
}

#[test]
fn the_suite_rejects_a_backend_that_ignores_ranges() {
    use ringblob_backends::{Staging, Store, StoreBackend};
    let _: &dyn Store = &IgnoresRanges(Default::default());
    let outcome = std::panic::catch_unwind(|| {
        run_all(|| Fixture {
            backend: Some(Arc::new(StoreBackend::new(
                IgnoresRanges(Default::default()),
                Staging::memory(),
                RemoveLog::memory(std::time::Duration::from_secs(60)),
            ))),
            reopen: None,
            guard: Box::new(()),
        })
    });
    assert!(
        outcome.is_err(),
        "a backend that ignores ranges passed the suite"
    );
}

/// A store that keeps every column in column 0: the suite must reject it.
struct IgnoresColumns(ringblob_backends::MemStore);

impl ringblob_backends::Store for IgnoresColumns {
    fn kind(&self) -> &'static str {
        "broken"
    }
    fn put(
        &self,
        k: &ringblob_engine::Key,
        _c: u16,
        v: &[u8],
        o: ringblob_engine::WriteOptions,
    ) -> ringblob_backends::Result<()> {
        self.0.put(k, 0, v, o)
    }
    fn get(
        &self,
        k: &ringblob_engine::Key,
        _c: u16,
        r: ringblob_engine::Range,
    ) -> ringblob_backends::Result<Vec<u8>> {
        self.0.get(k, 0, r)
    }
    fn meta(
        &self,
        k: &ringblob_engine::Key,
        _c: u16,
    ) -> ringblob_backends::Result<ringblob_backends::Meta> {
        self.0.meta(k, 0)
    }
    fn delete(
        &self,
        k: &ringblob_engine::Key,
        _c: u16,
        o: ringblob_engine::WriteOptions,
    ) -> ringblob_backends::Result<()> {
        self.0.delete(k, 0, o)
    }
    fn scan(
        &self,
        a: &ringblob_engine::Key,
        b: &ringblob_engine::Key,
    ) -> ringblob_backends::Result<Vec<ringblob_backends::Meta>> {
        self.0.scan(a, b)
    }
    fn stats(&self) -> ringblob_backends::Result<ringblob_backends::BackendStats> {
        self.0.stats()
    }
    fn default_durability(&self) -> ringblob_engine::Durability {
        ringblob_engine::Durability::None
    }
    fn sync(&self) -> ringblob_backends::Result<()> {
        self.0.sync()
    }
}

#[test]
fn the_suite_rejects_a_backend_that_ignores_columns() {
    use ringblob_backends::{Staging, StoreBackend};
    let outcome = std::panic::catch_unwind(|| {
        run_all(|| Fixture {
            backend: Some(Arc::new(StoreBackend::new(
                IgnoresColumns(Default::default()),
                Staging::memory(),
                RemoveLog::memory(std::time::Duration::from_secs(60)),
            ))),
            reopen: None,
            guard: Box::new(()),
        })
    });
    assert!(
        outcome.is_err(),
        "a backend that ignores columns passed the suite"
    );
}
