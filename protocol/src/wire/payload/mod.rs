//! Typed payloads, one command per file. Each type has `encode(&self, &mut BytesMut)` and
//! `decode(payload)`; decoders reject short, long and out-of-range payloads with
//! [`WireError`](super::WireError) and never panic.

pub mod auth;
pub mod bulk;
pub mod envelope;
pub mod handshake;
pub mod iterate;
pub mod list;
pub mod lookup;
pub mod meta;
pub mod range_digest;
pub mod read;
pub mod remove;
pub mod text;
pub mod watch;
pub mod write;
#[cfg(test)]
mod write_tests;

pub use auth::{AuthReply, AuthRequest};
pub use bulk::BulkItem;
pub use bulk::BulkReadRequest;
pub use envelope::{Envelope, ObjectName, MAX_OBJECT_NAME_LEN};
pub use handshake::{AuthOffer, HandshakeReply, HandshakeRequest, FEATURE_AUTH};
pub use iterate::{
    IterEntry, IterPosition, IterateEnd, IteratePart, IterateRequest, MAX_ENTRIES_PER_PART,
};
pub use list::{ListEntry, ListReply, ListRequest, MAX_LIST_LIMIT};
pub use lookup::LookupRequest;
pub use meta::ValueMeta;
pub use range_digest::{RangeDigestReply, RangeDigestRequest, MAX_RANGE_DIGEST_DEPTH};
pub use read::{ReadRequest, READ_TO_END};
pub use remove::RemoveRequest;
pub use watch::{NoteKind, WatchNote, WatchRequest};
pub use write::{Durability, WriteAck, WriteMode, WriteRequest};
