//! The fixed 80-byte frame header (`docs/PROTOCOL.md`, "Frame header").
//!
//! The layout is the same in every protocol version, so a node can always read a peer's
//! header — and answer `UNSUPPORTED_VERSION` with the right transaction id — even when it
//! cannot read the payload.

use bytes::{BufMut, BytesMut};

use super::command::Command;
use super::cursor::Reader;
use super::error::WireError;
use super::limits::{
    HEADER_LEN, MAX_FORWARD_HOPS, MAX_PROTOCOL_VERSION, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION,
};
use super::status::Status;
use super::KeyId;

/// Bytes 0..4 of every frame: `RBWP`.
pub const MAGIC: [u8; 4] = *b"RBWP";
/// Offset of the payload length (u32).
pub const PAYLOAD_LEN_OFFSET: usize = 72;
/// Offset of the header CRC (u32); the CRC covers bytes `0..HEADER_CRC_OFFSET`.
pub const HEADER_CRC_OFFSET: usize = 76;
const _: () = assert!(HEADER_CRC_OFFSET + 4 == HEADER_LEN);
const _: () = assert!(PAYLOAD_LEN_OFFSET + 4 == HEADER_CRC_OFFSET);

/// Flag bit 0: this frame is a reply.
pub const FLAG_REPLY: u32 = 1 << 0;
/// Flag bit 1: more reply frames of this transaction follow.
pub const FLAG_MORE: u32 = 1 << 1;
/// Every flag bit this version defines; any other bit set is `BAD_REQUEST`.
pub const KNOWN_FLAGS: u32 = FLAG_REPLY | FLAG_MORE | FLAG_LOCAL | FLAG_HINTED | FLAG_ENVELOPE;
/// Flag bit 4 (requests, version 2): the payload begins with a request envelope
/// (`payload::envelope`): the key a node acts for, and the namespace and name of the key.
pub const FLAG_ENVELOPE: u32 = 1 << 4;
/// Flag bit 3 (requests, `WRITE` of mode `WHOLE` and `REMOVE` only): a hinted write. The
/// key's owner did not answer its coordinator, which sent the change to the next node of
/// the owner's group instead: serve it here without routing, and hand it to the owner once
/// it answers again (`docs/PROTOCOL.md` §9.2).
pub const FLAG_HINTED: u32 = 1 << 3;
/// Flag bit 2 (requests, `LOOKUP` and `READ` only): serve from this node's own storage;
/// never route, forward or read through (a node asking the previous owner of a key it took
/// over, `docs/PROTOCOL.md` §15.10).
pub const FLAG_LOCAL: u32 = 1 << 2;

/// A decoded frame header. Fields hold what was on the wire (unknown commands and statuses
/// included) so that a header always round-trips; [`Header::validate_request`] and
/// [`Header::validate_reply`] decide whether it is acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Protocol version the frame is encoded in.
    pub version: u8,
    /// Times the request has been forwarded between nodes.
    pub hops: u8,
    pub command: Command,
    /// [`FLAG_REPLY`], [`FLAG_MORE`].
    pub flags: u32,
    /// `Ok` in requests.
    pub status: Status,
    /// Transaction id chosen by the requester; replies echo it.
    pub trans: u64,
    /// The key the request is about (all zero when the command has none).
    pub key: KeyId,
    /// Replica group the request targets; 0 = the receiving node's own group.
    pub group: u32,
    /// Must be 0 in version 1.
    pub reserved: u32,
    /// Opaque id for tracing a request across nodes; replies and forwards keep it.
    pub trace: u64,
    /// Bytes of payload after the header.
    pub payload_len: u32,
}

impl Header {
    /// A request header (version [`PROTOCOL_VERSION`]) with no hops, no trace id and an empty payload.
    pub fn request(command: Command, trans: u64, key: KeyId, group: u32) -> Header {
        Header {
            version: PROTOCOL_VERSION,
            hops: 0,
            command,
            flags: 0,
            status: Status::Ok,
            trans,
            key,
            group,
            reserved: 0,
            trace: 0,
            payload_len: 0,
        }
    }

    /// The header of a reply to this request: same version, command, transaction, key,
    /// group and trace; `REPLY` set, `MORE` as given; hops and payload length zero. (A reply
    /// is in its request's version, so a version-1 peer can read it; a request in a version
    /// this crate does not speak is answered in [`PROTOCOL_VERSION`].)
    pub fn reply_to(&self, status: Status, more: bool) -> Header {
        let more_bit = if more { FLAG_MORE } else { 0 };
        let version = if (MIN_PROTOCOL_VERSION..=MAX_PROTOCOL_VERSION).contains(&self.version) {
            self.version
        } else {
            PROTOCOL_VERSION
        };
        Header {
            version,
            hops: 0,
            flags: FLAG_REPLY | more_bit,
            status,
            reserved: 0,
            payload_len: 0,
            ..*self
        }
    }

    /// `REPLY` is set.
    pub fn is_reply(&self) -> bool {
        self.flags & FLAG_REPLY != 0
    }

    /// `MORE` is set: further reply frames of this transaction follow.
    pub fn has_more(&self) -> bool {
        self.flags & FLAG_MORE != 0
    }

    /// A hinted write or remove (`FLAG_HINTED`): served here for an unreachable owner.
    pub fn is_hinted(&self) -> bool {
        self.flags & FLAG_HINTED != 0
    }

    /// A request to be served from the receiving node's own storage (`FLAG_LOCAL`).
    pub fn is_local(&self) -> bool {
        self.flags & FLAG_LOCAL != 0
    }

    /// The 80 header bytes, CRC included.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut raw = [0u8; HEADER_LEN];
        let mut w: &mut [u8] = &mut raw;
        w.put_slice(&MAGIC);
        w.put_u8(self.version);
        w.put_u8(self.hops);
        w.put_u16_le(self.command.as_u16());
        w.put_u32_le(self.flags);
        w.put_u32_le(self.status.as_u32());
        w.put_u64_le(self.trans);
        w.put_slice(&self.key);
        w.put_u32_le(self.group);
        w.put_u32_le(self.reserved);
        w.put_u64_le(self.trace);
        w.put_u32_le(self.payload_len);
        let crc = crc32fast::hash(raw.get(..HEADER_CRC_OFFSET).unwrap_or_default());
        if let Some(mut tail) = raw.get_mut(HEADER_CRC_OFFSET..) {
            tail.put_u32_le(crc);
        }
        raw
    }

    /// Appends the 80 header bytes to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_slice(&self.to_bytes());
    }

    /// Decodes the first 80 bytes of `buf`, checking the magic and the header CRC (the
    /// framing checks); the field values are checked by the `validate_*` methods.
    pub fn decode(buf: &[u8]) -> Result<Header, WireError> {
        let raw = buf.get(..HEADER_LEN).ok_or(WireError::Truncated {
            what: "frame header",
            need: HEADER_LEN,
            have: buf.len(),
        })?;
        check_magic(raw)?;
        let mut r = Reader::new(raw, "frame header");
        let _magic = r.slice(MAGIC.len())?;
        let header = Header {
            version: r.u8()?,
            hops: r.u8()?,
            command: Command::from_u16(r.u16()?),
            flags: r.u32()?,
            status: Status::from_u32(r.u32()?),
            trans: r.u64()?,
            key: r.key()?,
            group: r.u32()?,
            reserved: r.u32()?,
            trace: r.u64()?,
            payload_len: r.u32()?,
        };
        let stored = r.u32()?;
        r.finish()?;
        let computed = crc32fast::hash(raw.get(..HEADER_CRC_OFFSET).unwrap_or_default());
        if stored != computed {
            return Err(WireError::HeaderChecksum { stored, computed });
        }
        Ok(header)
    }

    /// Checks what every frame must satisfy: a supported version, only known flags, the
    /// reserved field zero.
    pub fn validate_common(&self) -> Result<(), WireError> {
        if !(MIN_PROTOCOL_VERSION..=MAX_PROTOCOL_VERSION).contains(&self.version) {
            return Err(WireError::UnsupportedVersion {
                got: self.version,
                min: MIN_PROTOCOL_VERSION,
                max: MAX_PROTOCOL_VERSION,
            });
        }
        if self.flags & !KNOWN_FLAGS != 0 {
            return Err(WireError::UnknownFlags {
                bits: self.flags & !KNOWN_FLAGS,
            });
        }
        if self.reserved != 0 {
            return Err(bad_field("reserved", self.reserved, "must be 0"));
        }
        Ok(())
    }

    /// Checks a frame a node received as a request: [`Header::validate_common`], then no
    /// reply flags, status 0, at most [`MAX_FORWARD_HOPS`] hops, a known command.
    pub fn validate_request(&self) -> Result<(), WireError> {
        self.validate_common()?;
        if self.flags & FLAG_ENVELOPE != 0 && self.version < 2 {
            return Err(bad_field(
                "flags",
                self.flags,
                "ENVELOPE needs protocol version 2",
            ));
        }
        if self.flags & !(FLAG_LOCAL | FLAG_HINTED | FLAG_ENVELOPE) != 0 {
            return Err(bad_field(
                "flags",
                self.flags,
                "REPLY and MORE are only for replies",
            ));
        }
        if self.is_hinted() && !matches!(self.command, Command::Write | Command::Remove) {
            return Err(bad_field(
                "flags",
                self.flags,
                "HINTED is only for WRITE and REMOVE",
            ));
        }
        if self.is_local() && !matches!(self.command, Command::Lookup | Command::Read) {
            return Err(bad_field(
                "flags",
                self.flags,
                "LOCAL is only for LOOKUP and READ",
            ));
        }
        if self.status != Status::Ok {
            return Err(bad_field(
                "status",
                self.status.as_u32(),
                "must be 0 in a request",
            ));
        }
        if self.hops > MAX_FORWARD_HOPS {
            return Err(WireError::TooManyHops {
                hops: self.hops,
                max: MAX_FORWARD_HOPS,
            });
        }
        if let Command::Unknown(code) = self.command {
            return Err(WireError::UnknownCommand { code });
        }
        Ok(())
    }

    /// Checks a frame a client received as a reply: [`Header::validate_common`], then
    /// `REPLY` set and `MORE` only on a frame with status `OK`.
    pub fn validate_reply(&self) -> Result<(), WireError> {
        self.validate_common()?;
        if !self.is_reply() {
            return Err(bad_field(
                "flags",
                self.flags,
                "a reply must have REPLY set",
            ));
        }
        if self.is_local() || self.flags & FLAG_ENVELOPE != 0 {
            return Err(bad_field(
                "flags",
                self.flags,
                "LOCAL and ENVELOPE are only for requests",
            ));
        }
        if self.has_more() && self.status != Status::Ok {
            return Err(bad_field(
                "flags",
                self.flags,
                "an error reply must end its stream",
            ));
        }
        Ok(())
    }
}

/// Checks the magic against however many bytes (up to four) are available, so garbage is
/// rejected as soon as its first byte arrives.
pub(crate) fn check_magic(buf: &[u8]) -> Result<(), WireError> {
    let n = buf.len().min(MAGIC.len());
    let have = buf.get(..n).unwrap_or_default();
    if MAGIC.starts_with(have) {
        return Ok(());
    }
    let mut got = [0u8; 4];
    for (dst, src) in got.iter_mut().zip(have) {
        *dst = *src;
    }
    Err(WireError::BadMagic { got })
}

fn bad_field(field: &'static str, value: u32, why: &'static str) -> WireError {
    WireError::BadHeaderField {
        field,
        value: u64::from(value),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping() -> Header {
        Header::request(Command::Ping, 7, [0xAB; 32], 3)
    }

    #[test]
    fn round_trips_every_field() -> Result<(), WireError> {
        let mut h = ping();
        h.hops = 2;
        h.trace = u64::MAX - 1;
        h.payload_len = 1234;
        let bytes = h.to_bytes();
        assert_eq!(bytes.get(..4), Some(&b"RBWP"[..]));
        assert_eq!(Header::decode(&bytes)?, h);
        Ok(())
    }

    #[test]
    fn crc_is_crc32_iso_hdlc() {
        // The check value of CRC-32/ISO-HDLC, the variant crc32fast implements.
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn truncated_header_is_rejected() {
        let bytes = ping().to_bytes();
        let short = bytes.get(..79).unwrap_or_default();
        assert_eq!(
            Header::decode(short),
            Err(WireError::Truncated {
                what: "frame header",
                need: 80,
                have: 79
            })
        );
    }

    #[test]
    fn bad_magic_is_rejected_from_the_first_byte() {
        let mut bytes = ping().to_bytes();
        bytes[0] = b'G';
        assert_eq!(
            Header::decode(&bytes),
            Err(WireError::BadMagic { got: *b"GBWP" })
        );
        assert_eq!(
            check_magic(b"G"),
            Err(WireError::BadMagic {
                got: [b'G', 0, 0, 0]
            })
        );
        assert_eq!(check_magic(b"RB"), Ok(()));
    }

    #[test]
    fn any_flipped_bit_fails_the_crc() {
        let good = ping().to_bytes();
        for byte in 4..HEADER_LEN {
            let mut bytes = good;
            bytes[byte] ^= 0x10;
            let err = Header::decode(&bytes);
            assert!(
                matches!(err, Err(WireError::HeaderChecksum { .. })),
                "byte {byte}: {err:?}"
            );
        }
    }

    #[test]
    fn request_validation_rejects_each_bad_field() {
        let ok = ping();
        assert_eq!(ok.validate_request(), Ok(()));
        let cases: [(Header, Status); 8] = [
            (Header { version: 4, ..ok }, Status::UnsupportedVersion),
            (
                Header {
                    version: 1,
                    flags: FLAG_ENVELOPE,
                    ..ok
                },
                Status::BadRequest,
            ),
            (
                Header {
                    flags: 1 << 5,
                    ..ok
                },
                Status::BadRequest,
            ),
            (
                Header {
                    flags: FLAG_MORE,
                    ..ok
                },
                Status::BadRequest,
            ),
            (Header { reserved: 1, ..ok }, Status::BadRequest),
            (
                Header {
                    status: Status::Busy,
                    ..ok
                },
                Status::BadRequest,
            ),
            (
                Header {
                    hops: MAX_FORWARD_HOPS + 1,
                    ..ok
                },
                Status::TooManyHops,
            ),
            (
                Header {
                    command: Command::Unknown(11),
                    ..ok
                },
                Status::UnknownCommand,
            ),
        ];
        for (h, want) in cases {
            let err = h.validate_request().err();
            assert_eq!(err.as_ref().map(WireError::status), Some(want), "{h:?}");
        }
        assert_eq!(
            Header {
                hops: MAX_FORWARD_HOPS,
                ..ok
            }
            .validate_request(),
            Ok(())
        );
        assert_eq!(
            Header {
                flags: 1 << 9,
                ..ok
            }
            .validate_request(),
            Err(WireError::UnknownFlags { bits: 1 << 9 })
        );
    }

    #[test]
    fn reply_validation() {
        let req = ping();
        assert_eq!(
            req.validate_reply().map_err(|e| e.status()),
            Err(Status::BadRequest)
        );
        let reply = req.reply_to(Status::Ok, true);
        assert_eq!(reply.validate_reply(), Ok(()));
        assert_eq!((reply.trans, reply.key, reply.group), (7, [0xAB; 32], 3));
        let bad = req.reply_to(Status::NotFound, true);
        assert!(
            bad.validate_reply().is_err(),
            "an error frame must not carry MORE"
        );
        assert_eq!(
            req.reply_to(Status::NotFound, false).validate_reply(),
            Ok(())
        );
    }
}
