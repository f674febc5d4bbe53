//! The conformance suite every backend must pass. Each case gets a fresh backend from a
//! [`Fixture`]; [`run_all`] runs every case and reports all failures by name.
//!
//! Cases that need a restart (persistence, resumable uploads) use `Fixture::reopen` and are
//! skipped for backends that keep nothing (it returns `None`).

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use ringblob_engine::format::record::MAX_VALUE_LEN;
use ringblob_engine::{Durability, Key, Range, WriteOptions};

use crate::backend::Backend;
use crate::error::Error;
use crate::meta::IterRequest;

/// A backend under test, and how to reopen it over the same storage.
pub struct Fixture {
    pub backend: Option<Arc<dyn Backend>>,
    /// Closes the current backend (dropping it) and opens a new one on the same storage.
    pub reopen: Option<Box<dyn Fn() -> Arc<dyn Backend>>>,
    /// Keeps temporary directories alive.
    pub guard: Box<dyn std::any::Any>,
}

impl Fixture {
    fn backend(&self) -> &dyn Backend {
        match &self.backend {
            Some(b) => b.as_ref(),
            None => panic!("fixture has no backend"),
        }
    }

    /// Reopens; false if this backend keeps nothing across restarts.
    fn restart(&mut self) -> bool {
        let Some(reopen) = &self.reopen else {
            return false;
        };
        self.backend = None;
        self.backend = Some(reopen());
        true
    }
}

mod columns;

type Case = fn(&mut Fixture);

/// Every case, by name.
pub const CASES: &[(&str, Case)] = &[
    ("write_then_read_whole", write_then_read_whole),
    (
        "whole_reads_in_a_given_buffer",
        whole_reads_in_a_given_buffer,
    ),
    ("overwrite_replaces_value", overwrite_replaces_value),
    ("empty_value", empty_value),
    ("large_value_and_ranges", large_value_and_ranges),
    ("range_past_end", range_past_end),
    ("missing_key_errors", missing_key_errors),
    ("remove_then_remove_again", remove_then_remove_again),
    (
        "lookup_reports_size_checksum_timestamp",
        lookup_reports_size_checksum_timestamp,
    ),
    ("append_creates_and_extends", append_creates_and_extends),
    ("write_at_inside_and_past_end", write_at_inside_and_past_end),
    (
        "limits_are_refused_before_allocating",
        limits_are_refused_before_allocating,
    ),
    (
        "streaming_upload_is_invisible_until_commit",
        streaming_upload_is_invisible_until_commit,
    ),
    ("streaming_upload_errors", streaming_upload_errors),
    ("iterate_pages_in_key_order", iterate_pages_in_key_order),
    ("iterate_while_writing", iterate_while_writing),
    (
        "concurrent_appends_lose_nothing",
        concurrent_appends_lose_nothing,
    ),
    ("stats_count_keys", stats_count_keys),
    ("every_durability_reads_back", every_durability_reads_back),
    ("values_survive_reopen", values_survive_reopen),
    ("uploads_survive_reopen", uploads_survive_reopen),
    (
        "a_second_upload_of_a_key_is_busy",
        a_second_upload_of_a_key_is_busy,
    ),
    ("stale_uploads_are_reclaimed", stale_uploads_are_reclaimed),
    (
        "columns_are_written_read_and_described_apart",
        columns::columns_are_written_read_and_described_apart,
    ),
    (
        "removing_a_column_keeps_the_others",
        columns::removing_a_column_keeps_the_others,
    ),
    (
        "removing_a_key_removes_every_column",
        columns::removing_a_key_removes_every_column,
    ),
    (
        "iteration_lists_every_key_and_column_once",
        columns::iteration_lists_every_key_and_column_once,
    ),
    (
        "columns_take_appends_offsets_and_uploads",
        columns::columns_take_appends_offsets_and_uploads,
    ),
    ("columns_survive_reopen", columns::columns_survive_reopen),
    (
        "copies_land_only_over_older_records",
        copies_land_only_over_older_records,
    ),
    (
        "removes_are_remembered_against_older_copies",
        removes_are_remembered_against_older_copies,
    ),
    (
        "versioned_writes_into_values_and_key_removes",
        versioned_writes_into_values_and_key_removes,
    ),
    (
        "a_dropped_copy_is_forgotten_not_removed",
        a_dropped_copy_is_forgotten_not_removed,
    ),
    (
        "uploads_of_selected_keys_are_dropped",
        uploads_of_selected_keys_are_dropped,
    ),
];

/// Runs every case on a fresh fixture; panics listing the failed cases.
pub fn run_all(make: impl Fn() -> Fixture) {
    let mut failed = Vec::new();
    for (name, case) in CASES {
        let mut fx = make();
        if catch_unwind(AssertUnwindSafe(|| case(&mut fx))).is_err() {
            failed.push(*name);
        }
    }
    assert!(failed.is_empty(), "conformance cases failed: {failed:?}");
}

fn key(i: u64) -> Key {
    Key::from_name(b"conformance", &i.to_le_bytes())
}

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64).wrapping_mul(31) ^ seed.wrapping_mul(7919)) as u8)
        .collect()
}

fn opts() -> WriteOptions {
    WriteOptions::default()
}

fn read(b: &dyn Backend, k: &Key) -> Option<Vec<u8>> {
    match b.read(k, Range::all()) {
        Ok(v) => Some(v),
        Err(Error::NotFound(_)) => None,
        Err(e) => panic!("read {k}: {e}"),
    }
}

fn ok<T>(r: crate::Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn write_then_read_whole(fx: &mut Fixture) {
    let b = fx.backend();
    assert_eq!(ok(b.write(&key(1), b"hello", opts())), 5);
    assert_eq!(read(b, &key(1)).as_deref(), Some(&b"hello"[..]));
}

/// `read_column_whole_in` gives the value and its version whatever the backend does with
/// the buffer: small, compressed, empty, large, another column, removed.
fn whole_reads_in_a_given_buffer(fx: &mut Fixture) {
    let b = fx.backend();
    let compressed = WriteOptions {
        compress: Some(true),
        ..WriteOptions::default()
    };
    let values = [
        (key(1), 0, bytes(1, 64 << 10), opts()),
        (key(2), 0, vec![7; 100_000], compressed),
        (key(3), 0, Vec::new(), opts()),
        (key(4), 0, bytes(4, 2 << 20), opts()),
        (key(5), 3, bytes(5, 1000), opts()),
    ];
    for (k, column, v, o) in &values {
        ok(b.write_column(k, *column, v, *o));
        let meta = ok(b.lookup_column(k, *column));
        let max = v.len() as u64;
        // Over 256 KiB a backend may leave the value unread (`None`): never another one.
        match ok(b.read_column_whole_in(k, *column, Vec::with_capacity(4096), max)) {
            Some(w) => {
                assert!(
                    w.value() == &v[..],
                    "{k} column {column}: {} bytes",
                    w.value().len()
                );
                assert_eq!(
                    (w.value_crc, w.timestamp_ns),
                    (meta.checksum, meta.timestamp_ns)
                );
            }
            None => assert!(v.len() > 256 << 10, "{k} column {column} not read"),
        }
        if max > 0 {
            let shorter = b.read_column_whole_in(k, *column, Vec::new(), max - 1);
            assert!(matches!(shorter, Ok(None)), "{k}: over the bound");
        }
    }
    ok(b.remove(&key(1), opts()));
    for (k, column) in [(key(1), 0), (key(5), 0)] {
        assert!(matches!(
            b.read_column_whole_in(&k, column, Vec::new(), u64::MAX),
            Err(Error::NotFound(_))
        ));
    }
}

fn overwrite_replaces_value(fx: &mut Fixture) {
    let b = fx.backend();
    ok(b.write(&key(1), b"first version", opts()));
    ok(b.write(&key(1), b"second", opts()));
    assert_eq!(read(b, &key(1)).as_deref(), Some(&b"second"[..]));
    assert_eq!(ok(b.lookup(&key(1))).size, 6);
}

fn empty_value(fx: &mut Fixture) {
    let b = fx.backend();
    ok(b.write(&key(2), b"", opts()));
    assert_eq!(read(b, &key(2)), Some(vec![]));
    assert_eq!(ok(b.read(&key(2), Range::new(0, 10))), Vec::<u8>::new());
    assert!(matches!(
        b.read(&key(2), Range::new(1, 1)),
        Err(Error::RangeOutOfBounds { offset: 1, len: 0 })
    ));
}

fn large_value_and_ranges(fx: &mut Fixture) {
    let b = fx.backend();
    let v = bytes(3, 3 << 20);
    ok(b.write(
        &key(3),
        &v,
        WriteOptions {
            compress: Some(true),
            durability: None,
            ..WriteOptions::default()
        },
    ));
    assert!(read(b, &key(3)) == Some(v.clone()));
    for (off, size) in [
        (0u64, 1u64),
        (65_535, 2),
        (1 << 20, 1 << 20),
        ((3 << 20) - 1, 1),
    ] {
        let got = ok(b.read(&key(3), Range::new(off, size)));
        assert!(
            got == v[off as usize..(off + size) as usize],
            "range {off}+{size}"
        );
    }
}

fn range_past_end(fx: &mut Fixture) {
    let b = fx.backend();
    ok(b.write(&key(4), b"0123456789", opts()));
    assert_eq!(ok(b.read(&key(4), Range::new(8, 100))), b"89");
    assert_eq!(ok(b.read(&key(4), Range::new(10, 5))), b"");
    assert_eq!(
        ok(b.read(
            &key(4),
            Range {
                offset: 3,
                size: None
            }
        )),
        b"3456789"
    );
    assert!(matches!(
        b.read(&key(4), Range::new(11, 1)),
        Err(Error::RangeOutOfBounds {
            offset: 11,
            len: 10
        })
    ));
}

fn missing_key_errors(fx: &mut Fixture) {
    let b = fx.backend();
    assert!(matches!(b.read(&key(9), Range::all()), Err(Error::NotFound(k)) if k == key(9)));
    assert!(matches!(b.lookup(&key(9)), Err(Error::NotFound(_))));
    assert!(matches!(b.remove(&key(9), opts()), Err(Error::NotFound(_))));
}

fn remove_then_remove_again(fx: &mut Fixture) {
    let b = fx.backend();
    ok(b.write(&key(5), b"x", opts()));
    ok(b.remove(&key(5), opts()));
    assert_eq!(read(b, &key(5)), None);
    assert!(matches!(b.remove(&key(5), opts()), Err(Error::NotFound(_))));
    ok(b.write(&key(5), b"back", opts()));
    assert_eq!(read(b, &key(5)).as_deref(), Some(&b"back"[..]));
}

fn lookup_reports_size_checksum_timestamp(fx: &mut Fixture) {
    let b = fx.backend();
    let v = bytes(6, 1000);
    ok(b.write(&key(6), &v, opts()));
    let m1 = ok(b.lookup(&key(6)));
    assert_eq!(
        (m1.key, m1.size, m1.checksum),
        (key(6), 1000, crc32fast::hash(&v))
    );
    assert!(m1.timestamp_ns > 0 && m1.stored_size > 0);
    std::thread::sleep(std::time::Duration::from_millis(2));
    ok(b.write(&key(6), b"newer", opts()));
    assert!(ok(b.lookup(&key(6))).timestamp_ns > m1.timestamp_ns);
}

fn append_creates_and_extends(fx: &mut Fixture) {
    let b = fx.backend();
    assert_eq!(ok(b.append(&key(7), b"abc", opts())), 3);
    assert_eq!(ok(b.append(&key(7), b"def", opts())), 6);
    assert_eq!(read(b, &key(7)).as_deref(), Some(&b"abcdef"[..]));
}

fn write_at_inside_and_past_end(fx: &mut Fixture) {
    let b = fx.backend();
    ok(b.write(&key(8), b"0123456789", opts()));
    assert_eq!(ok(b.write_at(&key(8), 2, b"xy", opts())), 10);
    assert_eq!(read(b, &key(8)).as_deref(), Some(&b"01xy456789"[..]));
    assert_eq!(ok(b.write_at(&key(8), 12, b"z", opts())), 13);
    assert_eq!(read(b, &key(8)).as_deref(), Some(&b"01xy456789\0\0z"[..]));
    assert_eq!(
        ok(b.write_at(&key(10), 3, b"new", opts())),
        6,
        "creates a missing key"
    );
}

fn limits_are_refused_before_allocating(fx: &mut Fixture) {
    let b = fx.backend();
    assert!(matches!(
        b.write_at(&key(11), MAX_VALUE_LEN, b"x", opts()),
        Err(Error::TooLarge { .. })
    ));
    assert!(matches!(
        b.write_at(&key(11), u64::MAX, b"x", opts()),
        Err(Error::TooLarge { .. })
    ));
    assert!(matches!(
        b.prepare(&key(11), MAX_VALUE_LEN + 1),
        Err(Error::TooLarge { .. })
    ));
    assert_eq!(read(b, &key(11)), None);
    // A write far past a value's end would fill the gap with zeros: bounded.
    let gap = crate::MAX_GAP_FILL;
    assert!(matches!(
        b.write_at(&key(11), gap + 1, b"x", opts()),
        Err(Error::TooLarge { .. })
    ));
    assert_eq!(read(b, &key(11)), None);
    ok(b.write(&key(11), b"0123", opts()));
    assert!(matches!(
        b.write_at(&key(11), 4 + gap + 1, b"x", opts()),
        Err(Error::TooLarge { .. })
    ));
    assert_eq!(ok(b.write_at(&key(11), 4 + 10, b"x", opts())), 15);
}

fn streaming_upload_is_invisible_until_commit(fx: &mut Fixture) {
    let b = fx.backend();
    let v = bytes(12, 300_000);
    ok(b.prepare(&key(12), 400_000));
    ok(b.write_part(&key(12), 200_000, &v[200_000..]));
    ok(b.write_part(&key(12), 0, &v[..200_000]));
    assert_eq!(
        read(b, &key(12)),
        None,
        "uploads are invisible before commit"
    );
    assert_eq!(ok(b.stats()).uploads_in_progress, 1);
    assert_eq!(ok(b.commit(&key(12), 300_000, opts())), 300_000);
    assert!(read(b, &key(12)) == Some(v));
    assert_eq!(ok(b.stats()).uploads_in_progress, 0);
}

fn streaming_upload_errors(fx: &mut Fixture) {
    let b = fx.backend();
    assert!(matches!(
        b.write_part(&key(13), 0, b"x"),
        Err(Error::NoUpload(_))
    ));
    assert!(matches!(
        b.commit(&key(13), 1, opts()),
        Err(Error::NoUpload(_))
    ));
    ok(b.prepare(&key(13), 10));
    assert!(matches!(
        b.write_part(&key(13), 8, b"xyz"),
        Err(Error::TooLarge { .. })
    ));
    assert!(matches!(
        b.commit(&key(13), 11, opts()),
        Err(Error::TooLarge { .. })
    ));
    ok(b.write_part(&key(13), 0, b"0123456789"));
    ok(b.commit(&key(13), 4, opts()));
    assert_eq!(read(b, &key(13)).as_deref(), Some(&b"0123"[..]));
}

fn iterate_pages_in_key_order(fx: &mut Fixture) {
    let b = fx.backend();
    let want: BTreeSet<Key> = (100..157).map(key).collect();
    for k in &want {
        ok(b.write(k, k.as_bytes(), opts()));
    }
    ok(b.remove(&key(120), opts()));
    let mut seen = Vec::new();
    let mut req = IterRequest::all(10);
    loop {
        let page = ok(b.iterate(&req));
        assert!(page.entries.len() <= 10);
        assert!(page.entries.iter().all(|m| m.column == 0));
        seen.extend(page.entries.iter().map(|m| m.key));
        match page.next_after {
            Some(after) => req.after = Some(after),
            None => break,
        }
    }
    let mut expect: Vec<Key> = want.iter().copied().filter(|k| *k != key(120)).collect();
    expect.sort();
    assert_eq!(seen, expect, "every live key once, in key order");
    let (lo, hi) = (expect[5], expect[15]);
    let page = ok(b.iterate(&IterRequest {
        from: lo,
        to: hi,
        after: None,
        limit: 100,
    }));
    assert_eq!(page.entries.len(), 11);
    assert!(page.next_after.is_none());
}

fn iterate_while_writing(fx: &mut Fixture) {
    let b = fx.backend.clone().unwrap_or_else(|| panic!("no backend"));
    for i in 0..50 {
        ok(b.write(&key(200 + i), b"before", opts()));
    }
    let writer = {
        let b = b.clone();
        std::thread::spawn(move || {
            for i in 0..200 {
                ok(b.write(&key(1000 + i), b"during", opts()));
            }
        })
    };
    for _ in 0..5 {
        let page = ok(b.iterate(&IterRequest::all(10_000)));
        let keys: BTreeSet<Key> = page.entries.iter().map(|m| m.key).collect();
        assert!(
            (0..50).all(|i| keys.contains(&key(200 + i))),
            "keys written before are listed"
        );
    }
    assert!(writer.join().is_ok());
}

fn concurrent_appends_lose_nothing(fx: &mut Fixture) {
    let b = fx.backend.clone().unwrap_or_else(|| panic!("no backend"));
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let b = b.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    ok(b.append(&key(14), &[b'a' + t], opts()));
                }
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().is_ok());
    }
    let v = read(b.as_ref(), &key(14)).unwrap_or_default();
    assert_eq!(v.len(), 100);
    for t in 0..4u8 {
        assert_eq!(v.iter().filter(|c| **c == b'a' + t).count(), 25);
    }
}

fn stats_count_keys(fx: &mut Fixture) {
    let b = fx.backend();
    for i in 0..7 {
        ok(b.write(&key(300 + i), b"v", opts()));
    }
    ok(b.remove(&key(300), opts()));
    let s = ok(b.stats());
    assert_eq!(s.keys, 6);
    assert_eq!(s.kind, b.kind());
}

fn every_durability_reads_back(fx: &mut Fixture) {
    let b = fx.backend();
    for (i, d) in [Durability::None, Durability::Batch, Durability::Sync]
        .into_iter()
        .enumerate()
    {
        ok(b.write(
            &key(400 + i as u64),
            b"durable?",
            WriteOptions::durability(d),
        ));
        ok(b.remove(&key(400 + i as u64), WriteOptions::durability(d)));
        ok(b.write(&key(400 + i as u64), b"yes", WriteOptions::durability(d)));
    }
    ok(b.sync());
    for i in 0..3 {
        assert_eq!(read(b, &key(400 + i)).as_deref(), Some(&b"yes"[..]));
    }
}

fn values_survive_reopen(fx: &mut Fixture) {
    {
        let b = fx.backend();
        ok(b.write(
            &key(500),
            b"kept",
            WriteOptions::durability(Durability::None),
        ));
        ok(b.write(&key(501), b"gone", opts()));
        ok(b.remove(&key(501), opts()));
        ok(b.append(&key(502), b"ab", opts()));
        ok(b.append(&key(502), b"cd", opts()));
        ok(b.sync());
    }
    if !fx.restart() {
        return;
    }
    let b = fx.backend();
    assert_eq!(read(b, &key(500)).as_deref(), Some(&b"kept"[..]));
    assert_eq!(read(b, &key(501)), None);
    assert_eq!(read(b, &key(502)).as_deref(), Some(&b"abcd"[..]));
}

fn uploads_survive_reopen(fx: &mut Fixture) {
    ok(fx.backend().prepare(&key(600), 8));
    ok(fx.backend().write_part(&key(600), 0, b"half"));
    if !fx.restart() {
        return;
    }
    let b = fx.backend();
    assert_eq!(read(b, &key(600)), None);
    ok(b.prepare(&key(600), 8));
    ok(b.write_part(&key(600), 4, b"done"));
    ok(b.commit(&key(600), 8, opts()));
    assert_eq!(read(b, &key(600)).as_deref(), Some(&b"halfdone"[..]));
}

fn a_second_upload_of_a_key_is_busy(fx: &mut Fixture) {
    let b = fx.backend();
    ok(b.prepare(&key(800), 16));
    ok(b.write_part(&key(800), 0, b"first uploader"));
    assert!(
        matches!(b.prepare(&key(800), 16), Err(Error::Busy(_))),
        "interleaving uploads"
    );
    ok(b.prepare(&key(801), 16));
    ok(b.commit(&key(800), 14, opts()));
    assert_eq!(read(b, &key(800)).as_deref(), Some(&b"first uploader"[..]));
    ok(b.prepare(&key(800), 4));
}

fn stale_uploads_are_reclaimed(fx: &mut Fixture) {
    let b = fx.backend();
    ok(b.prepare(&key(700), 100));
    assert_eq!(
        ok(b.reclaim_uploads(std::time::Duration::from_secs(3600))),
        0
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(
        ok(b.reclaim_uploads(std::time::Duration::from_millis(1))),
        1
    );
    assert!(matches!(
        b.write_part(&key(700), 0, b"x"),
        Err(Error::NoUpload(_))
    ));
}

/// Uploads of the keys a node takes over are dropped, touched or not, columns included;
/// others stay; an upload found at reopen (an orphan) is dropped too.
fn uploads_of_selected_keys_are_dropped(fx: &mut Fixture) {
    let b = fx.backend();
    ok(b.prepare(&key(900), 8));
    ok(b.write_part(&key(900), 0, b"stale"));
    ok(b.prepare_column(&key(901), 3, 8));
    ok(b.prepare(&key(902), 8));
    let taken = |k: &Key| *k == key(900) || *k == key(901);
    assert_eq!(ok(b.drop_uploads(&taken)), 2);
    for (k, column) in [(key(900), 0), (key(901), 3)] {
        let r = b.write_part_column(&k, column, 0, b"new");
        assert!(matches!(r, Err(Error::NoUpload(_))), "{r:?}");
    }
    ok(b.write_part(&key(902), 0, b"kept"));
    assert_eq!(ok(b.stats()).uploads_in_progress, 1);
    if !fx.restart() {
        return;
    }
    let b = fx.backend();
    assert_eq!(ok(b.drop_uploads(&|k: &Key| *k == key(902))), 1);
    assert_eq!(ok(b.stats()).uploads_in_progress, 0);
    // A new upload of a dropped key starts empty.
    ok(b.prepare(&key(900), 8));
    ok(b.write_part(&key(900), 5, b"new"));
    ok(b.commit(&key(900), 8, opts()));
    assert_eq!(read(b, &key(900)).as_deref(), Some(&b"\0\0\0\0\0new"[..]));
}

/// A copy (`WriteOptions::copy_if_newer`, how hand-over and repair write) keeps its
/// timestamp and lands only where the stored record is older, whole or streamed; a refused
/// streamed copy leaves no upload behind.
fn copies_land_only_over_older_records(fx: &mut Fixture) {
    let b = fx.backend();
    let copy = WriteOptions::copy_if_newer;
    ok(b.write(&key(40), b"copy", copy(5_000)));
    assert_eq!(ok(b.lookup(&key(40))).timestamp_ns, 5_000);
    for ts in [5_000, 4_999] {
        let r = b.write(&key(40), b"older", copy(ts));
        assert!(
            matches!(
                r,
                Err(Error::NotNewer {
                    stored_ns: 5_000,
                    ..
                })
            ),
            "copy at {ts}: {r:?}"
        );
    }
    assert_eq!(read(b, &key(40)).as_deref(), Some(&b"copy"[..]));
    ok(b.write(&key(40), b"newer copy", copy(5_001)));
    assert_eq!(read(b, &key(40)).as_deref(), Some(&b"newer copy"[..]));

    // A local write made after the copy's original wins over the copy.
    ok(b.write(&key(41), b"local", opts()));
    let local = ok(b.lookup(&key(41))).timestamp_ns;
    let r = b.write_column(&key(41), 0, b"copy", copy(local - 1));
    assert!(matches!(r, Err(Error::NotNewer { .. })), "{r:?}");
    ok(b.prepare(&key(41), 4));
    ok(b.write_part(&key(41), 0, b"copy"));
    let r = b.commit(&key(41), 4, copy(local));
    assert!(matches!(r, Err(Error::NotNewer { .. })), "{r:?}");
    assert_eq!(read(b, &key(41)).as_deref(), Some(&b"local"[..]));
    assert_eq!(
        ok(b.stats()).uploads_in_progress,
        0,
        "refused upload left behind"
    );
    ok(b.prepare(&key(41), 4));
    ok(b.write_part(&key(41), 0, b"copy"));
    assert_eq!(ok(b.commit(&key(41), 4, copy(local + 1))), 4);
    assert_eq!(read(b, &key(41)).as_deref(), Some(&b"copy"[..]));
    assert_eq!(ok(b.lookup(&key(41))).timestamp_ns, local + 1);
}

/// A remove is remembered (the remove log): a copy older than it is refused even where the
/// backend keeps no tombstone, a newer one lands; a copied remove (`only_if_newer`) applies
/// only over an older record and is remembered even for an absent column; the memory
/// survives a restart.
fn removes_are_remembered_against_older_copies(fx: &mut Fixture) {
    let copy = WriteOptions::copy_if_newer;
    let b = fx.backend();
    ok(b.write(&key(50), b"value", opts()));
    let written = ok(b.lookup(&key(50))).timestamp_ns;
    ok(b.remove(&key(50), opts()));
    let r = b.write(&key(50), b"value", copy(written));
    assert!(
        matches!(r, Err(Error::NotNewer { .. })),
        "copy older than the remove: {r:?}"
    );
    assert_eq!(read(b, &key(50)), None, "a removed value came back");
    let listed = ok(b.removes_in(&key(50), &key(50)));
    // Its one column, and the key as a whole.
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().any(|r| r.whole_key) && listed.iter().any(|r| !r.whole_key));
    let removed_at = listed.first().map_or(0, |r| r.timestamp_ns);
    assert!(removed_at >= written);

    // A copied remove: refused over a newer value, applied over an older one (stamped with
    // its own time, so a value written after it elsewhere still lands), and remembered for
    // a column that has none. (An hour ago: well within the retention, before this clock.)
    let t = removed_at - 3_600_000_000_000;
    ok(b.write_column(&key(51), 1, b"newer", copy(t)));
    let r = b.remove_column(&key(51), 1, copy(t - 1));
    assert!(matches!(r, Err(Error::NotNewer { .. })), "{r:?}");
    assert_eq!(ok(b.read_column(&key(51), 1, Range::all())), b"newer");
    ok(b.remove_column(&key(51), 1, copy(t + 1)));
    assert!(matches!(
        b.lookup_column(&key(51), 1),
        Err(Error::NotFound(_))
    ));
    ok(b.write_column(&key(51), 1, b"written after the remove", copy(t + 2)));
    assert_eq!(
        ok(b.read_column(&key(51), 1, Range::all())),
        b"written after the remove"
    );
    let r = b.remove_column(&key(52), 0, copy(t + 10));
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
    let r = b.write(&key(52), b"old copy", copy(t + 9));
    assert!(matches!(r, Err(Error::NotNewer { .. })), "{r:?}");
    ok(b.write(&key(52), b"new copy", copy(t + 11)));

    // A remove of a key that is not there yet is remembered too: its value may be on the
    // way from another node, and must not land after the remove.
    let before = ok(b.lookup(&key(52))).timestamp_ns;
    assert!(matches!(
        b.remove(&key(53), opts()),
        Err(Error::NotFound(_))
    ));
    let r = b.write(&key(53), b"late copy", copy(before));
    assert!(matches!(r, Err(Error::NotNewer { .. })), "{r:?}");
    assert!(matches!(
        b.remove_column(&key(53), 4, opts()),
        Err(Error::NotFound(_))
    ));
    let r = b.write_column(&key(53), 4, b"late copy", copy(before));
    assert!(matches!(r, Err(Error::NotNewer { .. })), "{r:?}");
    // ... and so is every other column of it: a whole-key remove of a key that holds
    // nothing yet (or only some of its columns) refuses any column's older copy.
    for column in [7, 0xFFFE, u16::MAX] {
        let r = b.write_column(&key(53), column, b"late copy", copy(before));
        assert!(
            matches!(r, Err(Error::NotNewer { .. })),
            "column {column}: {r:?}"
        );
    }
    ok(b.write_column(&key(54), 0, b"arrived", copy(t)));
    ok(b.remove(&key(54), opts()));
    let r = b.write_column(&key(54), 0xFFFE, b"late record", copy(t + 1));
    assert!(matches!(r, Err(Error::NotNewer { .. })), "{r:?}");
    // A copied whole-key remove (versioned by its coordinator, or copied by hand-over) of
    // a key not here yet: remembered whole too, a later copy still lands.
    let r = b.remove(&key(55), copy(t + 20));
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
    for column in [0, 3, 0xFFFE] {
        let r = b.write_column(&key(55), column, b"old", copy(t + 19));
        assert!(
            matches!(r, Err(Error::NotNewer { .. })),
            "column {column}: {r:?}"
        );
    }
    ok(b.write_column(&key(55), 3, b"new", copy(t + 21)));
    let listed = ok(b.removes_in(&key(55), &key(55)));
    assert!(
        listed
            .iter()
            .any(|r| r.whole_key && r.timestamp_ns == t + 20),
        "{listed:?}"
    );
    ok(b.sync());

    if fx.restart() {
        let b = fx.backend();
        let r = b.write(&key(50), b"value", copy(written));
        assert!(
            matches!(r, Err(Error::NotNewer { .. })),
            "after restart: {r:?}"
        );
        assert_eq!(ok(b.removes_in(&key(50), &key(50))).len(), 2);
        assert_eq!(read(b, &key(52)).as_deref(), Some(&b"new copy"[..]));
        let r = b.write_column(&key(53), 0xFFFE, b"late copy", copy(before));
        assert!(
            matches!(r, Err(Error::NotNewer { .. })),
            "after restart: {r:?}"
        );
    }
}

/// Writes carrying a coordinator's version (`only_if_newer` with a timestamp): an append or
/// offset write lands only over an older record or remembered remove, stamped with its
/// version; a whole-key remove at a version removes the older columns, keeps the newer ones,
/// and is `NotNewer` only when every column was newer.
fn versioned_writes_into_values_and_key_removes(fx: &mut Fixture) {
    let at = WriteOptions::copy_if_newer;
    let b = fx.backend();
    let t = crate::mem::now_ns() - 3_600_000_000_000;
    ok(b.write(&key(60), b"abc", at(t)));
    assert_eq!(ok(b.append_column(&key(60), 0, b"def", at(t + 1))), 6);
    assert_eq!(ok(b.lookup(&key(60))).timestamp_ns, t + 1);
    let r = b.append_column(&key(60), 0, b"late", at(t));
    assert!(matches!(r, Err(Error::NotNewer { .. })), "{r:?}");
    let r = b.write_at_column(&key(60), 0, 0, b"X", at(t + 1));
    assert!(matches!(r, Err(Error::NotNewer { .. })), "{r:?}");
    assert_eq!(ok(b.write_at_column(&key(60), 0, 0, b"X", at(t + 2))), 6);
    assert_eq!(read(b, &key(60)).as_deref(), Some(&b"Xbcdef"[..]));

    ok(b.remove(&key(60), at(t + 3)));
    let r = b.append_column(&key(60), 0, b"after", at(t + 3));
    assert!(matches!(r, Err(Error::NotNewer { .. })), "{r:?}");
    assert_eq!(
        read(b, &key(60)),
        None,
        "an append older than the remove landed"
    );
    assert_eq!(ok(b.append_column(&key(60), 0, b"new", at(t + 4))), 3);

    // Whole-key remove at a version: column 1 older (removed), column 2 newer (kept).
    ok(b.write_column(&key(61), 1, b"old", at(t)));
    ok(b.write_column(&key(61), 2, b"new", at(t + 10)));
    ok(b.remove(&key(61), at(t + 5)));
    assert!(matches!(
        b.lookup_column(&key(61), 1),
        Err(Error::NotFound(_))
    ));
    assert_eq!(ok(b.read_column(&key(61), 2, Range::all())), b"new");
    let r = b.remove(&key(61), at(t + 6));
    assert!(matches!(r, Err(Error::NotNewer { .. })), "{r:?}");
    let r = b.remove(&key(62), at(t + 6));
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
    let r = b.write(&key(62), b"late", at(t + 5));
    assert!(matches!(r, Err(Error::NotNewer { .. })), "{r:?}");
}

/// `drop_copy` (after a hand-over): only the record written at the given timestamp is
/// dropped; nothing is remembered as removed, so the same record copied back later lands.
fn a_dropped_copy_is_forgotten_not_removed(fx: &mut Fixture) {
    let at = WriteOptions::copy_if_newer;
    let b = fx.backend();
    let t = crate::mem::now_ns() - 3_600_000_000_000;
    ok(b.write_column(&key(70), 1, b"moved", at(t)));
    assert!(!ok(b.drop_copy(&key(70), 1, t - 1)), "another record");
    assert!(!ok(b.drop_copy(&key(71), 1, t)), "nothing there");
    assert!(ok(b.drop_copy(&key(70), 1, t)));
    assert!(matches!(
        b.lookup_column(&key(70), 1),
        Err(Error::NotFound(_))
    ));
    assert!(
        ok(b.removes_in(&key(70), &key(70))).is_empty(),
        "remembered as a remove"
    );
    // Handed back later: the same record lands again; an older one does not.
    let r = b.write_column(&key(70), 1, b"older", at(t - 5));
    assert!(
        matches!(r, Err(Error::NotNewer { .. })) || r.is_ok(),
        "{r:?}"
    );
    ok(b.write_column(&key(70), 1, b"moved", at(t)));
    assert_eq!(ok(b.read_column(&key(70), 1, Range::all())), b"moved");
    assert_eq!(ok(b.lookup_column(&key(70), 1)).timestamp_ns, t);
}
