//! The name index kept by [`NamedBackend`] over a real backend.

use std::sync::Arc;
use std::time::Duration;

use ringblob_engine::{Key, WriteOptions};

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;
use crate::{Backend, Error, MemBackend};

fn named() -> Arc<NamedBackend> {
    let b = NamedBackend::open(Arc::new(MemBackend::open_memory()));
    b.index_stats();
    b
}

fn put(b: &NamedBackend, ns: &str, name: &str) -> Result<Key, Box<dyn std::error::Error>> {
    let rec = NameRecord::new(ns, name.as_bytes().to_vec(), 1);
    let key = rec.key();
    b.write(&key, b"v", WriteOptions::default())?;
    b.write_column(&key, NAME_COLUMN, &rec.encode()?, WriteOptions::default())?;
    Ok(key)
}

fn names(
    b: &NamedBackend,
    ns: &str,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<String>, bool), Error> {
    let q = NameQuery {
        namespace: ns.into(),
        prefix: prefix.as_bytes().to_vec(),
        after: after.map(|a| a.as_bytes().to_vec()),
        limit,
    };
    let page = b.list_names(&NameListing::Names(q))?;
    let names = page
        .entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .collect();
    Ok((names, page.more))
}

#[test]
fn written_names_are_listed_in_order_in_pages() -> TestResult {
    let b = named();
    for n in ["b", "a/2", "a/1", "c"] {
        put(&b, "ns", n)?;
    }
    put(&b, "other", "z")?;
    assert_eq!(
        names(&b, "ns", "", None, 10)?,
        (
            vec!["a/1".into(), "a/2".into(), "b".into(), "c".into()],
            false
        )
    );
    assert_eq!(
        names(&b, "ns", "", None, 2)?,
        (vec!["a/1".into(), "a/2".into()], true)
    );
    assert_eq!(
        names(&b, "ns", "", Some("a/2"), 2)?,
        (vec!["b".into(), "c".into()], false)
    );
    assert_eq!(names(&b, "ns", "a/", None, 10)?.0, ["a/1", "a/2"]);
    let spaces = b.list_names(&NameListing::Namespaces {
        after: None,
        limit: 10,
    })?;
    let spaces: Vec<_> = spaces.entries.iter().map(|e| e.name.clone()).collect();
    assert_eq!(spaces, [b"ns".to_vec(), b"other".to_vec()]);
    Ok(())
}

#[test]
fn removed_and_dropped_names_disappear() -> TestResult {
    let b = named();
    let a = put(&b, "", "a")?;
    let c = put(&b, "", "c")?;
    let d = put(&b, "", "d")?;
    b.remove(&a, WriteOptions::default())?;
    b.remove_column(&c, NAME_COLUMN, WriteOptions::default())?;
    let ts = b.lookup_column(&d, NAME_COLUMN)?.timestamp_ns;
    assert!(b.drop_copy(&d, NAME_COLUMN, ts)?);
    assert_eq!(names(&b, "", "", None, 10)?.0, Vec::<String>::new());
    assert_eq!(b.index_stats().names, 0);
    // A name written again is listed again.
    put(&b, "", "a")?;
    assert_eq!(names(&b, "", "", None, 10)?.0, ["a"]);
    Ok(())
}

#[test]
fn a_stale_entry_is_dropped_when_listed() -> TestResult {
    let inner: Arc<dyn Backend> = Arc::new(MemBackend::open_memory());
    let b = NamedBackend::open(inner.clone());
    let k = put(&b, "", "x")?;
    // Removed behind the index's back (as a race would leave it).
    inner.remove(&k, WriteOptions::default())?;
    assert_eq!(b.index_stats().names, 1);
    assert_eq!(names(&b, "", "", None, 10)?.0, Vec::<String>::new());
    assert_eq!(b.index_stats().names, 0);
    Ok(())
}

#[test]
fn bad_name_records_are_refused_but_copies_stored() -> TestResult {
    let b = named();
    let k = Key::from_name(b"", b"real");
    let other = NameRecord::new("", b"other".to_vec(), 0).encode()?;
    let err = b.write_column(&k, NAME_COLUMN, &other, WriteOptions::default());
    assert!(matches!(err, Err(Error::InvalidInput(_))), "{err:?}");
    let err = b.write_column(&k, NAME_COLUMN, b"junk", WriteOptions::default());
    assert!(matches!(err, Err(Error::InvalidInput(_))), "{err:?}");
    let err = b.append_column(&k, NAME_COLUMN, b"junk", WriteOptions::default());
    assert!(matches!(err, Err(Error::InvalidInput(_))), "{err:?}");
    b.write_column(&k, NAME_COLUMN, b"junk", WriteOptions::copy_if_newer(5))?;
    assert_eq!(names(&b, "", "", None, 10)?.0, Vec::<String>::new());
    Ok(())
}

#[test]
fn the_index_is_rebuilt_from_the_backend() -> TestResult {
    let inner: Arc<dyn Backend> = Arc::new(MemBackend::open_memory());
    {
        let b = NamedBackend::open(inner.clone());
        for i in 0..50 {
            put(&b, "ns", &format!("n{i:02}"))?;
        }
    }
    let again = NamedBackend::open(inner);
    again.index.wait_loaded(Duration::from_secs(10))?;
    assert_eq!(again.index_stats().names, 50);
    assert_eq!(names(&again, "ns", "n4", None, 100)?.0.len(), 10);
    Ok(())
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The README's cost of a name: RAM of the index per name, and disk per name record in
/// the blob backend (record, index entry, sorted index). Names like `photos/2024/IMG_00001.jpg`
/// (25 bytes) in a 6-byte namespace.
/// `cargo test --release -p ringblob-backends --lib cost_per_name -- --ignored --nocapture`
#[test]
#[ignore]
fn cost_per_name() -> TestResult {
    const N: usize = 1_000_000;
    let name = |i: usize| format!("photos/2024/IMG_{i:05}.jpg");
    let ix = NameIndex::default();
    let before = resident_bytes();
    for i in 0..N {
        let n = name(i);
        ix.insert("photos", n.as_bytes());
    }
    let ram = resident_bytes().saturating_sub(before) as f64 / N as f64;
    let dir = tempfile::tempdir()?;
    let b = crate::open_backend(&crate::BackendConfig::default(), dir.path())?;
    let before = dir_bytes(dir.path());
    const ON_DISK: usize = 200_000;
    for i in 0..ON_DISK {
        let rec = NameRecord::new("photos", name(i).into_bytes(), 65536);
        let o = WriteOptions::durability(ringblob_engine::Durability::None);
        b.write_column(&rec.key(), NAME_COLUMN, &rec.encode()?, o)?;
    }
    b.sync()?;
    drop(b);
    let b = crate::open_backend(&crate::BackendConfig::default(), dir.path())?;
    drop(b);
    let disk = (dir_bytes(dir.path()) - before) as f64 / ON_DISK as f64;
    let record = NameRecord::new("photos", name(0).into_bytes(), 65536)
        .encode()?
        .len();
    println!(
        "{{\"names\": {N}, \"ram_bytes_per_name\": {ram:.1}, \"name_bytes\": {}, \"record_bytes\": {record}, \"disk_bytes_per_name\": {disk:.1}}}",
        name(0).len()
    );
    Ok(())
}

/// One damaged name record leaves its name out of the listing, not the node without one.
#[test]
fn a_damaged_name_record_is_left_out_and_the_rest_listed() -> TestResult {
    use std::io::{Read, Seek, SeekFrom, Write};
    let dir = tempfile::tempdir()?;
    let open = || crate::BlobBackend::open(dir.path(), ringblob_engine::Config::default());
    let (blob, offset) = {
        let b = NamedBackend::open(Arc::new(open()?));
        let keys: Vec<Key> = (0..20)
            .map(|i| put(&b, "ns", &format!("n{i:02}")))
            .collect::<Result<_, _>>()?;
        b.sync()?;
        match b.lookup_column(&keys[5], NAME_COLUMN)?.location {
            crate::Location::Blob { blob, offset } => (blob, offset),
            other => return Err(format!("not in a blob: {other}").into()),
        }
    };
    // A byte of the record's header (covered by its CRC) flipped on disk.
    let path = dir.path().join(format!("data-{blob:08}.blob"));
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let mut byte = [0u8; 1];
    f.seek(SeekFrom::Start(offset + 40))?;
    f.read_exact(&mut byte)?;
    f.seek(SeekFrom::Start(offset + 40))?;
    f.write_all(&[byte[0] ^ 0x5a])?;
    drop(f);

    let again = NamedBackend::open(Arc::new(open()?));
    again.index.wait_loaded(Duration::from_secs(10))?;
    let (listed, _) = names(&again, "ns", "", None, 100)?;
    let expected: Vec<String> = (0..20)
        .filter(|i| *i != 5)
        .map(|i| format!("n{i:02}"))
        .collect();
    assert_eq!(listed, expected);
    Ok(())
}
