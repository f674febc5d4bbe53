//! Power cuts at every sync point of a small workload: each crash image (and a torn variant
//! of it) must open and hold every acknowledged write and remove, and only whole values.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use ringblob_engine::io::MemDevice;
use ringblob_engine::{Durability, Error, WriteOptions};

use crate::support::{key, open_mem, read_all, small_config, value};

/// One acknowledged operation: key and the value it left (`None` = removed).
type Op = (u64, Option<Vec<u8>>);

fn workload() -> Vec<(u64, Option<Vec<u8>>)> {
    (0..160u64)
        .map(|i| {
            let k = (i * 7) % 30;
            if i % 9 == 4 {
                (k, None)
            } else {
                (k, Some(value(k, i, [0, 40, 2500, 9000][(i % 4) as usize])))
            }
        })
        .collect()
}

/// What key `k` may hold in an image taken after `acked` operations: its state then, or
/// the state after any later operation on it (that one may have reached the disk too).
fn allowed(ops: &[Op], acked: usize, k: u64) -> Vec<Option<Vec<u8>>> {
    let before = ops[..acked]
        .iter()
        .rev()
        .find(|(kk, _)| *kk == k)
        .and_then(|(_, v)| v.clone());
    let mut out = vec![before];
    out.extend(
        ops[acked..]
            .iter()
            .filter(|(kk, _)| *kk == k)
            .map(|(_, v)| v.clone()),
    );
    out
}

fn check_image(image: &MemDevice, ops: &[Op], acked: usize, label: &str) {
    let e = open_mem(image, small_config());
    for k in 0..30u64 {
        let got = match read_all(&e, &key(k)) {
            Ok(v) => Some(v),
            Err(Error::NotFound(_)) => None,
            Err(err) => panic!("{label}: key {k}: {err}"),
        };
        assert!(
            allowed(ops, acked, k).contains(&got),
            "{label}: key {k} holds a value it may not"
        );
    }
}

#[test]
fn every_sync_point_crash_image_keeps_acknowledged_operations() {
    let mem = MemDevice::new();
    let acked = Arc::new(AtomicUsize::new(0));
    let images: Arc<Mutex<Vec<(usize, MemDevice, MemDevice)>>> = Arc::default();
    {
        let (acked, images) = (acked.clone(), images.clone());
        let n = Mutex::new(0usize);
        mem.on_sync(move |dev| {
            let mut n = n.lock();
            *n += 1;
            let seed = *n;
            let torn = dev.torn_image(|file, len| (seed * 31 + file * 17) % (len + 1));
            images
                .lock()
                .push((acked.load(Ordering::SeqCst), dev.crash_image(), torn));
        });
    }
    let ops = workload();
    let e = open_mem(&mem, small_config());
    let sync = WriteOptions::durability(Durability::Sync);
    for (k, v) in &ops {
        let r = match v {
            Some(v) => e.write(&key(*k), v, sync),
            None => e
                .remove_with(&key(*k), Durability::Sync)
                .or_else(|err| match err {
                    Error::NotFound(_) => Ok(()),
                    other => Err(other),
                }),
        };
        assert!(r.is_ok(), "{r:?}");
        acked.fetch_add(1, Ordering::SeqCst);
    }
    drop(e);
    let images = std::mem::take(&mut *images.lock());
    assert!(
        images.len() > ops.len(),
        "expected a sync point per operation, got {}",
        images.len()
    );
    for (i, (acked, image, torn)) in images.iter().enumerate() {
        check_image(
            image,
            &ops,
            *acked,
            &format!("sync point {i} ({acked} acked)"),
        );
        check_image(
            torn,
            &ops,
            *acked,
            &format!("torn sync point {i} ({acked} acked)"),
        );
    }
}
