//! Calling a backend from tokio. Backend calls block (disk reads, fdatasync), so they run
//! on tokio's blocking thread pool, never on the runtime's worker threads; a semaphore caps
//! how many run at once, so a flood of requests queues instead of spawning without bound.
//! Backends that never block (`Backend::blocking() == false`) run inline.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::backend::Backend;
use crate::error::{Error, Result};

/// Default cap on concurrent blocking backend calls.
pub const DEFAULT_MAX_BLOCKING_CALLS: usize = 64;

/// A cheaply cloneable async handle to a backend.
#[derive(Clone)]
pub struct AsyncBackend {
    inner: Arc<dyn Backend>,
    permits: Arc<Semaphore>,
}

impl AsyncBackend {
    pub fn new(inner: Arc<dyn Backend>, max_blocking_calls: usize) -> Self {
        AsyncBackend {
            inner,
            permits: Arc::new(Semaphore::new(max_blocking_calls.max(1))),
        }
    }

    /// The backend itself.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.inner
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
