//! Version-1 frames written by an independent encoder (Python `struct` + `zlib.crc32`, see
//! docs/PROTOCOL.md "Test vectors") must decode to the expected values and re-encode to
//! the same bytes.

use bytes::{Bytes, BytesMut};
use ringblob_protocol::wire::*;

use super::frames;

const PING_REQUEST: &[u8] = include_bytes!("../fixtures/v1/ping_request.bin");
const PING_REPLY: &[u8] = include_bytes!("../fixtures/v1/ping_reply.bin");
const READ_REQUEST: &[u8] = include_bytes!("../fixtures/v1/read_request.bin");
const WRITE_REQUEST: &[u8] = include_bytes!("../fixtures/v1/write_request.bin");
const NOT_FOUND_REPLY: &[u8] = include_bytes!("../fixtures/v1/not_found_reply.bin");
const ITERATE_REPLY: &[u8] = include_bytes!("../fixtures/v1/iterate_reply.bin");

fn counting_key() -> KeyId {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = i as u8;
    }
    k
}

fn one(bytes: &[u8]) -> Result<Frame, WireError> {
    let mut fs = frames(BytesMut::from(bytes))?;
    assert_eq!(fs.len(), 1);
    Ok(fs.remove(0))
}

#[test]
fn ping_request_header_crc_is_0xaa2b6206() -> Result<(), WireError> {
    assert_eq!(&PING_REQUEST[76..], &0xAA2B_6206u32.to_le_bytes());
    let frame = one(PING_REQUEST)?;
    assert_eq!(Request::decode(&frame)?, Request::Ping);
    assert_eq!(frame.header.trans, 1);
    let mut buf = BytesMut::new();
    Request::Ping.encode(1, [0; 32], 0, &mut buf)?;
    assert_eq!(&buf[..], PING_REQUEST);
    let mut buf = BytesMut::new();
    Reply::Pong.encode(&frame.header, &mut buf)?;
    assert_eq!(&buf[..], PING_REPLY);
    Ok(())
}

#[test]
fn read_request_with_trace_and_group() -> Result<(), WireError> {
    let frame = one(READ_REQUEST)?;
    let req = Request::Read(ReadRequest {
        offset: 2,
        size: 5,
        column: 0,
    });
    assert_eq!(Request::decode(&frame)?, req);
    let h = frame.header;
    assert_eq!(
        (h.trans, h.group, h.trace, h.key),
        (0x0102_0304_0506_0708, 2, 0xAABB, counting_key())
    );
    let mut buf = BytesMut::new();
    req.encode_with(&h, &mut buf)?;
    assert_eq!(&buf[..], READ_REQUEST);
    // The error reply to it.
    let mut buf = BytesMut::new();
    encode_error(&h, Status::NotFound, "no such key", &mut buf);
    assert_eq!(&buf[..], NOT_FOUND_REPLY);
    Ok(())
}

#[test]
fn write_request_whole_compressed_sync() -> Result<(), WireError> {
    let frame = one(WRITE_REQUEST)?;
    let req = Request::Write(WriteRequest {
        mode: WriteMode::Whole,
        compress: true,
        durability: Durability::Sync,
        column: 1,
        data: Bytes::from_static(b"abc"),
    });
    assert_eq!(Request::decode(&frame)?, req);
    let mut buf = BytesMut::new();
    req.encode(9, counting_key(), 0, &mut buf)?;
    assert_eq!(&buf[..], WRITE_REQUEST);
    Ok(())
}

#[test]
fn iterate_last_part_with_resume_key() -> Result<(), WireError> {
    let frame = one(ITERATE_REPLY)?;
    let meta = ValueMeta {
        size: 10,
        stored_size: 100,
        timestamp_ns: 123_456_789,
        offset: 4096,
        checksum: 0xDEAD_BEEF,
        blob: 7,
        flags: 0,
        column: 0,
    };
    let part = IteratePart {
        entries: vec![IterEntry {
            key: counting_key(),
            meta,
        }],
        end: Some(IterateEnd::ResumeAfter(counting_key())),
    };
    assert_eq!(Reply::decode(&frame)?, Reply::IteratePart(part.clone()));
    let request = Header::request(Command::Iterate, 3, [0; 32], 0);
    let mut buf = BytesMut::new();
    Reply::IteratePart(part).encode(&request, &mut buf)?;
    assert_eq!(&buf[..], ITERATE_REPLY);
    Ok(())
}
