//! Reading and checking one record's value: its frame table, every frame's CRC and, when
//! asked, decompression of compressed frames and the whole-value CRC (`value_crc`) over the
//! logical bytes. Frames are read in bounded groups, so a 1 GiB value never sits in memory.

use std::io;

use ringblob_engine::format::frame_walk::{
    read_range, FrameDecoder, FrameSource, Frames, InRecord, RecordPlace,
};
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
    decoder: FrameDecoder,
}

impl Default for ValueReader {
    fn default() -> Self {
        Self::new()
    }
}

impl ValueReader {
    pub fn new() -> Self {
        ValueReader {
            table: Vec::new(),
            stored: Vec::new(),
            decoder: FrameDecoder::default(),
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
        let table = self.read_table(&at, h)?;
        let mut src = InFile {
            at,
            area: at.offset + (RECORD_HEADER_LEN + h.table_len()) as u64,
            buf: &mut self.stored,
        };
        walk(&at, h, &table, depth, &mut src, &mut self.decoder, sink)
    }

    /// [`check`](Self::check) for a record that is already in memory: `rec` holds its
    /// `record_len()` bytes (header, frame table, frames), and `at.file` is read only for
    /// the frames a patch keeps from earlier records.
    pub fn check_bytes(
        &mut self,
        at: Place<'_>,
        h: &RecordHeader,
        rec: &[u8],
        depth: Depth,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        let end = RECORD_HEADER_LEN + h.table_len();
        let b = rec.get(RECORD_HEADER_LEN..end).ok_or(Error::Truncated {
            what: "record",
            offset: at.offset,
            need: end as u64,
            have: rec.len() as u64,
        })?;
        let table = FrameTable::decode(h, b, at.blob, at.offset)?;
        let mut read_kept = |kept_at: u64, len: u32, buf: &mut Vec<u8>| {
            buf.resize(len as usize, 0);
            at.file
                .read_exact_at(buf, kept_at)
                .map_err(|e| Error::io("read", at.name, e))
        };
        let mut src = InRecord::new(rec, h);
        src.kept = Some(&mut read_kept);
        walk(&at, h, &table, depth, &mut src, &mut self.decoder, sink)
    }

    fn read_table(&mut self, at: &Place<'_>, h: &RecordHeader) -> Result<FrameTable> {
        self.table.resize(h.table_len(), 0);
        at.file
            .read_exact_at(&mut self.table, at.offset + RECORD_HEADER_LEN as u64)
            .map_err(|e| Error::io("read", at.name, e))?;
        FrameTable::decode(h, &self.table, at.blob, at.offset)
    }
}

/// The engine's frame walk over the record, as deep as `depth` asks.
fn walk(
    at: &Place<'_>,
    h: &RecordHeader,
    table: &FrameTable,
    depth: Depth,
    src: &mut dyn FrameSource,
    decoder: &mut FrameDecoder,
    sink: &mut Sink<'_>,
) -> Result<()> {
    let frames = Frames {
        h,
        table,
        place: RecordPlace {
            blob: at.blob,
            offset: at.offset,
        },
    };
    match depth {
        Depth::Frames => frames.walk_all(src, &mut |_, _, _| Ok(())),
        Depth::Value => read_range(&frames, (0, h.value_len), src, decoder, &mut |b| {
            sink(b).map_err(|e| Error::io("write", "output", e))
        }),
    }
}

/// A record's frames read from its file, in groups of at most [`READ_CHUNK`] bytes.
struct InFile<'a, 'b> {
    at: Place<'b>,
    /// File offset of the record's frame area.
    area: u64,
    buf: &'a mut Vec<u8>,
}

impl FrameSource for InFile<'_, '_> {
    fn group_limit(&self) -> u64 {
        READ_CHUNK
    }

    fn own(&mut self, from: u64, len: u64) -> Result<&[u8]> {
        self.buf.resize(len as usize, 0);
        self.at
            .file
            .read_exact_at(self.buf, self.area + from)
            .map_err(|e| Error::io("read", self.at.name, e))?;
        Ok(self.buf)
    }

    fn kept(&mut self, e: FrameEntry, at: u64) -> Result<Option<&[u8]>> {
        self.buf.resize(e.stored_len as usize, 0);
        self.at
            .file
            .read_exact_at(self.buf, at)
            .map_err(|e| Error::io("read", self.at.name, e))?;
        Ok(Some(self.buf))
    }
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
}
