//! A batch's reply bytes: small replies accumulate in one buffer; large values go out as
//! shared slices of the value itself, never copied into the buffer.

use bytes::{Bytes, BytesMut};

use super::read_stream::ReadStream;

/// Reply bytes in order, as chunks to write one after another, and the rest of a streamed
/// READ reply that ends them, if one does.
#[derive(Default)]
pub struct Output {
    chunks: Vec<Bytes>,
    cur: BytesMut,
    sealed_len: usize,
    stream: Option<ReadStream>,
    /// Changes clients made that subscriptions want (published once the replies are out).
    changes: Vec<super::subscriptions::Change>,
}

/// Room made at once for each small reply of a batch (a 100-byte value's `READ` reply is
/// ~220 bytes): growing the buffer reply by reply cost ~2 % of a node's CPU serving
/// pipelined small GETs.
const SMALL_REPLY_ROOM: usize = 256;

/// The most made at once, whatever the batch.
const MAX_ROOM: usize = 64 << 10;

impl Output {
    /// An output with room for `frames` small replies, no more than `cap` bytes.
    pub fn for_frames(frames: usize, cap: usize) -> Output {
        let room = SMALL_REPLY_ROOM
            .saturating_mul(frames)
            .min(cap)
            .min(MAX_ROOM);
        Output {
            cur: BytesMut::with_capacity(room),
            ..Output::default()
        }
    }

    /// The buffer small replies are encoded into.
    pub fn buf(&mut self) -> &mut BytesMut {
        &mut self.cur
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.sealed_len + self.cur.len()
    }

    /// Ends the output with a streamed reply's first piece (already appended): nothing may
    /// follow it but the stream's other pieces.
    pub fn set_stream(&mut self, stream: ReadStream) {
        self.stream = Some(stream);
    }

    /// Whether the output ends with a streamed reply.
    pub fn streaming(&self) -> bool {
        self.stream.is_some()
    }

    /// The streamed reply that ends the output, if any.
    pub fn take_stream(&mut self) -> Option<ReadStream> {
        self.stream.take()
    }

    /// Records a change for the subscriptions (`subscriptions.rs`).
    pub fn record_change(&mut self, change: super::subscriptions::Change) {
        self.changes.push(change);
    }

    /// The changes recorded.
    pub fn take_changes(&mut self) -> Vec<super::subscriptions::Change> {
        std::mem::take(&mut self.changes)
    }

    /// Appends `bytes` without copying them.
    pub fn push_shared(&mut self, bytes: Bytes) {
        self.seal_cur();
        self.sealed_len += bytes.len();
        self.chunks.push(bytes);
    }

    fn seal_cur(&mut self) {
        if !self.cur.is_empty() {
            let b = self.cur.split().freeze();
            self.sealed_len += b.len();
            self.chunks.push(b);
        }
    }

    /// Drops everything past the first `len` bytes (what a request refused mid-way wrote;
    /// `len` is never inside a streamed reply, which ends the output).
    pub fn truncate(&mut self, len: usize) {
        if len >= self.sealed_len {
            self.cur.truncate(len - self.sealed_len);
            return;
        }
        self.cur.clear();
        let mut at = 0;
        let mut keep = 0;
        for c in &mut self.chunks {
            if at >= len {
                break;
            }
            if at + c.len() > len {
                c.truncate(len - at);
            }
            at += c.len();
            keep += 1;
        }
        self.chunks.truncate(keep);
        self.sealed_len = at;
        self.stream = None;
    }

    /// The chunks, in order.
    pub fn into_chunks(mut self) -> Vec<Bytes> {
        self.seal_cur();
        self.chunks
    }

    /// Bytes `start..end` of the output so far, as shared slices.
    pub fn range(&mut self, start: usize, end: usize) -> Vec<Bytes> {
        self.seal_cur();
        let mut out = Vec::new();
        let mut at = 0;
        for c in &self.chunks {
            let (from, to) = (start.max(at), end.min(at + c.len()));
            if from < to {
                out.push(c.slice(from - at..to - at));
            }
            at += c.len();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cross_chunk_boundaries_and_shared_chunks_are_not_copied() {
        let mut o = Output::default();
        o.buf().extend_from_slice(b"abc");
        let big = Bytes::from_static(b"0123456789");
        o.push_shared(big.clone());
        o.buf().extend_from_slice(b"xyz");
        assert_eq!(o.len(), 16);
        let r: Vec<u8> = o.range(1, 15).concat();
        assert_eq!(r, b"bc0123456789xy");
        let chunks = o.into_chunks();
        assert_eq!(chunks.len(), 3);
        assert_eq!(
            chunks[1].as_ptr(),
            big.as_ptr(),
            "the value is shared, not copied"
        );
    }

    #[test]
    fn truncating_drops_the_tail_across_chunks() {
        let mut o = Output::default();
        o.buf().extend_from_slice(b"abc");
        o.push_shared(Bytes::from_static(b"0123456789"));
        o.buf().extend_from_slice(b"xyz");
        o.truncate(14);
        assert_eq!(o.len(), 14);
        o.truncate(5);
        assert_eq!(o.len(), 5);
        o.buf().extend_from_slice(b"!");
        assert_eq!(o.into_chunks().concat(), b"abc01!");
        let mut o = Output::default();
        o.buf().extend_from_slice(b"abc");
        o.truncate(3);
        o.truncate(1);
        assert_eq!(o.into_chunks().concat(), b"a");
    }
}
