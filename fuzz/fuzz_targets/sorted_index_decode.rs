//! The sorted index decoders (`docs/FORMAT.md` §12) on arbitrary bytes: corrupt input must be
//! an `Err`, never a panic. Three ways in:
//!
//! 1. the input as a whole file (`decode_all`);
//! 2. the input's first 80 bytes as a header, with magic, version and CRC made valid and the
//!    file length it implies, so `SortedHeader::decode` reaches its field checks; then a tail
//!    and pages cut from the input, their CRCs made valid, through `SortedTail::decode` and
//!    `decode_page`;
//! 3. a file built with `encode_sorted` from fuzz-derived entries (a sorted file is at least
//!    4 KiB, too big for the fuzzer to find whole): it must decode back to exactly those
//!    entries with a filter that holds every key; then damage, optionally with every CRC made
//!    valid again, which must be caught wherever a CRC covers it.
//!
//! Input layout for 3: `[mode][blob id][damage at u32][damage xor u32][superseded rows]`, then
//! 48-byte entries. Mode bit 0: damage; bit 1: then reseal every CRC; bit 2: keep the entries'
//! offsets, lengths and flags raw (out of bounds, overflowing) instead of making them fit;
//! bits 4–7: each entry is repeated under that many more columns, for files of several pages.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringblob_engine::format::bloom::{KeyHash, BLOCK_LEN};
use ringblob_engine::format::crc32;
use ringblob_engine::format::index_file::{IndexEntry, INDEX_ENTRY_LEN};
use ringblob_engine::format::record::{KNOWN_FLAGS, RECORD_HEADER_LEN};
use ringblob_engine::format::sorted_index::{
    decode_all, decode_page, encode_sorted, SortedHeader, SortedSource, SortedTail, Superseded,
    FENCE_LEN, PAGE_LEN, SORTED_HEADER_LEN, SORTED_MAGIC, SORTED_VERSION, SUPERSEDED_ROW_LEN,
};
use ringblob_engine::Key;

/// Bytes of the header that carry fields.
const FIELDS: usize = 80;
/// Largest tail built in part 2.
const MAX_TAIL: u64 = 1 << 20;
/// Pages decoded in part 2.
const MAX_PAGES: u32 = 4;
/// Bytes of the fixed part of part 3's input.
const BUILD_PREFIX: usize = 11;

fuzz_target!(|data: &[u8]| {
    let _ = decode_all(data, "fuzz");
    parts(data);
    built(data);
});

/// Part 2: header, tail and pages decoded one by one.
fn parts(data: &[u8]) {
    let _ = SortedHeader::decode(data, data.len() as u64, "fuzz");
    if data.len() < FIELDS {
        return;
    }
    let mut head = data[..FIELDS].to_vec();
    seal_header(&mut head);
    let implied = implied_file_len(&head);
    let _ = SortedHeader::decode(&head, data.len() as u64, "fuzz");
    let Ok(h) = SortedHeader::decode(&head, implied, "fuzz") else {
        return;
    };
    let rest = &data[FIELDS..];
    let _ = SortedTail::decode(&h, rest, "fuzz");
    if h.tail_len() > MAX_TAIL {
        return;
    }
    // A tail of the right length with its CRC (which the header carries) made valid.
    let tail_bytes = cycled(rest, h.tail_len() as usize);
    head[72..76].copy_from_slice(&crc32(&tail_bytes).to_le_bytes());
    seal_header(&mut head);
    let Ok(h) = SortedHeader::decode(&head, implied, "fuzz") else {
        panic!("changing only the tail CRC made a valid header invalid");
    };
    let Ok(tail) = SortedTail::decode(&h, &tail_bytes, "fuzz") else {
        return;
    };
    let pick = rest.first().copied().map_or(0, u32::from);
    for i in (0..h.page_count.min(MAX_PAGES)).chain([pick, h.page_count, u32::MAX]) {
        let _ = decode_page(&h, &tail.fences, i, rest, "fuzz");
        let mut page = cycled(
            rest.get(i as usize % rest.len().max(1)..).unwrap_or(rest),
            PAGE_LEN,
        );
        let crc = crc32(&page[4..]);
        page[..4].copy_from_slice(&crc.to_le_bytes());
        let _ = decode_page(&h, &tail.fences, i, &page, "fuzz");
    }
}

/// Part 3: a well-formed file from fuzz-derived entries, then damage.
fn built(data: &[u8]) {
    let Some((p, body)) = data.split_first_chunk::<BUILD_PREFIX>() else {
        return;
    };
    let mode = p[0];
    let raw = mode & 4 != 0;
    let blob_id = u32::from(p[1]) + 1;
    let entries = entries(body, usize::from(mode >> 4) + 1, raw);
    let ends = entries
        .iter()
        .map(|e| e.offset.saturating_add(e.record_len.into()));
    let covered_len = ends
        .max()
        .unwrap_or(0)
        .max(32 + entries.len() as u64 * RECORD_HEADER_LEN as u64);
    let rows = u32::from(p[10] % 4).min(blob_id);
    let superseded: Vec<Superseded> = (0..rows)
        .map(|b| Superseded {
            blob: b,
            values: u64::from(b),
            bytes: u64::from(b) * 100,
        })
        .collect();
    let mut file = encode_sorted(&SortedSource {
        blob_id,
        covered_len,
        entries: &entries,
        self_dead_bytes: covered_len / 2,
        superseded: &superseded,
    });
    let decoded = decode_all(&file, "fuzz");
    if !raw {
        let Ok((h, tail, got)) = decoded else {
            panic!("a freshly encoded file does not decode: {decoded:?}");
        };
        assert_eq!(got, entries, "entries changed in a round trip");
        assert_eq!(h.entry_count, entries.len() as u64);
        assert_eq!(tail.superseded, superseded);
        let seed = tail.bloom.seed();
        let missed = entries
            .iter()
            .find(|e| !tail.bloom.may_contain(KeyHash::of(&e.key, seed)));
        assert_eq!(missed, None, "the filter lost a key");
    }
    if mode & 1 == 0 {
        return;
    }
    let at = le_u32(&p[2..6]) as usize % file.len();
    let xor = &p[6..10][..4.min(file.len() - at)];
    if xor.iter().all(|&x| x == 0) {
        return;
    }
    for (b, x) in file[at..].iter_mut().zip(xor) {
        *b ^= x;
    }
    if mode & 2 != 0 {
        reseal(&mut file);
        let _ = decode_all(&file, "fuzz");
        return;
    }
    // CRC-32 catches every burst of up to 32 bits; only the header's padding is unchecked.
    let checked = (at..at + xor.len())
        .zip(xor)
        .any(|(i, &x)| x != 0 && !(FIELDS..SORTED_HEADER_LEN).contains(&i));
    if checked && !raw {
        let r = decode_all(&file, "fuzz");
        assert!(r.is_err(), "damage at byte {at} went unnoticed");
    } else {
        let _ = decode_all(&file, "fuzz");
    }
}

/// Entries from 48-byte chunks, each repeated under `reps` consecutive columns, sorted and
/// without duplicate (key, column). Unless `raw`, offsets, lengths and flags are made to fit
/// inside a blob.
fn entries(body: &[u8], reps: usize, raw: bool) -> Vec<IndexEntry> {
    let mut out = Vec::new();
    for c in body.chunks_exact(INDEX_ENTRY_LEN) {
        let mut key = [0u8; 32];
        key.copy_from_slice(&c[..32]);
        let mut e = IndexEntry {
            key: Key(key),
            offset: le_u64(&c[32..40]),
            record_len: le_u32(&c[40..44]),
            flags: u16::from_le_bytes([c[44], c[45]]),
            column: u16::from_le_bytes([c[46], c[47]]),
        };
        if !raw {
            e.offset = 32 + e.offset % (1 << 40);
            e.record_len = RECORD_HEADER_LEN as u32 + e.record_len % 100_000;
            e.flags &= KNOWN_FLAGS;
        }
        for r in 0..reps {
            out.push(IndexEntry {
                column: e.column.wrapping_add(r as u16),
                ..e
            });
        }
    }
    out.sort_by_key(|e| (e.key, e.column));
    out.dedup_by_key(|e| (e.key, e.column));
    out
}

/// Magic, version and header CRC made valid.
fn seal_header(h: &mut [u8]) {
    h[0..8].copy_from_slice(&SORTED_MAGIC);
    h[8..12].copy_from_slice(&SORTED_VERSION.to_le_bytes());
    let crc = crc32(&h[0..76]);
    h[76..80].copy_from_slice(&crc.to_le_bytes());
}

/// The file length a header's counts imply (as `SortedHeader::file_len` computes it).
fn implied_file_len(h: &[u8]) -> u64 {
    let pages = u64::from(le_u32(&h[32..36]));
    let blocks = u64::from(le_u32(&h[36..40]));
    let rows = u64::from(le_u32(&h[44..48]));
    SORTED_HEADER_LEN as u64
        + pages * (PAGE_LEN + FENCE_LEN) as u64
        + blocks * BLOCK_LEN as u64
        + rows * SUPERSEDED_ROW_LEN as u64
}

/// Every page CRC, the tail CRC and the header CRC made valid again, as far as the (possibly
/// damaged) header's page count lies inside the file. Magic and version are left alone.
fn reseal(b: &mut [u8]) {
    if b.len() < FIELDS {
        return;
    }
    let pages = le_u32(&b[32..36]) as usize;
    for i in 0..pages {
        let start = SORTED_HEADER_LEN + i * PAGE_LEN;
        let Some(page) = b.get_mut(start..start + PAGE_LEN) else {
            break;
        };
        let crc = crc32(&page[4..]);
        page[..4].copy_from_slice(&crc.to_le_bytes());
    }
    let tail_at = SORTED_HEADER_LEN + pages * PAGE_LEN;
    if let Some(tail) = b.get(tail_at..) {
        let crc = crc32(tail);
        b[72..76].copy_from_slice(&crc.to_le_bytes());
    }
    let crc = crc32(&b[0..76]);
    b[76..80].copy_from_slice(&crc.to_le_bytes());
}

/// `len` bytes repeating `src` (zeros if it is empty).
fn cycled(src: &[u8], len: usize) -> Vec<u8> {
    if src.is_empty() {
        return vec![0; len];
    }
    src.iter().copied().cycle().take(len).collect()
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}
