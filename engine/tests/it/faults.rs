//! Injected IO failures: the failing call reports an error, the engine refuses writes from
//! then on, and a reopen shows every acknowledged write and nothing half-written.

use std::collections::BTreeMap;
use std::sync::Arc;

use ringblob_engine::io::{Device, FaultDevice, FaultPlan, MemDevice};
use ringblob_engine::{Engine, Error};

use crate::support::{key, open_mem, read_all, small_config, sync_opts, value};

/// Values written per key, in order, and the last one acknowledged.
#[derive(Default)]
struct History {
    attempted: BTreeMap<u64, Vec<Vec<u8>>>,
    acked: BTreeMap<u64, Vec<u8>>,
}

fn workload(e: &Engine, h: &mut History) -> bool {
    let mut failed = false;
    for i in 0..90u64 {
        let k = i % 25;
        let v = value(k, i, [10, 3000, 9000][(i % 3) as usize]);
        h.attempted.entry(k).or_default().push(v.clone());
        match e.write(&key(k), &v, sync_opts()) {
            Ok(()) => {
                assert!(!failed, "a write was acknowledged after a failure");
                h.acked.insert(k, v);
            }
            Err(Error::Poisoned(_)) if failed => {}
            Err(err) => {
                assert!(
                    !failed,
                    "after the first failure writes must say Poisoned, got {err}"
                );
                failed = true;
            }
        }
    }
    failed
}

/// Reopens `dev` and checks: every acknowledged value (or a later attempted one) is there,
/// whole; no key shows bytes that were never written; nothing reads as corrupt.
fn verify(dev: &MemDevice, h: &History, label: &str) {
    let e = open_mem(dev, small_config());
    for (k, tried) in &h.attempted {
        match read_all(&e, &key(*k)) {
            Ok(v) => {
                let pos = tried.iter().rposition(|t| *t == v);
                assert!(pos.is_some(), "{label}: key {k} holds bytes never written");
                if let (Some(acked), Some(pos)) = (h.acked.get(k), pos) {
                    let acked_pos = tried.iter().rposition(|t| t == acked).unwrap_or(0);
                    assert!(
                        pos >= acked_pos,
                        "{label}: key {k} went back before its acknowledged value"
                    );
                }
            }
            Err(Error::NotFound(_)) => assert!(
                !h.acked.contains_key(k),
                "{label}: acknowledged key {k} lost"
            ),
            Err(err) => panic!("{label}: key {k}: {err}"),
        }
    }
}

fn run_with(plan: Arc<FaultPlan>, label: &str) -> bool {
    let mem = MemDevice::new();
    let dev: Arc<dyn Device> = Arc::new(FaultDevice::new(mem.clone(), plan));
    let Ok(e) = Engine::open_on(dev, small_config()) else {
        // The fault hit while creating the first blob: open reported it. Nothing to check.
        return false;
    };
    let mut h = History::default();
    let failed = workload(&e, &mut h);
    if failed {
        assert!(
            e.stats().poisoned.is_some(),
            "{label}: stats must say why writes are refused"
        );
        assert!(matches!(
            e.write(&key(0), b"x", sync_opts()),
            Err(Error::Poisoned(_))
        ));
        assert!(matches!(e.sync(), Err(Error::Poisoned(_))));
    }
    drop(e);
    verify(&mem, &h, &format!("{label}, current state"));
    verify(&mem.crash_image(), &h, &format!("{label}, crash image"));
    failed
}

#[test]
fn nth_write_failure_poisons_and_loses_nothing_acknowledged() {
    let mut failures = 0;
    for n in 1..=70 {
        failures += usize::from(run_with(
            FaultPlan::new(Some(n), None),
            &format!("write #{n}"),
        ));
    }
    // Not every write can poison: those of the derived files a seal writes on the
    // maintenance thread (index and sorted index files) fail without poisoning (logged, the
    // file rebuilt at open), and seals race the writer, so their writes land at varying
    // numbers: 58 of 70 runs poisoned once under CI load (62+ on an idle machine). Every
    // run, hit or not, was verified above.
    assert!(
        failures >= 50,
        "only {failures} runs hit their injected write failure"
    );
}

#[test]
fn nth_sync_failure_poisons_and_loses_nothing_acknowledged() {
    let mut failures = 0;
    for n in 1..=70 {
        failures += usize::from(run_with(
            FaultPlan::new(None, Some(n)),
            &format!("sync #{n}"),
        ));
    }
    // Not every sync can poison: open's own (#1, #2), and those of the derived files a seal
    // writes on the maintenance thread (index and sorted index files, their directory),
    // whose failure is logged and the file rebuilt at open. Seals race the writer, so their
    // syncs land at varying numbers (up to 13 of the 70 seen); every run, hit or not, was
    // verified above.
    assert!(
        failures >= 50,
        "only {failures} runs hit their injected sync failure"
    );
}

/// A write that finds the disk full (`ENOSPC`, whichever write it is: a record, the buffer,
/// a new blob's header, an index file) refuses that write as `DiskFull` and poisons
/// nothing: the next writes succeed, and a reopen shows every acknowledged write.
#[test]
fn a_full_disk_refuses_the_write_it_hits_and_poisons_nothing() {
    let mut refusals = 0;
    for n in 1..=70 {
        let label = format!("full disk at write #{n}");
        let mem = MemDevice::new();
        let dev: Arc<dyn Device> =
            Arc::new(FaultDevice::new(mem.clone(), FaultPlan::full_disk_at(n)));
        let Ok(e) = Engine::open_on(dev, small_config()) else {
            continue;
        };
        let mut h = History::default();
        for i in 0..90u64 {
            let k = i % 25;
            let v = value(k, i, [10, 3000, 9000][(i % 3) as usize]);
            h.attempted.entry(k).or_default().push(v.clone());
            match e.write(&key(k), &v, sync_opts()) {
                Ok(()) => {
                    h.acked.insert(k, v);
                }
                Err(Error::DiskFull { .. }) => refusals += 1,
                Err(err) => panic!("{label}: write {i}: {err}"),
            }
        }
        assert!(e.stats().poisoned.is_none(), "{label}: poisoned");
        assert!(
            e.sync().is_ok(),
            "{label}: sync after the disk had room again"
        );
        drop(e);
        verify(&mem, &h, &format!("{label}, current state"));
        verify(&mem.crash_image(), &h, &format!("{label}, crash image"));
    }
    assert!(refusals >= 50, "only {refusals} writes met the full disk");
}
