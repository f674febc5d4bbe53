//! LIST request and reply (protocol version 2, `docs/PROTOCOL.md` §7.14): one page of the
//! names a node holds name records for in one namespace, sorted bytewise, or of the
//! namespaces it holds names in. A node answers from its own index only; a listing of the
//! cluster merges the pages of one group's nodes (`client::listing`).

use bytes::{BufMut, Bytes, BytesMut};

use super::auth::MAX_NAMESPACE_LEN;
use super::envelope::MAX_OBJECT_NAME_LEN;
use crate::wire::cursor::{check_limit, Reader};
use crate::wire::error::WireError;
use crate::wire::KeyId;

/// Most entries one LIST reply holds.
pub const MAX_LIST_LIMIT: u32 = 1000;
/// Longest name record a LIST entry carries.
pub const MAX_LIST_RECORD_LEN: usize = 16 << 10;
/// Request flag: list namespaces instead of names.
pub const LIST_NAMESPACES: u8 = 1;
/// Request flag: `after` is present (names strictly after it).
pub const LIST_AFTER: u8 = 2;
/// Reply flag: more entries may follow the last one.
pub const LIST_MORE: u8 = 1;
/// Bytes of a request before its strings.
pub const LIST_REQUEST_FIXED_LEN: usize = 16;
/// Bytes of a reply before its entries.
pub const LIST_REPLY_FIXED_LEN: usize = 16;

/// Layout: flags u8, reserved [3], limit u32 (1..=1000), namespace_len u16 (≤ 255),
/// prefix_len u16 (≤ 4096), after_len u16 (≤ 4096), reserved u16, then namespace (UTF-8),
/// prefix, after. A namespace listing (`LIST_NAMESPACES`) has an empty namespace and prefix
/// and its `after` is a namespace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListRequest {
    pub namespaces: bool,
    pub namespace: String,
    pub prefix: Bytes,
    pub after: Option<Bytes>,
    pub limit: u32,
}

impl ListRequest {
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        self.check()?;
        let flags = if self.namespaces { LIST_NAMESPACES } else { 0 }
            | if self.after.is_some() { LIST_AFTER } else { 0 };
        let after: &[u8] = self.after.as_deref().unwrap_or_default();
        dst.put_u8(flags);
        dst.put_bytes(0, 3);
        dst.put_u32_le(self.limit);
        dst.put_u16_le(self.namespace.len() as u16);
        dst.put_u16_le(self.prefix.len() as u16);
        dst.put_u16_le(after.len() as u16);
        dst.put_u16_le(0);
        dst.put_slice(self.namespace.as_bytes());
        dst.put_slice(&self.prefix);
        dst.put_slice(after);
        Ok(())
    }

    fn check(&self) -> Result<(), WireError> {
        if self.limit == 0 || self.limit > MAX_LIST_LIMIT {
            return Err(WireError::InvalidValue {
                what: "LIST limit (1..=1000)",
                value: u64::from(self.limit),
            });
        }
        check_limit("LIST namespace", self.namespace.len(), MAX_NAMESPACE_LEN)?;
        check_limit("LIST prefix", self.prefix.len(), MAX_OBJECT_NAME_LEN)?;
        let after = self.after.as_ref().map_or(0, Bytes::len);
        check_limit("LIST after", after, MAX_OBJECT_NAME_LEN)?;
        if self.namespaces && (!self.namespace.is_empty() || !self.prefix.is_empty()) {
            return Err(WireError::InvalidValue {
                what: "LIST of namespaces with a namespace or prefix",
                value: 0,
            });
        }
        Ok(())
    }

    pub fn decode(payload: &Bytes) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "LIST request");
        let flags = r.u8()?;
        if flags & !(LIST_NAMESPACES | LIST_AFTER) != 0 {
            return Err(WireError::InvalidValue {
                what: "LIST flags",
                value: u64::from(flags),
            });
        }
        r.reserved(3, "LIST reserved")?;
        let limit = r.u32()?;
        let ns_len = r.len_u16(MAX_NAMESPACE_LEN)?;
        let prefix_len = r.len_u16(MAX_OBJECT_NAME_LEN)?;
        let after_len = r.len_u16(MAX_OBJECT_NAME_LEN)?;
        r.reserved(2, "LIST reserved")?;
        let namespace = r.utf8(ns_len)?;
        let prefix = payload.slice_ref(r.slice(prefix_len)?);
        let after = payload.slice_ref(r.slice(after_len)?);
        r.finish()?;
        if flags & LIST_AFTER == 0 && !after.is_empty() {
            return Err(WireError::InvalidValue {
                what: "LIST after without the AFTER flag",
                value: after.len() as u64,
            });
        }
        let req = ListRequest {
            namespaces: flags & LIST_NAMESPACES != 0,
            namespace,
            prefix,
            after: (flags & LIST_AFTER != 0).then_some(after),
            limit,
        };
        req.check()?;
        Ok(req)
    }
}

/// One listed name: name_len u16, name, key [32], timestamp_ns u64, record_len u32
/// (≤ 16 KiB), record (the name record, `docs/OBJECTS.md` §10). A namespace listing's
/// entries have the namespace as name, a zero key and timestamp, and no record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListEntry {
    pub name: Bytes,
    pub key: KeyId,
    pub timestamp_ns: u64,
    pub record: Bytes,
}

/// Layout: route_version u64 (the answering node's route table version, 0 outside a
/// cluster), flags u8 (bit 0 MORE), reserved [3], count u32 (≤ 1000), then the entries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListReply {
    pub route_version: u64,
    pub more: bool,
    pub entries: Vec<ListEntry>,
}

impl ListReply {
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        check_limit("LIST entries", self.entries.len(), MAX_LIST_LIMIT as usize)?;
        for e in &self.entries {
            check_limit("LIST entry name", e.name.len(), MAX_OBJECT_NAME_LEN)?;
            check_limit("LIST entry record", e.record.len(), MAX_LIST_RECORD_LEN)?;
        }
        dst.put_u64_le(self.route_version);
        dst.put_u8(if self.more { LIST_MORE } else { 0 });
        dst.put_bytes(0, 3);
        dst.put_u32_le(self.entries.len() as u32);
        for e in &self.entries {
            dst.put_u16_le(e.name.len() as u16);
            dst.put_slice(&e.name);
            dst.put_slice(&e.key);
            dst.put_u64_le(e.timestamp_ns);
            dst.put_u32_le(e.record.len() as u32);
            dst.put_slice(&e.record);
        }
        Ok(())
    }

    /// The count is checked against the limit before anything is allocated.
    pub fn decode(payload: &Bytes) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "LIST reply");
        let route_version = r.u64()?;
        let flags = r.u8()?;
        if flags & !LIST_MORE != 0 {
            return Err(WireError::InvalidValue {
                what: "LIST reply flags",
                value: u64::from(flags),
            });
        }
        r.reserved(3, "LIST reply reserved")?;
        let count = r.u32()?;
        check_limit("LIST entries", count as usize, MAX_LIST_LIMIT as usize)?;
        let mut entries = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let name_len = r.len_u16(MAX_OBJECT_NAME_LEN)?;
            let name = payload.slice_ref(r.slice(name_len)?);
            let key = r.key()?;
            let timestamp_ns = r.u64()?;
            let record_len = r.len_u32(MAX_LIST_RECORD_LEN)?;
            let record = payload.slice_ref(r.slice(record_len)?);
            entries.push(ListEntry {
                name,
                key,
                timestamp_ns,
                record,
            });
        }
        r.finish()?;
        Ok(ListReply {
            route_version,
            more: flags & LIST_MORE != 0,
            entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;
    use proptest::prelude::*;

    #[test]
    fn request_golden_vector() -> TestResult {
        let req = ListRequest {
            namespace: "ph".into(),
            prefix: Bytes::from_static(b"a/"),
            after: Some(Bytes::from_static(b"a/1")),
            limit: 100,
            ..ListRequest::default()
        };
        let mut buf = BytesMut::new();
        req.encode(&mut buf)?;
        assert_eq!(
            &buf[..],
            b"\x02\0\0\0\x64\0\0\0\x02\0\x02\0\x03\0\0\0pha/a/1"
        );
        assert_eq!(ListRequest::decode(&buf.freeze())?, req);
        Ok(())
    }

    #[test]
    fn reply_golden_vector() -> TestResult {
        let reply = ListReply {
            route_version: 7,
            more: true,
            entries: vec![ListEntry {
                name: Bytes::from_static(b"x"),
                key: [0xAB; 32],
                timestamp_ns: 5,
                record: Bytes::from_static(b"rec"),
            }],
        };
        let mut buf = BytesMut::new();
        reply.encode(&mut buf)?;
        let mut want = vec![7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, b'x'];
        want.extend_from_slice(&[0xAB; 32]);
        want.extend_from_slice(&[5, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0]);
        want.extend_from_slice(b"rec");
        assert_eq!(&buf[..], &want[..]);
        assert_eq!(ListReply::decode(&buf.freeze())?, reply);
        Ok(())
    }

    #[test]
    fn bad_requests_are_refused() -> TestResult {
        let mut ok = BytesMut::new();
        ListRequest {
            limit: 1,
            ..ListRequest::default()
        }
        .encode(&mut ok)?;
        for (i, b) in [(0usize, 4u8), (1, 1), (4, 0), (5, 0x10)] {
            let mut bad = ok.to_vec();
            bad[i] = b;
            if i == 4 {
                bad[5] = 0;
            }
            assert!(ListRequest::decode(&Bytes::from(bad)).is_err(), "byte {i}");
        }
        let namespaces = ListRequest {
            namespaces: true,
            namespace: "x".into(),
            limit: 1,
            ..ListRequest::default()
        };
        assert!(namespaces.encode(&mut BytesMut::new()).is_err());
        Ok(())
    }

    proptest! {
        #[test]
        fn arbitrary_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let b = Bytes::from(bytes);
            let _ = ListRequest::decode(&b);
            let _ = ListReply::decode(&b);
        }

        #[test]
        fn requests_round_trip(ns in "[a-z]{0,10}", prefix in proptest::collection::vec(any::<u8>(), 0..40),
                               after in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
                               limit in 1u32..=1000) {
            let req = ListRequest { namespaces: false, namespace: ns, prefix: prefix.into(),
                                    after: after.map(Bytes::from), limit };
            let mut buf = BytesMut::new();
            req.encode(&mut buf)?;
            prop_assert_eq!(ListRequest::decode(&buf.freeze())?, req);
        }
    }
}
