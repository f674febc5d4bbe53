//! Values as frames: a value is cut into `frame_len`-byte frames, each stored raw or
//! Snappy-compressed with its own CRC, so a range read touches and verifies only its frames.

use super::crc32;
pub use super::frame_walk::{frames_for_range, RecordPlace};
use super::frame_walk::{read_range, FrameDecoder, FrameSource, Frames, InRecord};
use super::record::{
    FrameEntry, FrameTable, RecordHeader, FLAG_COMPRESSED, FLAG_PATCH, FRAME_COMPRESSED_BIT,
    FRAME_ENTRY_LEN, MAX_VALUE_LEN, PATCH_ENTRY_LEN, RECORD_HEADER_LEN,
};
use crate::error::{Error, Result};
use crate::key::Key;

/// What a record says besides its value.
#[derive(Debug, Clone, Copy)]
pub struct RecordSpec {
    pub key: Key,
    pub column: u16,
    pub flags: u16,
    pub timestamp_ns: u64,
    pub frame_len: u32,
    pub compress: bool,
}

/// Encodes records; keeps its Snappy state and scratch buffer between calls.
pub struct RecordEncoder {
    snappy: snap::raw::Encoder,
    scratch: Vec<u8>,
}

impl Default for RecordEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordEncoder {
    pub fn new() -> Self {
        RecordEncoder {
            snappy: snap::raw::Encoder::new(),
            scratch: Vec::new(),
        }
    }

    /// Appends one whole record (header, frame table, frames) for `value` to `out` and
    /// returns its header. A frame is stored compressed only when that makes it smaller.
    pub fn encode(
        &mut self,
        spec: RecordSpec,
        value: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<RecordHeader> {
        let value_len = value.len() as u64;
        if value_len > MAX_VALUE_LEN {
            return Err(Error::TooLarge {
                what: "value length",
                got: value_len,
                limit: MAX_VALUE_LEN,
            });
        }
        let frame_len = spec.frame_len as usize;
        let frame_count = value.len().div_ceil(frame_len);
        let start = out.len();
        let table_at = start + RECORD_HEADER_LEN;
        let frames_at = table_at + frame_count * FRAME_ENTRY_LEN;
        out.resize(frames_at, 0);
        let mut flags = spec.flags;
        for (i, chunk) in value.chunks(frame_len).enumerate() {
            let (word, crc) = self.push_frame(chunk, spec.compress, out)?;
            if word & FRAME_COMPRESSED_BIT != 0 {
                flags |= FLAG_COMPRESSED;
            }
            let e = table_at + i * FRAME_ENTRY_LEN;
            out[e..e + 4].copy_from_slice(&word.to_le_bytes());
            out[e + 4..e + 8].copy_from_slice(&crc.to_le_bytes());
        }
        let counts = (frame_count, frames_at - table_at);
        Ok(write_header(
            out,
            start,
            &spec,
            flags,
            (value_len, crc32(value)),
            counts,
        ))
    }

    /// Appends a patch record (§6.7) of a `value_len`-byte value whose CRC is `value_crc`:
    /// frame `i` is `kept[i]` (a frame of an earlier record of the same blob) where that is
    /// `Some`, and otherwise is cut from `new`, which holds the logical bytes of frames
    /// `first..` in order.
    pub fn encode_patch(
        &mut self,
        spec: RecordSpec,
        (value_len, value_crc): (u64, u32),
        kept: &[Option<KeptFrame>],
        (first, new): (u32, &[u8]),
        out: &mut Vec<u8>,
    ) -> Result<RecordHeader> {
        let fl = u64::from(spec.frame_len);
        if value_len > MAX_VALUE_LEN || value_len.div_ceil(fl) != kept.len() as u64 {
            return Err(Error::Internal(format!(
                "patch of {} frames for a value of {value_len} bytes",
                kept.len()
            )));
        }
        let start = out.len();
        let table_at = start + RECORD_HEADER_LEN;
        let frames_at = table_at + kept.len() * PATCH_ENTRY_LEN;
        out.resize(frames_at, 0);
        let mut flags = spec.flags | FLAG_PATCH;
        for (i, k) in kept.iter().enumerate() {
            let (word, crc, at) = match k {
                Some(k) => (k.word, k.crc, k.at),
                None => {
                    let chunk = new_frame(new, first, i, fl, value_len)?;
                    let (word, crc) = self.push_frame(chunk, spec.compress, out)?;
                    (word, crc, 0)
                }
            };
            if word & FRAME_COMPRESSED_BIT != 0 {
                flags |= FLAG_COMPRESSED;
            }
            let e = table_at + i * PATCH_ENTRY_LEN;
            out[e..e + 4].copy_from_slice(&word.to_le_bytes());
            out[e + 4..e + 8].copy_from_slice(&crc.to_le_bytes());
            out[e + 8..e + 16].copy_from_slice(&at.to_le_bytes());
        }
        let counts = (kept.len(), frames_at - table_at);
        Ok(write_header(
            out,
            start,
            &spec,
            flags,
            (value_len, value_crc),
            counts,
        ))
    }

    /// Appends one frame, compressed when that saves space; returns its table word and CRC.
    fn push_frame(
        &mut self,
        chunk: &[u8],
        compress: bool,
        out: &mut Vec<u8>,
    ) -> Result<(u32, u32)> {
        if compress {
            self.scratch
                .resize(snap::raw::max_compress_len(chunk.len()), 0);
            let n = self
                .snappy
                .compress(chunk, &mut self.scratch)
                .map_err(|e| Error::InvalidConfig(format!("snappy: {e}")))?;
            if n < chunk.len() {
                let stored = &self.scratch[..n];
                out.extend_from_slice(stored);
                return Ok((n as u32 | FRAME_COMPRESSED_BIT, crc32(stored)));
            }
        }
        out.extend_from_slice(chunk);
        Ok((chunk.len() as u32, crc32(chunk)))
    }
}

/// Fills in the header of the record that starts at `start` of `out` (its frame table of
/// `table_len` bytes and its frames follow it, to the end of `out`) and returns it.
fn write_header(
    out: &mut [u8],
    start: usize,
    spec: &RecordSpec,
    flags: u16,
    (value_len, value_crc): (u64, u32),
    (frame_count, table_len): (usize, usize),
) -> RecordHeader {
    let table_at = start + RECORD_HEADER_LEN;
    let h = RecordHeader {
        flags,
        column: spec.column,
        key: spec.key,
        value_len,
        stored_len: (out.len() - table_at) as u64,
        timestamp_ns: spec.timestamp_ns,
        frame_len: spec.frame_len,
        frame_count: frame_count as u32,
        value_crc,
        table_crc: crc32(&out[table_at..table_at + table_len]),
    };
    out[start..table_at].copy_from_slice(&h.encode());
    h
}

/// The patch record `rec` (header `h`, at `offset` of blob `blob`) as a plain record of the
/// same value: every frame's stored bytes in place, kept frames fetched with `fetch(at, len)`
/// from the blob, each checked against its CRC. Defragmentation copies a patch this way, so
/// the copy needs nothing of the blob it leaves.
pub fn unpatched(
    h: &RecordHeader,
    rec: &[u8],
    (blob, offset): (u32, u64),
    mut fetch: impl FnMut(u64, u32) -> Result<Vec<u8>>,
) -> Result<Vec<u8>> {
    let table = FrameTable::decode(h, rec.get(RECORD_HEADER_LEN..).unwrap_or(&[]), blob, offset)?;
    let table_at = RECORD_HEADER_LEN;
    let frames_at = table_at + table.frames.len() * FRAME_ENTRY_LEN;
    let mut out = vec![0u8; frames_at];
    let frames = Frames {
        h,
        table: &table,
        place: RecordPlace { blob, offset },
    };
    let mut read_kept = |at: u64, len: u32, buf: &mut Vec<u8>| {
        *buf = fetch(at, len)?;
        Ok(())
    };
    let mut src = InRecord::new(rec, h);
    src.kept = Some(&mut read_kept);
    frames.walk_all(&mut src, &mut |i, e, stored| {
        out.extend_from_slice(stored);
        let word = e.stored_len
            | if e.compressed {
                FRAME_COMPRESSED_BIT
            } else {
                0
            };
        let at = table_at + i as usize * FRAME_ENTRY_LEN;
        out[at..at + 4].copy_from_slice(&word.to_le_bytes());
        out[at + 4..at + 8].copy_from_slice(&e.crc.to_le_bytes());
        Ok(())
    })?;
    let plain = RecordHeader {
        flags: h.flags & !FLAG_PATCH,
        stored_len: (out.len() - table_at) as u64,
        table_crc: crc32(&out[table_at..frames_at]),
        ..*h
    };
    out[..table_at].copy_from_slice(&plain.encode());
    Ok(out)
}

/// A frame a patch record keeps from an earlier record of its blob: its table word and CRC,
/// and the file offset of its stored bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeptFrame {
    pub word: u32,
    pub crc: u32,
    pub at: u64,
}

/// The logical bytes of frame `i` in `new` (which starts with frame `first`).
fn new_frame(new: &[u8], first: u32, i: usize, fl: u64, value_len: u64) -> Result<&[u8]> {
    let logical = (value_len - i as u64 * fl).min(fl) as usize;
    let from = (i as u64)
        .checked_sub(u64::from(first))
        .map(|n| (n * fl) as usize);
    from.and_then(|f| new.get(f..f + logical))
        .ok_or_else(|| Error::Internal(format!("patch frame {i} neither kept nor given")))
}

/// Decodes logical bytes `offset..offset+len` from `area`, which holds the stored frames
/// of a plain record starting with frame `first`, onto `out`. Each frame's CRC is checked
/// before it is used, and a read of the whole value checks the value's CRC (see
/// [`read_range`]).
pub fn extract_range(
    h: &RecordHeader,
    table: &FrameTable,
    first: u32,
    area: &[u8],
    range: (u64, u64),
    place: RecordPlace,
    out: &mut Vec<u8>,
) -> Result<()> {
    if range.1 == 0 {
        return Ok(());
    }
    let base = table
        .frames
        .get(first as usize)
        .map_or(0, |f| f.stored_offset);
    let frames = Frames { h, table, place };
    read_range(
        &frames,
        range,
        &mut Area { bytes: area, base },
        &mut FrameDecoder::default(),
        &mut |b| {
            out.extend_from_slice(b);
            Ok(())
        },
    )
}

/// Stored frames in memory, the first at frame-area offset `base`, each where the table puts
/// it (a patch's kept frame where an own frame in its place would be).
struct Area<'a> {
    bytes: &'a [u8],
    base: u64,
}

impl FrameSource for Area<'_> {
    fn group_limit(&self) -> u64 {
        u64::MAX
    }

    fn own(&mut self, from: u64, len: u64) -> Result<&[u8]> {
        let start = from.checked_sub(self.base).map(|s| s as usize);
        start
            .and_then(|s| self.bytes.get(s..s + len as usize))
            .ok_or(Error::Truncated {
                what: "frame data",
                offset: from,
                need: len,
                have: self.bytes.len() as u64,
            })
    }

    /// A patch's kept frame, as given in the area: its bytes where an own frame in its place
    /// would be.
    fn kept(&mut self, e: FrameEntry, _at: u64) -> Result<Option<&[u8]>> {
        self.own(e.stored_offset, u64::from(e.stored_len)).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(compress: bool, frame_len: u32) -> RecordSpec {
        RecordSpec {
            key: Key([1; 32]),
            column: 0,
            flags: 0,
            timestamp_ns: 5,
            frame_len,
            compress,
        }
    }

    fn decode_all(rec: &[u8], offset: u64, len: u64) -> Result<Vec<u8>> {
        let h = RecordHeader::decode(rec, 0, 0)?;
        let t = FrameTable::decode(&h, &rec[RECORD_HEADER_LEN..], 0, 0)?;
        let area = &rec[RECORD_HEADER_LEN + h.table_len()..];
        let mut out = Vec::new();
        if len > 0 {
            let (first, _) = frames_for_range(&h, offset, len);
            let base = t.frames[first as usize].stored_offset as usize;
            let place = RecordPlace { blob: 0, offset: 0 };
            extract_range(&h, &t, first, &area[base..], (offset, len), place, &mut out)?;
        }
        Ok(out)
    }

    fn value(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i / 7 % 251) as u8).collect()
    }

    #[test]
    fn ranges_across_frames_raw_and_compressed() {
        let v = value(20_000);
        for compress in [false, true] {
            let mut rec = Vec::new();
            let h = RecordEncoder::new()
                .encode(spec(compress, 4096), &v, &mut rec)
                .ok();
            assert_eq!(h.map(|h| h.frame_count), Some(5));
            assert_eq!(h.map(|h| h.flags & FLAG_COMPRESSED != 0), Some(compress));
            for (o, l) in [
                (0, 20_000),
                (4095, 2),
                (4096, 4096),
                (19_999, 1),
                (100, 12_000),
            ] {
                let got = decode_all(&rec, o, l).ok();
                assert_eq!(got.as_deref(), Some(&v[o as usize..(o + l) as usize]));
            }
        }
    }

    #[test]
    fn incompressible_data_is_stored_raw() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let v: Vec<u8> = (0..10_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut rec = Vec::new();
        let h = RecordEncoder::new()
            .encode(spec(true, 4096), &v, &mut rec)
            .ok();
        assert_eq!(h.map(|h| h.flags & FLAG_COMPRESSED), Some(0));
    }

    #[test]
    fn flipped_frame_byte_is_a_checksum_error_not_data() {
        let v = value(9000);
        for compress in [false, true] {
            let mut rec = Vec::new();
            assert!(RecordEncoder::new()
                .encode(spec(compress, 4096), &v, &mut rec)
                .is_ok());
            let last = rec.len() - 1;
            rec[last] ^= 0xFF;
            assert!(matches!(
                decode_all(&rec, 8192, 100),
                Err(Error::ChecksumMismatch {
                    what: "frame data",
                    ..
                })
            ));
            // A range that does not touch the damaged frame still reads.
            assert_eq!(decode_all(&rec, 0, 100).ok().as_deref(), Some(&v[..100]));
        }
    }

    #[test]
    fn flipped_table_byte_is_detected() {
        let mut rec = Vec::new();
        assert!(RecordEncoder::new()
            .encode(spec(false, 4096), &value(5000), &mut rec)
            .is_ok());
        rec[RECORD_HEADER_LEN + 1] ^= 1;
        assert!(matches!(
            decode_all(&rec, 0, 10),
            Err(Error::ChecksumMismatch {
                what: "frame table",
                ..
            })
        ));
    }

    #[test]
    fn empty_value_has_no_frames() {
        let mut rec = Vec::new();
        let h = RecordEncoder::new()
            .encode(spec(true, 4096), &[], &mut rec)
            .ok();
        assert_eq!(h.map(|h| (h.frame_count, h.stored_len)), Some((0, 0)));
        assert_eq!(rec.len(), RECORD_HEADER_LEN);
        assert_eq!(decode_all(&rec, 0, 0).ok(), Some(vec![]));
    }

    /// A patch read frame by frame, each frame's stored bytes given as the area (the kept
    /// ones fetched from the earlier record), as the record fuzz target reads one. Found by
    /// `fuzz/record_decode` when the frame walk first refused kept frames in an area.
    #[test]
    fn a_patch_reads_frame_by_frame_with_kept_frames_in_the_area() -> Result<()> {
        let fl = 4096u32;
        let base: Vec<u8> = value(3 * fl as usize);
        let mut blob = Vec::new();
        let h = RecordEncoder::new().encode(spec(false, fl), &base, &mut blob)?;
        let t = FrameTable::decode(&h, &blob[RECORD_HEADER_LEN..], 0, 0)?;
        // Frame 1 rewritten, frames 0 and 2 kept from the record at offset 0.
        let mut new_value = base.clone();
        new_value[fl as usize..2 * fl as usize].fill(7);
        let kept: Vec<Option<KeptFrame>> = (0..3)
            .map(|i| {
                let e = t.frames[i];
                (i != 1).then_some(KeptFrame {
                    word: e.stored_len,
                    crc: e.crc,
                    at: e.file_offset(&h, 0),
                })
            })
            .collect();
        let at = blob.len() as u64;
        let changed = &new_value[fl as usize..2 * fl as usize];
        let value_crc = crc32(&new_value);
        let ph = RecordEncoder::new().encode_patch(
            spec(false, fl),
            (new_value.len() as u64, value_crc),
            &kept,
            (1, changed),
            &mut blob,
        )?;
        let pt = FrameTable::decode(&ph, &blob[at as usize + RECORD_HEADER_LEN..], 0, at)?;
        let place = RecordPlace {
            blob: 0,
            offset: at,
        };
        let mut out = Vec::new();
        for (i, e) in pt.frames.iter().enumerate() {
            let from = e.file_offset(&ph, at) as usize;
            let stored = &blob[from..from + e.stored_len as usize];
            let start = i as u64 * u64::from(fl);
            let len = (ph.value_len - start).min(u64::from(fl));
            extract_range(&ph, &pt, i as u32, stored, (start, len), place, &mut out)?;
        }
        assert_eq!(out, new_value);
        Ok(())
    }
}
