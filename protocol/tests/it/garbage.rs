//! Arbitrary bytes never make the decoders panic, and whatever decodes re-encodes to the
//! bytes it came from (one encoding per message).

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use ringblob_protocol::wire::*;

proptest! {
    #[test]
    fn arbitrary_payloads_never_panic(cmd in 0u16..16, flags in 0u32..4, status in 0u32..20, payload in vec(any::<u8>(), 0..300)) {
        let mut header = Header::request(Command::from_u16(cmd), 1, [0; 32], 0);
        header.flags = flags;
        header.status = Status::from_u32(status);
        header.payload_len = payload.len() as u32;
        let frame = Frame { header, payload: Bytes::from(payload) };
        let mut original = BytesMut::new();
        frame.encode(&mut original)?;
        prop_assert_eq!(decode_frame(&mut original.clone())?, Some(frame.clone()));
        // Whatever decodes has exactly one encoding: it re-encodes to the same bytes.
        if let Ok(request) = Request::decode(&frame) {
            let mut again = BytesMut::new();
            request.encode_with(&frame.header, &mut again)?;
            prop_assert_eq!(again, original.clone());
        }
        if let Ok(reply) = Reply::decode(&frame) {
            let mut again = BytesMut::new();
            reply.encode(&Header { flags: 0, status: Status::Ok, ..frame.header }, &mut again)?;
            prop_assert_eq!(again, original);
        }
    }

    #[test]
    fn arbitrary_streams_never_panic(bytes in vec(any::<u8>(), 0..400), prefix in any::<bool>()) {
        let mut buf = BytesMut::new();
        if prefix {
            // Start with a valid header so the payload decoders see the garbage.
            let h = Header { payload_len: bytes.len() as u32, ..Header::request(Command::Write, 1, [0; 32], 0) };
            h.encode(&mut buf);
        }
        buf.extend_from_slice(&bytes);
        while let Ok(Some(frame)) = decode_frame(&mut buf) {
            let _ = Request::decode(&frame);
            let _ = Reply::decode(&frame);
        }
    }
}
