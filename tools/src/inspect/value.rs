//! Reading and checking one record's value: its frame table, every frame's CRC and, when
//! asked, decompression of compressed frames and the whole-value CRC (`value_crc`) over the
//! logical bytes. Frames are read in bounded groups, so a 1 GiB value never sits in memory.

use std::io;

use crc32fast::Hasher;
use ringblob_engine::format::crc32;
use ringblob_engine::format::record::{FrameEntry, FrameTable, RecordHeader, RECORD_HEADER_LEN};
use ringblob_engine::io::DeviceFile;
use ringblob_engine::{Error, Result};

/// Frames are read in groups of at most this many bytes (or one frame, if larger).
const READ_CHUNK: u64 = 8 << 20;

/// How far to check a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Frame table and each frame's CRC over its stored bytes (what the engine's recovery
    /// scan checks).
    Frames,
    /// Also decompress every compressed frame and check `value_crc` over the logical value.
    Value,
}

/// Where the record is.
#[derive(Clone, Copy)]
pub struct Place<'a> {
    pub file: &'a dyn DeviceFile,
    /// File name, for error messages.
    pub name: &'a str,
    pub blob: u32,
    /// File offset of the record header.
    pub offset: u64,
}

/// Receives a value's logical bytes, frame by frame.
pub type Sink<'a> = dyn FnMut(&[u8]) -> io::Result<()> + 'a;

/// Reusable buffers and Snappy state for checking values.
pub struct ValueReader {
    /// Kept apart from `stored` so neither shrinks and regrows (zero-filling) per record.
    table: Vec<u8>,
    stored: Vec<u8>,
    plain: Vec<u8>,
    snappy: snap::raw::Decoder,
}

impl Default for ValueReader {
    fn default() -> Self {
        Self::new()
    }
}

/// What every frame check needs to know about its record.
struct Ctx<'a, 'b> {
    at: &'a Place<'b>,
    h: &'a RecordHeader,
    /// File offset of the frame area.
    area: u64,
    depth: Depth,
}

impl ValueReader {
    pub fn new() -> Self {
        ValueReader {
            table: Vec::new(),
            stored: Vec::new(),
            plain: Vec::new(),
            snappy: snap::raw::Decoder::new(),
        }
    }

    /// Checks the value of record `h` at `at`. With [`Depth::Value`], `sink` gets the
    /// logical bytes of each frame once that frame has passed its checks; the whole-value
    /// CRC can only be judged at the end, after the last frame was passed on.
    /// Damage is an `Err` for which `is_corruption()` holds; anything else is IO.
    pub fn check(
        &mut self,
        at: Place<'_>,
        h: &RecordHeader,
        depth: Depth,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        self.check_in(at, h, None, depth, sink)
    }

    /// [`check`](Self::check) for a record that is already in memory: `rec` holds its
    /// `record_len()` bytes (header, frame table, frames), and `at.file` is not read.
    pub fn check_bytes(
        &mut self,
        at: Place<'_>,
        h: &RecordHeader,
        rec: &[u8],
        depth: Depth,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        self.check_in(at, h, Some(rec), depth, sink)
    }

    /// The frames come from `rec` when given, else from `at.file` in bounded groups.
    fn check_in(
        &mut self,
        at: Place<'_>,
        h: &RecordHeader,
        rec: Option<&[u8]>,
        depth: Depth,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        let table = match rec {
            Some(rec) => {
                let b = in_record(&at, rec, RECORD_HEADER_LEN as u64, h.table_len() as u64)?;
                FrameTable::decode(h, b, at.blob, at.offset)?
            }
            None => self.read_table(&at, h)?,
        };
        let table_end = RECORD_HEADER_LEN as u64 + h.table_len() as u64;
        let ctx = Ctx {
            at: &at,
            h,
            area: at.offset + table_end,
            depth,
        };
        let frames = table.frames.as_slice();
        let mut value = Hasher::new();
        let ValueReader {
            stored,
            plain,
            snappy,
            ..
        } = self;
        let mut i = 0;
        while let Some(first) = frames.get(i) {
            if let Some(kept_at) = first.at {
                // A patch record's frame kept from an earlier record of the blob (§6.7).
                stored.resize(first.stored_len as usize, 0);
                at.file
                    .read_exact_at(stored, kept_at)
                    .map_err(|e| Error::io("read", at.name, e))?;
                let pass = (&mut *plain, &mut *snappy);
                check_frame(&ctx, pass, stored, (i, *first), &mut value, sink)?;
                i += 1;
                continue;
            }
            let group = group_len(&frames[i..]);
            let from = first.stored_offset;
            let to = frames
                .get(i + group - 1)
                .map_or(from, |f| f.stored_offset + u64::from(f.stored_len));
            let group_bytes: &[u8] = match rec {
                Some(rec) => in_record(&at, rec, table_end + from, to - from)?,
                None => {
                    stored.resize((to - from) as usize, 0);
                    at.file
                        .read_exact_at(stored, ctx.area + from)
                        .map_err(|e| Error::io("read", at.name, e))?;
                    stored
                }
            };
            for (k, e) in frames[i..i + group].iter().enumerate() {
                let start = (e.stored_offset - from) as usize;
                let bytes = group_bytes
                    .get(start..start + e.stored_len as usize)
                    .unwrap_or(&[]);
                check_frame(
                    &ctx,
                    (&mut *plain, &mut *snappy),
                    bytes,
                    (i + k, *e),
                    &mut value,
                    sink,
                )?;
            }
            i += group;
        }
        let got = value.finalize();
        if depth == Depth::Value && got != h.value_crc {
            return Err(Error::ChecksumMismatch {
                what: "value",
                blob: at.blob,
                offset: at.offset,
                expected: h.value_crc,
                got,
            });
        }
        Ok(())
    }

    fn read_table(&mut self, at: &Place<'_>, h: &RecordHeader) -> Result<FrameTable> {
        self.table.resize(h.table_len(), 0);
        at.file
            .read_exact_at(&mut self.table, at.offset + RECORD_HEADER_LEN as u64)
            .map_err(|e| Error::io("read", at.name, e))?;
        FrameTable::decode(h, &self.table, at.blob, at.offset)
    }
}

/// `n` bytes at `from` (relative to the record start) of an in-memory record. The frame
/// table's own checks keep every frame inside the record, so this fails only if `rec` is
/// shorter than the record.
fn in_record<'r>(at: &Place<'_>, rec: &'r [u8], from: u64, n: u64) -> Result<&'r [u8]> {
    let (from, to) = (from as usize, (from + n) as usize);
    rec.get(from..to).ok_or(Error::Truncated {
        what: "record",
        offset: at.offset,
        need: to as u64,
        have: rec.len() as u64,
    })
}

/// How many frames stored in the record, from the start of `frames`, to read at once (at
/// least one; a patch's kept frame ends a group).
fn group_len(frames: &[FrameEntry]) -> usize {
    let Some(first) = frames.first() else {
        return 0;
    };
    let limit = first.stored_offset + READ_CHUNK;
    let n = frames
        .iter()
        .take_while(|f| f.at.is_none() && f.stored_offset + u64::from(f.stored_len) <= limit)
        .count();
    n.max(1)
}

/// Checks frame `i` (`stored` holds its stored bytes) and, at [`Depth::Value`], feeds its
/// logical bytes to `value` and `sink`.
fn check_frame(
    ctx: &Ctx<'_, '_>,
    (plain, snappy): (&mut Vec<u8>, &mut snap::raw::Decoder),
    stored: &[u8],
    (i, e): (usize, FrameEntry),
    value: &mut Hasher,
    sink: &mut Sink<'_>,
) -> Result<()> {
    let frame_at = e.at.unwrap_or(ctx.area + e.stored_offset);
    let got = crc32(stored);
    if got != e.crc {
        return Err(Error::ChecksumMismatch {
            what: "frame data",
            blob: ctx.at.blob,
            offset: frame_at,
            expected: e.crc,
            got,
        });
    }
    if ctx.depth == Depth::Frames {
        return Ok(());
    }
    let logical: &[u8] = if e.compressed {
        decompress(ctx.h, ctx.at.name, snappy, stored, (i, frame_at), plain)?;
        value.update(plain);
        plain
    } else {
        // The frame CRC is the CRC of these logical bytes: combine, do not rehash.
        value.combine(&Hasher::new_with_initial_len(got, stored.len() as u64));
        stored
    };
    sink(logical).map_err(|e| Error::io("write", "output", e))
}

/// Decompresses frame `i` (stored at file offset `at`) into `plain`, exactly its logical length.
fn decompress(
    h: &RecordHeader,
    file: &str,
    snappy: &mut snap::raw::Decoder,
    stored: &[u8],
    (i, at): (usize, u64),
    plain: &mut Vec<u8>,
) -> Result<()> {
    let want = h.frame_logical_len(i as u32) as usize;
    let bad = |reason: String| Error::Corrupt {
        what: "compressed frame",
        file: file.to_string(),
        offset: at,
        reason: format!("frame {i}: {reason}"),
    };
    let n = snap::raw::decompress_len(stored).map_err(|e| bad(e.to_string()))?;
    if n != want {
        return Err(bad(format!("decompresses to {n} bytes, expected {want}")));
    }
    plain.resize(want, 0);
    let got = snappy
        .decompress(stored, plain)
        .map_err(|e| bad(e.to_string()))?;
    if got != want {
        return Err(bad(format!("decompressed {got} bytes, expected {want}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringblob_engine::format::frames::{RecordEncoder, RecordSpec};
    use ringblob_engine::Key;

    /// A blob-like file: 32 bytes of padding, then one record.
    struct Mem(Vec<u8>);

    impl DeviceFile for Mem {
        fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
            let from = offset as usize;
            let src = self
                .0
                .get(from..from + buf.len())
                .ok_or(io::ErrorKind::UnexpectedEof)?;
            buf.copy_from_slice(src);
            Ok(())
        }
        fn write_all_at(&self, _: &[u8], _: u64) -> io::Result<()> {
            Err(io::ErrorKind::PermissionDenied.into())
        }
        fn len(&self) -> io::Result<u64> {
            Ok(self.0.len() as u64)
        }
        fn set_len(&self, _: u64) -> io::Result<()> {
            Err(io::ErrorKind::PermissionDenied.into())
        }
        fn sync_data(&self) -> io::Result<()> {
            Ok(())
        }
    }

    fn value(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i / 5 % 253) as u8).collect()
    }

    fn record(v: &[u8], compress: bool) -> Result<(Mem, RecordHeader)> {
        let spec = RecordSpec {
            key: Key([3; 32]),
            column: 0,
            flags: 0,
            timestamp_ns: 1,
            frame_len: 4096,
            compress,
        };
        let mut out = vec![0u8; 32];
        let h = RecordEncoder::new().encode(spec, v, &mut out)?;
        Ok((Mem(out), h))
    }

    fn read_back(m: &Mem, h: &RecordHeader, depth: Depth) -> Result<Vec<u8>> {
        let at = Place {
            file: m,
            name: "t",
            blob: 1,
            offset: 32,
        };
        let mut got = Vec::new();
        ValueReader::new().check(at, h, depth, &mut |b: &[u8]| {
            got.extend_from_slice(b);
            Ok(())
        })?;
        Ok(got)
    }

    #[test]
    fn raw_and_compressed_values_round_trip() -> Result<()> {
        for compress in [false, true] {
            let v = value(20_000);
            let (m, h) = record(&v, compress)?;
            assert_eq!(read_back(&m, &h, Depth::Value)?, v);
            assert!(read_back(&m, &h, Depth::Frames)?.is_empty());
        }
        let (m, h) = record(&[], false)?;
        assert!(read_back(&m, &h, Depth::Value)?.is_empty());
        Ok(())
    }

    #[test]
    fn flipped_frame_byte_is_bad_data() -> Result<()> {
        let (mut m, h) = record(&value(9000), false)?;
        let last = m.0.len() - 1;
        m.0[last] ^= 0x40;
        let e = read_back(&m, &h, Depth::Frames).err();
        assert!(matches!(
            e,
            Some(Error::ChecksumMismatch {
                what: "frame data",
                ..
            })
        ));
        Ok(())
    }

    #[test]
    fn wrong_value_crc_is_caught_only_at_value_depth() -> Result<()> {
        let (m, mut h) = record(&value(9000), true)?;
        h.value_crc ^= 1;
        assert!(read_back(&m, &h, Depth::Frames).is_ok());
        let e = read_back(&m, &h, Depth::Value).err();
        assert!(matches!(
            e,
            Some(Error::ChecksumMismatch { what: "value", .. })
        ));
        Ok(())
    }

    #[test]
    fn groups_hold_whole_frames() {
        let f = |stored_offset, stored_len| FrameEntry {
            stored_offset,
            stored_len,
            compressed: false,
            crc: 0,
            at: None,
        };
        let big = READ_CHUNK as u32;
        assert_eq!(group_len(&[f(0, 100), f(100, 100)]), 2);
        assert_eq!(group_len(&[f(0, big + 1), f(u64::from(big) + 1, 1)]), 1);
        assert_eq!(group_len(&[f(0, big - 10), f(u64::from(big) - 10, 20)]), 1);
        assert_eq!(group_len(&[]), 0);
    }
}
