//! Streamed writes: a value read from a source as it is written, so a large value is never
//! held whole (a committed upload, say). Frames are stored raw; the record's header goes
//! first in a provisional form, so a crash or a failing source mid-way leaves a torn record
//! that recovery truncates or skips as a unit, never bytes it would search for records.
//!
//! The writer lock is held while the source is read: the source should be local (a file).

use std::io::Read;

use crate::blob::Blob;
use crate::commit::LogPos;
use crate::config::WriteOptions;
use crate::engine::{Engine, Inner};
use crate::error::{Error, Result};
use crate::format::frames::RecordSpec;
use crate::format::stream_encoder::StreamEncoder;
use crate::key::Key;
use crate::log::{Active, Log};
use crate::writer::Purpose;

impl Engine {
    /// Stores exactly `len` bytes read from `source` in `column` of `key`, holding one frame
    /// at a time. Frames are stored uncompressed (`opts.compress` is ignored).
    pub fn write_stream(
        &self,
        key: &Key,
        column: u16,
        len: u64,
        source: &mut dyn Read,
        opts: WriteOptions,
    ) -> Result<()> {
        let c = &self.inner().config;
        let (timestamp_ns, if_newer) = opts.newer_than_stored(crate::engine::now_ns);
        let spec = RecordSpec {
            key: *key,
            column,
            flags: 0,
            timestamp_ns,
            frame_len: c.frame_len,
            compress: false,
        };
        let target = self.inner().append_stream(spec, len, source, if_newer)?;
        self.wait(target, opts.durability.unwrap_or(c.durability))
    }
}

impl Inner {
    fn append_stream(
        &self,
        spec: RecordSpec,
        len: u64,
        source: &mut dyn Read,
        if_newer: Option<u64>,
    ) -> Result<LogPos> {
        let mut enc = StreamEncoder::new(spec, len)?;
        let purpose = Purpose::New {
            tombstone: false,
            if_newer,
            expected: None,
        };
        let target = self.target(&spec.key, spec.column, purpose)?;
        let record_len = enc.record_len();
        self.append(target, record_len, None, |log, a| {
            write_streamed(log, a, &mut enc, source)
        })?
        .ok_or_else(|| Error::Internal("a streamed record was refused a blob".into()))
    }
}

/// Writes the record at the end of the active blob, straight to the file; returns its
/// offset. If the source fails, the file is cut back to where the record began.
fn write_streamed(
    log: &Log,
    a: &mut Active,
    enc: &mut StreamEncoder,
    source: &mut dyn Read,
) -> Result<u64> {
    log.flush(a)?;
    let blob = a.blob().clone();
    let offset = blob.flushed();
    let end = offset + enc.record_len();
    match stream_frames(log, &blob, enc, source, offset) {
        Ok(()) => {
            blob.set_flushed(end);
            Ok(offset)
        }
        Err(e) => {
            if blob.file.set_len(offset).is_err() {
                log.poison(format!("could not cut back a failed streamed write: {e}"));
            }
            Err(e)
        }
    }
}

fn stream_frames(
    log: &Log,
    blob: &Blob,
    enc: &mut StreamEncoder,
    source: &mut dyn Read,
    offset: u64,
) -> Result<()> {
    log.write_or_poison(blob, &enc.provisional_header(), offset)?;
    let mut at = offset + enc.frames_offset();
    let mut frame = vec![0u8; enc.next_frame_len()];
    while enc.next_frame_len() > 0 {
        let n = enc.next_frame_len();
        source
            .read_exact(&mut frame[..n])
            .map_err(|e| Error::io("read", "the streamed value's source", e))?;
        enc.push(&frame[..n])?;
        log.write_or_poison(blob, &frame[..n], at)?;
        at += n as u64;
    }
    let head = enc.finish()?;
    log.write_or_poison(blob, &head, offset)
}
