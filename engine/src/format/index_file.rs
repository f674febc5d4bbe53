//! Index files: `data-<id>.index` lists every record of blob `<id>` up to a covered length,
//! in file order, so `open` need not rescan the blob.

use super::blob_header::BLOB_HEADER_LEN;
use super::record::{MAX_RECORD_LEN, RECORD_HEADER_LEN};
use super::{crc32, le_u16, le_u32, le_u64};
use crate::error::{Error, Result};
use crate::key::{Key, KEY_LEN};

/// `RBINDEX\0`: the first eight bytes of every index file.
pub const INDEX_MAGIC: [u8; 8] = *b"RBINDEX\0";
/// The index file version this build writes and reads.
pub const INDEX_VERSION: u32 = 1;
/// Length of the index file header.
pub const INDEX_HEADER_LEN: usize = 40;
/// Length of one index entry.
pub const INDEX_ENTRY_LEN: usize = 48;

/// One record as an index file lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub key: Key,
    pub offset: u64,
    pub record_len: u32,
    pub flags: u16,
    pub column: u16,
}

impl IndexEntry {
    /// The entry of the record with header `h` at `offset`.
    pub fn of(offset: u64, h: &super::record::RecordHeader) -> Self {
        IndexEntry {
            key: h.key,
            offset,
            record_len: h.record_len() as u32,
            flags: h.flags,
            column: h.column,
        }
    }
}

/// A decoded index file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    pub blob_id: u32,
    /// The blob's records in `[BLOB_HEADER_LEN, covered_len)` are exactly `entries`.
    pub covered_len: u64,
    pub entries: Vec<IndexEntry>,
}

impl IndexFile {
    /// Encodes the whole file.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; INDEX_HEADER_LEN];
        b.reserve(self.entries.len() * INDEX_ENTRY_LEN);
        for e in &self.entries {
            b.extend_from_slice(&e.key.0);
            b.extend_from_slice(&e.offset.to_le_bytes());
            b.extend_from_slice(&e.record_len.to_le_bytes());
            b.extend_from_slice(&e.flags.to_le_bytes());
            b.extend_from_slice(&e.column.to_le_bytes());
        }
        let entries_crc = crc32(&b[INDEX_HEADER_LEN..]);
        b[0..8].copy_from_slice(&INDEX_MAGIC);
        b[8..12].copy_from_slice(&INDEX_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.blob_id.to_le_bytes());
        b[16..24].copy_from_slice(&(self.entries.len() as u64).to_le_bytes());
        b[24..32].copy_from_slice(&self.covered_len.to_le_bytes());
        b[32..36].copy_from_slice(&entries_crc.to_le_bytes());
        let header_crc = crc32(&b[0..36]);
        b[36..40].copy_from_slice(&header_crc.to_le_bytes());
        b
    }

    /// Decodes and checks an index file: header, checksums, sizes, and that the entries
    /// tile the blob from its header to `covered_len` without gaps or overlaps.
    pub fn decode(b: &[u8], file: &str) -> Result<Self> {
        let corrupt = |offset: u64, reason: String| Error::Corrupt {
            what: "index file",
            file: file.to_string(),
            offset,
            reason,
        };
        if b.len() < INDEX_HEADER_LEN {
            return Err(Error::Truncated {
                what: "index header",
                offset: 0,
                need: INDEX_HEADER_LEN as u64,
                have: b.len() as u64,
            });
        }
        if b[0..8] != INDEX_MAGIC {
            return Err(corrupt(0, "bad magic".into()));
        }
        if le_u32(b, 36) != crc32(&b[0..36]) {
            return Err(corrupt(0, "header checksum mismatch".into()));
        }
        let version = le_u32(b, 8);
        if version != INDEX_VERSION {
            return Err(Error::UnsupportedVersion {
                file: file.to_string(),
                version,
                supported: INDEX_VERSION,
            });
        }
        let count = le_u64(b, 16);
        let body = (b.len() - INDEX_HEADER_LEN) as u64;
        if count.checked_mul(INDEX_ENTRY_LEN as u64) != Some(body) {
            return Err(corrupt(
                16,
                format!("{count} entries do not fit {body} bytes"),
            ));
        }
        if le_u32(b, 32) != crc32(&b[INDEX_HEADER_LEN..]) {
            return Err(corrupt(
                INDEX_HEADER_LEN as u64,
                "entries checksum mismatch".into(),
            ));
        }
        let covered_len = le_u64(b, 24);
        let entries = decode_entries(&b[INDEX_HEADER_LEN..], covered_len)
            .map_err(|(at, reason)| corrupt(at, reason))?;
        Ok(IndexFile {
            blob_id: le_u32(b, 12),
            covered_len,
            entries,
        })
    }
}

fn decode_entries(body: &[u8], covered_len: u64) -> Result<Vec<IndexEntry>, (u64, String)> {
    let mut entries = Vec::with_capacity(body.len() / INDEX_ENTRY_LEN);
    let mut next = BLOB_HEADER_LEN as u64;
    for (i, e) in body.chunks_exact(INDEX_ENTRY_LEN).enumerate() {
        let at = (INDEX_HEADER_LEN + i * INDEX_ENTRY_LEN) as u64;
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(&e[0..32]);
        let entry = IndexEntry {
            key: Key(key),
            offset: le_u64(e, 32),
            record_len: le_u32(e, 40),
            flags: le_u16(e, 44),
            column: le_u16(e, 46),
        };
        let len = u64::from(entry.record_len);
        if entry.offset != next || len < RECORD_HEADER_LEN as u64 || len > MAX_RECORD_LEN {
            return Err((at, format!("entry {i} does not follow the previous record")));
        }
        next = entry.offset + len;
        entries.push(entry);
    }
    if next != covered_len {
        return Err((
            24,
            format!("entries end at {next}, header says {covered_len}"),
        ));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> IndexFile {
        IndexFile {
            blob_id: 3,
            covered_len: 32 + 100 + 88,
            entries: vec![
                IndexEntry {
                    key: Key([1; 32]),
                    offset: 32,
                    record_len: 100,
                    flags: 0,
                    column: 0,
                },
                IndexEntry {
                    key: Key([2; 32]),
                    offset: 132,
                    record_len: 88,
                    flags: 1,
                    column: 0,
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let f = sample();
        assert_eq!(IndexFile::decode(&f.encode(), "i").ok(), Some(f));
    }

    #[test]
    fn rejects_damage_everywhere() {
        let good = sample().encode();
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0x01;
            assert!(
                IndexFile::decode(&b, "i").is_err(),
                "flip at byte {i} accepted"
            );
        }
        for n in 0..good.len() {
            assert!(
                IndexFile::decode(&good[..n], "i").is_err(),
                "truncated to {n} accepted"
            );
        }
    }

    #[test]
    fn rejects_gaps_between_entries() {
        let mut f = sample();
        f.entries[1].offset += 1;
        f.covered_len += 1;
        let e = IndexFile::decode(&f.encode(), "i")
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("does not follow")));
    }
}
