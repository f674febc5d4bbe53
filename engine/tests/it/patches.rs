//! Writes into values (append, write at an offset): against a model through rotations,
//! defragmentation, reopens, both index modes and compression; what they cost on disk; and
//! concurrent appends racing each other.

use std::sync::Arc;

use ringblob_engine::format::crc32;
use ringblob_engine::io::MemDevice;
use ringblob_engine::{
    Config, DefragOptions, Engine, Error, IndexMode, Range, WriteAt, WriteOptions,
};

use crate::support::{key, open_mem, value};

fn config(index: IndexMode, compress: bool) -> Config {
    Config {
        max_blob_size: 256 << 10,
        max_blob_records: 400,
        frame_len: 4096,
        defrag_interval: None,
        index,
        compress,
        ..Config::default()
    }
}

/// The model's value and the engine's agree: whole, in a range, and in the lookup.
fn check(e: &Engine, model: &[Option<Vec<u8>>], label: &str) {
    for (i, want) in model.iter().enumerate() {
        let k = key(i as u64);
        match want {
            None => {
                assert!(
                    matches!(e.read(&k, Range::all()), Err(Error::NotFound(_))),
                    "{label}: key {i} should be absent"
                );
                let whole = e.read_whole_in(&k, 0, Vec::new(), u64::MAX);
                assert!(
                    matches!(whole, Err(Error::NotFound(_))),
                    "{label}: key {i} whole {whole:?}"
                );
            }
            Some(v) => {
                // Whole, left in its record where its frames allow (patches, compression).
                // (Not read when its record is over 256 KiB, which takes a value about as long.)
                match e.read_whole_in(&k, 0, Vec::with_capacity(100), u64::MAX) {
                    Ok(Some(w)) => assert!(
                        w.value() == &v[..] && w.value_crc == crc32(v),
                        "{label}: key {i} whole read"
                    ),
                    Ok(None) => assert!(v.len() > 200_000, "{label}: key {i} skipped"),
                    Err(err) => panic!("{label}: key {i} whole read: {err}"),
                }
                let got = e.read(&k, Range::all());
                assert!(
                    got.as_ref().is_ok_and(|g| g == v),
                    "{label}: key {i}: {:?} bytes, want {}",
                    got.map(|g| g.len()),
                    v.len()
                );
                let meta = e.lookup(&k);
                assert!(
                    meta.as_ref()
                        .is_ok_and(|m| m.size == v.len() as u64 && m.checksum == crc32(v)),
                    "{label}: key {i} meta {meta:?}"
                );
                let (off, len) = (v.len() as u64 / 3, 5000u64);
                let end = (off + len).min(v.len() as u64) as usize;
                let part = e.read(&k, Range::new(off, len));
                assert!(
                    part.as_ref().is_ok_and(|p| p[..] == v[off as usize..end]),
                    "{label}: key {i} range"
                );
            }
        }
    }
}

/// A deterministic sequence of writes into 6 values, checked after every step, with
/// rotations, defragmentation and reopens between them.
fn run_model(index: IndexMode, compress: bool) {
    let mut patches_seen = 0;
    let dev = MemDevice::new();
    let mut e = open_mem(&dev, config(index, compress));
    let mut model: Vec<Option<Vec<u8>>> = vec![None; 6];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let opts = WriteOptions::default();
    for step in 0..400u64 {
        let i = next(6);
        let k = key(i);
        let cur = model[i as usize].clone().unwrap_or_default();
        let data = value(i, step, next(3) as usize * 3000 + next(2500) as usize);
        let label = format!("{index:?} compress={compress} step {step}");
        match next(10) {
            0..=4 => {
                let r = e.append_column(&k, 0, &data, opts);
                let mut v = cur;
                v.extend_from_slice(&data);
                assert_eq!(r.ok(), Some(v.len() as u64), "{label}: append");
                model[i as usize] = Some(v);
            }
            5..=7 => {
                let at = next(cur.len() as u64 + 6000);
                let r = e.write_at_column(&k, 0, at, &data, opts);
                let mut v = cur;
                let end = at as usize + data.len();
                if v.len() < end {
                    v.resize(end, 0);
                }
                v[at as usize..end].copy_from_slice(&data);
                assert_eq!(r.ok(), Some(v.len() as u64), "{label}: write at {at}");
                model[i as usize] = Some(v);
            }
            8 => {
                assert!(e.write(&k, &data, opts).is_ok(), "{label}: write");
                model[i as usize] = Some(data);
            }
            _ => {
                let had = model[i as usize].take().is_some();
                assert_eq!(e.remove(&k).is_ok(), had, "{label}: remove");
            }
        }
        check(&e, &model, &label);
        patches_seen = patches_seen.max(patch_records(&dev));
        match step % 50 {
            17 => assert!(e.rotate().is_ok()),
            29 => {
                let all = DefragOptions {
                    min_garbage_ratio: 0.0,
                    max_bytes_per_sec: 0,
                };
                assert!(e.defrag_with(all).is_ok(), "{label}: defrag");
                check(&e, &model, &format!("{label} after defrag"));
            }
            41 => {
                assert!(e.close().is_ok());
                e = open_mem(&dev, config(index, compress));
                check(&e, &model, &format!("{label} after reopen"));
            }
            _ => {}
        }
    }
    assert!(
        patches_seen >= 20,
        "only {patches_seen} patch records at once"
    );
}

/// Patch records in the blob files (walking each blob's records from offset 32).
fn patch_records(dev: &MemDevice) -> usize {
    use ringblob_engine::format::record::RecordHeader;
    use ringblob_engine::io::Device;
    let mut n = 0;
    for name in dev.list().unwrap_or_default() {
        let Some(bytes) = dev.file_bytes(&name).filter(|_| name.ends_with(".blob")) else {
            continue;
        };
        let mut at = 32usize;
        while let Ok(h) = RecordHeader::decode(bytes.get(at..).unwrap_or(&[]), 0, at as u64) {
            n += usize::from(h.is_patch());
            at += h.record_len() as usize;
        }
    }
    n
}

#[test]
fn writes_into_values_match_a_model_in_memory_mode() {
    run_model(IndexMode::Memory, false);
}

#[test]
fn writes_into_values_match_a_model_in_sorted_mode_compressed() {
    run_model(IndexMode::Sorted, true);
}

/// The sum of the blob files' sizes.
fn disk_bytes(dev: &MemDevice) -> u64 {
    use ringblob_engine::io::Device;
    dev.list()
        .unwrap_or_default()
        .iter()
        .filter(|name| name.ends_with(".blob"))
        .filter_map(|name| dev.file_bytes(name))
        .map(|bytes| bytes.len() as u64)
        .sum()
}

#[test]
fn an_append_to_a_large_value_writes_the_new_bytes_not_the_value() {
    let dev = MemDevice::new();
    let c = Config {
        max_blob_size: 64 << 20,
        frame_len: 65536,
        defrag_interval: None,
        ..Config::default()
    };
    let e = open_mem(&dev, c);
    let k = key(1);
    let big = value(1, 0, 8 << 20);
    assert!(e.write(&k, &big, WriteOptions::default()).is_ok());
    assert!(e.sync().is_ok());
    let before = disk_bytes(&dev);
    let tail = value(3, 1, 1000);
    assert_eq!(
        e.append_column(&k, 0, &tail, WriteOptions::default()).ok(),
        Some((8 << 20) + 1000)
    );
    assert!(e.sync().is_ok());
    let grew = disk_bytes(&dev) - before;
    // Header, 129 table entries of 16 bytes, and one new frame of 1000 bytes.
    assert!(grew < 8 << 10, "an append of 1000 bytes wrote {grew} bytes");
    // A write at an offset rewrites the frame it lands in, not the value.
    let before = disk_bytes(&dev);
    let patch = value(5, 2, 100);
    assert!(e
        .write_at_column(&k, 0, 3 << 20, &patch, WriteOptions::default())
        .is_ok());
    assert!(e.sync().is_ok());
    let grew = disk_bytes(&dev) - before;
    assert!(grew < 72 << 10, "a write of 100 bytes wrote {grew} bytes");
    let mut want = big;
    want.extend_from_slice(&tail);
    want[3 << 20..(3 << 20) + 100].copy_from_slice(&patch);
    assert!(e.read(&k, Range::all()).is_ok_and(|v| v == want));
}

#[test]
fn concurrent_appends_to_one_value_all_land_once() {
    let dev = MemDevice::new();
    let e = Arc::new(open_mem(&dev, config(IndexMode::Memory, false)));
    let k = key(7);
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let e = e.clone();
            std::thread::spawn(move || {
                for n in 0..40u8 {
                    let chunk = vec![t * 64 + n; 1500];
                    if let Err(err) = e.append_column(&k, 0, &chunk, WriteOptions::default()) {
                        return Err(err.to_string());
                    }
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        assert!(matches!(t.join(), Ok(Ok(()))));
    }
    let v = e.read(&k, Range::all()).unwrap_or_default();
    assert_eq!(v.len(), 4 * 40 * 1500);
    let mut seen: Vec<u8> = v.chunks(1500).map(|c| c[0]).collect();
    assert!(
        v.chunks(1500).all(|c| c.iter().all(|b| *b == c[0])),
        "torn chunk"
    );
    seen.sort_unstable();
    let mut want: Vec<u8> = (0..4u8)
        .flat_map(|t| (0..40u8).map(move |n| t * 64 + n))
        .collect();
    want.sort_unstable();
    assert_eq!(seen, want);
}

#[test]
fn write_at_end_is_an_append_and_limits_hold() {
    let dev = MemDevice::new();
    let e = open_mem(&dev, config(IndexMode::Memory, false));
    let k = key(2);
    let o = WriteOptions::default();
    assert_eq!(e.write_into(&k, 3, WriteAt::End, b"abc", o).ok(), Some(3));
    assert_eq!(e.write_into(&k, 3, WriteAt::End, b"de", o).ok(), Some(5));
    assert_eq!(
        e.write_into(&k, 3, WriteAt::Offset(7), b"z", o).ok(),
        Some(8)
    );
    assert_eq!(
        e.read_column(&k, 3, Range::all()).ok().as_deref(),
        Some(&b"abcde\0\0z"[..])
    );
    let too_far = e.write_at_column(&k, 3, 1 << 30, b"x", o);
    assert!(
        matches!(too_far, Err(Error::TooLarge { .. })),
        "{too_far:?}"
    );
}

/// After each durable append, a power cut keeps the value as acknowledged; with a torn copy
/// of the next (unsynced) patch, the value reads back as before it or whole, never damaged.
#[test]
fn patches_survive_power_cuts_and_torn_tails() {
    let dev = MemDevice::new();
    let c = config(IndexMode::Sorted, false);
    let e = open_mem(&dev, c.clone());
    let k = key(9);
    let durable = WriteOptions::durability(ringblob_engine::Durability::Sync);
    let mut model: Vec<u8> = Vec::new();
    for step in 0..30u64 {
        let chunk = value(9, step, 2000 + (step as usize * 977) % 5000);
        assert!(e.append_column(&k, 0, &chunk, durable).is_ok());
        model.extend_from_slice(&chunk);
        let image = dev.crash_image();
        let back = open_mem(&image, c.clone());
        assert_eq!(
            back.read(&k, Range::all()).ok().as_ref(),
            Some(&model),
            "step {step}: power cut"
        );
        drop(back);
        // The next append not yet synced, cut at every eighth of its length.
        let next = value(9, 1000 + step, 3000);
        assert!(e
            .append_column(&k, 0, &next, WriteOptions::default())
            .is_ok());
        let mut longer = model.clone();
        longer.extend_from_slice(&next);
        for eighth in 0..=8usize {
            let torn = dev.torn_image(|_, len| len * eighth / 8);
            let back = open_mem(&torn, c.clone());
            let got = back.read(&k, Range::all());
            assert!(
                got.as_ref().is_ok_and(|v| *v == model || *v == longer),
                "step {step}, {eighth}/8 of the tail: {:?}",
                got.map(|v| v.len())
            );
        }
        model = longer;
        assert!(e.sync().is_ok());
    }
}
