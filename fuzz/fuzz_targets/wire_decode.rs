//! Feeds arbitrary bytes to the wire codec of `ringblob-protocol`. Any `Err` is fine; a panic
//! is a bug, and so is a decoded message that does not re-encode to the bytes it came from
//! (every valid message has exactly one encoding, docs/PROTOCOL.md §1).
//!
//! Input: byte 0 picks a mode; the rest is the body.
//! - mode & 1 == 0: the body is a byte stream; frames are split off it with `decode_frame`
//!   until it fails or runs dry, and each frame goes through `Request::decode` and
//!   `Reply::decode`.
//! - mode & 1 == 1: the body is one payload behind a valid header (command = bits 1..=5,
//!   flags from bits of byte 0), so the payload decoders see arbitrary payloads without
//!   the fuzzer having to find a valid header CRC; the payload also goes to every payload
//!   decoder directly.

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use ringblob_protocol::wire::payload::text::{decode_json, decode_message};
use ringblob_protocol::wire::*;

/// Most frames taken from one input, to bound the time per input.
const MAX_FRAMES: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        stream(body);
    } else {
        one_payload(mode, body);
    }
});

fn stream(body: &[u8]) {
    let mut buf = BytesMut::from(body);
    for _ in 0..MAX_FRAMES {
        match decode_frame(&mut buf) {
            Ok(Some(frame)) => frame_decoders(&frame),
            Ok(None) => return,
            Err(e) => {
                assert!(e.is_fatal(), "decode_frame returned a non-fatal error: {e}");
                return;
            }
        }
    }
}

fn one_payload(mode: u8, body: &[u8]) {
    let command = Command::from_u16(u16::from(mode >> 1) & 0x1f);
    let mut header = Header::request(command, 7, [3; 32], 1);
    header.flags = u32::from(mode >> 5) & 3; // REPLY and MORE in every combination
    if mode & 0x80 != 0 {
        header.status = Status::NotFound;
    }
    let payload = Bytes::copy_from_slice(body);
    payload_decoders(&payload);
    let frame = Frame {
        header: Header {
            payload_len: body.len() as u32,
            ..header
        },
        payload,
    };
    let mut bytes = BytesMut::new();
    if frame.encode(&mut bytes).is_ok() {
        match decode_frame(&mut bytes) {
            Ok(Some(again)) => {
                assert_eq!(again, frame, "a frame changed through encode/decode");
                frame_decoders(&again);
            }
            other => panic!("a frame the codec encoded did not decode: {other:?}"),
        }
    }
}

/// Decodes `frame` both ways; whatever decodes must re-encode to the same bytes.
fn frame_decoders(frame: &Frame) {
    let mut original = BytesMut::new();
    if frame.encode(&mut original).is_err() {
        return;
    }
    if let Ok(request) = Request::decode(frame) {
        let mut again = BytesMut::new();
        let encoded = request.encode_with(&frame.header, &mut again);
        assert!(
            encoded.is_ok(),
            "decoded request failed to encode: {encoded:?}"
        );
        assert_eq!(again, original, "request {request:?} is not canonical");
    }
    if let Ok(reply) = Reply::decode(frame) {
        let request = Header {
            flags: 0,
            status: Status::Ok,
            ..frame.header
        };
        let mut again = BytesMut::new();
        let encoded = reply.encode(&request, &mut again);
        assert!(
            encoded.is_ok(),
            "decoded reply failed to encode: {encoded:?}"
        );
        if frame.header.hops == 0 {
            assert_eq!(again, original, "reply {reply:?} is not canonical");
        }
    }
}

/// Every payload decoder on the raw payload.
fn payload_decoders(p: &Bytes) {
    let _ = HandshakeRequest::decode(p);
    let _ = AuthRequest::decode(p);
    let _ = AuthReply::decode(p);
    let _ = Envelope::split(p);
    let _ = HandshakeReply::decode(p);
    let _ = ValueMeta::decode(p);
    let _ = ReadRequest::decode(p);
    let _ = WriteRequest::decode(p);
    let _ = WriteAck::decode(p);
    let _ = RemoveRequest::decode(p);
    let _ = IterateRequest::decode(p);
    let _ = IteratePart::decode(p, true);
    let _ = IteratePart::decode(p, false);
    let _ = BulkReadRequest::decode(p);
    let _ = BulkItem::decode(p);
    let _ = ListRequest::decode(p);
    let _ = ListReply::decode(p);
    let _ = WatchRequest::decode(p);
    let _ = WatchNote::decode(p);
    let _ = decode_message(p);
    let _ = decode_json(p);
    let _ = check_frame(p);
    let _ = Header::decode(p);
}
