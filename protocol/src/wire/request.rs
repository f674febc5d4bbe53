//! Typed requests: one variant per command, encoded into and decoded from whole frames.

use bytes::BytesMut;

use super::command::Command;
use super::error::WireError;
use super::frame::{encode_frame, Frame};
use super::header::Header;
use super::payload::{
    AuthRequest, BulkReadRequest, HandshakeRequest, IterateRequest, ListRequest, LookupRequest,
    RangeDigestRequest, ReadRequest, RemoveRequest, WatchRequest, WriteRequest,
};
use super::KeyId;

/// A request as a node sees it. The key, group, transaction and trace ids travel in the
/// [`Header`]; the variant holds the command's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Ping,
    Handshake(HandshakeRequest),
    /// Metadata of one column of the header's key.
    Lookup(LookupRequest),
    Read(ReadRequest),
    Write(WriteRequest),
    Remove(RemoveRequest),
    Iterate(IterateRequest),
    BulkRead(BulkReadRequest),
    Stat,
    RouteList,
    /// DEFRAG: `wait` = reply when the defragmentation has finished (else when it started).
    /// LEAVE: what is asked of the node's leave ([`LeaveAsk`]).
    Leave(LeaveAsk),
    Defrag {
        wait: bool,
    },
    RangeDigest(RangeDigestRequest),
    /// AUTH (version 2): the client's proof, right after an authenticating HANDSHAKE.
    Auth(AuthRequest),
    /// LIST (version 2): a page of names or namespaces.
    List(ListRequest),
    /// WATCH (version 3): subscribe to a key's or a namespace's changes, or cancel.
    Watch(WatchRequest),
}

impl Request {
    /// The command number this request travels under.
    pub fn command(&self) -> Command {
        match self {
            Request::Ping => Command::Ping,
            Request::Handshake(_) => Command::Handshake,
            Request::Lookup(_) => Command::Lookup,
            Request::Read(_) => Command::Read,
            Request::Write(_) => Command::Write,
            Request::Remove(_) => Command::Remove,
            Request::Iterate(_) => Command::Iterate,
            Request::BulkRead(_) => Command::BulkRead,
            Request::Stat => Command::Stat,
            Request::RouteList => Command::RouteList,
            Request::Leave(_) => Command::Leave,
            Request::Defrag { .. } => Command::Defrag,
            Request::RangeDigest(_) => Command::RangeDigest,
            Request::Auth(_) => Command::Auth,
            Request::List(_) => Command::List,
            Request::Watch(_) => Command::Watch,
        }
    }

    /// Appends one request frame (version 1, no hops, trace id 0) to `dst`.
    pub fn encode(
        &self,
        trans: u64,
        key: KeyId,
        group: u32,
        dst: &mut BytesMut,
    ) -> Result<(), WireError> {
        self.encode_with(&Header::request(self.command(), trans, key, group), dst)
    }

    /// Appends one request frame using `header` for everything but the command (taken from
    /// `self`) and the payload length (computed). Use it to set a trace id or hop count.
    /// On error `dst` is unchanged.
    pub fn encode_with(&self, header: &Header, dst: &mut BytesMut) -> Result<(), WireError> {
        let header = Header {
            command: self.command(),
            ..*header
        };
        encode_frame(&header, dst, |buf| self.encode_payload(buf))
    }

    /// Appends only the payload.
    pub fn encode_payload(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        match self {
            Request::Ping | Request::Stat | Request::RouteList => Ok(()),
            Request::Lookup(p) => {
                p.encode(dst);
                Ok(())
            }
            Request::Handshake(p) => p.encode(dst),
            Request::Read(p) => {
                p.encode(dst);
                Ok(())
            }
            Request::Write(p) => p.encode(dst),
            Request::Remove(p) => p.encode(dst),
            Request::Iterate(p) => p.encode(dst),
            Request::BulkRead(p) => p.encode(dst),
            Request::Defrag { wait } => {
                // flags u8 (bit 0 WAIT), 7 reserved zero bytes.
                dst.extend_from_slice(&[u8::from(*wait), 0, 0, 0, 0, 0, 0, 0]);
                Ok(())
            }
            Request::Leave(ask) => {
                // flags u8 (bit 0 STOP, bit 1 STATUS, bit 2 CANCEL), 7 reserved zero bytes.
                dst.extend_from_slice(&[ask.flags(), 0, 0, 0, 0, 0, 0, 0]);
                Ok(())
            }
            Request::RangeDigest(p) => p.encode(dst),
            Request::List(p) => p.encode(dst),
            Request::Watch(p) => p.encode(dst),
            Request::Auth(p) => {
                p.encode(dst);
                Ok(())
            }
        }
    }

    /// Validates a received frame as a request ([`Header::validate_request`]) and decodes
    /// its payload. On `Err`, a node answers with [`WireError::status`] (the header is
    /// intact, so the reply can echo its transaction id) and keeps the connection.
    /// A frame with an envelope (`FLAG_ENVELOPE`) is refused: split it off first
    /// ([`Envelope::split`](super::Envelope::split)).
    pub fn decode(frame: &Frame) -> Result<Request, WireError> {
        frame.header.validate_request()?;
        if frame.header.flags & super::FLAG_ENVELOPE != 0 {
            return Err(WireError::BadHeaderField {
                field: "flags",
                value: u64::from(frame.header.flags),
                why: "an ENVELOPE frame is decoded once its envelope is split off",
            });
        }
        let p = &frame.payload;
        Ok(match frame.header.command {
            Command::Ping => empty(p, "PING request", Request::Ping)?,
            Command::Handshake => Request::Handshake(HandshakeRequest::decode(p)?),
            Command::Lookup => Request::Lookup(LookupRequest::decode(p)?),
            Command::Read => Request::Read(ReadRequest::decode(p)?),
            Command::Write => Request::Write(WriteRequest::decode(p)?),
            Command::Remove => Request::Remove(RemoveRequest::decode(p)?),
            Command::Iterate => Request::Iterate(IterateRequest::decode(p)?),
            Command::BulkRead => Request::BulkRead(BulkReadRequest::decode(p)?),
            Command::Stat => empty(p, "STAT request", Request::Stat)?,
            Command::RouteList => empty(p, "ROUTE_LIST request", Request::RouteList)?,
            Command::Defrag => decode_defrag(p)?,
            Command::Leave => decode_leave(p)?,
            Command::RangeDigest => Request::RangeDigest(RangeDigestRequest::decode(p)?),
            Command::List => Request::List(ListRequest::decode(p)?),
            Command::Watch => Request::Watch(WatchRequest::decode(p)?),
            Command::Auth => Request::Auth(AuthRequest::decode(p)?),
            Command::Unknown(code) => return Err(WireError::UnknownCommand { code }),
        })
    }
}

/// The names a flags payload's errors use: the request, its length, its flags.
type FlagsWhat = (&'static str, &'static str, &'static str);

/// The flags byte of an 8-byte payload of flags u8 and 7 reserved zero bytes (DEFRAG,
/// LEAVE), if its length is right, `valid` accepts the flags, and the rest is zero.
fn flags_payload(p: &[u8], what: FlagsWhat, valid: impl Fn(u8) -> bool) -> Result<u8, WireError> {
    let (request, length, flags_what) = what;
    let Some((&flags, rest)) = p.split_first() else {
        return Err(WireError::Truncated {
            what: request,
            need: 8,
            have: 0,
        });
    };
    if rest.len() != 7 {
        return Err(WireError::InvalidValue {
            what: length,
            value: p.len() as u64,
        });
    }
    if !valid(flags) || rest.iter().any(|b| *b != 0) {
        return Err(WireError::InvalidValue {
            what: flags_what,
            value: u64::from(flags),
        });
    }
    Ok(flags)
}

/// DEFRAG payload: flags u8 (bit 0 WAIT, others zero), 7 reserved zero bytes.
fn decode_defrag(p: &[u8]) -> Result<Request, WireError> {
    let what = (
        "DEFRAG request",
        "DEFRAG request length",
        "DEFRAG flags or reserved bytes",
    );
    let flags = flags_payload(p, what, |f| f & !1 == 0)?;
    Ok(Request::Defrag { wait: flags == 1 })
}

/// What a `LEAVE` asks (`docs/PROTOCOL.md` §7.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveAsk {
    /// Hand every range to the rest of the group, then leave the cluster (flags 0).
    Drain,
    /// Drain, then stop the process (`STOP`, flags 1).
    Stop,
    /// Only say where the leave stands (`STATUS`, flags 2).
    Status,
    /// Cancel a drain that has not finished: the node takes its ranges back (`CANCEL`,
    /// flags 4).
    Cancel,
}

impl LeaveAsk {
    /// The flags byte.
    pub fn flags(self) -> u8 {
        match self {
            LeaveAsk::Drain => 0,
            LeaveAsk::Stop => 1,
            LeaveAsk::Status => 2,
            LeaveAsk::Cancel => 4,
        }
    }

    fn from_flags(flags: u8) -> Option<LeaveAsk> {
        [
            LeaveAsk::Drain,
            LeaveAsk::Stop,
            LeaveAsk::Status,
            LeaveAsk::Cancel,
        ]
        .into_iter()
        .find(|a| a.flags() == flags)
    }
}

/// LEAVE payload: flags u8 (0, or exactly one of bit 0 STOP, bit 1 STATUS, bit 2 CANCEL),
/// 7 reserved zero bytes.
fn decode_leave(p: &[u8]) -> Result<Request, WireError> {
    let what = (
        "LEAVE request",
        "LEAVE request length",
        "LEAVE flags or reserved bytes",
    );
    let flags = flags_payload(p, what, |f| LeaveAsk::from_flags(f).is_some())?;
    let ask = LeaveAsk::from_flags(flags).unwrap_or(LeaveAsk::Status);
    Ok(Request::Leave(ask))
}

/// `value` if the payload is empty, else `TrailingBytes`.
pub(crate) fn empty<T>(payload: &[u8], what: &'static str, value: T) -> Result<T, WireError> {
    match payload.len() {
        0 => Ok(value),
        extra => Err(WireError::TrailingBytes { what, extra }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::decode_frame;
    use crate::wire::status::Status;

    fn frame_of(req: &Request) -> Result<Frame, WireError> {
        let mut buf = BytesMut::new();
        req.encode(5, [2; 32], 1, &mut buf)?;
        decode_frame(&mut buf)?.ok_or(WireError::InvalidValue {
            what: "no frame",
            value: 0,
        })
    }

    #[test]
    fn empty_commands_reject_a_payload() -> Result<(), WireError> {
        let mut frame = frame_of(&Request::Ping)?;
        assert_eq!(Request::decode(&frame)?, Request::Ping);
        frame.payload = bytes::Bytes::from_static(b"x");
        assert_eq!(
            Request::decode(&frame),
            Err(WireError::TrailingBytes {
                what: "PING request",
                extra: 1
            })
        );
        Ok(())
    }

    #[test]
    fn unknown_command_maps_to_unknown_command_status() -> Result<(), WireError> {
        let mut frame = frame_of(&Request::Stat)?;
        frame.header.command = Command::Unknown(13);
        let err = Request::decode(&frame).err();
        assert_eq!(err, Some(WireError::UnknownCommand { code: 13 }));
        assert_eq!(err.map(|e| e.status()), Some(Status::UnknownCommand));
        Ok(())
    }

    #[test]
    fn wrong_version_is_reported_before_the_payload_is_read() -> Result<(), WireError> {
        let mut frame = frame_of(&Request::Ping)?;
        frame.header.version = crate::wire::MAX_PROTOCOL_VERSION + 1;
        frame.payload = bytes::Bytes::from_static(b"garbage");
        let err = Request::decode(&frame).map_err(|e| e.status());
        assert_eq!(err, Err(Status::UnsupportedVersion));
        Ok(())
    }

    #[test]
    fn a_reply_frame_is_not_a_request() -> Result<(), WireError> {
        let mut frame = frame_of(&Request::Ping)?;
        frame.header = frame.header.reply_to(Status::Ok, false);
        assert!(matches!(
            Request::decode(&frame),
            Err(WireError::BadHeaderField { .. })
        ));
        Ok(())
    }
}
