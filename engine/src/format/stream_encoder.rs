//! Encoding a record whose value arrives in pieces, without holding it: frames are stored
//! raw (their length, so the record's length, is known before the first byte), the frame
//! table and CRCs are accumulated, and the header is produced twice — a provisional one to
//! write first, so a crash mid-write leaves a torn record with an intact header (never bytes
//! that recovery would search for records), and the final one.

use super::crc32;
use super::frames::RecordSpec;
use super::record::{RecordHeader, FRAME_ENTRY_LEN, MAX_VALUE_LEN, RECORD_HEADER_LEN};
use crate::error::{Error, Result};

/// A record being encoded frame by frame.
pub struct StreamEncoder {
    spec: RecordSpec,
    value_len: u64,
    frame_count: u32,
    table: Vec<u8>,
    value_crc: crc32fast::Hasher,
    received: u64,
}

impl StreamEncoder {
    /// A record of exactly `value_len` bytes.
    pub fn new(spec: RecordSpec, value_len: u64) -> Result<Self> {
        if value_len > MAX_VALUE_LEN {
            return Err(Error::TooLarge {
                what: "value length",
                got: value_len,
                limit: MAX_VALUE_LEN,
            });
        }
        let frame_count = value_len.div_ceil(u64::from(spec.frame_len)) as u32;
        Ok(StreamEncoder {
            spec,
            value_len,
            frame_count,
            table: Vec::with_capacity(frame_count as usize * FRAME_ENTRY_LEN),
            value_crc: crc32fast::Hasher::new(),
            received: 0,
        })
    }

    /// Bytes from the record's start to its first frame.
    pub fn frames_offset(&self) -> u64 {
        RECORD_HEADER_LEN as u64 + u64::from(self.frame_count) * FRAME_ENTRY_LEN as u64
    }

    /// The whole record's length.
    pub fn record_len(&self) -> u64 {
        self.frames_offset() + self.value_len
    }

    /// The length of the next frame (0 once every frame was pushed).
    pub fn next_frame_len(&self) -> usize {
        (self.value_len - self.received).min(u64::from(self.spec.frame_len)) as usize
    }

    /// Takes the next frame's bytes (exactly [`next_frame_len`](Self::next_frame_len)); they
    /// are stored as they are.
    pub fn push(&mut self, frame: &[u8]) -> Result<()> {
        if frame.is_empty() || frame.len() != self.next_frame_len() {
            return Err(Error::InvalidConfig(format!(
                "stream frame of {} bytes where {} were due",
                frame.len(),
                self.next_frame_len()
            )));
        }
        self.table
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.table.extend_from_slice(&crc32(frame).to_le_bytes());
        self.value_crc.update(frame);
        self.received += frame.len() as u64;
        Ok(())
    }

    fn header(&self, value_crc: u32, table_crc: u32) -> RecordHeader {
        RecordHeader {
            flags: self.spec.flags,
            column: self.spec.column,
            key: self.spec.key,
            value_len: self.value_len,
            stored_len: self.record_len() - RECORD_HEADER_LEN as u64,
            timestamp_ns: self.spec.timestamp_ns,
            frame_len: self.spec.frame_len,
            frame_count: self.frame_count,
            value_crc,
            table_crc,
        }
    }

    /// A header with the record's true lengths and zero CRCs of value and table: intact, so
    /// recovery treats the record as one unit, yet failing its full check until replaced.
    pub fn provisional_header(&self) -> [u8; RECORD_HEADER_LEN] {
        self.header(0, 0).encode()
    }

    /// Once every frame was pushed: the final header followed by the frame table.
    pub fn finish(&self) -> Result<Vec<u8>> {
        if self.received != self.value_len {
            return Err(Error::InvalidConfig(format!(
                "stream ended after {} of {} bytes",
                self.received, self.value_len
            )));
        }
        let h = self.header(self.value_crc.clone().finalize(), crc32(&self.table));
        let mut out = h.encode().to_vec();
        out.extend_from_slice(&self.table);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::frames::RecordEncoder;
    use crate::key::Key;

    fn spec() -> RecordSpec {
        RecordSpec {
            key: Key([9; 32]),
            column: 3,
            flags: 0,
            timestamp_ns: 77,
            frame_len: 4096,
            compress: false,
        }
    }

    #[test]
    fn streamed_record_is_byte_for_byte_the_buffered_one() {
        for len in [0usize, 1, 4096, 4097, 10_000] {
            let value: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut whole = Vec::new();
            assert!(RecordEncoder::new()
                .encode(spec(), &value, &mut whole)
                .is_ok());
            let mut s = StreamEncoder::new(spec(), len as u64).expect("size");
            let mut frames = Vec::new();
            let mut at = 0;
            while s.next_frame_len() > 0 {
                let n = s.next_frame_len();
                assert!(s.push(&value[at..at + n]).is_ok());
                frames.extend_from_slice(&value[at..at + n]);
                at += n;
            }
            assert_eq!(s.record_len() as usize, whole.len());
            let mut rec = s.finish().expect("complete");
            rec.extend_from_slice(&frames);
            assert_eq!(rec, whole, "{len} bytes");
        }
    }

    #[test]
    fn short_streams_and_wrong_frames_are_refused() {
        let mut s = StreamEncoder::new(spec(), 5000).expect("size");
        assert!(s.push(&[0; 100]).is_err());
        assert!(s.push(&[0; 4096]).is_ok());
        assert!(s.finish().is_err());
        assert!(StreamEncoder::new(spec(), MAX_VALUE_LEN + 1).is_err());
    }
}
