//! Opening damaged or half-written directories.

use ringblob_engine::blob::{blob_name, index_name, sorted_name};
use ringblob_engine::format::frames::{RecordEncoder, RecordSpec};
use ringblob_engine::io::{Device, MemDevice};
use ringblob_engine::{Config, Engine, Error, IndexMode, WriteOptions};

use crate::support::{key, open_mem, read_all, small_config, value};

fn fill(dev: &MemDevice, keys: std::ops::Range<u64>, len: usize) {
    let e = open_mem(dev, small_config());
    for i in keys {
        assert!(e
            .write(&key(i), &value(i, 0, len), WriteOptions::default())
            .is_ok());
    }
    assert!(e.close().is_ok());
}

fn file(dev: &MemDevice, name: &str) -> Vec<u8> {
    dev.file_bytes(name).unwrap_or_default()
}

#[test]
fn recover_truncates_torn_tail_and_keeps_writing() {
    let dev = MemDevice::new();
    fill(&dev, 0..5, 300);
    let name = blob_name(1);
    let mut bytes = file(&dev, &name);
    let good_len = bytes.len();
    let mut torn = Vec::new();
    let spec = RecordSpec {
        key: key(99),
        column: 0,
        flags: 0,
        timestamp_ns: 1,
        frame_len: 4096,
        compress: false,
    };
    assert!(RecordEncoder::new()
        .encode(spec, &value(99, 0, 500), &mut torn)
        .is_ok());
    bytes.extend_from_slice(&torn[..torn.len() / 2]);
    dev.put_file(&name, bytes);
    let _ = dev.remove(&index_name(1));
    let e = open_mem(&dev, small_config());
    assert_eq!(file(&dev, &name).len(), good_len, "torn tail truncated");
    assert!(matches!(read_all(&e, &key(99)), Err(Error::NotFound(_))));
    for i in 0..5 {
        assert_eq!(read_all(&e, &key(i)).ok(), Some(value(i, 0, 300)));
    }
    assert!(e.write(&key(7), b"after", WriteOptions::default()).is_ok());
    assert!(e.close().is_ok());
    let e = open_mem(&dev, small_config());
    assert_eq!(read_all(&e, &key(7)).ok().as_deref(), Some(&b"after"[..]));
}

#[test]
fn damaged_record_mid_blob_reads_as_damaged_and_later_records_survive() {
    let dev = MemDevice::new();
    fill(&dev, 0..5, 300);
    let name = blob_name(1);
    let e = open_mem(&dev, small_config());
    let m = e.lookup(&key(1)).ok();
    let Some(m) = m else { panic!("lookup") };
    drop(e);
    let mut bytes = file(&dev, &name);
    bytes[(m.offset + m.stored_size - 5) as usize] ^= 0x40;
    dev.put_file(&name, bytes);
    let _ = dev.remove(&index_name(1));
    let e = open_mem(&dev, small_config());
    // Damaged, never data, never "not found": the key exists.
    assert!(
        matches!(read_all(&e, &key(1)), Err(err) if err.is_corruption()),
        "a damaged value reads as damaged"
    );
    assert_eq!(e.stats().damage.records, 1);
    for i in [0, 2, 3, 4] {
        assert_eq!(
            read_all(&e, &key(i)).ok(),
            Some(value(i, 0, 300)),
            "key {i}"
        );
    }
}

#[test]
fn a_value_holding_record_images_never_yields_phantom_keys_when_torn() {
    let dev = MemDevice::new();
    // The value is itself a valid record for key 500, as if someone stored a blob file.
    let mut image = Vec::new();
    let spec = RecordSpec {
        key: key(500),
        column: 0,
        flags: 0,
        timestamp_ns: 1,
        frame_len: 4096,
        compress: false,
    };
    assert!(RecordEncoder::new()
        .encode(spec, b"phantom", &mut image)
        .is_ok());
    let mut v = vec![0u8; 1000];
    v.extend_from_slice(&image);
    v.extend_from_slice(&[0u8; 1000]);
    {
        let e = open_mem(&dev, small_config());
        assert!(e.write(&key(1), &v, WriteOptions::default()).is_ok());
        assert!(e.close().is_ok());
    }
    let _ = dev.remove(&index_name(1));
    let name = blob_name(1);
    let bytes = file(&dev, &name);
    dev.put_file(&name, bytes[..bytes.len() - 500].to_vec());
    let e = open_mem(&dev, small_config());
    assert!(
        matches!(read_all(&e, &key(500)), Err(Error::NotFound(_))),
        "phantom key appeared"
    );
    // The cut bytes had been synced (a clean close), so they are lost, not a torn tail: the
    // blob is extended back to its synced length with zeros. Those bytes were zeros (the
    // value ends in 1000 of them), so the record checks out whole again.
    assert_eq!(read_all(&e, &key(1)).ok(), Some(v));
    assert_eq!(e.stats().damage.bytes_lost, 500);
    assert_eq!(file(&dev, &name).len(), bytes.len());
}

#[test]
fn half_created_last_blob_is_removed_and_writing_continues_in_a_new_one() {
    let dev = MemDevice::new();
    fill(&dev, 0..120, 200);
    let last = dev
        .list()
        .unwrap_or_default()
        .iter()
        .filter(|n| n.ends_with(".blob"))
        .count() as u32;
    assert!(last >= 3);
    dev.put_file(&blob_name(last + 1), b"RINGB".to_vec());
    let e = open_mem(&dev, small_config());
    for i in 0..120 {
        assert_eq!(read_all(&e, &key(i)).ok(), Some(value(i, 0, 200)));
    }
    assert!(
        e.write(&key(1000), b"new", WriteOptions::default()).is_ok(),
        "writes work"
    );
    assert!(e.sync().is_ok());
    assert!(e.close().is_ok());
    let e = open_mem(&dev, small_config());
    assert_eq!(read_all(&e, &key(1000)).ok().as_deref(), Some(&b"new"[..]));
}

#[test]
fn missing_or_damaged_sealed_index_is_rebuilt_from_its_blob() {
    let dev = MemDevice::new();
    fill(&dev, 0..120, 200);
    let _ = dev.remove(&index_name(1));
    let mut ix = file(&dev, &index_name(2));
    let mid = ix.len() / 2;
    ix[mid] ^= 1;
    dev.put_file(&index_name(2), ix.clone());
    let memory = Config {
        index: IndexMode::Memory,
        ..small_config()
    };
    let e = open_mem(&dev, memory);
    for i in 0..120 {
        assert_eq!(read_all(&e, &key(i)).ok(), Some(value(i, 0, 200)));
    }
    drop(e);
    assert!(
        dev.file_bytes(&index_name(1)).is_some(),
        "index 1 rewritten"
    );
    assert_ne!(file(&dev, &index_name(2)), ix, "index 2 rewritten");
}

#[test]
fn unknown_blob_format_version_is_refused_with_a_clear_error() {
    let dev = MemDevice::new();
    fill(&dev, 0..3, 10);
    let mut b = file(&dev, &blob_name(1));
    b[8] = 9;
    let crc = crc32fast::hash(&b[0..28]);
    b[28..32].copy_from_slice(&crc.to_le_bytes());
    dev.put_file(&blob_name(1), b);
    let e = ringblob_engine::Engine::open_on(std::sync::Arc::new(dev), small_config());
    assert!(matches!(
        e,
        Err(Error::UnsupportedVersion {
            version: 9,
            supported: 3,
            ..
        })
    ));
}

#[test]
fn an_index_file_naming_the_wrong_key_never_makes_iteration_disagree_with_reads() {
    use ringblob_engine::format::index_file::IndexFile;
    let dev = MemDevice::new();
    fill(&dev, 0..3, 100);
    let name = index_name(1);
    let Ok(mut ix) = IndexFile::decode(&file(&dev, &name), &name) else {
        panic!("index")
    };
    // A checksum-valid index file that lists the last record (key 2's) under key 1's name.
    ix.entries[2].key = key(1);
    dev.put_file(&name, ix.encode());
    let e = open_mem(&dev, small_config());
    for m in e.iterate() {
        let Ok(m) = m else { panic!("iteration error") };
        let v = read_all(&e, &m.key);
        assert_eq!(
            v.map(|v| v.len() as u64).ok(),
            Some(m.size),
            "iteration and read disagree"
        );
    }
}

#[test]
fn missing_or_damaged_sorted_index_is_rebuilt_never_trusted() {
    let dev = MemDevice::new();
    fill(&dev, 0..300, 200);
    let _ = dev.remove(&sorted_name(1));
    // Damage a page of one sorted index and the tail of another: both must be noticed.
    let mut page = file(&dev, &sorted_name(2));
    page[4096 + 100] ^= 1;
    dev.put_file(&sorted_name(2), page.clone());
    let mut tail = file(&dev, &sorted_name(3));
    let last = tail.len() - 1;
    tail[last] ^= 1;
    dev.put_file(&sorted_name(3), tail.clone());
    let e = open_mem(&dev, small_config());
    for i in 0..300 {
        assert_eq!(
            read_all(&e, &key(i)).ok(),
            Some(value(i, 0, 200)),
            "key {i}"
        );
    }
    assert_eq!(e.stats().keys, 300);
    drop(e);
    assert!(
        dev.file_bytes(&sorted_name(1)).is_some(),
        "sorted 1 rebuilt"
    );
    assert_ne!(file(&dev, &sorted_name(2)), page, "sorted 2 rebuilt");
    assert_ne!(file(&dev, &sorted_name(3)), tail, "sorted 3 rebuilt");
}

/// One flipped bit in a tombstone's header (its key) must not bring the removed value back:
/// a record whose header fails its checksum is damage, never "another key's record" that a
/// lookup may skip to reach the older value in a sealed blob (the tombstone in the active
/// blob, after a clean close). In both index modes.
#[test]
fn a_damaged_tombstone_never_brings_the_removed_value_back() {
    for index in [IndexMode::Sorted, IndexMode::Memory] {
        let dev = MemDevice::new();
        let config = Config {
            max_blob_records: 1,
            index,
            ..small_config()
        };
        let e = open_mem(&dev, config.clone());
        assert!(e
            .write(&key(1), b"removed", WriteOptions::default())
            .is_ok());
        assert!(e.remove(&key(1)).is_ok());
        assert!(e.close().is_ok());
        // Blob 2 (active) holds the tombstone alone: flip a bit of the key in its header.
        let name = blob_name(2);
        let mut bytes = file(&dev, &name);
        let key_at = ringblob_engine::format::blob_header::BLOB_HEADER_LEN
            + ringblob_engine::format::record::HEADER_KEY_AT;
        assert_eq!(
            &bytes[key_at..key_at + 32],
            &key(1).0,
            "{index:?}: not the tombstone"
        );
        bytes[key_at + 3] ^= 0x10;
        dev.put_file(&name, bytes);
        let e = match Engine::open_on(
            std::sync::Arc::new(dev.clone()) as std::sync::Arc<dyn Device>,
            config,
        ) {
            Ok(e) => e,
            Err(err) => panic!("{index:?}: the node must start: {err}"),
        };
        let got = read_all(&e, &key(1));
        assert!(
            !matches!(&got, Ok(v) if v == b"removed"),
            "{index:?}: the removed value came back: {got:?}"
        );
    }
}

/// The live (key, column) count after a reopen in sorted mode, with the active blob holding
/// new keys, overwrites and removes of sealed keys, and several records of one key: counted
/// without sorting the active blob's entries, it still matches what is readable.
#[test]
fn a_reopen_counts_live_keys_over_sealed_blobs_and_an_active_blob() {
    let dev = MemDevice::new();
    let config = Config {
        max_blob_records: 100_000,
        max_blob_size: 64 << 20,
        ..small_config()
    };
    let e = open_mem(&dev, config.clone());
    let w = |e: &Engine, i: u64, v: u64| {
        e.write(&key(i), &value(i, v, 50), WriteOptions::default())
            .unwrap_or_else(|err| panic!("{err}"));
    };
    for i in 0..400 {
        w(&e, i, 0);
    }
    e.rotate().unwrap_or_else(|err| panic!("{err}"));
    // Active blob: overwrite 0..100 (twice), remove 100..150, new keys 400..450 (one then
    // removed again, one removed and written back).
    for v in 1..3 {
        for i in 0..100 {
            w(&e, i, v);
        }
    }
    for i in 100..150 {
        e.remove(&key(i)).unwrap_or_else(|err| panic!("{err}"));
    }
    for i in 400..450 {
        w(&e, i, 0);
    }
    e.remove(&key(400)).unwrap_or_else(|err| panic!("{err}"));
    e.remove(&key(401)).unwrap_or_else(|err| panic!("{err}"));
    w(&e, 401, 1);
    let want = 400 - 50 + 50 - 1;
    assert_eq!(e.stats().keys, want, "before the reopen");
    drop(e);
    for index in [IndexMode::Sorted, IndexMode::Memory, IndexMode::Sorted] {
        let e = open_mem(
            &dev,
            Config {
                index,
                ..config.clone()
            },
        );
        assert_eq!(e.stats().keys, want, "after a reopen ({index:?})");
        let readable = (0..450).filter(|i| read_all(&e, &key(*i)).is_ok()).count() as u64;
        assert_eq!(readable, want);
    }
}
