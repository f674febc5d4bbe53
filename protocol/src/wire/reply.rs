//! Typed replies: one value per reply *frame*. Multi-part replies (READ, ITERATE,
//! BULK_READ) are several frames of one transaction, all but the last with MORE set; see
//! `stream.rs` for the helpers that split a long reply into parts.

use bytes::{Bytes, BytesMut};

use super::command::Command;
use super::cursor::check_limit;
use super::error::WireError;
use super::frame::{encode_frame, Frame};
use super::header::Header;
use super::limits::MAX_REPLY_PART;
use super::payload::text::{decode_json, decode_message, encode_json, encode_message};
use super::payload::{
    AuthReply, BulkItem, HandshakeReply, IteratePart, ListReply, RangeDigestReply, ValueMeta,
    WatchNote, WriteAck,
};
use super::request::empty;
use super::status::Status;

/// One reply frame, decoded. The transaction id and MORE flag of the frame are in its
/// [`Header`]; for the multi-part variants the value also says whether more follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Any status but OK, to any command: a UTF-8 message, and the end of the transaction
    /// (parts received before it are void).
    Error {
        status: Status,
        message: String,
    },
    /// PING.
    Pong,
    Handshake(HandshakeReply),
    /// LOOKUP.
    Meta(ValueMeta),
    /// READ: the next bytes of the requested range, in order.
    ReadPart {
        data: Bytes,
        more: bool,
    },
    Write(WriteAck),
    /// REMOVE.
    Removed,
    IteratePart(IteratePart),
    /// BULK_READ: the outcome for one key.
    BulkItem {
        item: BulkItem,
        more: bool,
    },
    /// STAT: a JSON object.
    Stat(String),
    /// ROUTE_LIST: a JSON array.
    RouteList(String),
    /// DEFRAG: a JSON object (the report, or whether it started).
    Defrag(String),
    /// LEAVE: where the node's leave stands (JSON).
    Leave(String),
    /// RANGE_DIGEST: the range's record count and leaf digests.
    RangeDigest(RangeDigestReply),
    /// AUTH: the node's proof, and the key's role and namespaces.
    Auth(AuthReply),
    /// LIST: a page of names or namespaces.
    List(ListReply),
    /// WATCH: one notification; `more` until the subscription ends.
    Watch {
        note: WatchNote,
        more: bool,
    },
}

impl Reply {
    /// The command this reply answers (`None` for [`Reply::Error`], which answers any).
    pub fn command(&self) -> Option<Command> {
        Some(match self {
            Reply::Error { .. } => return None,
            Reply::Pong => Command::Ping,
            Reply::Handshake(_) => Command::Handshake,
            Reply::Meta(_) => Command::Lookup,
            Reply::ReadPart { .. } => Command::Read,
            Reply::Write(_) => Command::Write,
            Reply::Removed => Command::Remove,
            Reply::IteratePart(_) => Command::Iterate,
            Reply::BulkItem { .. } => Command::BulkRead,
            Reply::Stat(_) => Command::Stat,
            Reply::RouteList(_) => Command::RouteList,
            Reply::Defrag(_) => Command::Defrag,
            Reply::Leave(_) => Command::Leave,
            Reply::RangeDigest(_) => Command::RangeDigest,
            Reply::List(_) => Command::List,
            Reply::Watch { .. } => Command::Watch,
            Reply::Auth(_) => Command::Auth,
        })
    }

    /// The frame's status: OK except for [`Reply::Error`].
    pub fn status(&self) -> Status {
        match self {
            Reply::Error { status, .. } => *status,
            _ => Status::Ok,
        }
    }

    /// Whether the frame has MORE set.
    pub fn more(&self) -> bool {
        match self {
            Reply::ReadPart { more, .. }
            | Reply::BulkItem { more, .. }
            | Reply::Watch { more, .. } => *more,
            Reply::IteratePart(part) => part.end.is_none(),
            _ => false,
        }
    }

    /// Appends this reply frame to `dst`, answering `request` (whose command must match;
    /// [`Reply::Error`] answers any). On error `dst` is unchanged.
    pub fn encode(&self, request: &Header, dst: &mut BytesMut) -> Result<(), WireError> {
        if let Some(expected) = self.command() {
            if expected != request.command {
                return Err(WireError::CommandMismatch {
                    expected,
                    got: request.command,
                });
            }
        }
        if let Reply::Error {
            status: Status::Ok, ..
        } = self
        {
            return Err(WireError::InvalidValue {
                what: "error reply with status OK",
                value: 0,
            });
        }
        let header = request.reply_to(self.status(), self.more());
        encode_frame(&header, dst, |buf| self.encode_payload(buf))
    }

    fn encode_payload(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        match self {
            Reply::Error { message, .. } => encode_message(message, dst),
            Reply::Pong | Reply::Removed => {}
            Reply::Handshake(p) => p.encode(dst)?,
            Reply::Meta(p) => p.encode(dst),
            Reply::ReadPart { data, .. } => {
                check_limit("READ reply part", data.len(), MAX_REPLY_PART)?;
                dst.extend_from_slice(data);
            }
            Reply::Write(p) => p.encode(dst),
            Reply::IteratePart(p) => p.encode(dst)?,
            Reply::BulkItem { item, .. } => item.encode(dst)?,
            Reply::Stat(json)
            | Reply::RouteList(json)
            | Reply::Defrag(json)
            | Reply::Leave(json) => encode_json(json, dst)?,
            Reply::RangeDigest(p) => p.encode(dst)?,
            Reply::List(p) => p.encode(dst)?,
            Reply::Watch { note, .. } => note.encode(dst)?,
            Reply::Auth(p) => p.encode(dst)?,
        }
        Ok(())
    }

    /// Validates a received frame as a reply ([`Header::validate_reply`]) and decodes it by
    /// the command it echoes. Binary payloads are zero-copy slices of the frame's.
    pub fn decode(frame: &Frame) -> Result<Reply, WireError> {
        let h = &frame.header;
        h.validate_reply()?;
        let p = &frame.payload;
        if h.status != Status::Ok {
            return Ok(Reply::Error {
                status: h.status,
                message: decode_message(p)?,
            });
        }
        let more = h.has_more();
        if more
            && !matches!(
                h.command,
                Command::Read | Command::Iterate | Command::BulkRead | Command::Watch
            )
        {
            return Err(WireError::BadHeaderField {
                field: "flags",
                value: u64::from(h.flags),
                why: "MORE on a single-frame reply",
            });
        }
        Ok(match h.command {
            Command::Ping => empty(p, "PING reply", Reply::Pong)?,
            Command::Handshake => Reply::Handshake(HandshakeReply::decode(p)?),
            Command::Lookup => Reply::Meta(ValueMeta::decode(p)?),
            Command::Read => {
                check_limit("READ reply part", p.len(), MAX_REPLY_PART)?;
                Reply::ReadPart {
                    data: p.clone(),
                    more,
                }
            }
            Command::Write => Reply::Write(WriteAck::decode(p)?),
            Command::Remove => empty(p, "REMOVE reply", Reply::Removed)?,
            Command::Iterate => Reply::IteratePart(IteratePart::decode(p, !more)?),
            Command::BulkRead => Reply::BulkItem {
                item: BulkItem::decode(p)?,
                more,
            },
            Command::Stat => Reply::Stat(decode_json(p)?),
            Command::Defrag => Reply::Defrag(decode_json(p)?),
            Command::Leave => Reply::Leave(decode_json(p)?),
            Command::RouteList => Reply::RouteList(decode_json(p)?),
            Command::RangeDigest => Reply::RangeDigest(RangeDigestReply::decode(p)?),
            Command::List => Reply::List(ListReply::decode(p)?),
            Command::Watch => Reply::Watch {
                note: WatchNote::decode(p)?,
                more,
            },
            Command::Auth => Reply::Auth(AuthReply::decode(p)?),
            Command::Unknown(code) => return Err(WireError::UnknownCommand { code }),
        })
    }
}
