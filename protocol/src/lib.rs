//! # ringblob-protocol
//!
//! ringblob's network protocol. Today it holds [`wire`], the pure codec of protocol
//! version 1: the 80-byte frame header, the command payloads, status codes and limits,
//! specified byte for byte in `docs/PROTOCOL.md`. The node server and the client library
//! will live beside it; the codec itself does no IO and never depends on an async runtime.
//!
//! It is not a storage engine (see `ringblob-engine`) and does not route or forward.
//!
//! ```
//! use bytes::BytesMut;
//! use ringblob_protocol::wire::{decode_frame, ReadRequest, Reply, Request, WireError};
//!
//! # fn main() -> Result<(), WireError> {
//! // Client: ask for 5 bytes at offset 2 of column 0.
//! let mut buf = BytesMut::new();
//! let read = Request::Read(ReadRequest::range(0, 2, 5));
//! read.encode(1, [7; 32], 0, &mut buf)?;
//!
//! // Node: split the frame off the buffer, decode it, answer.
//! let frame = decode_frame(&mut buf)?.expect("one whole frame");
//! assert_eq!(Request::decode(&frame)?, read);
//! let mut out = BytesMut::new();
//! let value = bytes::Bytes::from_static(b"hello");
//! ringblob_protocol::wire::encode_read_reply(&frame.header, &value, &mut out)?;
//!
//! // Client: decode the reply.
//! let reply = decode_frame(&mut out)?.expect("one whole frame");
//! assert_eq!(reply.header.trans, 1);
//! assert_eq!(Reply::decode(&reply)?, Reply::ReadPart { data: value, more: false });
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

pub mod attrs;
pub mod auth;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod gateway;
pub mod node;
pub mod ring;
pub mod tls;
pub mod wire;
