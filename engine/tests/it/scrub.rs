//! Scrubbing finds bit rot in sealed blobs before any read does: the damaged record is
//! counted and known (never served, no longer listed), and a copy with its timestamp (what
//! repair from another group sends) heals it.

use ringblob_engine::io::MemDevice;
use ringblob_engine::{Engine, Error, WriteOptions};

use crate::support::{key, open_mem, read_all, small_config, value};

fn flip(dev: &MemDevice, name: &str, at: usize) {
    let mut bytes = dev.file_bytes(name).unwrap_or_default();
    bytes[at] ^= 0x10;
    dev.put_file(name, bytes);
}

fn listed(e: &Engine) -> Vec<u64> {
    let mut out = Vec::new();
    for m in e.iterate().flatten() {
        if let Some(i) = (0..20).find(|i| key(*i) == m.key) {
            out.push(i);
        }
    }
    out.sort_unstable();
    out
}

#[test]
fn scrub_finds_a_flipped_byte_and_a_copy_heals_it() {
    let dev = MemDevice::new();
    let e = open_mem(&dev, small_config());
    for i in 0..20u64 {
        assert!(e
            .write(&key(i), &value(i, 0, 2000), WriteOptions::default())
            .is_ok());
    }
    assert!(e.rotate().is_ok());
    let m = e.lookup(&key(7)).unwrap_or_else(|err| panic!("{err}"));
    drop(e);
    // A bit flips inside key 7's value, on disk, while the node is down.
    let blob = ringblob_engine::blob::blob_name(m.blob);
    flip(&dev, &blob, m.offset as usize + 200);
    let e = open_mem(&dev, small_config());
    assert_eq!(listed(&e).len(), 20, "nothing read key 7 yet");
    let s = e.scrub().unwrap_or_else(|err| panic!("{err}"));
    assert_eq!((s.passes, s.damaged_found), (1, 1), "{s:?}");
    assert!(s.records_checked >= 20);
    let stats = e.stats();
    assert_eq!(stats.damaged_records_known, 1);
    assert_eq!(stats.damaged_by_blob.get(&m.blob), Some(&1));
    // Never served, no longer listed (so a group with a good copy sees it missing here).
    assert!(read_all(&e, &key(7)).is_err_and(|err| err.is_corruption()));
    assert_eq!(e.stats().checksum_failures, 1);
    assert!(!listed(&e).contains(&7));
    // A second pass finds nothing new.
    let again = e.scrub().unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(again.damaged_found, 1);
    // The copy repair sends (same timestamp) replaces it.
    let copy = e.write(
        &key(7),
        &value(7, 0, 2000),
        WriteOptions::copy_if_newer(m.timestamp_ns),
    );
    assert!(copy.is_ok(), "{copy:?}");
    assert_eq!(read_all(&e, &key(7)).ok(), Some(value(7, 0, 2000)));
    assert!(listed(&e).contains(&7));
    let stale = e.write(&key(7), b"x", WriteOptions::copy_if_newer(m.timestamp_ns));
    assert!(
        matches!(stale, Err(Error::NotNewer { .. })),
        "healed once only"
    );
}
