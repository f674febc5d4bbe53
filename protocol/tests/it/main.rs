//! Integration tests of `ringblob_protocol::wire`: encode/decode round trips for every
//! request and reply (proptest), golden frames of version 1, and arbitrary bytes.

mod columns;
mod garbage;
mod golden;
mod replies;
mod requests;
mod strategies;

use bytes::BytesMut;
use ringblob_protocol::wire::{decode_frame, Frame, WireError};

/// Every whole frame in `buf`; fails if bytes are left over.
pub fn frames(mut buf: BytesMut) -> Result<Vec<Frame>, WireError> {
    let mut out = Vec::new();
    while let Some(frame) = decode_frame(&mut buf)? {
        out.push(frame);
    }
    match buf.len() {
        0 => Ok(out),
        extra => Err(WireError::TrailingBytes {
            what: "test buffer",
            extra,
        }),
    }
}

mod local_reads;
mod node;
mod ring;
mod sim;
