//! Streamed writes: a value read from a source as it is written, so a large value is never
//! held whole (a committed upload, say). Frames are stored raw; the record's header goes
//! first in a provisional form, so a crash or a failing source mid-way leaves a torn record
//! that recovery truncates or skips as a unit, never bytes it would search for records.
//!
//! The writer lock is held while the source is read: the source should be local (a file).

use std::io::Read;

use crate::commit::LogPos;
use crate::config::WriteOptions;
use crate::engine::{Engine, Inner};
use crate::error::{Error, Result};
use crate::format::frames::RecordSpec;
use crate::format::stream_encoder::StreamEncoder;
use crate::key::Key;
use crate::writer::{Active, Target};

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
        let probe = self.probe_sealed(&spec.key, spec.column, true)?;
        let mut a = self.active.lock();
        self.check_writable()?;
        let sealed = if self.needs_rotation(&a, enc.record_len()) {
            Some(self.rotate_locked(&mut a)?)
        } else {
            None
        };
        let target = Target {
            key: &spec.key,
            column: spec.column,
            tombstone: false,
            probe,
            if_newer,
            expected: None,
        };
        let record_len = enc.record_len();
        let result = self.append_with(&mut a, target, record_len, |inner, a| {
            inner.write_streamed(a, &mut enc, source)
        });
        drop(a);
        self.finish_seal(sealed);
        result
    }

    /// Writes the record at the end of the active blob, straight to the file; returns its
    /// offset. If the source fails, the file is cut back to where the record began.
    fn write_streamed(
        &self,
        a: &mut Active,
        enc: &mut StreamEncoder,
        source: &mut dyn Read,
    ) -> Result<u64> {
        self.flush_locked(a)?;
        let offset = a.blob.flushed();
        let end = offset + enc.record_len();
        match self.stream_frames(a, enc, source, offset) {
            Ok(()) => {
                a.blob.set_flushed(end);
                Ok(offset)
            }
            Err(e) => {
                if a.blob.file.set_len(offset).is_err() {
                    self.poison(format!("could not cut back a failed streamed write: {e}"));
                }
                Err(e)
            }
        }
    }

    fn stream_frames(
        &self,
        a: &Active,
        enc: &mut StreamEncoder,
        source: &mut dyn Read,
        offset: u64,
    ) -> Result<()> {
        let blob = a.blob.clone();
        self.write_or_poison(&blob, &enc.provisional_header(), offset)?;
        let mut at = offset + enc.frames_offset();
        let mut frame = vec![0u8; enc.next_frame_len()];
        while enc.next_frame_len() > 0 {
            let n = enc.next_frame_len();
            source
                .read_exact(&mut frame[..n])
                .map_err(|e| Error::io("read", "the streamed value's source", e))?;
            enc.push(&frame[..n])?;
            self.write_or_poison(&blob, &frame[..n], at)?;
            at += n as u64;
        }
        let head = enc.finish()?;
        self.write_or_poison(&blob, &head, offset)
    }
}
