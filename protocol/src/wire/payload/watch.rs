//! WATCH request and notification frames (protocol version 3, `docs/PROTOCOL.md` §7.15):
//! a subscription to the writes and removes a node applies to one key, or to the objects of
//! a namespace (optionally those matching an attribute query), answered by a stream of
//! notification frames (MORE set) until it is cancelled or the connection ends.

use bytes::{BufMut, Bytes, BytesMut};

use super::auth::MAX_NAMESPACE_LEN;
use super::envelope::MAX_OBJECT_NAME_LEN;
use crate::wire::cursor::{check_limit, Reader};
use crate::wire::error::WireError;
use crate::wire::KeyId;

/// Request flag: watch a namespace (its name records), not the header's key.
pub const WATCH_NAMESPACE: u8 = 1;
/// Request flag: the query is exact (`docs/ATTRIBUTES.md` §4).
pub const WATCH_EXACT: u8 = 2;
/// Request flag: end the subscription `cancel_trans` of this connection.
pub const WATCH_CANCEL: u8 = 4;
/// Longest query text.
pub const MAX_WATCH_QUERY_LEN: usize = 4096;
/// Bytes of a request before its strings.
pub const WATCH_REQUEST_FIXED_LEN: usize = 16;
/// Bytes of a notification before its name.
pub const WATCH_NOTE_FIXED_LEN: usize = 82;

/// Layout: flags u8, reserved u8, namespace_len u16 (≤ 255), query_len u16 (≤ 4096),
/// reserved u16, cancel_trans u64, then namespace (UTF-8) and query (UTF-8: terms separated
/// by spaces, `docs/ATTRIBUTES.md` §4; empty = every object).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WatchRequest {
    /// `Some`: the namespace's objects; `None`: the header's key.
    pub namespace: Option<String>,
    pub query: String,
    pub exact: bool,
    /// `Some(trans)`: cancel that subscription instead.
    pub cancel: Option<u64>,
}

impl WatchRequest {
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        let ns = self.namespace.as_deref().unwrap_or_default();
        check_limit("WATCH namespace", ns.len(), MAX_NAMESPACE_LEN)?;
        check_limit("WATCH query", self.query.len(), MAX_WATCH_QUERY_LEN)?;
        let flags = if self.namespace.is_some() {
            WATCH_NAMESPACE
        } else {
            0
        } | if self.exact { WATCH_EXACT } else { 0 }
            | if self.cancel.is_some() {
                WATCH_CANCEL
            } else {
                0
            };
        dst.put_u8(flags);
        dst.put_u8(0);
        dst.put_u16_le(ns.len() as u16);
        dst.put_u16_le(self.query.len() as u16);
        dst.put_u16_le(0);
        dst.put_u64_le(self.cancel.unwrap_or(0));
        dst.put_slice(ns.as_bytes());
        dst.put_slice(self.query.as_bytes());
        Ok(())
    }

    pub fn decode(payload: &Bytes) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "WATCH request");
        let flags = r.u8()?;
        if flags & !(WATCH_NAMESPACE | WATCH_EXACT | WATCH_CANCEL) != 0 {
            return Err(WireError::InvalidValue {
                what: "WATCH flags",
                value: u64::from(flags),
            });
        }
        r.reserved(1, "WATCH reserved")?;
        let ns_len = r.len_u16(MAX_NAMESPACE_LEN)?;
        let query_len = r.len_u16(MAX_WATCH_QUERY_LEN)?;
        r.reserved(2, "WATCH reserved")?;
        let cancel = r.u64()?;
        let namespace = r.utf8(ns_len)?;
        let query = r.utf8(query_len)?;
        r.finish()?;
        let has_namespace = flags & WATCH_NAMESPACE != 0;
        if !has_namespace && (!namespace.is_empty() || !query.is_empty()) {
            return Err(WireError::InvalidValue {
                what: "WATCH of a key with a namespace or query",
                value: 0,
            });
        }
        if flags & WATCH_CANCEL == 0 && cancel != 0 {
            return Err(WireError::InvalidValue {
                what: "WATCH cancel_trans without CANCEL",
                value: cancel,
            });
        }
        Ok(WatchRequest {
            namespace: has_namespace.then_some(namespace),
            query,
            exact: flags & WATCH_EXACT != 0,
            cancel: (flags & WATCH_CANCEL != 0).then_some(cancel),
        })
    }
}

/// What a notification says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// The first frame: the subscription is in place (seq 0).
    Subscribed,
    /// A value was written (`column`, `size`).
    Write,
    /// A value was removed (`column`, or every column with `whole_key`).
    Remove,
    /// Events were dropped because the subscriber fell behind: `size` of them, from `seq`.
    Gap,
    /// The subscription ended (the last frame, MORE clear).
    Ended,
}

impl NoteKind {
    fn code(self) -> u8 {
        match self {
            NoteKind::Subscribed => 1,
            NoteKind::Write => 2,
            NoteKind::Remove => 3,
            NoteKind::Gap => 4,
            NoteKind::Ended => 5,
        }
    }

    fn from_code(code: u8) -> Option<NoteKind> {
        Some(match code {
            1 => NoteKind::Subscribed,
            2 => NoteKind::Write,
            3 => NoteKind::Remove,
            4 => NoteKind::Gap,
            5 => NoteKind::Ended,
            _ => return None,
        })
    }
}

/// One notification. Layout: kind u8, flags u8 (bit 0 WHOLE_KEY), column u16, reserved
/// [4], epoch u64, seq u64, owner_seq u64, timestamp_ns u64, size u64, key [32],
/// name_len u16 (≤ 4096), name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchNote {
    pub kind: NoteKind,
    /// A remove of every column of the key.
    pub whole_key: bool,
    pub column: u16,
    /// The node's random start id: a new one after a restart.
    pub epoch: u64,
    /// This subscription's number for the event (1, 2, …); a GAP's first missed number.
    pub seq: u64,
    /// The node's count of events it published when this one was (every subscription).
    pub owner_seq: u64,
    /// When the node applied the change (ns since the epoch).
    pub timestamp_ns: u64,
    /// A write's value size; a GAP's count of missed events.
    pub size: u64,
    pub key: KeyId,
    /// The object's name (namespace subscriptions); empty for a key subscription.
    pub name: Bytes,
}

impl WatchNote {
    /// A note of `kind` with nothing else set.
    pub fn new(kind: NoteKind, epoch: u64) -> WatchNote {
        WatchNote {
            kind,
            whole_key: false,
            column: 0,
            epoch,
            seq: 0,
            owner_seq: 0,
            timestamp_ns: 0,
            size: 0,
            key: [0; 32],
            name: Bytes::new(),
        }
    }

    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        check_limit("WATCH note name", self.name.len(), MAX_OBJECT_NAME_LEN)?;
        dst.put_u8(self.kind.code());
        dst.put_u8(u8::from(self.whole_key));
        dst.put_u16_le(self.column);
        dst.put_bytes(0, 4);
        for v in [
            self.epoch,
            self.seq,
            self.owner_seq,
            self.timestamp_ns,
            self.size,
        ] {
            dst.put_u64_le(v);
        }
        dst.put_slice(&self.key);
        dst.put_u16_le(self.name.len() as u16);
        dst.put_slice(&self.name);
        Ok(())
    }

    pub fn decode(payload: &Bytes) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "WATCH note");
        let code = r.u8()?;
        let kind = NoteKind::from_code(code).ok_or(WireError::InvalidValue {
            what: "WATCH note kind",
            value: u64::from(code),
        })?;
        let flags = r.u8()?;
        if flags > 1 {
            return Err(WireError::InvalidValue {
                what: "WATCH note flags",
                value: u64::from(flags),
            });
        }
        let column = r.u16()?;
        r.reserved(4, "WATCH note reserved")?;
        let (epoch, seq, owner_seq, timestamp_ns, size) =
            (r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?);
        let key = r.key()?;
        let name_len = r.len_u16(MAX_OBJECT_NAME_LEN)?;
        let name = payload.slice_ref(r.slice(name_len)?);
        r.finish()?;
        Ok(WatchNote {
            kind,
            whole_key: flags == 1,
            column,
            epoch,
            seq,
            owner_seq,
            timestamp_ns,
            size,
            key,
            name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn request_golden_vector() -> Result<(), WireError> {
        let req = WatchRequest {
            namespace: Some("ph".into()),
            query: "y=1".into(),
            exact: false,
            cancel: None,
        };
        let mut buf = BytesMut::new();
        req.encode(&mut buf)?;
        let want: Vec<u8> = [&[1u8, 0, 2, 0, 3, 0, 0, 0][..], &[0; 8], b"ph", b"y=1"].concat();
        assert_eq!(&buf[..], &want[..]);
        assert_eq!(WatchRequest::decode(&buf.freeze())?, req);
        let cancel = WatchRequest {
            cancel: Some(7),
            ..WatchRequest::default()
        };
        let mut buf = BytesMut::new();
        cancel.encode(&mut buf)?;
        assert_eq!(&buf[..8], &[4, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(WatchRequest::decode(&buf.freeze())?, cancel);
        Ok(())
    }

    #[test]
    fn note_golden_vector() -> Result<(), WireError> {
        let note = WatchNote {
            column: 2,
            seq: 3,
            owner_seq: 4,
            timestamp_ns: 5,
            size: 6,
            key: [0xab; 32],
            name: Bytes::from_static(b"x"),
            ..WatchNote::new(NoteKind::Write, 1)
        };
        let mut buf = BytesMut::new();
        note.encode(&mut buf)?;
        assert_eq!(buf.len(), WATCH_NOTE_FIXED_LEN + 1);
        assert_eq!(&buf[..8], &[2, 0, 2, 0, 0, 0, 0, 0]);
        assert_eq!(&buf[8..16], &1u64.to_le_bytes());
        assert_eq!(&buf[48..80], &[0xab; 32]);
        assert_eq!(&buf[80..], &[1, 0, b'x']);
        assert_eq!(WatchNote::decode(&buf.freeze())?, note);
        Ok(())
    }

    #[test]
    fn bad_requests_are_refused() {
        let bad = |bytes: &[u8]| WatchRequest::decode(&Bytes::copy_from_slice(bytes)).is_err();
        assert!(
            bad(&[8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            "unknown flag"
        );
        assert!(
            bad(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            "reserved"
        );
        assert!(
            bad(&[0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b'n']),
            "namespace on a key"
        );
        assert!(
            bad(&[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]),
            "cancel_trans alone"
        );
        assert!(
            bad(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            "truncated"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let b = Bytes::from(bytes);
            let _ = WatchRequest::decode(&b);
            let _ = WatchNote::decode(&b);
        }
    }
}
