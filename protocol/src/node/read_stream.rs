//! Long READ replies, streamed: the batch that meets the READ sends its first piece
//! ([`STREAM_PIECE`] bytes of value) and the connection sends the rest one piece at a time,
//! reading each only once the previous one is written. A slow reader slows only its own
//! stream; the node holds at most one piece per streaming connection, whatever the value's
//! size. Every piece is checked to come from the record the first one came from (its
//! timestamp): a value replaced or removed meanwhile ends the reply with `CHANGED`, never
//! with bytes of another version.

use bytes::Bytes;
use ringblob_backends::Backend;
use ringblob_engine::{Key, Range};

use super::output::Output;
use super::piece_pool::PIECES;
use super::status_map::status_of;
use crate::wire::{encode_error, encode_read_reply, Header, Status, MAX_REPLY_PART};

/// Value bytes read and sent at once by a streamed reply; reads of at most this are
/// answered whole within their batch.
pub const STREAM_PIECE: usize = 4 << 20;

/// The part of a READ reply still to send.
pub struct ReadStream {
    header: Header,
    key: Key,
    column: u16,
    timestamp_ns: u64,
    next: u64,
    end: u64,
}

impl ReadStream {
    /// A reply to `header` whose bytes up to `next` are sent, with `end` the first byte
    /// not asked for, all of the record written at `timestamp_ns`.
    pub fn new(header: Header, column: u16, timestamp_ns: u64, (next, end): (u64, u64)) -> Self {
        ReadStream {
            key: Key(header.key),
            header,
            column,
            timestamp_ns,
            next,
            end,
        }
    }

    /// Whether every piece (or the error that ended the reply) is out.
    pub fn done(&self) -> bool {
        self.next >= self.end
    }

    /// Value bytes the next piece holds.
    pub fn next_len(&self) -> usize {
        (self.end - self.next).min(STREAM_PIECE as u64) as usize
    }

    /// Reads and encodes the next piece; a failure, or a piece of another version, is the
    /// reply's last frame (an error) instead.
    pub fn next_piece(&mut self, b: &dyn Backend) -> Vec<Bytes> {
        let len = self.next_len() as u64;
        let mut out = Output::default();
        let range = Range::new(self.next, len);
        let read = PIECES.read(b, (&self.key, self.column), range, true);
        match read {
            Ok(s) if s.timestamp_ns == self.timestamp_ns && s.data.len() as u64 == len => {
                self.next += len;
                encode_piece(&self.header, PIECES.bytes(s.data), self.done(), &mut out);
            }
            Ok(_) | Err(ringblob_backends::Error::NotFound(_)) => {
                let why = "the value was replaced or removed while it was being sent; \
                           discard the bytes received and read it again";
                encode_error(&self.header, Status::Changed, why, out.buf());
                self.next = self.end;
            }
            Err(e) => {
                encode_error(&self.header, status_of(&e), &e.to_string(), out.buf());
                self.next = self.end;
            }
        }
        out.into_chunks()
    }
}

/// Appends the frames of one piece of a READ reply; the last piece's last frame ends it.
/// A large piece's data goes out as shared slices, never copied.
pub fn encode_piece(h: &Header, value: Bytes, last: bool, out: &mut Output) {
    if last && value.len() <= MAX_REPLY_PART {
        // A READ header always encodes (the data is within a frame's limit).
        let _ = encode_read_reply(h, &value, out.buf());
        return;
    }
    let mut at = 0;
    loop {
        let end = (at + MAX_REPLY_PART).min(value.len());
        let more = end < value.len() || !last;
        let header = Header {
            payload_len: (end - at) as u32,
            ..h.reply_to(Status::Ok, more)
        };
        out.buf().extend_from_slice(&header.to_bytes());
        out.push_shared(value.slice(at..end));
        at = end;
        if at >= value.len() {
            return;
        }
    }
}
