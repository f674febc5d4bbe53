//! Feeds arbitrary bytes to the decoders of authentication (protocol version 2): the
//! authenticating HANDSHAKE payloads, AUTH, the request envelope, the node's per-request
//! check, and sealed cluster datagrams. Any `Err` is fine; a panic is a bug, and so is a
//! decoded message that does not re-encode to the bytes it came from.
//!
//! Input: byte 0 picks the decoder; the rest is its input.

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use ringblob_protocol::cluster::seal::{mac_key, Sealer};
use ringblob_protocol::node::access::{admit, strip_envelope, Access, Identity};
use ringblob_protocol::wire::*;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let bytes = Bytes::copy_from_slice(body);
    match mode % 6 {
        0 => handshake(&bytes),
        1 => auth(&bytes),
        2 => envelope(&bytes),
        3 => checked_request(mode, &bytes),
        4 => datagram(&bytes),
        _ => {
            // A sealed datagram with the fuzzer's bytes as the message opens to them.
            let key = mac_key(&[7; 32]);
            let mut sealer = Sealer::default();
            let d = sealer.seal(&key, "fuzz", body, 1 << 60);
            let mut receiver = Sealer::default();
            assert_eq!(receiver.open(&[key], &d, 1 << 60), Ok(body));
        }
    }
});

fn handshake(p: &Bytes) {
    if let Ok(req) = HandshakeRequest::decode(p) {
        let mut again = BytesMut::new();
        assert!(req.encode(&mut again).is_ok(), "{req:?} does not encode");
        assert_eq!(&again[..], &p[..], "{req:?} is not canonical");
    }
    if let Ok(reply) = HandshakeReply::decode(p) {
        let mut again = BytesMut::new();
        assert!(
            reply.encode(&mut again).is_ok(),
            "{reply:?} does not encode"
        );
        assert_eq!(&again[..], &p[..], "{reply:?} is not canonical");
    }
}

fn auth(p: &Bytes) {
    if let Ok(req) = AuthRequest::decode(p) {
        let mut again = BytesMut::new();
        req.encode(&mut again);
        assert_eq!(&again[..], &p[..]);
    }
    if let Ok(reply) = AuthReply::decode(p) {
        let mut again = BytesMut::new();
        assert!(
            reply.encode(&mut again).is_ok(),
            "{reply:?} does not encode"
        );
        assert_eq!(&again[..], &p[..], "{reply:?} is not canonical");
    }
}

fn envelope(p: &Bytes) {
    if let Ok((env, rest)) = Envelope::split(p) {
        let mut again = BytesMut::new();
        assert!(env.encode(&mut again).is_ok(), "{env:?} does not encode");
        again.extend_from_slice(&rest);
        assert_eq!(&again[..], &p[..], "{env:?} is not canonical");
        if let Some(name) = &env.name {
            let _ = name.key_id();
        }
    }
}

/// A request frame with the ENVELOPE flag and the fuzzer's payload, through the node's
/// check (as a connection without authentication, and as no one) and the envelope's removal.
fn checked_request(mode: u8, p: &Bytes) {
    let command = Command::from_u16(u16::from(mode >> 3) & 0x0f);
    let mut header = Header::request(command, 1, [5; 32], 0);
    header.flags = FLAG_ENVELOPE;
    header.payload_len = p.len() as u32;
    let frame = Frame {
        header,
        payload: p.clone(),
    };
    let access = Access::default();
    let _ = admit(&access, &Identity::open(), &frame);
    if let Ok(stripped) = strip_envelope(frame) {
        assert_eq!(stripped.header.flags & FLAG_ENVELOPE, 0);
        let _ = Request::decode(&stripped);
    }
}

fn datagram(d: &[u8]) {
    let keys = [mac_key(&[7; 32]), mac_key(&[8; 32])];
    let mut receiver = Sealer::default();
    // Without the key, nothing opens (the MAC is 128 bits: a fuzzer cannot forge one).
    assert!(receiver.open(&keys, d, 1 << 60).is_err());
}
