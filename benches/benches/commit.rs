//! The group-commit hand-off: a writer awaiting `SharedSync::after_writes` (the next sync
//! that starts after it asked) with a sync that does nothing, alone and with 64 waiters at
//! once — the cost of the hand-off itself, not of fdatasync.

use criterion::{criterion_group, criterion_main, Criterion};
use ringblob_backends::SharedSync;
use std::sync::Arc;

fn hand_off(c: &mut Criterion) {
    let Ok(rt) = tokio::runtime::Runtime::new() else {
        return;
    };
    let shared = Arc::new(SharedSync::new(Arc::new(|| Ok(()))));
    c.bench_function("shared_sync/one_waiter", |b| {
        b.iter(|| rt.block_on(shared.after_writes(1)).is_ok())
    });
    c.bench_function("shared_sync/64_waiters", |b| {
        b.iter(|| {
            rt.block_on(async {
                let waiters: Vec<_> = (0..64)
                    .map(|_| {
                        let s = shared.clone();
                        tokio::spawn(async move { s.after_writes(1).await.is_ok() })
                    })
                    .collect();
                for w in waiters {
                    let _ = w.await;
                }
            })
        })
    });
}

criterion_group!(benches, hand_off);
criterion_main!(benches);
