//! Every on-disk decoder on arbitrary bytes: corrupt input must be an `Err`, never a panic.
//! Each decoder also gets a copy with magic and checksums made valid, so the fuzzer reaches
//! the field checks behind them instead of stopping at a CRC. Then a round trip: a record encoded from fuzz-derived bytes decodes back to the value,
//! and any single damaged byte is caught by a checksum.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringblob_engine::format::blob_header::{BlobHeader, BLOB_MAGIC};
use ringblob_engine::format::crc32;
use ringblob_engine::format::frames::{
    extract_range, frames_for_range, RecordEncoder, RecordPlace, RecordSpec,
};
use ringblob_engine::format::index_file::{IndexFile, INDEX_HEADER_LEN, INDEX_MAGIC};
use ringblob_engine::format::record::{
    FrameTable, RecordHeader, FRAME_COMPRESSED_BIT, FRAME_ENTRY_LEN, RECORD_HEADER_LEN,
    RECORD_MAGIC,
};
use ringblob_engine::Key;

/// Round-trip values are at most this long (several 4 KiB frames).
const MAX_VALUE: usize = 40_000;

fuzz_target!(|data: &[u8]| {
    let _ = IndexFile::decode(data, "fuzz");
    let _ = BlobHeader::decode(data, "fuzz");
    decode_record(data, tail_range(data));
    if data.len() >= RECORD_HEADER_LEN {
        decode_record(&sealed_record(data), tail_range(data));
    }
    if data.len() >= INDEX_HEADER_LEN {
        let _ = IndexFile::decode(&sealed_index(data), "fuzz");
        let _ = BlobHeader::decode(&sealed_blob_header(data), "fuzz");
    }
    round_trip(data);
});

/// Two numbers from the last 16 bytes, used to pick a range inside the value.
fn tail_range(data: &[u8]) -> (u64, u64) {
    if data.len() < RECORD_HEADER_LEN + 16 {
        return (0, u64::MAX);
    }
    let t = &data[data.len() - 16..];
    (le_u64(&t[..8]), le_u64(&t[8..]))
}

/// Decodes `rec` as one record and extracts the whole value and the range `pick` selects.
/// Returns the whole value if every step succeeded.
fn decode_record(rec: &[u8], pick: (u64, u64)) -> Option<Vec<u8>> {
    let h = RecordHeader::decode(rec, 0, 0).ok()?;
    let table = FrameTable::decode(&h, &rec[RECORD_HEADER_LEN..], 0, 0).ok()?;
    let frames = rec.get(RECORD_HEADER_LEN + h.table_len()..).unwrap_or(&[]);
    if h.value_len > 0 {
        let (off, len) = inside(h.value_len, pick);
        if let Some(part) = extract(&h, &table, frames, off, len) {
            assert_eq!(
                part.len() as u64,
                len,
                "extract_range returned the wrong length"
            );
        }
    }
    let all = extract(&h, &table, frames, 0, h.value_len)?;
    assert_eq!(
        all.len() as u64,
        h.value_len,
        "extract_range returned the wrong length"
    );
    Some(all)
}

/// A non-empty range of a value of `value_len > 0` bytes.
fn inside(value_len: u64, (a, b): (u64, u64)) -> (u64, u64) {
    let off = a % value_len;
    (off, 1 + b % (value_len - off))
}

/// Logical bytes `off..off+len` of the record, the way the engine's read path asks for them:
/// `area` starts at the stored offset of the first frame the range touches.
fn extract(
    h: &RecordHeader,
    table: &FrameTable,
    frames: &[u8],
    off: u64,
    len: u64,
) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    if len == 0 {
        return Some(out);
    }
    let (first, _) = frames_for_range(h, off, len);
    let base = table
        .frames
        .get(first as usize)
        .map_or(0, |f| f.stored_offset as usize);
    let area = frames.get(base..).unwrap_or(&[]);
    let place = RecordPlace { blob: 0, offset: 0 };
    extract_range(h, table, first, area, (off, len), place, &mut out).ok()?;
    Some(out)
}

/// Input layout: `[mode][len u16][key][column][time][damage at u16][damage xor u32]
/// [range a u32][range b u32]`, then the pattern the value repeats. Mode bit 0: compress;
/// bit 1: xor up to four bytes at `at`; bit 2: then make every checksum valid again.
fn round_trip(data: &[u8]) {
    let Some((p, pattern)) = data.split_first_chunk::<20>() else {
        return;
    };
    let mode = p[0];
    let want = usize::from(u16::from_le_bytes([p[1], p[2]])) % (MAX_VALUE + 1);
    let value: Vec<u8> = if pattern.is_empty() {
        vec![0; want]
    } else {
        pattern.iter().copied().cycle().take(want).collect()
    };
    let spec = RecordSpec {
        key: Key([p[3]; 32]),
        column: u16::from(p[4]),
        flags: 0,
        timestamp_ns: u64::from(p[5]),
        frame_len: 4096,
        compress: mode & 1 != 0,
    };
    let mut rec = Vec::new();
    let h = RecordEncoder::new()
        .encode(spec, &value, &mut rec)
        .expect("encoding a value under the size limit");
    let pick = (u64::from(le_u32(&p[12..16])), u64::from(le_u32(&p[16..20])));
    let back = decode_record(&rec, pick);
    assert_eq!(
        back.as_deref(),
        Some(&value[..]),
        "round trip lost the value"
    );
    assert_eq!(RecordHeader::decode(&rec, 0, 0).ok(), Some(h));
    if !value.is_empty() {
        let (off, len) = inside(value.len() as u64, pick);
        let table = FrameTable::decode(&h, &rec[RECORD_HEADER_LEN..], 0, 0)
            .expect("table of a fresh record");
        let frames = &rec[RECORD_HEADER_LEN + h.table_len()..];
        let part = extract(&h, &table, frames, off, len);
        let (off, len) = (off as usize, len as usize);
        assert_eq!(
            part.as_deref(),
            Some(&value[off..off + len]),
            "range read differs"
        );
    }

    let at = usize::from(u16::from_le_bytes([p[6], p[7]])) % rec.len();
    let xor = &p[8..12][..4.min(rec.len() - at)];
    if mode & 2 != 0 && xor.iter().any(|&x| x != 0) {
        for (r, x) in rec[at..].iter_mut().zip(xor) {
            *r ^= x;
        }
        if mode & 4 != 0 {
            // A well-formed record with one field or frame changed: reaches the structural
            // checks and the Snappy decoder with data every CRC vouches for.
            decode_record(&sealed_record(&rec), pick);
        } else {
            // CRC-32 catches every burst of up to 32 bits, and the full read touches every
            // frame, so the damage must be reported.
            let damaged = decode_record(&rec, pick);
            assert_eq!(damaged, None, "damage at byte {at} went unnoticed");
        }
    }
}

/// `data` as a record with the right magic and every CRC it covers made valid: the frame CRCs
/// (as far as the frames lie inside `data`), then the table CRC, then the header CRC.
fn sealed_record(data: &[u8]) -> Vec<u8> {
    let mut b = data.to_vec();
    b[0..4].copy_from_slice(&RECORD_MAGIC.to_le_bytes());
    let count = le_u32(&b[68..72]) as usize;
    let table_end = count
        .checked_mul(FRAME_ENTRY_LEN)
        .map(|t| RECORD_HEADER_LEN + t)
        .filter(|&end| end <= b.len());
    if let Some(table_end) = table_end {
        let mut at = table_end;
        for e in (RECORD_HEADER_LEN..table_end).step_by(FRAME_ENTRY_LEN) {
            let len = (le_u32(&b[e..e + 4]) & !FRAME_COMPRESSED_BIT) as usize;
            if let Some(stored) = b.get(at..at.saturating_add(len)) {
                let crc = crc32(stored);
                b[e + 4..e + 8].copy_from_slice(&crc.to_le_bytes());
            }
            at = at.saturating_add(len);
        }
        let crc = crc32(&b[RECORD_HEADER_LEN..table_end]);
        b[76..80].copy_from_slice(&crc.to_le_bytes());
    }
    let crc = crc32(&b[0..84]);
    b[84..88].copy_from_slice(&crc.to_le_bytes());
    b
}

/// `data` as an index file with the right magic and both CRCs valid.
fn sealed_index(data: &[u8]) -> Vec<u8> {
    let mut b = data.to_vec();
    b[0..8].copy_from_slice(&INDEX_MAGIC);
    let crc = crc32(&b[INDEX_HEADER_LEN..]);
    b[32..36].copy_from_slice(&crc.to_le_bytes());
    let crc = crc32(&b[0..36]);
    b[36..40].copy_from_slice(&crc.to_le_bytes());
    b
}

/// `data` as a blob header with the right magic and CRC.
fn sealed_blob_header(data: &[u8]) -> Vec<u8> {
    let mut b = data.to_vec();
    b[0..8].copy_from_slice(&BLOB_MAGIC);
    let crc = crc32(&b[0..28]);
    b[28..32].copy_from_slice(&crc.to_le_bytes());
    b
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_le_bytes(a)
}
