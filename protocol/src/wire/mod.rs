//! The pure frame codec of protocol versions 1 and 2: bytes in, typed values or [`WireError`]s
//! out. No sockets, no tokio, no clocks — so it can be fuzzed and driven by a simulator.
//! `docs/PROTOCOL.md` is the byte-exact specification this module implements.
//!
//! Reading side (a node or a client): buffer bytes, call [`decode_frame`] until it
//! returns `Ok(None)`; a fatal error ([`WireError::is_fatal`]) means close the connection.
//! Then [`Request::decode`] (node) or [`Reply::decode`] (client) judges the header and
//! payload; those errors concern one frame only and map to a reply [`Status`].
//!
//! Writing side: [`Request::encode`], [`Reply::encode`], [`encode_error`],
//! [`encode_read_reply`] and [`encode_iterate_reply`] append whole frames to a `BytesMut`.

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod command;
mod cursor;
pub mod error;
pub mod frame;
pub mod header;
pub mod limits;
pub mod payload;
pub mod reply;
pub mod request;
pub mod status;
pub mod stream;

pub use command::Command;
pub use error::WireError;
pub use frame::{
    announced_frame_len, check_frame, decode_frame, encode_frame, peek_payload_len, Frame,
};
pub use header::{Header, FLAG_ENVELOPE, FLAG_HINTED, FLAG_LOCAL, FLAG_MORE, FLAG_REPLY, MAGIC};
pub use limits::*;
pub use payload::{
    AuthOffer, AuthReply, AuthRequest, BulkItem, BulkReadRequest, Durability, Envelope,
    HandshakeReply, HandshakeRequest, IterEntry, IterPosition, IterateEnd, IteratePart,
    IterateRequest, ListEntry, ListReply, ListRequest, LookupRequest, NoteKind, ObjectName,
    RangeDigestReply, RangeDigestRequest, ReadRequest, RemoveRequest, ValueMeta, WatchNote,
    WatchRequest, WriteAck, WriteMode, WriteRequest, FEATURE_AUTH, MAX_ENTRIES_PER_PART,
    MAX_LIST_LIMIT, MAX_OBJECT_NAME_LEN, MAX_RANGE_DIGEST_DEPTH, READ_TO_END,
};
pub use reply::Reply;
pub use request::{LeaveAsk, Request};
pub use status::{parse_removed_message, removed_message, Status};
pub use stream::{
    encode_error, encode_iterate_reply, encode_iterate_reply_moving, encode_read_reply,
};

/// A 256-bit key ID: a position on the ring, and the name a value is stored under
/// (`ringblob_engine::Key` holds the same 32 bytes).
pub type KeyId = [u8; KEY_LEN];
