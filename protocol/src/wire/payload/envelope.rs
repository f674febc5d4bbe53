//! The request envelope (protocol version 2, header flag `ENVELOPE`): a prefix of the
//! payload saying on whose behalf a node forwards a request, and the namespace and name the
//! header's key was derived from, so that the receiving node can check a namespace-limited
//! key's request itself (`docs/PROTOCOL.md` §7.12, `docs/SECURITY.md`).
//!
//! Layout: env_flags u8 (bit 0 ACTING, bit 1 NAMED, others 0); with ACTING: id_len u8
//! (1..=64), key id; with NAMED: ns_len u8, namespace (UTF-8, 0..=255 bytes), name_len u16
//! (≤ [`MAX_OBJECT_NAME_LEN`]), name (any bytes). The command's own payload follows.

use bytes::{BufMut, Bytes, BytesMut};
use sha2::{Digest, Sha256};

use super::auth::MAX_NAMESPACE_LEN;
use super::handshake::MAX_KEY_ID_LEN;
use crate::wire::cursor::{check_limit, Reader};
use crate::wire::error::WireError;
use crate::wire::KeyId;

/// Longest object name an envelope carries.
pub const MAX_OBJECT_NAME_LEN: usize = 4096;

const ACTING: u8 = 1 << 0;
const NAMED: u8 = 1 << 1;

/// A namespace and a name: what a client derives a key ID from (FORMAT.md §4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectName {
    pub namespace: String,
    pub name: Bytes,
}

impl ObjectName {
    pub fn new(namespace: impl Into<String>, name: impl Into<Bytes>) -> Self {
        ObjectName {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// `SHA-256(u32_le(len(namespace)) || namespace || name)` (FORMAT.md §4).
    pub fn key_id(&self) -> KeyId {
        let mut h = Sha256::new();
        h.update((self.namespace.len() as u32).to_le_bytes());
        h.update(self.namespace.as_bytes());
        h.update(&self.name);
        h.finalize().into()
    }
}

/// A decoded envelope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The access key a node acts for (only a node may send this).
    pub acting: Option<String>,
    /// The namespace and name the header's key is derived from.
    pub name: Option<ObjectName>,
}

impl Envelope {
    /// Appends the envelope (without the command payload).
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        let flags = if self.acting.is_some() { ACTING } else { 0 }
            | if self.name.is_some() { NAMED } else { 0 };
        dst.put_u8(flags);
        if let Some(id) = &self.acting {
            if id.is_empty() {
                return Err(WireError::InvalidValue {
                    what: "empty acting key id",
                    value: 0,
                });
            }
            check_limit("envelope key id", id.len(), MAX_KEY_ID_LEN)?;
            dst.put_u8(id.len() as u8);
            dst.put_slice(id.as_bytes());
        }
        if let Some(n) = &self.name {
            check_limit("envelope namespace", n.namespace.len(), MAX_NAMESPACE_LEN)?;
            check_limit("envelope name", n.name.len(), MAX_OBJECT_NAME_LEN)?;
            dst.put_u8(n.namespace.len() as u8);
            dst.put_slice(n.namespace.as_bytes());
            dst.put_u16_le(n.name.len() as u16);
            dst.put_slice(&n.name);
        }
        Ok(())
    }

    /// Splits an envelope off the front of `payload`: the envelope and the command payload
    /// after it (sharing `payload`'s memory).
    pub fn split(payload: &Bytes) -> Result<(Envelope, Bytes), WireError> {
        let mut r = Reader::new(payload, "request envelope");
        let flags = r.u8()?;
        if flags & !(ACTING | NAMED) != 0 {
            return Err(WireError::InvalidValue {
                what: "envelope flags",
                value: u64::from(flags),
            });
        }
        let mut env = Envelope::default();
        if flags & ACTING != 0 {
            let len = usize::from(r.u8()?);
            if len == 0 || len > MAX_KEY_ID_LEN {
                return Err(WireError::InvalidValue {
                    what: "envelope key id length (1..=64)",
                    value: len as u64,
                });
            }
            env.acting = Some(r.utf8(len)?);
        }
        if flags & NAMED != 0 {
            let ns_len = usize::from(r.u8()?);
            let namespace = r.utf8(ns_len)?;
            let name_len = r.len_u16(MAX_OBJECT_NAME_LEN)?;
            let name = Bytes::copy_from_slice(r.slice(name_len)?);
            env.name = Some(ObjectName { namespace, name });
        }
        let used = payload.len() - r.remaining();
        Ok((env, payload.slice(used..)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_leave_the_payload() -> Result<(), WireError> {
        let env = Envelope {
            acting: Some("rbk-0011223344556677".into()),
            name: Some(ObjectName::new("photos", &b"cat.jpg"[..])),
        };
        let mut buf = BytesMut::new();
        env.encode(&mut buf)?;
        buf.put_slice(b"PAYLOAD");
        let (back, rest) = Envelope::split(&buf.freeze())?;
        assert_eq!(back, env);
        assert_eq!(&rest[..], b"PAYLOAD");
        let empty = Bytes::from_static(&[0]);
        assert_eq!(
            Envelope::split(&empty)?,
            (Envelope::default(), Bytes::new())
        );
        assert!(
            Envelope::split(&Bytes::from_static(&[4])).is_err(),
            "bad flag"
        );
        assert!(
            Envelope::split(&Bytes::from_static(&[1, 0])).is_err(),
            "empty id"
        );
        assert!(
            Envelope::split(&Bytes::from_static(&[2, 3, b'a'])).is_err(),
            "short"
        );
        Ok(())
    }

    #[test]
    fn names_derive_the_format_vectors() {
        // FORMAT.md §4.
        let id = ObjectName::new("photos", &b"cat.jpg"[..]).key_id();
        assert_eq!(
            crate::auth::hex(&id),
            "44c74d5d41d27b0ec083321fec673f4d05ec95bd356e6dcc8da1e650ed93ea05"
        );
    }
}
