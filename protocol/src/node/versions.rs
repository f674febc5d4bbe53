//! Versions fixed where a write is accepted, and deadlines (`docs/PROTOCOL.md` §9.1).
//!
//! The node a client sends a `WRITE` or `REMOVE` to is its coordinator. When the key's owner
//! is another node, the coordinator stamps the request before forwarding it: `VERSION` (its
//! own clock, unless the request already carries a timestamp) and `DEADLINE` (its clock plus
//! the owner timeout and the clock-skew allowance). The owner stores the write with that
//! version, never with its own clock, and refuses a request whose deadline has passed, so a
//! request that waited in a paused owner's socket is never applied late with a new, winning
//! timestamp. A versioned write older than what the owner stores is superseded: it stores
//! nothing and is answered OK, as if it had landed and been overwritten.

use std::time::Duration;

use bytes::BytesMut;

use crate::wire::{Command, Frame, Request, Status};

pub use crate::clock::now_ns;

/// How long a forwarded request may take to reach its owner and start there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The owner timeout: a forwarded request not answered in this long fails `TIMEOUT`.
    pub owner_timeout: Duration,
    /// The clock difference between nodes tolerated: added to deadlines so an owner whose
    /// clock is ahead by up to this much still applies requests in time.
    pub max_clock_skew: Duration,
}

/// The slowest transfer rate a forwarded payload is allowed: a request carrying `n` bytes
/// may take `n / TRANSFER_FLOOR_BYTES_PER_SEC` seconds more than the owner timeout.
pub const TRANSFER_FLOOR_BYTES_PER_SEC: u64 = 16 << 20;

impl Budget {
    /// How long the owner has to answer a request with `payload_len` bytes: the owner
    /// timeout, plus the payload at the transfer floor (a 32 MiB write may take 2 s more).
    pub fn allowed(&self, payload_len: u64) -> Duration {
        let transfer_ms = payload_len.saturating_mul(1000) / TRANSFER_FLOOR_BYTES_PER_SEC;
        self.owner_timeout
            .saturating_add(Duration::from_millis(transfer_ms))
    }

    /// The deadline of a request with `payload_len` bytes forwarded at `now`.
    pub fn deadline(&self, now: u64, payload_len: u32) -> u64 {
        let allowed = self
            .allowed(payload_len.into())
            .saturating_add(self.max_clock_skew);
        now.saturating_add(u64::try_from(allowed.as_nanos()).unwrap_or(u64::MAX))
    }
}

/// The frame to forward for a client's `frame`: a `WRITE` or `REMOVE` with `VERSION` set
/// (unless it carries a timestamp already: a copy keeps its original's) and `DEADLINE` no
/// later than `budget` allows. Any other frame, or one that does not decode (the owner
/// answers its error), is forwarded as it is.
pub fn stamp_forwarded(frame: &Frame, now: u64, budget: &Budget) -> Frame {
    let deadline = budget.deadline(now, frame.header.payload_len);
    let earliest = |d: Option<u64>| Some(d.map_or(deadline, |d| d.min(deadline)));
    rewrite(frame, |req| match req {
        Request::Write(w) => {
            if w.if_newer.is_none() && w.version.is_none() && w.takes_version() {
                w.version = Some(now);
            }
            w.deadline_ns = earliest(w.deadline_ns);
        }
        Request::Remove(r) => {
            if r.if_newer.is_none() && r.version.is_none() {
                r.version = Some(now);
            }
            r.deadline_ns = earliest(r.deadline_ns);
        }
        _ => {}
    })
}

/// `frame` (a stamped `WRITE` or `REMOVE`) with a new deadline from `now`, its version kept:
/// for sending it on to the owner's successor after the owner did not answer (a hinted
/// write, `hints.rs`). Any other frame is returned as it is.
pub fn renew_deadline(frame: &Frame, now: u64, budget: &Budget) -> Frame {
    let deadline = Some(budget.deadline(now, frame.header.payload_len));
    rewrite(frame, |req| match req {
        Request::Write(w) => w.deadline_ns = deadline,
        Request::Remove(r) => r.deadline_ns = deadline,
        _ => {}
    })
}

/// `frame` (a `WRITE` or `REMOVE`) with its request changed by `change` and encoded again;
/// any other frame, or one that does not decode or encode, as it is.
fn rewrite(frame: &Frame, change: impl FnOnce(&mut Request)) -> Frame {
    if !matches!(frame.header.command, Command::Write | Command::Remove) {
        return frame.clone();
    }
    // An envelope (`access.rs`) stays in front of the changed payload.
    let envelope = match frame.header.flags & crate::wire::FLAG_ENVELOPE {
        0 => None,
        _ => match crate::wire::Envelope::split(&frame.payload) {
            Ok((e, _)) => Some(e),
            Err(_) => return frame.clone(),
        },
    };
    let Ok(mut req) =
        super::access::strip_envelope(frame.clone()).and_then(|f| Request::decode(&f))
    else {
        return frame.clone();
    };
    change(&mut req);
    let mut buf = BytesMut::with_capacity(frame.payload.len() + 16);
    if let Some(e) = &envelope {
        if e.encode(&mut buf).is_err() {
            return frame.clone();
        }
    }
    if req.encode_payload(&mut buf).is_err() {
        return frame.clone();
    }
    Frame {
        header: crate::wire::Header {
            payload_len: u32::try_from(buf.len()).unwrap_or(u32::MAX),
            ..frame.header
        },
        payload: buf.freeze(),
    }
}

/// `TIMEOUT` when `deadline` has passed at `now`: the request is not applied.
pub fn check_deadline(deadline: Option<u64>, now: u64) -> Result<(), (Status, String)> {
    match deadline {
        Some(d) if now > d => Err((
            Status::Timeout,
            format!(
                "deadline passed {} ms ago; not applied",
                (now - d) / 1_000_000
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Header, RemoveRequest, WriteMode, WriteRequest};

    const BUDGET: Budget = Budget {
        owner_timeout: Duration::from_secs(1),
        max_clock_skew: Duration::from_millis(500),
    };

    fn frame(req: Request) -> Frame {
        let header = Header::request(req.command(), 9, [3; 32], 2);
        let mut out = BytesMut::new();
        assert!(req.encode_with(&header, &mut out).is_ok());
        match crate::wire::decode_frame(&mut out) {
            Ok(Some(f)) => f,
            other => panic!("{other:?}"),
        }
    }

    fn decoded(f: &Frame) -> Request {
        match Request::decode(f) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_client_write_gets_the_coordinators_version_and_a_deadline() {
        let f = stamp_forwarded(
            &frame(Request::Write(WriteRequest::whole("v"))),
            1_000,
            &BUDGET,
        );
        let Request::Write(w) = decoded(&f) else {
            panic!("not a write")
        };
        assert_eq!(w.version, Some(1_000));
        assert_eq!(w.deadline_ns, Some(1_000 + 1_500_000_000));
        assert_eq!(&w.data[..], b"v");
        assert_eq!((f.header.trans, f.header.key), (9, [3; 32]));
    }

    #[test]
    fn a_copy_keeps_its_timestamp_and_an_earlier_deadline_stays() {
        let copy = WriteRequest {
            if_newer: Some(7),
            deadline_ns: Some(500),
            ..WriteRequest::whole("v")
        };
        let f = stamp_forwarded(&frame(Request::Write(copy)), 1_000, &BUDGET);
        let Request::Write(w) = decoded(&f) else {
            panic!("not a write")
        };
        assert_eq!(
            (w.if_newer, w.version, w.deadline_ns),
            (Some(7), None, Some(500))
        );
        let part = WriteRequest {
            mode: WriteMode::Part { offset: 0 },
            ..WriteRequest::whole("v")
        };
        let Request::Write(w) = decoded(&stamp_forwarded(&frame(Request::Write(part)), 1, &BUDGET))
        else {
            panic!("not a write")
        };
        assert_eq!(w.version, None, "a part of an upload takes no version");
        assert!(w.deadline_ns.is_some());
    }

    #[test]
    fn removes_are_stamped_and_reads_pass_unchanged() {
        let f = stamp_forwarded(
            &frame(Request::Remove(RemoveRequest::default())),
            5,
            &BUDGET,
        );
        let Request::Remove(r) = decoded(&f) else {
            panic!("not a remove")
        };
        assert_eq!((r.column, r.version), (None, Some(5)));
        let read = frame(Request::Lookup(crate::wire::LookupRequest { column: 0 }));
        assert_eq!(stamp_forwarded(&read, 5, &BUDGET), read);
    }

    #[test]
    fn a_renewed_deadline_keeps_the_version() {
        let f = stamp_forwarded(
            &frame(Request::Write(WriteRequest::whole("v"))),
            1_000,
            &BUDGET,
        );
        let Request::Write(w) = decoded(&renew_deadline(&f, 9_000, &BUDGET)) else {
            panic!("not a write")
        };
        assert_eq!(
            (w.version, w.deadline_ns),
            (Some(1_000), Some(9_000 + 1_500_000_000))
        );
    }

    /// The skew tolerance as documented (PROTOCOL §9.1): an owner whose clock runs ahead of
    /// the coordinator's by up to `max_clock_skew` applies a request that reaches it within
    /// the owner timeout; one further ahead than timeout + tolerance refuses it; an owner
    /// behind applies late requests for longer (versions, not deadlines, keep those safe).
    #[test]
    fn deadlines_tolerate_the_documented_clock_skew() {
        let sent = 1_000_000_000_000u64;
        let f = stamp_forwarded(
            &frame(Request::Write(WriteRequest::whole("v"))),
            sent,
            &BUDGET,
        );
        let Request::Write(w) = decoded(&f) else {
            panic!("not a write")
        };
        let ms = 1_000_000u64;
        let arrives = |skew_ahead_ms: u64, after_ms: u64| {
            check_deadline(w.deadline_ns, sent + (skew_ahead_ms + after_ms) * ms)
        };
        assert!(
            arrives(500, 999).is_ok(),
            "skew within the tolerance, in time"
        );
        assert!(arrives(0, 1_499).is_ok(), "no skew: the tolerance is slack");
        assert!(
            arrives(501, 1_000).is_err(),
            "skew beyond the tolerance, late"
        );
        assert!(
            arrives(2_000, 0).is_err(),
            "an owner far ahead refuses at once"
        );
        assert_eq!(
            w.version,
            Some(sent),
            "the version is the coordinator's clock, never the owner's"
        );
    }

    #[test]
    fn a_passed_deadline_is_a_timeout() {
        assert!(check_deadline(None, u64::MAX).is_ok());
        assert!(check_deadline(Some(10), 10).is_ok());
        let Err((status, message)) = check_deadline(Some(10), 2_000_010) else {
            panic!("applied after its deadline")
        };
        assert_eq!(status, Status::Timeout);
        assert!(message.contains("2 ms ago"), "{message}");
    }
}
