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
use crate::wire::{encode_error, Header, Status, MAX_REPLY_PART};

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

/// Value bytes of a reply frame copied into the batch's buffer; longer ones go out as
/// shared slices of the value. A copy of a small value costs less than a chunk of its own
/// in the vectored write; a 64 KiB value copied cost the node 4 % of its CPU per `READ`
/// (perf, 64 KiB GETs at pipeline 1) for a copy the socket's write makes anyway.
pub const COPY_UP_TO: usize = 16 << 10;

/// Appends the frames of one piece of a READ reply (parts of at most `MAX_REPLY_PART`
/// bytes, MORE on all but the last part of the last piece; an empty last piece is one empty
/// frame): the bytes [`encode_read_reply`](crate::wire::encode_read_reply) makes, with data
/// over [`COPY_UP_TO`] bytes shared, never copied.
pub fn encode_piece(h: &Header, value: Bytes, last: bool, out: &mut Output) {
    let mut at = 0;
    loop {
        let end = (at + MAX_REPLY_PART).min(value.len());
        let more = end < value.len() || !last;
        let header = Header {
            payload_len: (end - at) as u32,
            ..h.reply_to(Status::Ok, more)
        };
        out.buf().extend_from_slice(&header.to_bytes());
        match value.get(at..end) {
            Some(part) if part.len() <= COPY_UP_TO => out.buf().extend_from_slice(part),
            _ => out.push_shared(value.slice(at..end)),
        }
        at = end;
        if at >= value.len() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::wire::{encode_read_reply, Command};

    fn request() -> Header {
        Header::request(Command::Read, 7, [3; 32], 0)
    }

    fn encoded(value: &Bytes, last: bool) -> Vec<Bytes> {
        let mut out = Output::default();
        encode_piece(&request(), value.clone(), last, &mut out);
        out.into_chunks()
    }

    #[test]
    fn a_whole_reply_is_the_frames_the_codec_makes_with_large_data_shared() -> Result<(), String> {
        for len in [
            0,
            100,
            COPY_UP_TO,
            COPY_UP_TO + 1,
            64 << 10,
            MAX_REPLY_PART + 5,
        ] {
            let value = Bytes::from((0..len).map(|i| i as u8).collect::<Vec<u8>>());
            let mut want = BytesMut::new();
            encode_read_reply(&request(), &value, &mut want).map_err(|e| e.to_string())?;
            let chunks = encoded(&value, true);
            if chunks.concat() != want[..] {
                return Err(format!("{len}-byte value: other bytes than the codec's"));
            }
            // Data over COPY_UP_TO is a chunk of its own, sliced from the value.
            let shared = chunks
                .iter()
                .any(|c| c.len() > COPY_UP_TO && value.as_ptr_range().contains(&c.as_ptr()));
            if shared != (len > COPY_UP_TO) {
                return Err(format!("{len}-byte value: shared {shared}"));
            }
        }
        Ok(())
    }

    #[test]
    fn a_piece_that_is_not_the_last_says_more() -> Result<(), String> {
        let value = Bytes::from(vec![9u8; 100]);
        let chunks = encoded(&value, false).concat();
        let header =
            Header::decode(&chunks[..crate::wire::HEADER_LEN]).map_err(|e| e.to_string())?;
        if !header.has_more() || header.payload_len != 100 {
            return Err(format!("{header:?}"));
        }
        Ok(())
    }
}
