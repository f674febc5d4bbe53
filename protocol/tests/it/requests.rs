//! Every request survives encode → frame → decode unchanged, header fields included.

use bytes::BytesMut;
use proptest::prelude::*;
use ringblob_protocol::wire::*;

use super::frames;
use super::strategies::{key, request};

proptest! {
    #[test]
    fn request_round_trips(
        req in request(),
        trans in any::<u64>(),
        key in key(),
        group in any::<u32>(),
        trace in any::<u64>(),
        hops in 0..=MAX_FORWARD_HOPS,
    ) {
        let mut header = Header::request(Command::Ping, trans, key, group);
        header.trace = trace;
        header.hops = hops;
        let mut buf = BytesMut::new();
        req.encode_with(&header, &mut buf)?;
        let got = frames(buf)?;
        prop_assert_eq!(got.len(), 1);
        let frame = &got[0];
        prop_assert_eq!(frame.header.command, req.command());
        prop_assert_eq!(
            (frame.header.trans, frame.header.key, frame.header.group),
            (trans, key, group)
        );
        prop_assert_eq!((frame.header.trace, frame.header.hops), (trace, hops));
        prop_assert_eq!(frame.header.payload_len as usize, frame.payload.len());
        prop_assert_eq!(Request::decode(frame)?, req);
    }

    /// A forwarding node re-encodes a decoded frame with hops + 1: only the hop count and
    /// the CRC change.
    #[test]
    fn relayed_frame_differs_only_in_hops(req in request(), trans in any::<u64>()) {
        let mut buf = BytesMut::new();
        req.encode(trans, [9; 32], 0, &mut buf)?;
        let original = buf.clone();
        let mut frame = frames(buf)?.remove(0);
        frame.header.hops += 1;
        let mut relayed = BytesMut::new();
        frame.encode(&mut relayed)?;
        prop_assert_eq!(relayed.len(), original.len());
        let changed: Vec<usize> = (0..original.len())
            .filter(|&i| original[i] != relayed[i])
            .collect();
        prop_assert!(changed.iter().all(|&i| i == 5 || (76..80).contains(&i)), "{:?}", changed);
        prop_assert_eq!(Request::decode(&frames(relayed)?[0])?, req);
    }

    /// Any single-byte change to a valid request frame either fails to decode or decodes
    /// (the codec never panics); changes inside the header are caught by its CRC.
    #[test]
    fn corrupted_request_never_panics(req in request(), at in any::<prop::sample::Index>(), x in 1u8..) {
        let mut buf = BytesMut::new();
        req.encode(1, [0; 32], 0, &mut buf)?;
        let i = at.index(buf.len());
        buf[i] ^= x;
        match frames(buf) {
            Ok(fs) => {
                prop_assert!(i >= HEADER_LEN, "header byte {} changed yet the frame decoded", i);
                let _ = fs.first().map(Request::decode);
            }
            Err(e) => prop_assert!(i < HEADER_LEN, "payload byte {} broke framing: {}", i, e),
        }
    }
}
