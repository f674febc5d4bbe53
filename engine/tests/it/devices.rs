//! Every device behaves the same: one set of behaviour checks run against the pread, mmap,
//! io_uring and in-memory devices; the engine's main scenario on each `IoKind`; and injected
//! failures through `FaultDevice` wrapped around each real device.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ringblob_engine::io::{
    Device, DeviceFile, FaultDevice, FaultPlan, MemDevice, MmapDevice, OpenMode, OsDevice,
    UringDevice,
};
use ringblob_engine::{Config, Durability, Engine, Error, IoKind, Range, WriteOptions};

use crate::support::{key, read_all, small_config, sync_opts, value};

fn must<T>(r: io::Result<T>, what: &str) -> T {
    match r {
        Ok(t) => t,
        Err(e) => panic!("{what}: {e}"),
    }
}

fn tmp() -> tempfile::TempDir {
    must(tempfile::tempdir(), "tempdir")
}

fn read(f: &dyn DeviceFile, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; len];
    f.read_exact_at(&mut buf, offset).map(|()| buf)
}

fn eof(f: &dyn DeviceFile, offset: u64, len: usize) -> bool {
    read(f, offset, len).map_err(|e| e.kind()) == Err(io::ErrorKind::UnexpectedEof)
}

/// The io_uring device on `dir`, or `None` (with a note) where the kernel refuses io_uring.
fn uring(dir: &Path) -> Option<UringDevice> {
    match UringDevice::open(dir) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("note: kernel refuses io_uring ({e}); skipping the io_uring device");
            None
        }
    }
}

/// Runs every behaviour check on `dev` (an empty directory).
fn conformance(dev: &dyn Device, label: &str) {
    reads_back_what_was_written(dev, label);
    reads_past_the_end_fail(dev, label);
    reads_follow_growth(dev, label);
    truncation_then_reads(dev, label);
    concurrent_readers_while_appending(dev, label);
    directory_operations(dev, label);
    lock_is_exclusive(dev, label);
}

fn reads_back_what_was_written(dev: &dyn Device, label: &str) {
    let f = must(dev.open("rw", OpenMode::CreateNew), label);
    let data: Vec<u8> = (0..70_000u32).map(|i| (i * 31 % 251) as u8).collect();
    must(f.write_all_at(&data, 0), label);
    must(f.write_all_at(b"patch", 100), label);
    must(f.sync_data(), label);
    assert_eq!(must(f.len(), label), 70_000, "{label}: length");
    let back = must(read(f.as_ref(), 0, 70_000), label);
    assert_eq!(&back[..100], &data[..100], "{label}");
    assert_eq!(&back[100..105], b"patch", "{label}: overwrite in place");
    assert_eq!(&back[105..], &data[105..], "{label}");
    assert_eq!(
        must(read(f.as_ref(), 70_000, 0), label),
        b"",
        "{label}: empty at end"
    );
    let ro = must(dev.open("rw", OpenMode::ReadOnly), label);
    assert_eq!(
        must(read(ro.as_ref(), 65_536, 4), label),
        &data[65_536..65_540]
    );
    assert!(
        ro.write_all_at(b"x", 0).is_err(),
        "{label}: read-only handle wrote"
    );
}

fn reads_past_the_end_fail(dev: &dyn Device, label: &str) {
    let f = must(dev.open("eof", OpenMode::CreateNew), label);
    assert!(eof(f.as_ref(), 0, 1), "{label}: read of an empty file");
    must(f.write_all_at(&[1; 4096], 0), label);
    assert!(
        eof(f.as_ref(), 4000, 97),
        "{label}: read straddling the end"
    );
    assert!(
        eof(f.as_ref(), 5000, 10),
        "{label}: read wholly past the end"
    );
    // Past i64::MAX, pread says EINVAL and the memory device EOF: an error either way.
    assert!(
        read(f.as_ref(), u64::MAX - 2, 1).is_err(),
        "{label}: huge offset"
    );
    assert_eq!(must(read(f.as_ref(), 4000, 96), label), vec![1; 96]);
}

fn reads_follow_growth(dev: &dyn Device, label: &str) {
    let f = must(dev.open("grow", OpenMode::CreateNew), label);
    let other = must(dev.open("grow", OpenMode::ReadOnly), label);
    for i in 0..20u8 {
        let at = u64::from(i) * 3000;
        must(f.write_all_at(&[i; 3000], at), label);
        assert_eq!(
            must(read(f.as_ref(), at, 3000), label),
            vec![i; 3000],
            "{label} #{i}"
        );
        assert_eq!(
            must(read(other.as_ref(), at + 2999, 1), label),
            vec![i],
            "{label}"
        );
        assert!(
            eof(other.as_ref(), at + 2999, 2),
            "{label}: past the new end"
        );
    }
}

fn truncation_then_reads(dev: &dyn Device, label: &str) {
    let f = must(dev.open("trunc", OpenMode::CreateNew), label);
    let other = must(dev.open("trunc", OpenMode::ReadWrite), label);
    must(f.write_all_at(&[5; 50_000], 0), label);
    assert_eq!(must(read(other.as_ref(), 40_000, 10), label), vec![5; 10]);
    must(f.set_len(100), label);
    must(f.sync_data(), label);
    assert_eq!(must(other.len(), label), 100, "{label}");
    assert!(
        eof(other.as_ref(), 40_000, 10),
        "{label}: truncated bytes still read"
    );
    assert!(
        eof(other.as_ref(), 50, 51),
        "{label}: straddles the new end"
    );
    assert_eq!(must(read(other.as_ref(), 0, 100), label), vec![5; 100]);
    must(other.set_len(200), label);
    assert_eq!(
        must(read(f.as_ref(), 90, 20), label),
        [[5; 10], [0; 10]].concat()
    );
    must(f.write_all_at(&[6; 10], 200), label);
    assert_eq!(
        must(read(other.as_ref(), 195, 15), label),
        [&[0u8; 5][..], &[6; 10]].concat()
    );
}

const RECORD_LEN: usize = 4096;

/// Record `i`'s bytes: its number, repeated.
fn record(i: u64) -> Vec<u8> {
    (i as u32).to_le_bytes().repeat(RECORD_LEN / 4)
}

/// Two readers (one on its own handle) check random published records while a writer
/// appends; the files grow under the readers.
fn concurrent_readers_while_appending(dev: &dyn Device, label: &str) {
    const RECORDS: u64 = 400;
    let w = must(dev.open("append", OpenMode::CreateNew), label);
    let own = must(dev.open("append", OpenMode::ReadOnly), label);
    let published = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let reader = |f: &dyn DeviceFile, seed: u64| {
        let (mut x, mut reads) = (seed, 0u64);
        while !done.load(Ordering::Acquire) || reads < 100 {
            let n = published.load(Ordering::Acquire);
            if n == 0 {
                std::hint::spin_loop();
                continue;
            }
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let i = (x >> 33) % n;
            let got = must(read(f, i * RECORD_LEN as u64, RECORD_LEN), label);
            assert!(got == record(i), "{label}: record {i} read wrong");
            reads += 1;
        }
        reads
    };
    let reads = std::thread::scope(|s| {
        let a = s.spawn(|| reader(w.as_ref(), 1));
        let b = s.spawn(|| reader(own.as_ref(), 2));
        for i in 0..RECORDS {
            must(w.write_all_at(&record(i), i * RECORD_LEN as u64), label);
            published.store(i + 1, Ordering::Release);
        }
        done.store(true, Ordering::Release);
        [a.join(), b.join()]
    });
    for r in reads {
        assert!(r.is_ok_and(|n| n >= 100), "{label}: a reader failed");
    }
}

fn directory_operations(dev: &dyn Device, label: &str) {
    let a = must(dev.open("a", OpenMode::CreateNew), label);
    must(a.write_all_at(b"from a", 0), label);
    let b = must(dev.open("b", OpenMode::CreateNew), label);
    must(b.write_all_at(b"from b", 0), label);
    let again = dev.open("a", OpenMode::CreateNew).map(|_| ());
    assert_eq!(
        again.map_err(|e| e.kind()),
        Err(io::ErrorKind::AlreadyExists)
    );
    must(dev.rename("a", "b"), label);
    must(dev.sync_dir(), label);
    let names = must(dev.list(), label);
    assert!(names.contains(&"b".to_string()) && !names.contains(&"a".to_string()));
    let b = must(dev.open("b", OpenMode::ReadOnly), label);
    assert_eq!(
        must(read(b.as_ref(), 0, 6), label),
        b"from a",
        "{label}: rename replaces"
    );
    must(dev.remove("b"), label);
    let gone = dev.open("b", OpenMode::ReadWrite).map(|_| ());
    assert_eq!(
        gone.map_err(|e| e.kind()),
        Err(io::ErrorKind::NotFound),
        "{label}"
    );
    assert!(dev.remove("b").is_err(), "{label}: removing a missing file");
}

fn lock_is_exclusive(dev: &dyn Device, label: &str) {
    let first = must(dev.lock(), label);
    let second = dev.lock().map(|_| ()).map_err(|e| e.kind());
    assert_eq!(second, Err(io::ErrorKind::WouldBlock), "{label}");
    drop(first);
    assert!(dev.lock().is_ok(), "{label}: lock released on drop");
}

#[test]
fn pread_device_conforms() {
    let dir = tmp();
    conformance(&must(OsDevice::open(dir.path()), "open"), "pread");
}

#[test]
fn mmap_device_conforms() {
    let dir = tmp();
    conformance(&must(MmapDevice::open(dir.path()), "open"), "mmap");
}

#[test]
fn uring_device_conforms() {
    let dir = tmp();
    if let Some(dev) = uring(dir.path()) {
        conformance(&dev, "uring");
    }
}

#[test]
fn mem_device_conforms() {
    conformance(&MemDevice::new(), "mem");
}

const ALL_IO: [IoKind; 3] = [IoKind::Pread, IoKind::Mmap, IoKind::Uring];

fn open_engine(dir: &Path, io: IoKind) -> Engine {
    match Engine::open(
        dir,
        Config {
            io,
            ..small_config()
        },
    ) {
        Ok(e) => e,
        Err(e) => panic!("{}: open: {e}", io.name()),
    }
}

/// Key `i`'s value, version `v`: sizes cycle through one frame, several and many.
fn scenario_value(i: u64, v: u64) -> Vec<u8> {
    value(i, v, [10, 3000, 9000, 50_000][(i % 4) as usize])
}

/// Checks every key against `expected` (`None`: removed), whole and by ranges.
fn check_engine(e: &Engine, expected: &[Option<Vec<u8>>], label: &str) {
    for (i, want) in (0u64..).zip(expected) {
        let got = read_all(e, &key(i));
        match (want, got) {
            (Some(want), Ok(got)) => assert!(got == *want, "{label}: key {i} differs"),
            (None, Err(Error::NotFound(_))) => {}
            (want, got) => panic!("{label}: key {i}: want {:?}, got {got:?}", want.is_some()),
        }
        let Some(want) = want else { continue };
        for (off, size) in [(0u64, 1u64), (5, 4000), (want.len() as u64 / 2, 20_000)] {
            let (off, size) = (off as usize, size as usize);
            let slice = &want[off..want.len().min(off + size)];
            let got = e.read(&key(i), Range::new(off as u64, size as u64));
            assert!(
                got.is_ok_and(|g| g == slice),
                "{label}: key {i} range {off}+{size}"
            );
        }
    }
}

/// Writes (buffered, then flushed), overwrites, removes, range reads, reopens.
fn engine_scenario(io: IoKind) {
    let dir = tmp();
    let label = io.name();
    let mut expected: Vec<Option<Vec<u8>>> = (0..40).map(|i| Some(scenario_value(i, 0))).collect();
    {
        let e = open_engine(dir.path(), io);
        for (i, v) in (0u64..).zip(&expected) {
            let opts = WriteOptions {
                compress: Some(i % 3 == 0),
                durability: Some(Durability::None),
                ..WriteOptions::default()
            };
            assert!(v
                .as_ref()
                .is_some_and(|v| e.write(&key(i), v, opts).is_ok()));
        }
        check_engine(&e, &expected, &format!("{label}, buffered"));
        assert!(e.sync().is_ok(), "{label}: sync");
        check_engine(&e, &expected, &format!("{label}, flushed"));
        for i in (0..40u64).step_by(5) {
            let v = scenario_value(i, 1);
            assert!(e.write(&key(i), &v, sync_opts()).is_ok());
            expected[i as usize] = Some(v);
        }
        for i in (1..40u64).step_by(7) {
            assert!(e.remove_with(&key(i), Durability::Sync).is_ok());
            expected[i as usize] = None;
        }
        check_engine(&e, &expected, &format!("{label}, after overwrites"));
        assert!(
            e.stats().blobs > 1,
            "{label}: the small config rotates blobs"
        );
        assert!(e.close().is_ok(), "{label}: close");
    }
    let e = open_engine(dir.path(), io);
    check_engine(&e, &expected, &format!("{label}, reopened"));
    assert!(e.close().is_ok());
}

#[test]
fn engine_scenario_on_every_io_kind() {
    for io in ALL_IO {
        engine_scenario(io);
    }
}

/// Whether this process maps a file whose path ends with `name`.
fn mapped(name: &str) -> bool {
    let maps = must(std::fs::read_to_string("/proc/self/maps"), "maps");
    maps.lines().any(|l| l.ends_with(name))
}

#[test]
fn engine_open_uses_the_configured_io_kind() {
    for (io, want_map) in [(IoKind::Pread, false), (IoKind::Mmap, true)] {
        let dir = tmp();
        let e = open_engine(dir.path(), io);
        assert!(e.write(&key(1), &scenario_value(1, 0), sync_opts()).is_ok());
        assert!(read_all(&e, &key(1)).is_ok());
        let blob = dir.path().join("data-00000001.blob");
        let blob = blob.to_string_lossy();
        assert_eq!(mapped(&blob), want_map, "{}: blob mapped?", io.name());
        assert!(e.close().is_ok());
    }
}

#[test]
fn io_kind_default_is_pread() {
    assert_eq!(Config::default().io, IoKind::Pread);
    assert_eq!("mmap".parse::<IoKind>(), Ok(IoKind::Mmap));
}

/// Writes with `sync` durability until the injected failure; checks the engine is poisoned,
/// then reopens the directory without faults and finds every acknowledged write.
fn poisons_on_injected_failure<D: Device + 'static>(
    dev: D,
    plan: Arc<FaultPlan>,
    dir: &Path,
    io: IoKind,
    label: &str,
) {
    let faulty: Arc<dyn Device> = Arc::new(FaultDevice::new(dev, plan));
    // No rotation: sealing runs in the background, where a failed index-file write is
    // logged (the next open rebuilds it) rather than poisoning; every counted write here is
    // a foreground append.
    let config = Config {
        max_blob_size: 64 << 20,
        max_blob_records: 1 << 20,
        ..small_config()
    };
    let e = match Engine::open_on(faulty, config) {
        Ok(e) => e,
        Err(e) => panic!("{label}: open must succeed before the fault: {e}"),
    };
    let mut acked = Vec::new();
    let mut failed = None;
    for i in 0..30u64 {
        let v = scenario_value(i, 0);
        match e.write(&key(i), &v, sync_opts()) {
            Ok(()) => acked.push((i, v)),
            Err(err) => {
                failed = Some(err);
                break;
            }
        }
    }
    assert!(failed.is_some(), "{label}: the injected failure never hit");
    assert!(e.stats().poisoned.is_some(), "{label}: not poisoned");
    let again = e.write(&key(99), b"x", sync_opts());
    assert!(
        matches!(again, Err(Error::Poisoned(_))),
        "{label}: wrote after failure"
    );
    drop(e);
    let e = open_engine(dir, io);
    for (i, v) in &acked {
        assert!(
            read_all(&e, &key(*i)).is_ok_and(|got| got == *v),
            "{label}: key {i} lost"
        );
    }
    assert!(e.close().is_ok());
}

/// Open writes the first blob's header (1 write, then 2 syncs): fail well after it.
fn plans() -> [(Arc<FaultPlan>, &'static str); 2] {
    [
        (FaultPlan::new(Some(9), None), "write #9"),
        (FaultPlan::new(None, Some(8)), "sync #8"),
    ]
}

#[test]
fn fault_device_poisons_the_engine_on_every_real_device() {
    for (plan, what) in plans() {
        let dir = tmp();
        let dev = must(OsDevice::open(dir.path()), "open");
        poisons_on_injected_failure(
            dev,
            plan,
            dir.path(),
            IoKind::Pread,
            &format!("pread, {what}"),
        );
    }
    for (plan, what) in plans() {
        let dir = tmp();
        let dev = must(MmapDevice::open(dir.path()), "open");
        poisons_on_injected_failure(
            dev,
            plan,
            dir.path(),
            IoKind::Mmap,
            &format!("mmap, {what}"),
        );
    }
    for (plan, what) in plans() {
        let dir = tmp();
        let Some(dev) = uring(dir.path()) else { return };
        poisons_on_injected_failure(
            dev,
            plan,
            dir.path(),
            IoKind::Uring,
            &format!("uring, {what}"),
        );
    }
}
