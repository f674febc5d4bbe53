//! Record headers and frame tables: one record per write, tombstones for removes.

use super::{crc32, le_u16, le_u32, le_u64};
use crate::error::{Error, Result};
use crate::key::{Key, KEY_LEN};

/// `RBRC` in file order: the first four bytes of every record.
pub const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"RBRC");
/// Length of a record header.
pub const RECORD_HEADER_LEN: usize = 88;
/// Where the key starts in a record header.
pub const HEADER_KEY_AT: usize = 8;
/// Where `timestamp_ns` starts in a record header.
pub const HEADER_TIMESTAMP_AT: usize = 56;
/// Length of one frame table entry.
pub const FRAME_ENTRY_LEN: usize = 8;
/// Length of one frame table entry of a patch record: the entry plus the frame's place.
pub const PATCH_ENTRY_LEN: usize = 16;
/// The record is a tombstone: the key was removed.
pub const FLAG_TOMBSTONE: u16 = 1 << 0;
/// At least one frame is Snappy-compressed.
pub const FLAG_COMPRESSED: u16 = 1 << 1;
/// A patch record: frames it did not change are those of earlier records of the same blob,
/// found by their file offset in its frame table (`docs/FORMAT.md` §6.7).
pub const FLAG_PATCH: u16 = 1 << 2;
/// Every flag this version knows; others are rejected.
pub const KNOWN_FLAGS: u16 = FLAG_TOMBSTONE | FLAG_COMPRESSED | FLAG_PATCH;
/// In a frame table entry, set when the frame is Snappy-compressed.
pub const FRAME_COMPRESSED_BIT: u32 = 1 << 31;

/// Largest value one record holds.
pub const MAX_VALUE_LEN: u64 = 1 << 30;
/// Smallest and largest frame length (logical bytes per frame); must be a power of two.
pub const MIN_FRAME_LEN: u32 = 4 << 10;
pub const MAX_FRAME_LEN: u32 = 16 << 20;
/// Most frames one record can have.
pub const MAX_FRAMES: u64 = MAX_VALUE_LEN / MIN_FRAME_LEN as u64;
/// Largest record: header, full frame table (of a patch record) and raw value.
pub const MAX_RECORD_LEN: u64 =
    RECORD_HEADER_LEN as u64 + MAX_FRAMES * PATCH_ENTRY_LEN as u64 + MAX_VALUE_LEN;

const _: () = assert!(RECORD_HEADER_LEN == 88);
const _: () = assert!(MAX_RECORD_LEN < u32::MAX as u64);

/// A decoded record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub flags: u16,
    pub column: u16,
    pub key: Key,
    /// Logical (uncompressed) value length.
    pub value_len: u64,
    /// Bytes after the header: frame table plus stored frames.
    pub stored_len: u64,
    /// Nanoseconds since the Unix epoch at write time.
    pub timestamp_ns: u64,
    /// Logical bytes per frame (the last frame may be shorter).
    pub frame_len: u32,
    pub frame_count: u32,
    /// CRC-32 of the whole logical value.
    pub value_crc: u32,
    /// CRC-32 of the frame table bytes.
    pub table_crc: u32,
}

impl RecordHeader {
    /// True for a tombstone.
    pub fn is_tombstone(&self) -> bool {
        self.flags & FLAG_TOMBSTONE != 0
    }

    /// True for a patch record (§6.7).
    pub fn is_patch(&self) -> bool {
        self.flags & FLAG_PATCH != 0
    }

    /// Header plus stored bytes: the record's full length on disk.
    pub fn record_len(&self) -> u64 {
        RECORD_HEADER_LEN as u64 + self.stored_len
    }

    /// Bytes of one frame table entry.
    pub fn entry_len(&self) -> usize {
        if self.is_patch() {
            PATCH_ENTRY_LEN
        } else {
            FRAME_ENTRY_LEN
        }
    }

    /// Bytes of the frame table.
    pub fn table_len(&self) -> usize {
        self.frame_count as usize * self.entry_len()
    }

    /// Logical length of frame `i`.
    pub fn frame_logical_len(&self, i: u32) -> u64 {
        let start = u64::from(i) * u64::from(self.frame_len);
        (self.value_len - start).min(u64::from(self.frame_len))
    }

    /// Encodes the header, computing its CRC.
    pub fn encode(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut b = [0u8; RECORD_HEADER_LEN];
        b[0..4].copy_from_slice(&RECORD_MAGIC.to_le_bytes());
        b[4..6].copy_from_slice(&self.flags.to_le_bytes());
        b[6..8].copy_from_slice(&self.column.to_le_bytes());
        b[8..40].copy_from_slice(&self.key.0);
        b[40..48].copy_from_slice(&self.value_len.to_le_bytes());
        b[48..56].copy_from_slice(&self.stored_len.to_le_bytes());
        b[56..64].copy_from_slice(&self.timestamp_ns.to_le_bytes());
        b[64..68].copy_from_slice(&self.frame_len.to_le_bytes());
        b[68..72].copy_from_slice(&self.frame_count.to_le_bytes());
        b[72..76].copy_from_slice(&self.value_crc.to_le_bytes());
        b[76..80].copy_from_slice(&self.table_crc.to_le_bytes());
        // 80..84 reserved, zero.
        let crc = crc32(&b[0..84]);
        b[84..88].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and validates a header found at `offset` of blob `blob`.
    /// Checks magic, header CRC, flags and that every length is within the hard limits and
    /// consistent with the others; it cannot check the frame table (see [`FrameTable::decode`]).
    pub fn decode(b: &[u8], blob: u32, offset: u64) -> Result<Self> {
        if b.len() < RECORD_HEADER_LEN {
            return Err(Error::Truncated {
                what: "record header",
                offset,
                need: RECORD_HEADER_LEN as u64,
                have: b.len() as u64,
            });
        }
        let magic = le_u32(b, 0);
        if magic != RECORD_MAGIC {
            return Err(corrupt(
                blob,
                offset,
                format!("bad record magic {magic:#010x}"),
            ));
        }
        let expected = le_u32(b, 84);
        let got = crc32(&b[0..84]);
        if expected != got {
            return Err(Error::ChecksumMismatch {
                what: "record header",
                blob,
                offset,
                expected,
                got,
            });
        }
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(&b[8..40]);
        let h = RecordHeader {
            flags: le_u16(b, 4),
            column: le_u16(b, 6),
            key: Key(key),
            value_len: le_u64(b, 40),
            stored_len: le_u64(b, 48),
            timestamp_ns: le_u64(b, 56),
            frame_len: le_u32(b, 64),
            frame_count: le_u32(b, 68),
            value_crc: le_u32(b, 72),
            table_crc: le_u32(b, 76),
        };
        if le_u32(b, 80) != 0 {
            return Err(corrupt(blob, offset, "reserved bytes are not zero".into()));
        }
        h.validate()
            .map_err(|reason| corrupt(blob, offset, reason))?;
        Ok(h)
    }

    /// The header a damaged header `b` most likely was, when exactly one flipped bit makes
    /// it decode and validate (CRC-32 tells every single-bit error in 88 bytes apart, so at
    /// most one flip can match). Used only to learn which key a damaged record belonged
    /// to, so that key is reported as damaged instead of served at an older version; the
    /// record itself stays damaged. `None` for anything else (several flips, zeros).
    pub fn repaired_one_bit(b: &[u8], blob: u32, offset: u64) -> Option<Self> {
        let mut work: [u8; RECORD_HEADER_LEN] = b.get(..RECORD_HEADER_LEN)?.try_into().ok()?;
        let mut found = None;
        for bit in 0..RECORD_HEADER_LEN * 8 {
            work[bit / 8] ^= 1 << (bit % 8);
            if let Ok(h) = Self::decode(&work, blob, offset) {
                if found.is_some() {
                    return None;
                }
                found = Some(h);
            }
            work[bit / 8] ^= 1 << (bit % 8);
        }
        found
    }

    fn validate(&self) -> Result<(), String> {
        if self.flags & !KNOWN_FLAGS != 0 {
            return Err(format!("unknown record flags {:#06x}", self.flags));
        }
        if !self.frame_len.is_power_of_two()
            || !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&self.frame_len)
        {
            return Err(format!("impossible frame length {}", self.frame_len));
        }
        if self.value_len > MAX_VALUE_LEN {
            return Err(format!("value length {} over the limit", self.value_len));
        }
        let frames = self.value_len.div_ceil(u64::from(self.frame_len));
        if u64::from(self.frame_count) != frames {
            return Err(format!(
                "frame count {} does not fit value length {}",
                self.frame_count, self.value_len
            ));
        }
        let table = frames * self.entry_len() as u64;
        if self.stored_len < table || self.stored_len > table + self.value_len {
            return Err(format!("impossible stored length {}", self.stored_len));
        }
        if self.is_tombstone() && (self.value_len != 0 || self.flags & FLAG_COMPRESSED != 0) {
            return Err("tombstone with a value".into());
        }
        if self.is_tombstone() && self.is_patch() {
            return Err("patched tombstone".into());
        }
        Ok(())
    }
}

/// The place of a patch record's frame kept from an earlier record (`None` for a frame
/// stored in the record itself): at least at 32 and ending at or before the record's offset.
fn earlier_frame(
    h: &RecordHeader,
    entry: &[u8],
    stored_len: u32,
    record_offset: u64,
) -> Result<Option<u64>, String> {
    if !h.is_patch() {
        return Ok(None);
    }
    let at = le_u64(entry, 8);
    if at == 0 {
        return Ok(None);
    }
    let end = at.checked_add(u64::from(stored_len));
    if at < super::blob_header::BLOB_HEADER_LEN as u64 || end.is_none_or(|e| e > record_offset) {
        return Err(format!("kept at {at}, not before the record"));
    }
    Ok(Some(at))
}

fn corrupt(blob: u32, offset: u64, reason: String) -> Error {
    Error::Corrupt {
        what: "record",
        file: format!("blob {blob}"),
        offset,
        reason,
    }
}

/// One frame as the table describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameEntry {
    /// Offset of the stored frame from the start of the frame area (for a frame of an
    /// earlier record, where the next frame of this record's own would start).
    pub stored_offset: u64,
    pub stored_len: u32,
    pub compressed: bool,
    /// CRC-32 of the stored bytes.
    pub crc: u32,
    /// For a patch record's frame kept from an earlier record: the blob file offset of its
    /// stored bytes (before this record).
    pub at: Option<u64>,
}

impl FrameEntry {
    /// File offset of the stored bytes, for the record at `record_offset` with `h`.
    pub fn file_offset(&self, h: &RecordHeader, record_offset: u64) -> u64 {
        self.at.unwrap_or(
            record_offset + RECORD_HEADER_LEN as u64 + h.table_len() as u64 + self.stored_offset,
        )
    }
}

/// A decoded, checked frame table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameTable {
    /// Inline for the common one- or two-frame value: no allocation per read.
    pub frames: smallvec::SmallVec<[FrameEntry; 2]>,
}

impl FrameTable {
    /// Decodes the table that follows `h`; `b` holds exactly the table bytes.
    /// Checks its CRC and that the stored lengths add up to the header's stored length.
    pub fn decode(h: &RecordHeader, b: &[u8], blob: u32, offset: u64) -> Result<Self> {
        let want = h.table_len();
        if b.len() < want {
            return Err(Error::Truncated {
                what: "frame table",
                offset,
                need: want as u64,
                have: b.len() as u64,
            });
        }
        let b = &b[..want];
        let got = crc32(b);
        if got != h.table_crc {
            return Err(Error::ChecksumMismatch {
                what: "frame table",
                blob,
                offset,
                expected: h.table_crc,
                got,
            });
        }
        let mut frames: smallvec::SmallVec<[FrameEntry; 2]> =
            smallvec::SmallVec::with_capacity(h.frame_count as usize);
        let mut at = 0u64;
        for (i, e) in b.chunks_exact(h.entry_len()).enumerate() {
            let word = le_u32(e, 0);
            let stored_len = word & !FRAME_COMPRESSED_BIT;
            let compressed = word & FRAME_COMPRESSED_BIT != 0;
            let logical = h.frame_logical_len(i as u32);
            let bad_len = if compressed {
                stored_len == 0 || u64::from(stored_len) >= logical
            } else {
                u64::from(stored_len) != logical
            };
            if bad_len {
                return Err(corrupt(
                    blob,
                    offset,
                    format!("frame {i} has impossible length"),
                ));
            }
            let kept = earlier_frame(h, e, stored_len, offset)
                .map_err(|why| corrupt(blob, offset, format!("frame {i} {why}")))?;
            frames.push(FrameEntry {
                stored_offset: at,
                stored_len,
                compressed,
                crc: le_u32(e, 4),
                at: kept,
            });
            if kept.is_none() {
                at += u64::from(stored_len);
            }
        }
        if want as u64 + at != h.stored_len {
            return Err(corrupt(blob, offset, "frame lengths do not add up".into()));
        }
        let any_compressed = frames.iter().any(|f| f.compressed);
        if any_compressed != (h.flags & FLAG_COMPRESSED != 0) {
            return Err(corrupt(
                blob,
                offset,
                "compressed flag disagrees with the frames".into(),
            ));
        }
        Ok(FrameTable { frames })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tombstone() -> RecordHeader {
        RecordHeader {
            flags: FLAG_TOMBSTONE,
            column: 0,
            key: Key([7; 32]),
            value_len: 0,
            stored_len: 0,
            timestamp_ns: 42,
            frame_len: 65536,
            frame_count: 0,
            value_crc: 0,
            table_crc: crc32(&[]),
        }
    }

    fn reseal(b: &mut [u8; RECORD_HEADER_LEN]) {
        let crc = crc32(&b[0..84]);
        b[84..88].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn header_round_trip() {
        let h = tombstone();
        assert_eq!(RecordHeader::decode(&h.encode(), 1, 0).ok(), Some(h));
    }

    #[test]
    fn header_rejects_truncated_bad_magic_and_bad_crc() {
        let b = tombstone().encode();
        assert!(matches!(
            RecordHeader::decode(&b[..87], 1, 9),
            Err(Error::Truncated {
                offset: 9,
                need: 88,
                have: 87,
                ..
            })
        ));
        let mut m = b;
        m[0] = 0;
        assert!(RecordHeader::decode(&m, 1, 0).is_err_and(|e| e.to_string().contains("magic")));
        let mut c = b;
        c[50] ^= 0x10;
        assert!(matches!(
            RecordHeader::decode(&c, 3, 100),
            Err(Error::ChecksumMismatch {
                blob: 3,
                offset: 100,
                ..
            })
        ));
    }

    #[test]
    fn header_rejects_overflowing_lengths() {
        let mut b = tombstone().encode();
        b[40..48].copy_from_slice(&u64::MAX.to_le_bytes());
        b[4..6].copy_from_slice(&0u16.to_le_bytes());
        reseal(&mut b);
        let e = RecordHeader::decode(&b, 1, 0).err().map(|e| e.to_string());
        assert!(
            e.is_some_and(|e| e.contains("value length")),
            "overflowing value length"
        );

        let mut b = tombstone().encode();
        b[48..56].copy_from_slice(&u64::MAX.to_le_bytes());
        reseal(&mut b);
        let e = RecordHeader::decode(&b, 1, 0).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("stored length")));

        let mut b = tombstone().encode();
        b[64..68].copy_from_slice(&3u32.to_le_bytes());
        reseal(&mut b);
        let e = RecordHeader::decode(&b, 1, 0).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("frame length")));
    }

    #[test]
    fn header_rejects_unknown_flags() {
        let mut b = tombstone().encode();
        b[4..6].copy_from_slice(&0x8000u16.to_le_bytes());
        reseal(&mut b);
        let e = RecordHeader::decode(&b, 1, 0).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("unknown record flags")));
    }
}
