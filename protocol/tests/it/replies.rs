//! Every reply survives encode → frame → decode; long READ and ITERATE replies split into
//! parts that reassemble to the original.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use ringblob_protocol::wire::*;

use super::frames;
use super::strategies::{entry, iterate_end, key, reply};

fn request_header(command: Command, trans: u64, key: KeyId) -> Header {
    let mut h = Header::request(command, trans, key, 3);
    h.trace = 0xfeed;
    h
}

proptest! {
    #[test]
    fn reply_round_trips((command, reply) in reply(), trans in any::<u64>(), key in key()) {
        let request = request_header(command, trans, key);
        let mut buf = BytesMut::new();
        reply.encode(&request, &mut buf)?;
        let got = frames(buf)?;
        prop_assert_eq!(got.len(), 1);
        let h = got[0].header;
        prop_assert!(h.is_reply());
        prop_assert_eq!((h.command, h.trans, h.key, h.group, h.trace), (command, trans, key, 3, 0xfeed));
        prop_assert_eq!(h.status, reply.status());
        prop_assert_eq!(h.has_more(), reply.more());
        prop_assert_eq!(Reply::decode(&got[0])?, reply);
    }

    #[test]
    fn read_reply_splits_into_ordered_parts(len in 0usize..(3 * MAX_REPLY_PART + 10), seed in any::<u8>()) {
        let value: Bytes = (0..len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
        let request = request_header(Command::Read, 77, [1; 32]);
        let mut buf = BytesMut::new();
        encode_read_reply(&request, &value, &mut buf)?;
        let parts = frames(buf)?;
        prop_assert_eq!(parts.len(), len.div_ceil(MAX_REPLY_PART).max(1));
        let mut joined = BytesMut::new();
        for (i, frame) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            match Reply::decode(frame)? {
                Reply::ReadPart { data, more } => {
                    prop_assert_eq!(more, !last);
                    prop_assert!(data.len() <= MAX_REPLY_PART);
                    joined.extend_from_slice(&data);
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        prop_assert_eq!(joined.freeze(), value);
    }

    #[test]
    fn iterate_reply_splits_and_ends_with_the_trailer(
        entries in vec(entry(), 0..40),
        copies in 1usize..400,
        end in iterate_end(),
    ) {
        // Up to 16k entries: enough to need more than one part.
        let entries: Vec<IterEntry> = entries.iter().cycle().take(entries.len() * copies).copied().collect();
        let request = request_header(Command::Iterate, 5, [0; 32]);
        let mut buf = BytesMut::new();
        encode_iterate_reply(&request, &entries, end, &mut buf)?;
        let parts = frames(buf)?;
        prop_assert_eq!(parts.len(), entries.len().div_ceil(MAX_ENTRIES_PER_PART).max(1));
        let mut got = Vec::new();
        let mut got_end = None;
        for frame in &parts {
            prop_assert!(frame.payload.len() <= MAX_REPLY_PART);
            prop_assert!(got_end.is_none(), "a part after the last one");
            match Reply::decode(frame)? {
                Reply::IteratePart(part) => {
                    got.extend(part.entries);
                    got_end = part.end;
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        prop_assert_eq!(got, entries);
        prop_assert_eq!(got_end, Some(end));
    }

    #[test]
    fn error_replies_are_one_frame_with_a_short_message(
        status in (1u32..=15).prop_map(Status::from_u32),
        message in "\\PC{0,2000}",
        cmd in 1u16..=20,
    ) {
        let request = request_header(Command::from_u16(cmd), 8, [2; 32]);
        let mut buf = BytesMut::new();
        encode_error(&request, status, &message, &mut buf);
        let got = frames(buf)?;
        prop_assert_eq!(got.len(), 1);
        prop_assert_eq!(got[0].header.command.as_u16(), cmd);
        prop_assert!(got[0].payload.len() <= MAX_MESSAGE_LEN);
        match Reply::decode(&got[0])? {
            Reply::Error { status: s, message: m } => {
                prop_assert_eq!(s, status);
                prop_assert!(message.starts_with(&m));
            }
            other => prop_assert!(false, "unexpected {:?}", other),
        }
    }
}

#[test]
fn reply_to_the_wrong_command_is_refused() {
    let request = request_header(Command::Read, 1, [0; 32]);
    let mut buf = BytesMut::new();
    let err = Reply::Pong.encode(&request, &mut buf);
    assert_eq!(
        err,
        Err(WireError::CommandMismatch {
            expected: Command::Ping,
            got: Command::Read
        })
    );
    assert!(buf.is_empty());
    let err = encode_iterate_reply(&request, &[], IterateEnd::Done, &mut buf);
    assert!(matches!(err, Err(WireError::CommandMismatch { .. })));
}

#[test]
fn more_on_a_single_frame_reply_is_rejected() -> Result<(), WireError> {
    let request = request_header(Command::Ping, 1, [0; 32]);
    let mut buf = BytesMut::new();
    Reply::Pong.encode(&request, &mut buf)?;
    let mut frame = frames(buf)?.remove(0);
    frame.header.flags |= FLAG_MORE;
    assert!(matches!(
        Reply::decode(&frame),
        Err(WireError::BadHeaderField { .. })
    ));
    Ok(())
}

#[test]
fn oversized_read_part_is_rejected_both_ways() -> Result<(), WireError> {
    let request = request_header(Command::Read, 1, [0; 32]);
    let data = Bytes::from(vec![0u8; MAX_REPLY_PART + 1]);
    let mut buf = BytesMut::new();
    let err = Reply::ReadPart {
        data: data.clone(),
        more: false,
    }
    .encode(&request, &mut buf);
    assert!(matches!(err, Err(WireError::LimitExceeded { .. })));
    let frame = Frame {
        header: request.reply_to(Status::Ok, false),
        payload: data,
    };
    assert!(matches!(
        Reply::decode(&frame),
        Err(WireError::LimitExceeded { .. })
    ));
    Ok(())
}
