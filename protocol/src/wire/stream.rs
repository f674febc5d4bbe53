//! Server-side helpers that write a whole multi-part reply (or an error) in one call.
//!
//! Parts of one transaction are written in order; a node may interleave frames of other
//! transactions between them, so a client groups frames by transaction id.

use bytes::{Bytes, BytesMut};

use super::command::Command;
use super::error::WireError;
use super::frame::encode_frame;
use super::header::Header;
use super::limits::MAX_REPLY_PART;
use super::payload::text::encode_message;
use super::payload::{IterEntry, IterateEnd, IteratePart, MAX_ENTRIES_PER_PART};
use super::reply::Reply;
use super::status::Status;

/// Appends an error reply to `request`: one frame with `status` and `message` (cut to
/// `MAX_MESSAGE_LEN` bytes). Never fails. `Status::Ok` is a caller bug and is sent as
/// `INTERNAL`.
pub fn encode_error(request: &Header, status: Status, message: &str, dst: &mut BytesMut) {
    debug_assert!(!status.is_ok(), "an error reply needs an error status");
    let status = if status.is_ok() {
        Status::Internal
    } else {
        status
    };
    let header = request.reply_to(status, false);
    // The payload is at most MAX_MESSAGE_LEN bytes, far below MAX_PAYLOAD_LEN: this
    // cannot fail, and on failure encode_frame leaves `dst` as it was.
    let _ = encode_frame(&header, dst, |buf| {
        encode_message(message, buf);
        Ok(())
    });
}

/// Appends the whole READ reply for `value` (the already-cut range): parts of
/// `MAX_REPLY_PART` bytes, MORE on all but the last; an empty value is one empty frame.
/// `value` slices are shared, not copied, until written into `dst`.
pub fn encode_read_reply(
    request: &Header,
    value: &Bytes,
    dst: &mut BytesMut,
) -> Result<(), WireError> {
    check_command(request, Command::Read)?;
    let start = dst.len();
    let mut offset = 0usize;
    loop {
        let end = offset.saturating_add(MAX_REPLY_PART).min(value.len());
        let more = end < value.len();
        let data = value.slice(offset..end);
        if let Err(e) = (Reply::ReadPart { data, more }).encode(request, dst) {
            dst.truncate(start);
            return Err(e);
        }
        if !more {
            return Ok(());
        }
        offset = end;
    }
}

/// Appends the whole ITERATE reply: `entries` in parts of at most
/// [`MAX_ENTRIES_PER_PART`], the last part carrying `end`. No entries is one frame.
pub fn encode_iterate_reply(
    request: &Header,
    entries: &[IterEntry],
    end: IterateEnd,
    dst: &mut BytesMut,
) -> Result<(), WireError> {
    encode_iterate_reply_moving(request, entries, (end, false), dst)
}

/// [`encode_iterate_reply`] with the last part's `MOVING` flag (version 3, §7.6).
pub fn encode_iterate_reply_moving(
    request: &Header,
    entries: &[IterEntry],
    (end, moving): (IterateEnd, bool),
    dst: &mut BytesMut,
) -> Result<(), WireError> {
    check_command(request, Command::Iterate)?;
    let start = dst.len();
    let mut chunks = entries.chunks(MAX_ENTRIES_PER_PART).peekable();
    loop {
        let chunk = chunks.next().unwrap_or_default();
        let last = chunks.peek().is_none();
        let part = IteratePart {
            entries: chunk.to_vec(),
            end: last.then_some(end),
            moving: last && moving,
        };
        if let Err(e) = Reply::IteratePart(part).encode(request, dst) {
            dst.truncate(start);
            return Err(e);
        }
        if last {
            return Ok(());
        }
    }
}

fn check_command(request: &Header, expected: Command) -> Result<(), WireError> {
    if request.command != expected {
        return Err(WireError::CommandMismatch {
            expected,
            got: request.command,
        });
    }
    Ok(())
}
