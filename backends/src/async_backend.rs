//! Calling a backend from tokio. Backend calls block (disk reads, fdatasync), so they run
//! on tokio's blocking thread pool, never on the runtime's worker threads; a semaphore caps
//! how many run at once, so a flood of requests queues instead of spawning without bound.
//! Backends that never block (`Backend::blocking() == false`) run inline. Backends that
//! can refuse what would block (`Backend::serves_without_waiting`) may be called inline
//! first, in no-wait mode (`ringblob_engine::io::nowait`); durability for writes applied
//! inline is awaited
//! through one shared sync ([`AsyncBackend::sync_after_writes`], `shared_sync.rs`).

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::shared_sync::SharedSync;

/// Default cap on concurrent blocking backend calls.
pub const DEFAULT_MAX_BLOCKING_CALLS: usize = 64;

/// A cheaply cloneable async handle to a backend.
#[derive(Clone)]
pub struct AsyncBackend {
    inner: Arc<dyn Backend>,
    permits: Arc<Semaphore>,
    syncs: Arc<SharedSync>,
}

impl AsyncBackend {
    pub fn new(inner: Arc<dyn Backend>, max_blocking_calls: usize) -> Self {
        let for_sync = inner.clone();
        AsyncBackend {
            inner,
            permits: Arc::new(Semaphore::new(max_blocking_calls.max(1))),
            syncs: Arc::new(SharedSync::new(Arc::new(move || for_sync.sync()))),
        }
    }

    /// The backend itself.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.inner
    }

    /// Whether calls are worth trying inline first, in no-wait mode: the backend refuses
    /// what would block, or never blocks.
    pub fn serves_inline(&self) -> bool {
        !self.inner.blocking() || self.inner.serves_without_waiting()
    }

    /// Returns once a `sync` that started after this call has ended (shared with every
    /// caller waiting meanwhile; no thread parked per caller): the `writes` durable writes
    /// the caller made before are durable.
    pub async fn sync_after_writes(&self, writes: u32) -> Result<()> {
        if !self.inner.blocking() {
            return self.inner.sync();
        }
        self.syncs.after_writes(writes).await
    }

    /// Runs `f` against the backend without blocking the runtime.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Backend) -> Result<T> + Send + 'static,
    {
        if !self.inner.blocking() {
            return f(self.inner.as_ref());
        }
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let backend = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(backend.as_ref())
        })
        .await
        .map_err(|e| Error::Internal(format!("backend task failed: {e}")))?
    }
}
