//! Negative-space tests of the WRITE payload.

use bytes::{BufMut, Bytes, BytesMut};

use super::write::*;
use crate::wire::error::WireError;
use crate::wire::limits::MAX_VALUE_IN_FRAME;

fn encoded(req: &WriteRequest) -> Result<Bytes, WireError> {
    let mut buf = BytesMut::new();
    req.encode(&mut buf)?;
    Ok(buf.freeze())
}

#[test]
fn fixed_fields_then_data() -> Result<(), WireError> {
    let req = WriteRequest {
        mode: WriteMode::AtOffset { offset: 9 },
        ..WriteRequest::whole("abc")
    };
    let buf = encoded(&req)?;
    assert_eq!(buf.len(), WRITE_FIXED_LEN + 3);
    assert_eq!(buf.get(8), Some(&9), "offset at byte 8");
    assert_eq!(buf.get(24), Some(&3), "data_len at byte 24");
    assert_eq!(WriteRequest::decode(&buf)?, req);
    Ok(())
}

#[test]
fn data_len_past_the_payload_is_truncated() -> Result<(), WireError> {
    let buf = encoded(&WriteRequest::whole("abcdef"))?;
    let cut = buf.slice(..buf.len() - 2);
    assert_eq!(
        WriteRequest::decode(&cut),
        Err(WireError::Truncated {
            what: "WRITE request",
            need: 6,
            have: 4
        })
    );
    let fixed_only = buf.slice(..20);
    assert!(matches!(
        WriteRequest::decode(&fixed_only),
        Err(WireError::Truncated { .. })
    ));
    Ok(())
}

#[test]
fn data_len_over_the_frame_limit_is_too_large() -> Result<(), WireError> {
    let mut buf = BytesMut::from(&encoded(&WriteRequest::whole(""))?[..]);
    buf.truncate(24);
    buf.put_u32_le(MAX_VALUE_IN_FRAME as u32 + 1);
    let err = WriteRequest::decode(&buf.freeze());
    assert!(matches!(
        err,
        Err(WireError::LimitExceeded {
            what: "WRITE request",
            ..
        })
    ));
    let big = WriteRequest::whole(vec![0u8; MAX_VALUE_IN_FRAME + 1]);
    assert!(matches!(
        encoded(&big),
        Err(WireError::LimitExceeded { .. })
    ));
    Ok(())
}

#[test]
fn unused_fields_unknown_modes_and_flags_are_rejected() -> Result<(), WireError> {
    let base = encoded(&WriteRequest::whole("x"))?;
    let patch = |at: usize, v: u8| {
        let mut b = BytesMut::from(&base[..]);
        b[at] = v;
        WriteRequest::decode(&b.freeze())
    };
    assert_eq!(
        patch(0, 6),
        Err(WireError::InvalidValue {
            what: "write mode",
            value: 6
        })
    );
    assert_eq!(
        patch(1, 16),
        Err(WireError::InvalidValue {
            what: "write flags",
            value: 16
        })
    );
    assert_eq!(
        patch(2, 9),
        Err(WireError::InvalidValue {
            what: "durability",
            value: 9
        })
    );
    assert!(patch(3, 1).is_err(), "reserved byte");
    assert!(patch(8, 1).is_err(), "offset is unused by WHOLE");
    assert!(patch(16, 1).is_err(), "size is unused by WHOLE");
    assert!(patch(1, 1).is_ok_and(|r| r.compress));
    Ok(())
}

#[test]
fn prepare_and_commit_carry_no_data() {
    let req = WriteRequest {
        mode: WriteMode::Commit { size: 5 },
        ..WriteRequest::whole("x")
    };
    assert!(matches!(encoded(&req), Err(WireError::InvalidValue { .. })));
    let ok = WriteRequest {
        data: Bytes::new(),
        ..req
    };
    assert!(encoded(&ok).is_ok());
}

#[test]
fn ack_is_eight_bytes() {
    let mut buf = BytesMut::new();
    WriteAck { size: 77 }.encode(&mut buf);
    assert_eq!(buf.len(), WRITE_ACK_LEN);
    assert_eq!(WriteAck::decode(&buf), Ok(WriteAck { size: 77 }));
    assert!(WriteAck::decode(&buf[..7]).is_err());
}

#[test]
fn if_newer_puts_the_timestamp_between_data_len_and_data() -> Result<(), WireError> {
    let req = WriteRequest {
        if_newer: Some(0x0102_0304_0506_0708),
        version: None,
        deadline_ns: None,
        ..WriteRequest::whole("abc")
    };
    let buf = encoded(&req)?;
    assert_eq!(buf.len(), WRITE_FIXED_LEN + 8 + 3);
    assert_eq!(buf.get(1), Some(&WRITE_FLAG_IF_NEWER), "flags");
    assert_eq!(buf.get(24), Some(&3), "data_len at byte 24");
    assert_eq!(
        buf.get(28..36),
        Some(&[8, 7, 6, 5, 4, 3, 2, 1][..]),
        "timestamp_ns"
    );
    assert_eq!(buf.get(36..), Some(&b"abc"[..]), "data");
    assert_eq!(WriteRequest::decode(&buf)?, req);
    let commit = WriteRequest {
        mode: WriteMode::Commit { size: 7 },
        if_newer: Some(5),
        version: None,
        deadline_ns: None,
        ..WriteRequest::whole("")
    };
    assert_eq!(WriteRequest::decode(&encoded(&commit)?)?, commit);
    Ok(())
}

#[test]
fn if_newer_is_refused_with_modes_that_are_not_whole_or_commit() -> Result<(), WireError> {
    for mode in [
        WriteMode::Append,
        WriteMode::AtOffset { offset: 1 },
        WriteMode::Prepare { reserve: 1 },
        WriteMode::Part { offset: 0 },
    ] {
        let req = WriteRequest {
            mode,
            if_newer: Some(1),
            version: None,
            deadline_ns: None,
            data: if mode.carries_data() {
                Bytes::from_static(b"x")
            } else {
                Bytes::new()
            },
            ..WriteRequest::whole("")
        };
        assert!(encoded(&req).is_err(), "{mode:?} encoded");
        // Hand-made: an APPEND with the flag and a timestamp.
        let mut buf = BytesMut::from(&encoded(&WriteRequest::whole(""))?[..]);
        buf[0] = 1;
        buf[1] = WRITE_FLAG_IF_NEWER;
        buf.put_u64_le(1);
        assert!(matches!(
            WriteRequest::decode(&buf.freeze()),
            Err(WireError::InvalidValue { .. })
        ));
    }
    // The flag without its 8 bytes is truncated.
    let mut buf = BytesMut::from(&encoded(&WriteRequest::whole(""))?[..]);
    buf[1] = WRITE_FLAG_IF_NEWER;
    assert!(matches!(
        WriteRequest::decode(&buf.freeze()),
        Err(WireError::Truncated { .. })
    ));
    Ok(())
}

#[test]
fn version_then_deadline_go_between_data_len_and_data() -> Result<(), WireError> {
    let req = WriteRequest {
        mode: WriteMode::Append,
        version: Some(0x11),
        deadline_ns: Some(0x22),
        ..WriteRequest::whole("abc")
    };
    let buf = encoded(&req)?;
    assert_eq!(buf.len(), WRITE_FIXED_LEN + 16 + 3);
    assert_eq!(
        buf.get(1),
        Some(&(WRITE_FLAG_VERSION | WRITE_FLAG_DEADLINE)),
        "flags"
    );
    assert_eq!(buf.get(28), Some(&0x11), "timestamp_ns");
    assert_eq!(buf.get(36), Some(&0x22), "deadline_ns");
    assert_eq!(buf.get(44..), Some(&b"abc"[..]), "data");
    assert_eq!(WriteRequest::decode(&buf)?, req);
    assert!(WriteRequest::decode(&buf.slice(..40)).is_err(), "cut short");
    let mut both = buf.to_vec();
    both[1] |= WRITE_FLAG_IF_NEWER;
    assert!(
        WriteRequest::decode(&Bytes::from(both)).is_err(),
        "IF_NEWER with VERSION"
    );
    for mode in [
        WriteMode::Prepare { reserve: 1 },
        WriteMode::Part { offset: 0 },
    ] {
        let req = WriteRequest {
            mode,
            version: Some(1),
            data: Bytes::new(),
            ..WriteRequest::whole("")
        };
        assert!(encoded(&req).is_err(), "{mode:?} takes no version");
    }
    Ok(())
}
