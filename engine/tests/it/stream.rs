//! Streamed writes: a value read from a source as it is written, never held whole; a failing
//! source or a crash mid-way leaves nothing visible and nothing recovery would misread.

use std::io::Read;

use ringblob_engine::blob::blob_name;
use ringblob_engine::format::frames::{RecordEncoder, RecordSpec};
use ringblob_engine::io::MemDevice;
use ringblob_engine::{Config, Error, IndexMode, Key, WriteOptions};

use crate::support::{key, open_mem, read_all, small_config, value};

fn config(index: IndexMode) -> Config {
    Config {
        max_blob_size: 64 << 20,
        index,
        ..small_config()
    }
}

/// A source that fails after `ok` bytes.
struct Failing<'a> {
    data: &'a [u8],
    ok: usize,
}

impl Read for Failing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.ok == 0 {
            return Err(std::io::Error::other("source broke"));
        }
        let n = buf.len().min(self.ok).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.ok -= n;
        Ok(n)
    }
}

#[test]
fn a_streamed_value_reads_back_and_survives_reopen_in_both_modes() {
    for mode in [IndexMode::Sorted, IndexMode::Memory] {
        let dev = MemDevice::new();
        let e = open_mem(&dev, config(mode));
        let v = value(1, 0, 300_000);
        let r = e.write_stream(
            &key(1),
            2,
            v.len() as u64,
            &mut &v[..],
            WriteOptions::default(),
        );
        assert!(r.is_ok(), "{r:?}");
        assert!(e.write(&key(2), b"after", WriteOptions::default()).is_ok());
        let got = e.read_column(&key(1), 2, ringblob_engine::Range::all());
        assert!(
            got.ok() == Some(v.clone()),
            "{mode:?}: streamed value reads back"
        );
        let meta = e.lookup_column(&key(1), 2).map(|m| (m.size, m.checksum));
        assert_eq!(meta.ok(), Some((v.len() as u64, crc32fast::hash(&v))));
        drop(e);
        let e = open_mem(&dev, config(mode));
        let got = e.read_column(&key(1), 2, ringblob_engine::Range::new(1000, 5000));
        assert!(
            got.ok().as_deref() == Some(&v[1000..6000]),
            "{mode:?}: after reopen"
        );
        assert_eq!(read_all(&e, &key(2)).ok().as_deref(), Some(&b"after"[..]));
    }
}

#[test]
fn a_failing_source_leaves_nothing_and_writing_goes_on() {
    let dev = MemDevice::new();
    let e = open_mem(&dev, config(IndexMode::Sorted));
    assert!(e.write(&key(1), b"before", WriteOptions::default()).is_ok());
    let v = value(3, 0, 100_000);
    let mut src = Failing {
        data: &v,
        ok: 50_000,
    };
    let r = e.write_stream(
        &key(3),
        0,
        v.len() as u64,
        &mut src,
        WriteOptions::default(),
    );
    assert!(matches!(r, Err(Error::Io { .. })), "{r:?}");
    assert!(matches!(read_all(&e, &key(3)), Err(Error::NotFound(_))));
    // A source that ends early fails the same way.
    let r = e.write_stream(&key(3), 0, 10, &mut &b"short"[..], WriteOptions::default());
    assert!(r.is_err());
    assert!(e.write(&key(2), b"after", WriteOptions::default()).is_ok());
    assert!(e.sync().is_ok());
    drop(e);
    let e = open_mem(&dev, config(IndexMode::Sorted));
    assert_eq!(read_all(&e, &key(1)).ok().as_deref(), Some(&b"before"[..]));
    assert_eq!(read_all(&e, &key(2)).ok().as_deref(), Some(&b"after"[..]));
    assert!(matches!(read_all(&e, &key(3)), Err(Error::NotFound(_))));
}

/// The streamed value holds bytes that are themselves a valid record of another key. Cut the
/// blob anywhere inside the streamed record (a crash mid-write): recovery must drop the torn
/// record as a unit and never find the record hidden inside its value.
#[test]
fn a_crash_mid_stream_never_resurrects_records_hidden_in_the_value() {
    let fake_key = Key::from_name(b"test", b"smuggled");
    let spec = RecordSpec {
        key: fake_key,
        column: 0,
        flags: 0,
        timestamp_ns: 1,
        frame_len: 4096,
        compress: false,
    };
    let mut fake = Vec::new();
    assert!(RecordEncoder::new()
        .encode(spec, b"not really stored", &mut fake)
        .is_ok());
    let mut v = value(5, 0, 20_000);
    v.extend_from_slice(&fake);
    v.extend(value(6, 0, 20_000));

    let dev = MemDevice::new();
    let e = open_mem(&dev, config(IndexMode::Sorted));
    assert!(e.write(&key(1), b"before", WriteOptions::default()).is_ok());
    assert!(e.sync().is_ok());
    let start = dev.file_bytes(&blob_name(1)).map_or(0, |b| b.len());
    assert!(e
        .write_stream(
            &key(5),
            0,
            v.len() as u64,
            &mut &v[..],
            WriteOptions::default()
        )
        .is_ok());
    assert!(e.sync().is_ok());
    let whole = dev.file_bytes(&blob_name(1)).unwrap_or_default();
    drop(e);
    for cut in [
        start + 10,
        start + 88,
        start + 200,
        start + 20_100,
        start + 20_300,
        whole.len() - 1,
    ] {
        let crashed = MemDevice::new();
        crashed.put_file(&blob_name(1), whole[..cut].to_vec());
        let e = open_mem(&crashed, config(IndexMode::Sorted));
        assert_eq!(
            read_all(&e, &key(1)).ok().as_deref(),
            Some(&b"before"[..]),
            "cut {cut}"
        );
        assert!(
            matches!(read_all(&e, &key(5)), Err(Error::NotFound(_))),
            "cut {cut}"
        );
        assert!(
            matches!(read_all(&e, &fake_key), Err(Error::NotFound(_))),
            "cut {cut}: smuggled record"
        );
    }
}

/// A source that copies the blob file's bytes as they are when it has handed out each of
/// `at` bytes: what a crash at that moment leaves (writes not yet synced included).
struct Snapshotting<'a> {
    data: &'a [u8],
    given: usize,
    at: Vec<usize>,
    dev: MemDevice,
    images: Vec<Vec<u8>>,
}

impl Read for Snapshotting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at.first().is_some_and(|&a| self.given >= a) {
            self.at.remove(0);
            self.images
                .push(self.dev.file_bytes(&blob_name(1)).unwrap_or_default());
        }
        let n = buf.len().min(self.data.len()).min(4096);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.given += n;
        Ok(n)
    }
}

#[test]
fn the_file_as_it_is_during_a_stream_opens_without_the_streamed_value() {
    let dev = MemDevice::new();
    let e = open_mem(&dev, config(IndexMode::Sorted));
    assert!(e.write(&key(1), b"before", WriteOptions::default()).is_ok());
    let v = value(7, 0, 64 * 4096);
    let mut src = Snapshotting {
        data: &v,
        given: 0,
        at: vec![0, 4096, 30 * 4096, 63 * 4096],
        dev: dev.clone(),
        images: Vec::new(),
    };
    assert!(e
        .write_stream(
            &key(7),
            0,
            v.len() as u64,
            &mut src,
            WriteOptions::default()
        )
        .is_ok());
    assert_eq!(src.images.len(), 4);
    for (i, image) in src.images.iter().enumerate() {
        let crashed = MemDevice::new();
        crashed.put_file(&blob_name(1), image.clone());
        let e = open_mem(&crashed, config(IndexMode::Sorted));
        assert_eq!(
            read_all(&e, &key(1)).ok().as_deref(),
            Some(&b"before"[..]),
            "image {i}"
        );
        assert!(
            matches!(read_all(&e, &key(7)), Err(Error::NotFound(_))),
            "image {i}"
        );
        assert!(
            e.write(&key(8), b"next", WriteOptions::default()).is_ok(),
            "image {i}"
        );
    }
}
