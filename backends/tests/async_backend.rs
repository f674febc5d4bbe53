//! Backend calls from tokio run off the runtime's worker threads, bounded by a semaphore.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringblob_backends::{AsyncBackend, Backend, MemStore, Staging, Store, StoreBackend};
use ringblob_engine::{Key, Range, WriteOptions};

/// A blocking store whose reads wait until a gate opens, counting how many wait at once.
struct GatedStore {
    inner: MemStore,
    open: AtomicBool,
    inside: AtomicUsize,
    most_inside: AtomicUsize,
}

impl Store for GatedStore {
    fn kind(&self) -> &'static str {
        "gated"
    }
    fn put(&self, k: &Key, c: u16, v: &[u8], o: WriteOptions) -> ringblob_backends::Result<()> {
        self.inner.put(k, c, v, o)
    }
    fn get(&self, k: &Key, c: u16, r: Range) -> ringblob_backends::Result<Vec<u8>> {
        let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_inside.fetch_max(now, Ordering::SeqCst);
        while !self.open.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.inside.fetch_sub(1, Ordering::SeqCst);
        self.inner.get(k, c, r)
    }
    fn meta(&self, k: &Key, c: u16) -> ringblob_backends::Result<ringblob_backends::Meta> {
        self.inner.meta(k, c)
    }
    fn delete(&self, k: &Key, c: u16, o: WriteOptions) -> ringblob_backends::Result<()> {
        self.inner.delete(k, c, o)
    }
    fn scan(&self, a: &Key, b: &Key) -> ringblob_backends::Result<Vec<ringblob_backends::Meta>> {
        self.inner.scan(a, b)
    }
    fn stats(&self) -> ringblob_backends::Result<ringblob_backends::BackendStats> {
        self.inner.stats()
    }
    fn default_durability(&self) -> ringblob_engine::Durability {
        ringblob_engine::Durability::None
    }
    fn sync(&self) -> ringblob_backends::Result<()> {
        Ok(())
    }
}

/// On a runtime with ONE worker thread, 32 reads that block until an async task opens the
/// gate: if a read ran on the worker, the opener could never run and the test would hang
/// (caught by the timeout). At most 8 (the cap) may block at once.
#[test]
fn blocking_calls_never_stall_the_runtime_and_are_capped() {
    let store = GatedStore {
        inner: MemStore::default(),
        open: AtomicBool::new(false),
        inside: AtomicUsize::new(0),
        most_inside: AtomicUsize::new(0),
    };
    let removes = ringblob_backends::RemoveLog::memory(std::time::Duration::from_secs(60));
    let backend = Arc::new(StoreBackend::new(store, Staging::memory(), removes));
    let k = Key::from_name(b"", b"k");
    assert!(backend.write(&k, b"v", WriteOptions::default()).is_ok());
    let handle = AsyncBackend::new(backend.clone() as Arc<dyn Backend>, 8);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build();
    let Ok(rt) = rt else { panic!("runtime") };
    let outcome = rt.block_on(async {
        let reads: Vec<_> = (0..32)
            .map(|_| {
                let h = handle.clone();
                tokio::spawn(async move { h.run(move |b| b.read(&k, Range::all())).await })
            })
            .collect();
        let opener = async {
            while backend.store().inside.load(Ordering::SeqCst) < 8 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            backend.store().open.store(true, Ordering::SeqCst);
        };
        let all = async {
            opener.await;
            let mut ok = 0;
            for r in reads {
                if matches!(r.await, Ok(Ok(v)) if v == b"v") {
                    ok += 1;
                }
            }
            ok
        };
        tokio::time::timeout(Duration::from_secs(20), all).await
    });
    assert_eq!(
        outcome.ok(),
        Some(32),
        "reads stalled the runtime or failed"
    );
    assert_eq!(
        backend.store().most_inside.load(Ordering::SeqCst),
        8,
        "cap of 8 blocking calls"
    );
}
