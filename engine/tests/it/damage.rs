//! Damage on disk is reported, never served as an older version or as "not found"; torn
//! appends past the last sync are cut; the engine starts whatever one file holds.

use ringblob_engine::blob::{blob_name, index_name, sorted_name};
use ringblob_engine::format::frames::{RecordEncoder, RecordSpec};
use ringblob_engine::format::record::RECORD_HEADER_LEN;
use ringblob_engine::io::{Device, MemDevice};
use ringblob_engine::{Config, Engine, Error, IndexMode, Meta};

use crate::support::{key, open_mem, read_all, small_config, sync_opts, value};

const MODES: [IndexMode; 2] = [IndexMode::Memory, IndexMode::Sorted];

fn config(index: IndexMode) -> Config {
    Config {
        index,
        max_blob_size: 64 << 20,
        max_blob_records: 1 << 20,
        ..small_config()
    }
}

fn is_damage(r: &ringblob_engine::Result<Vec<u8>>) -> bool {
    matches!(r, Err(e) if e.is_corruption())
}

fn meta(e: &Engine, k: u64) -> Meta {
    match e.lookup(&key(k)) {
        Ok(m) => m,
        Err(err) => panic!("lookup {k}: {err}"),
    }
}

fn change(dev: &MemDevice, name: &str, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = dev.file_bytes(name).unwrap_or_default();
    f(&mut bytes);
    dev.put_file(name, bytes);
}

/// Key 1 written twice (the second version at the returned place), then keys 2..6 after
/// it when `after`; the image is what a `kill -9` leaves.
fn two_versions(index: IndexMode, after: bool) -> (MemDevice, Meta) {
    let dev = MemDevice::new();
    let e = open_mem(&dev, config(index));
    assert!(e.write(&key(1), &value(1, 0, 3000), sync_opts()).is_ok());
    assert!(e.write(&key(1), &value(1, 1, 3000), sync_opts()).is_ok());
    let newest = meta(&e, 1);
    if after {
        for k in 2..6 {
            assert!(e.write(&key(k), &value(k, 0, 500), sync_opts()).is_ok());
        }
    }
    let image = dev.process_crash_image();
    drop(e);
    (image, newest)
}

#[test]
fn a_damaged_newest_record_after_a_crash_reads_as_damaged_never_older() {
    for index in MODES {
        for after in [true, false] {
            // A flipped bit in the body, and one in the header's key.
            for at in [RECORD_HEADER_LEN as u64 + 200, 20] {
                let label = format!("{index:?}, records after: {after}, byte {at}");
                let (dev, m) = two_versions(index, after);
                change(&dev, &blob_name(m.blob), |b| {
                    b[(m.offset + at) as usize] ^= 0x10
                });
                let e = open_mem(&dev, config(index));
                assert!(is_damage(&read_all(&e, &key(1))), "{label}");
                assert_eq!(e.stats().damage.records, 1, "{label}");
                for k in 2..6 {
                    let want = after.then(|| value(k, 0, 500));
                    assert_eq!(read_all(&e, &key(k)).ok(), want, "{label}: key {k}");
                }
                // Writing the key again heals it, and the next open agrees.
                assert!(e.write(&key(1), b"fresh", sync_opts()).is_ok());
                assert_eq!(read_all(&e, &key(1)).ok().as_deref(), Some(&b"fresh"[..]));
                assert!(e.close().is_ok());
                let e = open_mem(&dev, config(index));
                assert_eq!(
                    read_all(&e, &key(1)).ok().as_deref(),
                    Some(&b"fresh"[..]),
                    "{label}"
                );
            }
        }
    }
}

#[test]
fn a_synced_newest_record_cut_short_reads_as_damaged_and_keeps_its_place() {
    for index in MODES {
        let (dev, m) = two_versions(index, false);
        let name = blob_name(m.blob);
        change(&dev, &name, |b| b.truncate((m.offset + 500) as usize));
        let e = open_mem(&dev, config(index));
        assert!(is_damage(&read_all(&e, &key(1))), "{index:?}");
        let d = e.stats().damage;
        assert_eq!(d.bytes_lost, m.stored_size - 500, "{index:?}: {d:?}");
        // Later appends land after the damaged record, never inside it.
        assert!(e.write(&key(9), b"later", sync_opts()).is_ok());
        drop(e);
        let e = open_mem(&dev.process_crash_image(), config(index));
        assert_eq!(read_all(&e, &key(9)).ok().as_deref(), Some(&b"later"[..]));
        assert!(is_damage(&read_all(&e, &key(1))), "{index:?}");
    }
}

#[test]
fn a_torn_append_past_the_last_sync_is_cut_and_saved_and_the_older_value_stays() {
    for index in MODES {
        let dev = MemDevice::new();
        let e = open_mem(&dev, config(index));
        assert!(e.write(&key(1), &value(1, 0, 3000), sync_opts()).is_ok());
        let image = dev.process_crash_image();
        drop(e);
        // An append of a new version of key 1 that the crash cut in half: never synced,
        // never acknowledged.
        let mut torn = Vec::new();
        let spec = RecordSpec {
            key: key(1),
            column: 0,
            flags: 0,
            timestamp_ns: u64::MAX / 2,
            frame_len: 4096,
            compress: false,
        };
        assert!(RecordEncoder::new()
            .encode(spec, &value(1, 1, 3000), &mut torn)
            .is_ok());
        let name = blob_name(1);
        let before = image.file_bytes(&name).unwrap_or_default().len();
        change(&image, &name, |b| {
            b.extend_from_slice(&torn[..torn.len() / 2])
        });
        let e = open_mem(&image, config(index));
        assert_eq!(
            read_all(&e, &key(1)).ok(),
            Some(value(1, 0, 3000)),
            "{index:?}"
        );
        let d = e.stats().damage;
        assert_eq!(
            (d.records, d.tail_bytes_cut),
            (0, (torn.len() / 2) as u64),
            "{index:?}"
        );
        assert_eq!(image.file_bytes(&name).map(|b| b.len()), Some(before));
        let saved = image.file_bytes(&format!("{name}.cut-{before}"));
        assert_eq!(saved.as_deref(), Some(&torn[..torn.len() / 2]), "{index:?}");
    }
}

/// Key 1's second version in blob 2, sealed with an index (and in sorted mode a sorted
/// index); keys 10..15 in blob 1, key 20 in blob 3 (active).
fn sealed_second_version(index: IndexMode) -> (MemDevice, Meta) {
    let dev = MemDevice::new();
    let e = open_mem(&dev, config(index));
    assert!(e.write(&key(1), &value(1, 0, 3000), sync_opts()).is_ok());
    for k in 10..15 {
        assert!(e.write(&key(k), &value(k, 0, 700), sync_opts()).is_ok());
    }
    assert!(e.rotate().is_ok());
    assert!(e.write(&key(1), &value(1, 1, 3000), sync_opts()).is_ok());
    let m = meta(&e, 1);
    assert!(e.rotate().is_ok());
    assert!(e.write(&key(20), b"twenty", sync_opts()).is_ok());
    assert!(e.close().is_ok());
    assert_eq!(m.blob, 2);
    (dev, m)
}

#[test]
fn a_sealed_blob_shorter_than_its_index_is_lost_data_never_a_torn_tail() {
    for index in MODES {
        let (dev, m) = sealed_second_version(index);
        let name = blob_name(2);
        change(&dev, &name, |b| b.truncate((m.offset + 100) as usize));
        let e = open_mem(&dev, config(index));
        let got = read_all(&e, &key(1));
        assert!(is_damage(&got), "{index:?}: {got:?}");
        assert!(
            e.stats().damage.bytes_lost >= m.stored_size - 100,
            "{index:?}"
        );
        assert_eq!(read_all(&e, &key(20)).ok().as_deref(), Some(&b"twenty"[..]));
        assert_eq!(read_all(&e, &key(12)).ok(), Some(value(12, 0, 700)));
        drop(e);
        // Reported again at the next open: the evidence is kept, not trimmed.
        let e = open_mem(&dev, config(index));
        assert!(is_damage(&read_all(&e, &key(1))), "{index:?}");
    }
}

#[test]
fn a_damaged_blob_header_marks_that_blob_and_everything_else_is_served() {
    for index in MODES {
        for blob in [1u32, 3] {
            let (dev, _) = sealed_second_version(index);
            change(&dev, &blob_name(blob), |b| b[5] ^= 0x01);
            let e = match Engine::open_on(std::sync::Arc::new(dev.clone()), config(index)) {
                Ok(e) => e,
                Err(err) => panic!("{index:?}: blob {blob}: the node must start: {err}"),
            };
            assert_eq!(e.stats().damage.blobs, [blob], "{index:?}");
            assert_eq!(read_all(&e, &key(1)).ok(), Some(value(1, 1, 3000)));
            if blob == 1 {
                for k in 10..15 {
                    assert!(is_damage(&read_all(&e, &key(k))), "{index:?}: key {k}");
                }
                assert_eq!(read_all(&e, &key(20)).ok().as_deref(), Some(&b"twenty"[..]));
            } else {
                assert!(is_damage(&read_all(&e, &key(20))), "{index:?}");
                assert_eq!(read_all(&e, &key(12)).ok(), Some(value(12, 0, 700)));
            }
            // Writes go on (into a new blob when the damaged one was the active one), and
            // a write heals a key of the damaged blob.
            assert!(e.write(&key(10), b"ten", sync_opts()).is_ok());
            assert!(e.write(&key(20), b"new twenty", sync_opts()).is_ok());
            assert!(e.close().is_ok());
            let e = open_mem(&dev, config(index));
            assert_eq!(read_all(&e, &key(10)).ok().as_deref(), Some(&b"ten"[..]));
            assert_eq!(
                read_all(&e, &key(20)).ok().as_deref(),
                Some(&b"new twenty"[..])
            );
            assert_eq!(e.stats().damage.blobs, [blob], "{index:?}: still reported");
        }
    }
}

#[test]
fn index_files_without_their_blob_are_removed_at_open() {
    let (dev, _) = sealed_second_version(IndexMode::Sorted);
    for name in [index_name(2), sorted_name(2)] {
        let bytes = dev.file_bytes(&name).unwrap_or_default();
        dev.put_file(&name.replace("00000002", "00000077"), bytes);
    }
    let e = open_mem(&dev, config(IndexMode::Sorted));
    drop(e);
    let names = dev.list().unwrap_or_default();
    assert!(!names.iter().any(|n| n.contains("00000077")), "{names:?}");
    assert!(names.contains(&index_name(2)));
}

#[test]
fn a_copy_from_another_group_replaces_a_record_known_to_be_damaged() {
    for index in MODES {
        for older in [false, true] {
            let (dev, m) = two_versions(index, true);
            change(&dev, &blob_name(m.blob), |b| {
                b[(m.offset + 400) as usize] ^= 0x01
            });
            let e = open_mem(&dev, config(index));
            assert!(is_damage(&read_all(&e, &key(1))));
            // Another group's copy, as repair sends it: of the same version, or of an older
            // one when that is all the cluster has left.
            let ts = if older {
                m.timestamp_ns - 1
            } else {
                m.timestamp_ns
            };
            let copy = ringblob_engine::WriteOptions::copy_if_newer(ts);
            let r = e.write(&key(1), &value(1, 1, 3000), copy);
            assert!(r.is_ok(), "{index:?}: {r:?}");
            assert_eq!(read_all(&e, &key(1)).ok(), Some(value(1, 1, 3000)));
            // Once replaced, copies are conditional again.
            let again = ringblob_engine::WriteOptions::copy_if_newer(ts);
            assert!(matches!(
                e.write(&key(1), b"again", again),
                Err(Error::NotNewer { .. })
            ));
        }
    }
}
