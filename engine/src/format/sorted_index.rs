//! Sorted index files: `data-<id>.sorted` lists the newest record of every (key, column) of
//! a sealed blob, sorted, in 4 KiB pages, followed by a bloom filter, the first entry of every
//! page (fences) and what the blob's records superseded in older blobs. A lookup reads the
//! header and tail once (kept in memory) and then at most one page. `docs/FORMAT.md` §15.

use super::bloom::{Bloom, BLOCK_LEN};
use super::index_file::{IndexEntry, INDEX_ENTRY_LEN};
use super::record::{FLAG_TOMBSTONE, KNOWN_FLAGS, MAX_RECORD_LEN, RECORD_HEADER_LEN};
use super::{crc32, le_u16, le_u32, le_u64};
use crate::error::{Error, Result};
use crate::key::{Key, KEY_LEN};

/// `RBSORTIX`: the first eight bytes of every sorted index file.
pub const SORTED_MAGIC: [u8; 8] = *b"RBSORTIX";
/// The sorted index version this build writes and reads.
pub const SORTED_VERSION: u32 = 1;
/// Bytes of the header region; pages start here.
pub const SORTED_HEADER_LEN: usize = 4096;
/// Bytes of the header that carry fields (the rest of the region is zero).
const HEADER_FIELDS: usize = 80;
/// Bytes per page.
pub const PAGE_LEN: usize = 4096;
/// Bytes of a page's own header (CRC, count, reserved).
const PAGE_HEADER_LEN: usize = 8;
/// Entries per full page.
pub const ENTRIES_PER_PAGE: usize = (PAGE_LEN - PAGE_HEADER_LEN) / INDEX_ENTRY_LEN;
/// Bytes per fence: key and column of a page's first entry.
pub const FENCE_LEN: usize = KEY_LEN + 2;
/// Bytes per superseded row.
pub const SUPERSEDED_ROW_LEN: usize = 24;

/// What a sorted index orders by.
pub type SortKey = (Key, u16);

/// Bytes and value records of an older blob that this blob's records superseded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superseded {
    pub blob: u32,
    /// Superseded records that were values (tombstones excluded).
    pub values: u64,
    /// Bytes of every superseded record.
    pub bytes: u64,
}

/// The header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortedHeader {
    pub blob_id: u32,
    /// Length of the blob described.
    pub covered_len: u64,
    pub entry_count: u64,
    /// Entries that are values (not tombstones).
    pub value_entries: u64,
    pub page_count: u32,
    pub bloom_blocks: u32,
    pub bloom_probes: u32,
    pub superseded_rows: u32,
    pub bloom_seed: u64,
    /// Bytes of this blob's records that are garbage on their own: every tombstone, and every
    /// record with a newer one for the same (key, column) in this blob.
    pub self_dead_bytes: u64,
    tail_crc: u32,
}

/// Everything after the pages.
#[derive(Debug, Clone, PartialEq)]
pub struct SortedTail {
    pub bloom: Bloom,
    pub fences: Vec<SortKey>,
    pub superseded: Vec<Superseded>,
}

fn corrupt(file: &str, offset: u64, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        what: "sorted index",
        file: file.to_string(),
        offset,
        reason: reason.into(),
    }
}

impl SortedHeader {
    /// Where the tail starts.
    pub fn tail_offset(&self) -> u64 {
        (SORTED_HEADER_LEN + self.page_count as usize * PAGE_LEN) as u64
    }

    /// Bytes of the tail.
    pub fn tail_len(&self) -> u64 {
        self.bloom_blocks as u64 * BLOCK_LEN as u64
            + self.page_count as u64 * FENCE_LEN as u64
            + self.superseded_rows as u64 * SUPERSEDED_ROW_LEN as u64
    }

    /// The file's exact length.
    pub fn file_len(&self) -> u64 {
        self.tail_offset() + self.tail_len()
    }

    /// Entries on page `i`.
    pub fn entries_on_page(&self, i: u32) -> usize {
        let before = i as u64 * ENTRIES_PER_PAGE as u64;
        self.entry_count
            .saturating_sub(before)
            .min(ENTRIES_PER_PAGE as u64) as usize
    }

    /// Decodes and checks the header; `file_len` is the file's length on disk.
    pub fn decode(b: &[u8], file_len: u64, file: &str) -> Result<SortedHeader> {
        if b.len() < HEADER_FIELDS {
            return Err(Error::Truncated {
                what: "sorted index header",
                offset: 0,
                need: HEADER_FIELDS as u64,
                have: b.len() as u64,
            });
        }
        if b[0..8] != SORTED_MAGIC {
            return Err(corrupt(file, 0, "bad magic"));
        }
        if le_u32(b, 76) != crc32(&b[0..76]) {
            return Err(corrupt(file, 76, "header checksum mismatch"));
        }
        let version = le_u32(b, 8);
        if version != SORTED_VERSION {
            return Err(Error::UnsupportedVersion {
                file: file.to_string(),
                version,
                supported: SORTED_VERSION,
            });
        }
        let h = SortedHeader {
            blob_id: le_u32(b, 12),
            covered_len: le_u64(b, 16),
            entry_count: le_u64(b, 24),
            page_count: le_u32(b, 32),
            bloom_blocks: le_u32(b, 36),
            bloom_probes: le_u32(b, 40),
            superseded_rows: le_u32(b, 44),
            bloom_seed: le_u64(b, 48),
            self_dead_bytes: le_u64(b, 56),
            value_entries: le_u64(b, 64),
            tail_crc: le_u32(b, 72),
        };
        h.check(file_len, file)?;
        Ok(h)
    }

    fn check(&self, file_len: u64, file: &str) -> Result<()> {
        let records_fit = self.covered_len / RECORD_HEADER_LEN as u64;
        if self.entry_count > records_fit || self.value_entries > self.entry_count {
            return Err(corrupt(file, 24, "more entries than the blob has records"));
        }
        if self.page_count as u64 != self.entry_count.div_ceil(ENTRIES_PER_PAGE as u64) {
            return Err(corrupt(file, 32, "page count does not match entry count"));
        }
        if self.self_dead_bytes > self.covered_len {
            return Err(corrupt(file, 56, "more garbage than the blob holds"));
        }
        if self.file_len() != file_len {
            return Err(corrupt(
                file,
                0,
                format!("file is {file_len} bytes, header says {}", self.file_len()),
            ));
        }
        Ok(())
    }

    fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; SORTED_HEADER_LEN];
        b[0..8].copy_from_slice(&SORTED_MAGIC);
        b[8..12].copy_from_slice(&SORTED_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.blob_id.to_le_bytes());
        b[16..24].copy_from_slice(&self.covered_len.to_le_bytes());
        b[24..32].copy_from_slice(&self.entry_count.to_le_bytes());
        b[32..36].copy_from_slice(&self.page_count.to_le_bytes());
        b[36..40].copy_from_slice(&self.bloom_blocks.to_le_bytes());
        b[40..44].copy_from_slice(&self.bloom_probes.to_le_bytes());
        b[44..48].copy_from_slice(&self.superseded_rows.to_le_bytes());
        b[48..56].copy_from_slice(&self.bloom_seed.to_le_bytes());
        b[56..64].copy_from_slice(&self.self_dead_bytes.to_le_bytes());
        b[64..72].copy_from_slice(&self.value_entries.to_le_bytes());
        b[72..76].copy_from_slice(&self.tail_crc.to_le_bytes());
        let crc = crc32(&b[0..76]);
        b[76..80].copy_from_slice(&crc.to_le_bytes());
        b
    }
}

impl SortedTail {
    /// Decodes and checks the tail against its header.
    pub fn decode(h: &SortedHeader, b: &[u8], file: &str) -> Result<SortedTail> {
        let at = h.tail_offset();
        if b.len() as u64 != h.tail_len() {
            return Err(corrupt(file, at, "tail length does not match the header"));
        }
        if crc32(b) != h.tail_crc {
            return Err(corrupt(file, at, "tail checksum mismatch"));
        }
        let bloom_len = h.bloom_blocks as usize * BLOCK_LEN;
        let fences_len = h.page_count as usize * FENCE_LEN;
        let bloom = Bloom::decode(
            &b[..bloom_len],
            h.bloom_blocks,
            h.bloom_probes,
            h.bloom_seed,
        )
        .ok_or_else(|| corrupt(file, at, "bloom filter parameters out of range"))?;
        let fences: Vec<SortKey> = b[bloom_len..bloom_len + fences_len]
            .chunks_exact(FENCE_LEN)
            .map(decode_sort_key)
            .collect();
        if fences.windows(2).any(|w| w[0] >= w[1]) {
            return Err(corrupt(file, at, "fences are not ascending"));
        }
        let rows = &b[bloom_len + fences_len..];
        let superseded: Vec<Superseded> = rows
            .chunks_exact(SUPERSEDED_ROW_LEN)
            .map(|r| Superseded {
                blob: le_u32(r, 0),
                values: le_u64(r, 8),
                bytes: le_u64(r, 16),
            })
            .collect();
        let ordered = superseded.windows(2).all(|w| w[0].blob < w[1].blob);
        if !ordered || superseded.iter().any(|s| s.blob >= h.blob_id) {
            return Err(corrupt(
                file,
                at,
                "superseded rows must name older blobs, ascending",
            ));
        }
        Ok(SortedTail {
            bloom,
            fences,
            superseded,
        })
    }
}

fn decode_sort_key(b: &[u8]) -> SortKey {
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(&b[..KEY_LEN]);
    (Key(key), le_u16(b, KEY_LEN))
}

fn decode_entry(e: &[u8]) -> IndexEntry {
    let (key, _) = decode_sort_key(e);
    IndexEntry {
        key,
        offset: le_u64(e, 32),
        record_len: le_u32(e, 40),
        flags: le_u16(e, 44),
        column: le_u16(e, 46),
    }
}

fn encode_entry(e: &IndexEntry, out: &mut Vec<u8>) {
    out.extend_from_slice(&e.key.0);
    out.extend_from_slice(&e.offset.to_le_bytes());
    out.extend_from_slice(&e.record_len.to_le_bytes());
    out.extend_from_slice(&e.flags.to_le_bytes());
    out.extend_from_slice(&e.column.to_le_bytes());
}

/// Decodes and checks page `i` (its bytes `b`): CRC, count, order, that it starts at its
/// fence and ends before the next one, and that every entry lies inside the blob.
pub fn decode_page(
    h: &SortedHeader,
    fences: &[SortKey],
    i: u32,
    b: &[u8],
    file: &str,
) -> Result<Vec<IndexEntry>> {
    let at = (SORTED_HEADER_LEN + i as usize * PAGE_LEN) as u64;
    let bad = |reason: &str| corrupt(file, at, format!("page {i}: {reason}"));
    if b.len() != PAGE_LEN {
        return Err(bad("short page"));
    }
    if le_u32(b, 0) != crc32(&b[4..]) {
        return Err(bad("checksum mismatch"));
    }
    let count = le_u16(b, 4) as usize;
    if count == 0 || count != h.entries_on_page(i) {
        return Err(bad("entry count does not match the header"));
    }
    let entries: Vec<IndexEntry> = b[PAGE_HEADER_LEN..PAGE_HEADER_LEN + count * INDEX_ENTRY_LEN]
        .chunks_exact(INDEX_ENTRY_LEN)
        .map(decode_entry)
        .collect();
    let sort_key = |e: &IndexEntry| (e.key, e.column);
    if entries
        .windows(2)
        .any(|w| sort_key(&w[0]) >= sort_key(&w[1]))
    {
        return Err(bad("entries are not strictly ascending"));
    }
    let first = entries.first().map(sort_key);
    let last = entries.last().map(sort_key);
    if first != fences.get(i as usize).copied() {
        return Err(bad("first entry is not the page's fence"));
    }
    if let (Some(next), Some(last)) = (fences.get(i as usize + 1), last) {
        if last >= *next {
            return Err(bad("last entry is not below the next page's fence"));
        }
    }
    if let Some(e) = entries.iter().find(|e| !entry_fits(e, h.covered_len)) {
        return Err(bad(&format!(
            "entry at blob offset {} is out of bounds",
            e.offset
        )));
    }
    Ok(entries)
}

/// The lookup's page read: checks page `i`'s CRC and count, then binary-searches its raw
/// entries for `want` and decodes only the one found (which must lie inside the blob). The
/// order of the entries is not rechecked here: open checked every page with
/// [`decode_page`], and the CRC proves the page is unchanged since.
pub fn find_in_page(
    h: &SortedHeader,
    i: u32,
    b: &[u8],
    want: &SortKey,
    file: &str,
) -> Result<Option<IndexEntry>> {
    let at = (SORTED_HEADER_LEN + i as usize * PAGE_LEN) as u64;
    let bad = |reason: &str| corrupt(file, at, format!("page {i}: {reason}"));
    if b.len() != PAGE_LEN || le_u32(b, 0) != crc32(&b[4..]) {
        return Err(bad("checksum mismatch"));
    }
    let count = le_u16(b, 4) as usize;
    if count == 0 || count != h.entries_on_page(i) {
        return Err(bad("entry count does not match the header"));
    }
    let entry = |j: usize| &b[PAGE_HEADER_LEN + j * INDEX_ENTRY_LEN..][..INDEX_ENTRY_LEN];
    let (mut lo, mut hi) = (0usize, count);
    while lo < hi {
        let mid = (lo + hi) / 2;
        let e = entry(mid);
        let probe = (&e[..KEY_LEN], le_u16(e, 46));
        match probe.cmp(&(&want.0 .0[..], want.1)) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => {
                let found = decode_entry(e);
                if !entry_fits(&found, h.covered_len) {
                    return Err(bad("entry out of bounds"));
                }
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

fn entry_fits(e: &IndexEntry, covered_len: u64) -> bool {
    let len = u64::from(e.record_len);
    e.offset >= super::blob_header::BLOB_HEADER_LEN as u64
        && (RECORD_HEADER_LEN as u64..=MAX_RECORD_LEN).contains(&len)
        && e.offset
            .checked_add(len)
            .is_some_and(|end| end <= covered_len)
        && e.flags & !KNOWN_FLAGS == 0
}

/// What a sorted index file is built from.
pub struct SortedSource<'a> {
    pub blob_id: u32,
    pub covered_len: u64,
    /// Newest record per (key, column), strictly ascending by (key, column).
    pub entries: &'a [IndexEntry],
    pub self_dead_bytes: u64,
    /// Ascending by blob, every blob older than `blob_id`.
    pub superseded: &'a [Superseded],
}

/// Encodes a whole sorted index file.
pub fn encode_sorted(src: &SortedSource<'_>) -> Vec<u8> {
    let mut bloom = Bloom::for_keys(src.entries.len() as u64);
    let mut pages = Vec::with_capacity(src.entries.len().div_ceil(ENTRIES_PER_PAGE) * PAGE_LEN);
    let mut fences = Vec::new();
    for chunk in src.entries.chunks(ENTRIES_PER_PAGE) {
        let start = pages.len();
        pages.extend_from_slice(&[0u8; PAGE_HEADER_LEN]);
        for e in chunk {
            encode_entry(e, &mut pages);
            bloom.insert(super::bloom::KeyHash::of(&e.key, bloom.seed()));
        }
        pages.resize(start + PAGE_LEN, 0);
        pages[start + 4..start + 6].copy_from_slice(&(chunk.len() as u16).to_le_bytes());
        let crc = crc32(&pages[start + 4..start + PAGE_LEN]);
        pages[start..start + 4].copy_from_slice(&crc.to_le_bytes());
        if let Some(first) = chunk.first() {
            fences.extend_from_slice(&first.key.0);
            fences.extend_from_slice(&first.column.to_le_bytes());
        }
    }
    let mut tail = Vec::new();
    bloom.encode_into(&mut tail);
    tail.extend_from_slice(&fences);
    for s in src.superseded {
        tail.extend_from_slice(&s.blob.to_le_bytes());
        tail.extend_from_slice(&0u32.to_le_bytes());
        tail.extend_from_slice(&s.values.to_le_bytes());
        tail.extend_from_slice(&s.bytes.to_le_bytes());
    }
    let header = SortedHeader {
        blob_id: src.blob_id,
        covered_len: src.covered_len,
        entry_count: src.entries.len() as u64,
        value_entries: src
            .entries
            .iter()
            .filter(|e| e.flags & FLAG_TOMBSTONE == 0)
            .count() as u64,
        page_count: src.entries.len().div_ceil(ENTRIES_PER_PAGE) as u32,
        bloom_blocks: bloom.blocks(),
        bloom_probes: bloom.probes(),
        superseded_rows: src.superseded.len() as u32,
        bloom_seed: bloom.seed(),
        self_dead_bytes: src.self_dead_bytes,
        tail_crc: crc32(&tail),
    };
    let mut out = header.encode();
    out.extend_from_slice(&pages);
    out.extend_from_slice(&tail);
    out
}

/// Decodes and checks a whole file held in memory: header, tail, every page.
pub fn decode_all(b: &[u8], file: &str) -> Result<(SortedHeader, SortedTail, Vec<IndexEntry>)> {
    let h = SortedHeader::decode(b, b.len() as u64, file)?;
    let tail = SortedTail::decode(&h, &b[h.tail_offset() as usize..], file)?;
    let mut entries = Vec::with_capacity(h.entry_count as usize);
    for i in 0..h.page_count {
        let at = SORTED_HEADER_LEN + i as usize * PAGE_LEN;
        entries.extend(decode_page(
            &h,
            &tail.fences,
            i,
            &b[at..at + PAGE_LEN],
            file,
        )?);
    }
    Ok((h, tail, entries))
}

#[cfg(test)]
#[path = "sorted_index_tests.rs"]
mod tests;
