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
// Columns (a version-1 addition, docs/PROTOCOL.md §14).
const LOOKUP_COLUMN_REQUEST: &[u8] = include_bytes!("../fixtures/v1/lookup_column_request.bin");
const REMOVE_COLUMN_REQUEST: &[u8] = include_bytes!("../fixtures/v1/remove_column_request.bin");
const REMOVE_KEY_REQUEST: &[u8] = include_bytes!("../fixtures/v1/remove_key_request.bin");
const ITERATE_REQUEST_AFTER_COLUMN: &[u8] =
    include_bytes!("../fixtures/v1/iterate_request_after_column.bin");
const ITERATE_REPLY_COLUMNS: &[u8] = include_bytes!("../fixtures/v1/iterate_reply_columns.bin");

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
    v1(&Request::Ping, 1, [0; 32], &mut buf)?;
    assert_eq!(&buf[..], PING_REQUEST);
    let mut buf = BytesMut::new();
    Reply::Pong.encode(&frame.header, &mut buf)?;
    assert_eq!(&buf[..], PING_REPLY);
    Ok(())
}

#[test]
fn read_request_with_trace_and_group() -> Result<(), WireError> {
    let frame = one(READ_REQUEST)?;
    let req = Request::Read(ReadRequest::range(0, 2, 5));
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
        if_newer: None,
        version: None,
        deadline_ns: None,
        data: Bytes::from_static(b"abc"),
    });
    assert_eq!(Request::decode(&frame)?, req);
    let mut buf = BytesMut::new();
    v1(&req, 9, counting_key(), &mut buf)?;
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
        /*x*/
        entries: vec![IterEntry {
            key: counting_key(),
            meta,
        }],
        end: Some(IterateEnd::ResumeAfter(IterPosition {
            key: counting_key(),
            column: 0,
        })),
        moving: false,
    };
    assert_eq!(Reply::decode(&frame)?, Reply::IteratePart(part.clone()));
    let mut request = Header::request(Command::Iterate, 3, [0; 32], 0);
    request.version = 1;
    let mut buf = BytesMut::new();
    Reply::IteratePart(part).encode(&request, &mut buf)?;
    assert_eq!(&buf[..], ITERATE_REPLY);
    Ok(())
}

/// Encodes `req` as a version-1 frame (the vectors are version 1; a version-2 frame differs
/// only in byte 4 and the header CRC).
fn v1(req: &Request, trans: u64, key: KeyId, buf: &mut BytesMut) -> Result<(), WireError> {
    let mut h = ringblob_protocol::wire::Header::request(req.command(), trans, key, 0);
    h.version = 1;
    req.encode_with(&h, buf)
}

/// Decodes `bytes` as a request, checks it is `want` for the counting key, and re-encodes
/// it to the same bytes.
fn request_golden(bytes: &[u8], key: KeyId, want: &Request) -> Result<(), WireError> {
    let frame = one(bytes)?;
    assert_eq!(&Request::decode(&frame)?, want);
    assert_eq!(frame.header.key, key);
    let mut buf = BytesMut::new();
    v1(want, frame.header.trans, key, &mut buf)?;
    assert_eq!(&buf[..], bytes);
    Ok(())
}

#[test]
fn lookup_of_column_2_carries_an_8_byte_payload() -> Result<(), WireError> {
    assert_eq!(
        &LOOKUP_COLUMN_REQUEST[76..80],
        &0xAC98_B4E8u32.to_le_bytes()
    );
    let want = Request::Lookup(LookupRequest { column: 2 });
    request_golden(LOOKUP_COLUMN_REQUEST, counting_key(), &want)?;
    // Column 0 is the empty payload: the LOOKUP frame of before columns.
    let mut buf = BytesMut::new();
    Request::Lookup(LookupRequest { column: 0 }).encode(0x11, counting_key(), 0, &mut buf)?;
    assert_eq!(buf.len(), HEADER_LEN);
    Ok(())
}

#[test]
fn remove_of_one_column_and_of_a_whole_key() -> Result<(), WireError> {
    let one_column = Request::Remove(RemoveRequest {
        durability: Durability::Sync,
        column: Some(1),
        if_newer: None,
        version: None,
        deadline_ns: None,
    });
    request_golden(REMOVE_COLUMN_REQUEST, counting_key(), &one_column)?;
    let whole_key = Request::Remove(RemoveRequest {
        durability: Durability::Default,
        column: None,
        if_newer: None,
        version: None,
        deadline_ns: None,
    });
    request_golden(REMOVE_KEY_REQUEST, counting_key(), &whole_key)?;
    assert_eq!(
        &REMOVE_KEY_REQUEST[80..],
        &[0; 8],
        "the payload of before columns"
    );
    Ok(())
}

#[test]
fn iterate_resumes_after_a_key_and_column() -> Result<(), WireError> {
    let after = IterPosition {
        key: counting_key(),
        column: 2,
    };
    let req = Request::Iterate(IterateRequest {
        from: [0; 32],
        to: [0xff; 32],
        after: Some(after),
        limit: 100,
    });
    request_golden(ITERATE_REQUEST_AFTER_COLUMN, [0; 32], &req)?;
    let frame = one(ITERATE_REPLY_COLUMNS)?;
    let meta = |size, stored_size, timestamp_ns, offset, checksum, column| ValueMeta {
        size,
        stored_size,
        timestamp_ns,
        offset,
        checksum,
        blob: 1,
        flags: 0,
        column,
    };
    let part = IteratePart {
        entries: vec![
            IterEntry {
                key: counting_key(),
                meta: meta(5, 93, 1_000_000_000, 4096, crc32fast::hash(b"hello"), 0),
            },
            IterEntry {
                key: counting_key(),
                meta: meta(3, 91, 1_000_000_001, 4189, crc32fast::hash(b"jpg"), 2),
            },
        ],
        end: Some(IterateEnd::ResumeAfter(after)),
        moving: false,
    };
    assert_eq!(Reply::decode(&frame)?, Reply::IteratePart(part.clone()));
    let mut request = Header::request(Command::Iterate, 0x14, [0; 32], 0);
    request.version = 1;
    let mut buf = BytesMut::new();
    Reply::IteratePart(part).encode(&request, &mut buf)?;
    assert_eq!(&buf[..], ITERATE_REPLY_COLUMNS);
    Ok(())
}
