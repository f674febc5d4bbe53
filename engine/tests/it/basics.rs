//! Scenarios through the public API.

use ringblob_engine::io::MemDevice;
use ringblob_engine::{Config, Durability, Engine, Error, Key, Range, WriteOptions};

use crate::support::{key, open_mem, read_all, small_config, value};

fn tmp() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    }
}

#[test]
fn write_read_overwrite_remove_survive_reopen() {
    let dir = tmp();
    {
        let Ok(e) = Engine::open(dir.path(), Config::default()) else {
            panic!("open")
        };
        let opts = WriteOptions::default();
        assert!(e.write(&key(1), b"first", opts).is_ok());
        assert!(e.write(&key(2), b"second", opts).is_ok());
        assert!(e.write(&key(1), b"first, again", opts).is_ok());
        assert!(e.remove(&key(2)).is_ok());
        assert!(
            matches!(e.remove(&key(2)), Err(Error::NotFound(_))),
            "remove twice"
        );
        assert_eq!(
            read_all(&e, &key(1)).ok().as_deref(),
            Some(&b"first, again"[..])
        );
        assert!(matches!(read_all(&e, &key(2)), Err(Error::NotFound(_))));
        let s = e.stats();
        assert_eq!((s.keys, s.records_written), (1, 4));
        assert!(s.garbage_bytes > 0 && s.live_bytes > 0);
    }
    let Ok(e) = Engine::open(dir.path(), Config::default()) else {
        panic!("reopen")
    };
    assert_eq!(
        read_all(&e, &key(1)).ok().as_deref(),
        Some(&b"first, again"[..])
    );
    assert!(matches!(read_all(&e, &key(2)), Err(Error::NotFound(_))));
    assert_eq!(e.stats().keys, 1);
    assert!(e.close().is_ok());
}

#[test]
fn second_open_of_a_directory_fails_clearly() {
    let dir = tmp();
    let first = Engine::open(dir.path(), Config::default());
    assert!(first.is_ok());
    let second = Engine::open(dir.path(), Config::default());
    let msg = second.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("locked by another process"), "{msg}");
}

#[test]
fn range_reads_across_frames_compressed_and_raw() {
    let dev = MemDevice::new();
    let e = open_mem(&dev, small_config());
    for (i, compress) in [(2u64, true), (3, false), (4, false)] {
        let v = value(i, 0, 50_000);
        let opts = WriteOptions {
            compress: Some(compress),
            durability: Some(Durability::None),
            ..WriteOptions::default()
        };
        assert!(e.write(&key(i), &v, opts).is_ok());
        for (off, size) in [
            (0u64, 1u64),
            (4095, 2),
            (10_000, 20_000),
            (49_999, 1),
            (0, 50_000),
        ] {
            let got = e.read(&key(i), Range::new(off, size)).ok();
            assert_eq!(
                got.as_deref(),
                Some(&v[off as usize..(off + size) as usize]),
                "{i} {off} {size}"
            );
        }
        assert_eq!(
            e.read(&key(i), Range::new(49_990, 100)).ok().as_deref(),
            Some(&v[49_990..])
        );
        assert_eq!(e.read(&key(i), Range::new(50_000, 5)).ok(), Some(vec![]));
        assert!(matches!(
            e.read(&key(i), Range::new(50_001, 1)),
            Err(Error::RangeOutOfBounds {
                offset: 50_001,
                len: 50_000
            })
        ));
    }
    let compressed = e.lookup(&key(2)).ok();
    assert!(
        compressed.is_some_and(|m| m.stored_size < 50_000 / 2),
        "compressible value compressed"
    );
    let raw = e.lookup(&key(3)).ok();
    assert!(
        raw.is_some_and(|m| m.stored_size > 50_000),
        "random value stored raw"
    );
}

#[test]
fn whole_reads_leave_raw_values_in_their_record_and_build_the_rest_apart() {
    use ringblob_engine::format::crc32;
    let dev = MemDevice::new();
    let e = open_mem(&dev, small_config());
    let write = |i: u64, v: &[u8], compress: bool| {
        let opts = WriteOptions {
            compress: Some(compress),
            durability: Some(Durability::None),
            ..WriteOptions::default()
        };
        assert!(e.write(&key(i), v, opts).is_ok());
    };
    // Raw in several 4 KiB frames, compressed, empty, over the 256 KiB of one `pread`.
    let (raw, packed) = (value(3, 0, 50_000), value(2, 0, 50_000));
    let big = value(5, 0, 300_000);
    write(3, &raw, false);
    write(2, &packed, true);
    write(4, &[], false);
    write(5, &big, false);
    let given = Vec::with_capacity(60_000);
    let given_at = given.as_ptr();
    let Ok(Some(w)) = e.read_whole_in(&key(3), 0, given, 50_000) else {
        panic!("whole read of a raw value")
    };
    assert_eq!(w.value(), &raw[..]);
    assert_eq!(w.value_crc, crc32(&raw));
    // Read in place: after the record's header and frame table, in the buffer given.
    assert!(w.at.start > 0, "{:?}", w.at);
    assert_eq!(w.buffer.as_ptr(), given_at);
    for (i, want) in [(2u64, &packed[..]), (4, &[][..])] {
        let Ok(Some(w)) = e.read_whole_in(&key(i), 0, Vec::new(), 1 << 20) else {
            panic!("whole read of {i}")
        };
        assert_eq!(w.value(), want, "{i}");
        assert_eq!(w.value_crc, crc32(want), "{i}");
    }
    // Not read: a value over the bound (compressed to a small record or not), a record
    // over one `pread`.
    let skipped =
        |i: u64, max: u64| matches!(e.read_whole_in(&key(i), 0, Vec::new(), max), Ok(None));
    assert!(skipped(3, 49_999));
    assert!(skipped(2, 49_999));
    assert!(skipped(5, u64::MAX));
    assert!(e.remove(&key(3)).is_ok());
    for missing in [3, 9] {
        assert!(matches!(
            e.read_whole_in(&key(missing), 0, Vec::new(), u64::MAX),
            Err(Error::NotFound(_))
        ));
    }
}

#[test]
fn large_value_range_read_touches_only_its_frames() {
    // A value bigger than the whole-record read limit, with a damaged frame far from the range:
    // the range read must succeed, the damaged frame's range must fail with a checksum error.
    let dev = MemDevice::new();
    let cfg = Config {
        frame_len: 4096,
        ..Config::default()
    };
    let e = open_mem(&dev, cfg.clone());
    let v = value(5, 0, 600_000);
    assert!(e.write(&key(5), &v, WriteOptions::default()).is_ok());
    let meta = e.lookup(&key(5)).ok();
    let Some(meta) = meta else { panic!("lookup") };
    assert!(e.close().is_ok());
    let name = ringblob_engine::blob::blob_name(meta.blob);
    let mut bytes = dev.file_bytes(&name).unwrap_or_default();
    let last = (meta.offset + meta.stored_size - 10) as usize;
    bytes[last] ^= 0xFF;
    dev.put_file(&name, bytes);
    let e = open_mem(&dev, cfg);
    assert_eq!(
        e.read(&key(5), Range::new(100, 5000)).ok().as_deref(),
        Some(&v[100..5100])
    );
    assert!(matches!(
        e.read(&key(5), Range::new(599_990, 10)),
        Err(Error::ChecksumMismatch {
            what: "frame data",
            ..
        })
    ));
}

#[test]
fn empty_values_and_missing_keys() {
    let dev = MemDevice::new();
    let e = open_mem(&dev, small_config());
    assert!(e.write(&key(1), b"", WriteOptions::default()).is_ok());
    assert_eq!(read_all(&e, &key(1)).ok(), Some(vec![]));
    assert_eq!(e.lookup(&key(1)).ok().map(|m| m.size), Some(0));
    assert!(matches!(e.lookup(&key(9)), Err(Error::NotFound(k)) if k == key(9)));
    assert!(matches!(read_all(&e, &key(9)), Err(Error::NotFound(_))));
}

#[test]
fn rotation_seals_blobs_with_index_files_and_reopen_skips_scanning() {
    let dev = MemDevice::new();
    let e = open_mem(&dev, small_config());
    for i in 0..300 {
        assert!(e
            .write(&key(i), &value(i, 0, 700), WriteOptions::default())
            .is_ok());
    }
    let s = e.stats();
    assert!(
        s.blobs >= 6,
        "300 records at 50 per blob: {} blobs",
        s.blobs
    );
    assert!(e.close().is_ok());
    let names = {
        use ringblob_engine::io::Device;
        dev.list().unwrap_or_default()
    };
    let indexes = names.iter().filter(|n| n.ends_with(".index")).count();
    let blobs = names.iter().filter(|n| n.ends_with(".blob")).count();
    assert_eq!(
        indexes, blobs,
        "every blob has an index file after close: {names:?}"
    );
    let e = open_mem(&dev, small_config());
    for i in 0..300 {
        assert_eq!(read_all(&e, &key(i)).ok(), Some(value(i, 0, 700)));
    }
}

#[test]
fn lookup_reports_checksum_size_and_location() {
    let dev = MemDevice::new();
    let e = open_mem(&dev, small_config());
    let v = value(1, 0, 1234);
    assert!(e.write(&key(1), &v, WriteOptions::default()).is_ok());
    let m = e.lookup(&key(1)).ok();
    assert_eq!(
        m.map(|m| (m.size, m.checksum, m.key)),
        Some((1234, crc32fast::hash(&v), key(1)))
    );
    assert!(m.is_some_and(|m| m.blob == 1 && m.offset == 32 && m.timestamp_ns > 0));
}

#[test]
fn iterate_lists_live_keys_and_honours_key_ranges() {
    let dev = MemDevice::new();
    let e = open_mem(&dev, small_config());
    for i in 0..100 {
        assert!(e
            .write(&key(i), &value(i, 0, 10), WriteOptions::default())
            .is_ok());
    }
    for i in 0..10 {
        assert!(e.remove(&key(i)).is_ok());
    }
    let mut all: Vec<Key> = e.iterate().filter_map(|r| r.ok()).map(|m| m.key).collect();
    all.sort();
    let mut want: Vec<Key> = (10..100).map(key).collect();
    want.sort();
    assert_eq!(all, want);
    let (lo, hi) = (want[20], want[40]);
    let ranged = e.iterate_range(lo, hi).filter_map(|r| r.ok()).count();
    assert_eq!(ranged, 21);
}

#[test]
fn concurrent_readers_and_writers_see_whole_values() {
    let dev = MemDevice::new();
    let e = std::sync::Arc::new(open_mem(&dev, small_config()));
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let e = e.clone();
            std::thread::spawn(move || {
                for round in 0..20u64 {
                    for i in 0..50 {
                        let k = t * 1000 + i;
                        let d = if round % 3 == 0 {
                            Durability::Batch
                        } else {
                            Durability::None
                        };
                        let r =
                            e.write(&key(k), &value(k, round, 300), WriteOptions::durability(d));
                        assert!(r.is_ok());
                    }
                }
            })
        })
        .collect();
    let reader = {
        let e = e.clone();
        std::thread::spawn(move || {
            for _ in 0..2000 {
                for k in [5u64, 1007] {
                    if let Ok(v) = read_all(&e, &key(k)) {
                        assert!(
                            (0..20).any(|r| v == value(k, r, 300)),
                            "torn or foreign value"
                        );
                    }
                }
            }
        })
    };
    for w in writers {
        assert!(w.join().is_ok());
    }
    assert!(reader.join().is_ok());
    for t in 0..2 {
        for i in 0..50 {
            let k = t * 1000 + i;
            assert_eq!(read_all(&e, &key(k)).ok(), Some(value(k, 19, 300)));
        }
    }
}

#[test]
fn group_commit_shares_syncs_between_writers() {
    let dir = tmp();
    let e = Engine::open(dir.path(), Config::default());
    let Ok(e) = e else { panic!("open") };
    let e = std::sync::Arc::new(e);
    let threads: Vec<_> = (0..16u64)
        .map(|t| {
            let e = e.clone();
            std::thread::spawn(move || {
                for i in 0..40 {
                    let k = t * 100 + i;
                    assert!(e
                        .write(
                            &key(k),
                            &value(k, 0, 100),
                            WriteOptions::durability(Durability::Batch)
                        )
                        .is_ok());
                }
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().is_ok());
    }
    let s = e.stats();
    assert_eq!(s.records_written, 640);
    assert!(
        s.syncs < 640,
        "640 batch writes took {} fdatasyncs",
        s.syncs
    );
}

#[test]
fn very_large_values_read_back_in_groups_of_frames() {
    let dev = MemDevice::new();
    let cfg = Config {
        max_blob_size: 256 << 20,
        ..Config::default()
    };
    let e = open_mem(&dev, cfg);
    for (i, compress) in [(6u64, false), (8, true)] {
        let v = value(i, 0, 20 << 20);
        let opts = WriteOptions {
            compress: Some(compress),
            durability: Some(Durability::None),
            ..WriteOptions::default()
        };
        assert!(e.write(&key(i), &v, opts).is_ok());
        assert!(
            read_all(&e, &key(i)).ok() == Some(v.clone()),
            "whole value, compress={compress}"
        );
        for (off, size) in [
            (0u64, 1u64),
            ((8 << 20) - 3, 7),
            ((7 << 20) + 5, 10 << 20),
            ((20 << 20) - 1, 5),
        ] {
            let got = e.read(&key(i), Range::new(off, size)).ok();
            let end = ((off + size) as usize).min(v.len());
            assert!(
                got.as_deref() == Some(&v[off as usize..end]),
                "range {off}+{size}, compress={compress}"
            );
        }
    }
}

/// Range iteration over sealed blobs whose sorted indexes span many pages (read only where
/// the range can be) lists exactly the live keys in the range, in both index modes.
#[test]
fn range_iteration_over_many_page_sorted_indexes_matches_a_full_scan() {
    for mode in [
        ringblob_engine::IndexMode::Sorted,
        ringblob_engine::IndexMode::Memory,
    ] {
        let dev = MemDevice::new();
        let config = Config {
            max_blob_size: 16 << 20,
            max_blob_records: 1000,
            index: mode,
            ..small_config()
        };
        let e = open_mem(&dev, config.clone());
        for i in 0..4500 {
            assert!(e.write(&key(i), b"v", WriteOptions::default()).is_ok());
        }
        for i in (0..4500).step_by(7) {
            assert!(e.remove(&key(i)).is_ok());
        }
        assert!(e.close().is_ok());
        // Reopened: every full blob is sealed and answers from its sorted index.
        let e = open_mem(&dev, config);
        let mut all: Vec<Key> = e.iterate().filter_map(|r| r.ok()).map(|m| m.key).collect();
        all.sort();
        assert_eq!(all.len(), 4500 - 4500usize.div_ceil(7), "{mode:?}");
        for (a, b) in [
            (0, 0),
            (10, 11),
            (100, 900),
            (1234, 3700),
            (3800, all.len() - 1),
        ] {
            let (lo, hi) = (all[a], all[b]);
            let mut got: Vec<Key> = e
                .iterate_range(lo, hi)
                .map(|r| r.map(|m| m.key).unwrap_or_else(|err| panic!("{err}")))
                .collect();
            got.sort();
            assert_eq!(got, all[a..=b].to_vec(), "{mode:?}: range {a}..={b}");
        }
    }
}
