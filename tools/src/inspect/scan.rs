//! Scanning one blob file: its header, then every record in file order. Each record is
//! checked (header, frame table, frame CRCs; with [`Depth::Value`] also decompression and
//! `value_crc`). After damage the engine's scanner resynchronises on the next valid record
//! header, so one flipped byte costs one record, not the rest of the file.

use anyhow::{Context, Result};
use ringblob_engine::format::blob_header::{BlobHeader, BLOB_HEADER_LEN};
use ringblob_engine::format::record::{RecordHeader, FLAG_COMPRESSED, RECORD_HEADER_LEN};
use ringblob_engine::io::{read_up_to, DeviceFile};
use ringblob_engine::scan::{Check, ScanItem, Scanner};
use ringblob_engine::{Error, Key};

use super::classify::{kind_of, looks_like_record, Site};
use super::prefetch::Prefetched;
use super::problem::{Kind, Problem};
use super::progress::Progress;
use super::rofile::ReadOnlyFile;
use super::source::BlobRef;
use super::value::{Depth, Place, ValueReader};

/// One valid record, as far as the inspector needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub offset: u64,
    /// Bytes on disk: header, frame table and stored frames.
    pub len: u64,
    pub key: Key,
    pub column: u16,
    pub flags: u16,
    pub value_len: u64,
    /// Bytes of stored frames (compressed or not), without the frame table.
    pub stored_value_len: u64,
    pub timestamp_ns: u64,
}

impl Row {
    fn new(offset: u64, h: &RecordHeader) -> Self {
        Row {
            offset,
            len: h.record_len(),
            key: h.key,
            column: h.column,
            flags: h.flags,
            value_len: h.value_len,
            stored_value_len: h.stored_len - h.table_len() as u64,
            timestamp_ns: h.timestamp_ns,
        }
    }

    pub fn is_tombstone(&self) -> bool {
        self.flags & ringblob_engine::format::record::FLAG_TOMBSTONE != 0
    }

    pub fn is_compressed(&self) -> bool {
        self.flags & FLAG_COMPRESSED != 0
    }

    /// A patch record: some frames are kept from earlier records of the blob.
    pub fn is_patch(&self) -> bool {
        self.flags & ringblob_engine::format::record::FLAG_PATCH != 0
    }
}

/// What a scan of one blob file found.
#[derive(Debug, Clone)]
pub struct BlobScan {
    /// File length when the scan started.
    pub len: u64,
    /// The decoded header, if it is intact.
    pub header: Option<BlobHeader>,
    /// The blob id: from the file name, else from the header, else 0.
    pub blob_id: u32,
    /// Valid records in file order.
    pub rows: Vec<Row>,
    /// Damaged regions (`end` set) and header problems, in file order.
    pub damage: Vec<Problem>,
}

impl BlobScan {
    /// The valid record that starts at `offset`.
    pub fn row_at(&self, offset: u64) -> Option<&Row> {
        let i = self.rows.binary_search_by_key(&offset, |r| r.offset).ok()?;
        self.rows.get(i)
    }

    /// True when `offset` falls in a damaged region.
    pub fn damaged_at(&self, offset: u64) -> bool {
        self.damage
            .iter()
            .any(|p| p.end.is_some_and(|end| (p.offset..end).contains(&offset)))
    }

    /// Bytes lost to damaged regions.
    pub fn damaged_bytes(&self) -> u64 {
        self.damage
            .iter()
            .filter_map(|p| p.end.map(|end| end - p.offset))
            .sum()
    }
}

/// A blob file opened for scanning, its read-ahead already running.
pub struct OpenBlob {
    file: Prefetched,
}

/// Opens `blob` and starts reading it, so a scan can start on bytes already in memory.
pub fn open_blob(blob: &BlobRef) -> Result<OpenBlob> {
    let path = &blob.file.path;
    let file = ReadOnlyFile::open(path).with_context(|| format!("open {}", path.display()))?;
    let file = Prefetched::new(file, 0).with_context(|| format!("read {}", path.display()))?;
    Ok(OpenBlob { file })
}

/// Scans `blob`. `Err` only for IO errors; damage is reported in the result.
pub fn scan_blob(blob: &BlobRef, depth: Depth, progress: &Progress, base: u64) -> Result<BlobScan> {
    scan_open(blob, open_blob(blob), depth, progress, base, &mut || {})
}

/// Scans `blob`, opened with [`open_blob`] (an error there is this scan's error).
/// `read_all` is called once the whole file has been read from disk, while the last
/// records may still be being checked: the moment to start reading the next file.
pub fn scan_open(
    blob: &BlobRef,
    open: Result<OpenBlob>,
    depth: Depth,
    progress: &Progress,
    base: u64,
    read_all: &mut dyn FnMut(),
) -> Result<BlobScan> {
    let path = &blob.file.path;
    // One sequential reader thread feeds the header check, the scanner and the value
    // checks, so the disk streams while records are checked, in place in its blocks.
    let file = open?.file;
    let len = file
        .len()
        .with_context(|| format!("stat {}", path.display()))?;
    let mut scan = BlobScan {
        len,
        header: None,
        blob_id: blob.id.unwrap_or(0),
        rows: Vec::new(),
        damage: Vec::new(),
    };
    if !check_header(&file, blob, &mut scan)? {
        return Ok(scan);
    }
    let name = blob.file.name.as_str();
    let blob_id = scan.blob_id;
    let start = BLOB_HEADER_LEN as u64;
    let end = len.max(start);
    let mut reader = ValueReader::new();
    let mut pos = start;
    let mut told = false;
    while pos < end {
        if !told && file.read_all() {
            told = true;
            read_all();
        }
        // A valid record header here is exactly what the engine's scanner (checking
        // headers) would accept; everything else goes to the scanner itself, which reports
        // the damage and resynchronises, so damage is judged by the engine's rules.
        let header = header_at(&file, blob_id, pos, end)
            .with_context(|| format!("scan {}", path.display()))?;
        let item = match header {
            Some(header) => ScanItem::Record {
                offset: pos,
                header,
            },
            None => {
                let mut scanner = Scanner::new(&file, blob_id, pos, end, Check::Headers);
                let Some(item) = scanner.next() else { break };
                let item = item.with_context(|| format!("scan {}", path.display()))?;
                pos = scanner.position();
                item
            }
        };
        match item {
            ScanItem::Record { offset, header } => {
                progress.set(base + offset);
                pos = pos.max(offset + header.record_len());
                let at = Place {
                    file: &file,
                    name,
                    blob: blob_id,
                    offset,
                };
                match check_record(&file, &mut reader, at, &header, depth) {
                    Ok(()) => scan.rows.push(Row::new(offset, &header)),
                    Err(e) if e.is_corruption() => {
                        scan.damage.push(bad_record(name, offset, &header, &e));
                    }
                    Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
                }
            }
            ScanItem::Damaged {
                offset,
                error,
                next,
                header,
            } => {
                let at = (offset, next, len);
                let p = damaged_region(&file, name, at, &error, header)?;
                scan.damage.push(p);
            }
        }
    }
    Ok(scan)
}

/// The record header at `pos` if it is valid and its record ends by `end` (the engine
/// scanner's test for a record when it checks headers); `None` for anything else,
/// including bytes the read-ahead cannot serve.
fn header_at(file: &Prefetched, blob: u32, pos: u64, end: u64) -> Result<Option<RecordHeader>> {
    if pos + RECORD_HEADER_LEN as u64 > end {
        return Ok(None);
    }
    let decoded = file.with_bytes(pos, RECORD_HEADER_LEN, |b| {
        RecordHeader::decode(b, blob, pos).ok()
    })?;
    Ok(decoded
        .flatten()
        .filter(|h| pos.checked_add(h.record_len()).is_some_and(|e| e <= end)))
}

/// Records up to this long are checked in place in the read-ahead blocks; longer ones are
/// read frame group by frame group, so memory stays bounded.
const IN_PLACE: u64 = 16 << 20;

/// Checks record `h` at `at`: frames and, with [`Depth::Value`], the value.
fn check_record(
    file: &Prefetched,
    reader: &mut ValueReader,
    at: Place<'_>,
    h: &RecordHeader,
    depth: Depth,
) -> ringblob_engine::Result<()> {
    let n = h.record_len();
    // A patch record's kept frames are read from the file, outside the prefetch window's
    // borrow (which holds its lock).
    if n <= IN_PLACE && !h.is_patch() {
        let checked = file
            .with_bytes(at.offset, n as usize, |rec| {
                reader.check_bytes(at, h, rec, depth, &mut |_| Ok(()))
            })
            .map_err(|e| Error::io("read", at.name, e))?;
        if let Some(r) = checked {
            return r;
        }
    }
    reader.check(at, h, depth, &mut |_| Ok(()))
}

/// Checks the blob header; false when the rest of the file cannot be interpreted (a newer
/// format version). A damaged header is reported and the records are scanned anyway.
fn check_header(file: &dyn DeviceFile, blob: &BlobRef, scan: &mut BlobScan) -> Result<bool> {
    let name = blob.file.name.as_str();
    let mut head = [0u8; BLOB_HEADER_LEN];
    let n = read_up_to(file, &mut head, 0).with_context(|| format!("read {name}"))?;
    match BlobHeader::decode(head.get(..n).unwrap_or(&[]), name) {
        Ok(h) => {
            scan.header = Some(h);
            match blob.id {
                Some(id) if id != h.blob_id => scan.damage.push(Problem::new(
                    Kind::BadBlobHeader,
                    name,
                    0,
                    format!(
                        "header names blob {} but the file name says {id}",
                        h.blob_id
                    ),
                )),
                Some(_) => {}
                None => scan.blob_id = h.blob_id,
            }
            Ok(true)
        }
        Err(e @ Error::UnsupportedVersion { .. }) => {
            scan.damage.push(Problem::new(
                Kind::UnsupportedVersion,
                name,
                8,
                e.to_string(),
            ));
            Ok(false)
        }
        Err(e) => {
            let p = Problem::new(Kind::BadBlobHeader, name, 0, e.to_string());
            scan.damage.push(p);
            Ok(true)
        }
    }
}

/// A record whose header is valid but whose frames or value are not.
fn bad_record(name: &str, offset: u64, h: &RecordHeader, e: &Error) -> Problem {
    let site = Site {
        at_tail: false,
        looks_like_record: true,
    };
    Problem::new(kind_of(e, site), name, offset, e.to_string())
        .with_end(offset + h.record_len())
        .with_key(Some(h.key))
}

/// Bytes at `offset` that are not a valid record; `next` is the next valid record, if any.
fn damaged_region(
    file: &dyn DeviceFile,
    name: &str,
    (offset, next, len): (u64, Option<u64>, u64),
    error: &Error,
    header: Option<RecordHeader>,
) -> Result<Problem> {
    let mut head = [0u8; RECORD_HEADER_LEN];
    let n = read_up_to(file, &mut head, offset).with_context(|| format!("read {name}"))?;
    let head = head.get(..n).unwrap_or(&[]);
    // The scanner's header: intact, or the one a single flipped bit damaged.
    let key = header.map(|h| h.key);
    let site = Site {
        at_tail: next.is_none(),
        looks_like_record: looks_like_record(head),
    };
    Ok(
        Problem::new(kind_of(error, site), name, offset, error.to_string())
            .with_end(next.unwrap_or(len))
            .with_key(key),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::source::FileRef;
    use ringblob_engine::{Config, Durability, Engine, WriteOptions};

    /// The scan as it was before in-place checking: the engine's scanner over the plain
    /// file, every value read through `pread`.
    fn reference(blob: &BlobRef, depth: Depth) -> Result<BlobScan> {
        let file = ReadOnlyFile::open(&blob.file.path)?;
        let len = file.len()?;
        let mut scan = BlobScan {
            len,
            header: None,
            blob_id: blob.id.unwrap_or(0),
            rows: Vec::new(),
            damage: Vec::new(),
        };
        check_header(&file, blob, &mut scan)?;
        let name = blob.file.name.as_str();
        let start = BLOB_HEADER_LEN as u64;
        let mut reader = ValueReader::new();
        for item in Scanner::new(&file, scan.blob_id, start, len.max(start), Check::Headers) {
            match item? {
                ScanItem::Record { offset, header } => {
                    let at = Place {
                        file: &file,
                        name,
                        blob: scan.blob_id,
                        offset,
                    };
                    match reader.check(at, &header, depth, &mut |_| Ok(())) {
                        Ok(()) => scan.rows.push(Row::new(offset, &header)),
                        Err(e) => scan.damage.push(bad_record(name, offset, &header, &e)),
                    }
                }
                ScanItem::Damaged {
                    offset,
                    error,
                    next,
                    header,
                } => {
                    let at = (offset, next, len);
                    let p = damaged_region(&file, name, at, &error, header)?;
                    scan.damage.push(p);
                }
            }
        }
        Ok(scan)
    }

    fn assert_same(blob: &BlobRef, what: &str) -> Result<BlobScan> {
        for depth in [Depth::Frames, Depth::Value] {
            let want = reference(blob, depth)?;
            let got = scan_blob(blob, depth, &Progress::hidden(), 0)?;
            assert_eq!(got.len, want.len, "{what}");
            assert_eq!(got.header, want.header, "{what}");
            assert_eq!(got.rows, want.rows, "{what}");
            assert_eq!(got.damage, want.damage, "{what}");
        }
        reference(blob, Depth::Value)
    }

    /// Values of 50..150 KiB, a third compressible, in a blob of several read-ahead blocks.
    fn write_blob(dir: &std::path::Path) -> Result<BlobRef> {
        let config = Config {
            max_blob_size: 1 << 30,
            durability: Durability::None,
            ..Config::default()
        };
        let engine = Engine::open(dir, config)?;
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for i in 0..300u32 {
            let n = 50_000 + (i as usize * 7919) % 100_000;
            let compress = i % 3 == 0;
            let v: Vec<u8> = (0..n)
                .map(|k| {
                    if compress {
                        (k / 100) as u8
                    } else {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    }
                })
                .collect();
            let key = Key::from_name(b"t", format!("{i}").as_bytes());
            let opts = WriteOptions {
                compress: Some(compress),
                ..WriteOptions::default()
            };
            engine.write(&key, &v, opts)?;
        }
        engine.close()?;
        let name = "data-00000001.blob".to_string();
        Ok(BlobRef {
            id: Some(1),
            file: FileRef {
                path: dir.join(&name),
                name,
            },
            index: None,
            sorted: None,
        })
    }

    #[test]
    fn in_place_scan_matches_the_engine_scanner_across_blocks() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let blob = write_blob(dir.path())?;
        let pristine = std::fs::read(&blob.file.path)?;
        let clean = assert_same(&blob, "pristine")?;
        assert!(clean.damage.is_empty());
        assert!(pristine.len() > 2 * (8 << 20), "spans several blocks");
        // Records that straddle the first two block boundaries.
        let straddling: Vec<Row> = [8u64 << 20, 16 << 20]
            .iter()
            .filter_map(|&b| {
                let row = clean
                    .rows
                    .iter()
                    .find(|r| r.offset < b && r.offset + r.len > b);
                row.copied()
            })
            .collect();
        assert_eq!(straddling.len(), 2);
        type Damage<'a> = Box<dyn Fn(&mut Vec<u8>) + 'a>;
        let cases: Vec<(&str, Damage<'_>)> = vec![
            (
                "header byte",
                Box::new(|b: &mut Vec<u8>| b[straddling[0].offset as usize + 9] ^= 0x10),
            ),
            (
                "value byte",
                Box::new(|b: &mut Vec<u8>| {
                    let r = straddling[1];
                    b[(r.offset + r.len - 5) as usize] ^= 0x01;
                }),
            ),
            (
                "zeroed page on a block boundary",
                Box::new(|b: &mut Vec<u8>| b[(8 << 20) - 2048..(8 << 20) + 2048].fill(0)),
            ),
            (
                "torn tail",
                Box::new(|b: &mut Vec<u8>| {
                    let r = clean.rows[clean.rows.len() - 2];
                    b.truncate((r.offset + 100) as usize);
                }),
            ),
            (
                "garbage after the last record",
                Box::new(|b: &mut Vec<u8>| b.extend((0..20_000u32).map(|i| (i * 7) as u8))),
            ),
        ];
        for (what, damage) in cases {
            let mut bytes = pristine.clone();
            damage(&mut bytes);
            std::fs::write(&blob.file.path, &bytes)?;
            let scan = assert_same(&blob, what)?;
            assert!(!scan.damage.is_empty(), "{what} is noticed");
        }
        Ok(())
    }
}
