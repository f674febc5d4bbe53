//! Every on-disk decoder on arbitrary bytes: corrupt input must be an `Err`, never a panic.
//! Each decoder also gets a copy with magic and checksums made valid, so the fuzzer reaches
//! the field checks behind them instead of stopping at a CRC. Then round trips: a record
//! encoded from fuzz-derived bytes decodes back to the value, and any single damaged byte is
//! caught by a checksum; a patch record (§6.7) of it, written after it in a blob, reads back
//! as the patched value, and so does its whole copy (`unpatched`). Arbitrary bytes are also
//! read as a blob holding a record at a fuzz-chosen offset, so kept frames point into it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringblob_engine::format::blob_header::{BlobHeader, BLOB_MAGIC};
use ringblob_engine::format::crc32;
use ringblob_engine::format::crc_algebra;
use ringblob_engine::format::frames::{
    extract_range, frames_for_range, unpatched, KeptFrame, RecordEncoder, RecordPlace, RecordSpec,
};
use ringblob_engine::format::index_file::{IndexFile, INDEX_HEADER_LEN, INDEX_MAGIC};
use ringblob_engine::format::record::{
    FrameTable, RecordHeader, FLAG_PATCH, FRAME_COMPRESSED_BIT, FRAME_ENTRY_LEN, PATCH_ENTRY_LEN,
    RECORD_HEADER_LEN, RECORD_MAGIC,
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
    in_blob(data);
    patch_round_trip(data);
});

/// `data` as a blob whose record starts at the offset its first two bytes pick (at least
/// 32), decoded and read whole there, plain and with its checksums made valid.
fn in_blob(data: &[u8]) {
    let Some((pick, _)) = data.split_first_chunk::<2>() else {
        return;
    };
    let at = 32 + usize::from(u16::from_le_bytes(*pick)) % data.len().max(1);
    if at + RECORD_HEADER_LEN > data.len() {
        return;
    }
    let _ = read_in_blob(data, at as u64);
    let mut sealed = data.to_vec();
    let rec = sealed_record_in(&data[at..], data, at as u64);
    sealed[at..].copy_from_slice(&rec);
    let _ = read_in_blob(&sealed, at as u64);
}

/// The whole value of the record at `at` of `blob`, read frame by frame as the engine reads
/// a patch record (kept frames from where they are in the blob).
fn read_in_blob(blob: &[u8], at: u64) -> Option<Vec<u8>> {
    let rec = &blob[at as usize..];
    let h = RecordHeader::decode(rec, 0, at).ok()?;
    let table = FrameTable::decode(&h, &rec[RECORD_HEADER_LEN..], 0, at).ok()?;
    let place = RecordPlace {
        blob: 0,
        offset: at,
    };
    let mut out = Vec::new();
    let fl = u64::from(h.frame_len);
    for (i, e) in table.frames.iter().enumerate() {
        let from = e.file_offset(&h, at) as usize;
        let stored = blob.get(from..from + e.stored_len as usize)?;
        let start = i as u64 * fl;
        let len = (h.value_len - start).min(fl);
        extract_range(&h, &table, i as u32, stored, (start, len), place, &mut out).ok()?;
    }
    (crc32(&out) == h.value_crc).then_some(out)
}

/// Input layout as for [`round_trip`]; the patch writes the value's first bytes (up to 9000)
/// at the offset `[at u16] * 7` of it.
fn patch_round_trip(data: &[u8]) {
    let Some((p, pattern)) = data.split_first_chunk::<20>() else {
        return;
    };
    let mode = p[0];
    let base_len = usize::from(u16::from_le_bytes([p[1], p[2]])) % (MAX_VALUE + 1);
    let base: Vec<u8> = pattern.iter().copied().cycle().take(base_len).collect();
    let write: Vec<u8> = pattern
        .iter()
        .rev()
        .copied()
        .cycle()
        .take(9000.min(base_len))
        .collect();
    let offset = usize::from(u16::from_le_bytes([p[6], p[7]])) * 7;
    let spec = RecordSpec {
        key: Key([p[3]; 32]),
        column: 0,
        flags: 0,
        timestamp_ns: 1,
        frame_len: 4096,
        compress: mode & 1 != 0,
    };
    let mut blob = vec![0u8; 32];
    let h = RecordEncoder::new()
        .encode(spec, &base, &mut blob)
        .expect("encoding a value under the size limit");
    let Some(patch) = patch_of(&blob, &h, (offset, &write), spec) else {
        return;
    };
    let patch_at = blob.len() as u64;
    blob.extend_from_slice(&patch.1);
    let back = read_in_blob(&blob, patch_at);
    assert_eq!(back.as_deref(), Some(&patch.0[..]), "patch lost the value");
    let ph = RecordHeader::decode(&patch.1, 0, patch_at).expect("a fresh patch decodes");
    let fetch = |at: u64, len: u32| Ok(blob[at as usize..at as usize + len as usize].to_vec());
    let whole = unpatched(&ph, &patch.1, (0, patch_at), fetch).expect("a fresh patch unpatches");
    assert_eq!(
        decode_record(&whole, (0, 0)).as_deref(),
        Some(&patch.0[..]),
        "the whole copy of a patch lost the value"
    );
}

/// The value `write` at `offset` makes of the record `h` (at offset 32 of `blob`), and its
/// patch record; `None` when no whole frame would be kept.
fn patch_of(
    blob: &[u8],
    h: &RecordHeader,
    (offset, write): (usize, &[u8]),
    spec: RecordSpec,
) -> Option<(Vec<u8>, Vec<u8>)> {
    let old = decode_record(&blob[32..], (0, 0))?;
    let fl = 4096usize;
    let new_len = old.len().max(offset + write.len());
    let (start, end) = if new_len > old.len() {
        (offset.min(old.len()), new_len)
    } else {
        (offset, offset + write.len())
    };
    if end <= start {
        return None;
    }
    let (first, last) = (start / fl, (end - 1) / fl);
    let span = (first * fl, ((last + 1) * fl).min(new_len));
    if new_len - (span.1 - span.0) < fl {
        return None;
    }
    let mut grown = old.clone();
    grown.resize(new_len, 0);
    let mut new = grown.clone();
    new[offset..offset + write.len()].copy_from_slice(write);
    let table = FrameTable::decode(h, &blob[32 + RECORD_HEADER_LEN..], 0, 32).ok()?;
    let kept: Vec<Option<KeptFrame>> = (0..new_len.div_ceil(fl))
        .map(|i| {
            let e = table.frames.get(i).filter(|_| i < first || i > last)?;
            let bit = if e.compressed {
                FRAME_COMPRESSED_BIT
            } else {
                0
            };
            Some(KeptFrame {
                word: e.stored_len | bit,
                crc: e.crc,
                at: e.file_offset(h, 32),
            })
        })
        .collect();
    let (old_span, new_span) = (&grown[span.0..span.1], &new[span.0..span.1]);
    let crc = crc_algebra::patched(
        h.value_crc,
        old.len() as u64,
        new_len as u64,
        span.0 as u64,
        old_span,
        new_span,
    );
    let mut rec = Vec::new();
    RecordEncoder::new()
        .encode_patch(
            spec,
            (new_len as u64, crc),
            &kept,
            (first as u32, new_span),
            &mut rec,
        )
        .expect("encoding a patch");
    Some((new, rec))
}

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
    sealed_record_in(data, &[], 0)
}

/// [`sealed_record`] for a record at offset `at` of `blob`: kept frames of a patch record
/// get the CRC of the blob bytes they point at.
fn sealed_record_in(data: &[u8], blob: &[u8], at: u64) -> Vec<u8> {
    let mut b = data.to_vec();
    b[0..4].copy_from_slice(&RECORD_MAGIC.to_le_bytes());
    let patch = le_u16(&b[4..6]) & FLAG_PATCH != 0;
    let entry = if patch {
        PATCH_ENTRY_LEN
    } else {
        FRAME_ENTRY_LEN
    };
    let count = le_u32(&b[68..72]) as usize;
    let table_end = count
        .checked_mul(entry)
        .map(|t| RECORD_HEADER_LEN + t)
        .filter(|&end| end <= b.len());
    if let Some(table_end) = table_end {
        let mut own = table_end;
        for e in (RECORD_HEADER_LEN..table_end).step_by(entry) {
            let len = (le_u32(&b[e..e + 4]) & !FRAME_COMPRESSED_BIT) as usize;
            let kept = if patch { le_u64(&b[e + 8..e + 16]) } else { 0 };
            let stored = if kept != 0 {
                (kept < at)
                    .then(|| blob.get(kept as usize..(kept as usize).saturating_add(len)))
                    .flatten()
            } else {
                let s = b.get(own..own.saturating_add(len));
                own = own.saturating_add(len);
                s
            };
            if let Some(stored) = stored {
                let crc = crc32(stored);
                b[e + 4..e + 8].copy_from_slice(&crc.to_le_bytes());
            }
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

fn le_u16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
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
