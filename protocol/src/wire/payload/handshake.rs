//! HANDSHAKE payloads: version negotiation, the first exchange on every connection.

use bytes::{BufMut, BytesMut};

use crate::wire::cursor::{check_limit, Reader};
use crate::wire::error::WireError;
use crate::wire::limits::{MAX_NAME_LEN, MAX_PROTOCOL_VERSION, MIN_PROTOCOL_VERSION};

/// Bytes before the name in both handshake payloads.
pub const HANDSHAKE_FIXED_LEN: usize = 10;

/// What a connecting peer speaks. Layout: min_version u8, max_version u8, reserved u16,
/// features u32, name_len u16, name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeRequest {
    /// Oldest protocol version the peer speaks (≥ 1).
    pub min_version: u8,
    /// Newest protocol version the peer speaks (≥ `min_version`).
    pub max_version: u8,
    /// Feature bits the peer would like; version 1 defines none (send 0). A node ignores
    /// bits it does not know.
    pub features: u32,
    /// Free-form UTF-8 name of the client, for logs; at most [`MAX_NAME_LEN`] bytes.
    pub client_name: String,
}

/// The node's answer. Layout: version u8, reserved u8×3, features u32, name_len u16, name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeReply {
    /// The version both sides use from the next frame on.
    pub version: u8,
    /// Feature bits the node accepted (a subset of those requested; 0 in version 1).
    pub features: u32,
    /// The node's id or name; at most [`MAX_NAME_LEN`] bytes.
    pub node_name: String,
}

impl HandshakeRequest {
    /// A request for every version this crate speaks.
    pub fn new(client_name: impl Into<String>) -> Self {
        HandshakeRequest {
            min_version: MIN_PROTOCOL_VERSION,
            max_version: MAX_PROTOCOL_VERSION,
            features: 0,
            client_name: client_name.into(),
        }
    }

    /// The newest version both this crate and the peer speak, if any.
    pub fn negotiate(&self) -> Option<u8> {
        let high = self.max_version.min(MAX_PROTOCOL_VERSION);
        let low = self.min_version.max(MIN_PROTOCOL_VERSION);
        (low <= high).then_some(high)
    }

    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        check_versions(self.min_version, self.max_version)?;
        let name = name_len(&self.client_name)?;
        dst.put_u8(self.min_version);
        dst.put_u8(self.max_version);
        dst.put_u16_le(0);
        dst.put_u32_le(self.features);
        dst.put_u16_le(name);
        dst.put_slice(self.client_name.as_bytes());
        Ok(())
    }

    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "HANDSHAKE request");
        let min_version = r.u8()?;
        let max_version = r.u8()?;
        r.reserved(2, "HANDSHAKE request reserved")?;
        let features = r.u32()?;
        let len = r.len_u16(MAX_NAME_LEN)?;
        let client_name = r.utf8(len)?;
        r.finish()?;
        check_versions(min_version, max_version)?;
        Ok(HandshakeRequest {
            min_version,
            max_version,
            features,
            client_name,
        })
    }
}

impl HandshakeReply {
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        check_versions(self.version, self.version)?;
        let name = name_len(&self.node_name)?;
        dst.put_u8(self.version);
        dst.put_slice(&[0; 3]);
        dst.put_u32_le(self.features);
        dst.put_u16_le(name);
        dst.put_slice(self.node_name.as_bytes());
        Ok(())
    }

    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "HANDSHAKE reply");
        let version = r.u8()?;
        r.reserved(3, "HANDSHAKE reply reserved")?;
        let features = r.u32()?;
        let len = r.len_u16(MAX_NAME_LEN)?;
        let node_name = r.utf8(len)?;
        r.finish()?;
        check_versions(version, version)?;
        Ok(HandshakeReply {
            version,
            features,
            node_name,
        })
    }
}

fn check_versions(min: u8, max: u8) -> Result<(), WireError> {
    if min == 0 {
        return Err(WireError::InvalidValue {
            what: "handshake version 0",
            value: 0,
        });
    }
    if min > max {
        let value = u64::from(min) << 8 | u64::from(max);
        return Err(WireError::InvalidValue {
            what: "handshake min_version > max_version",
            value,
        });
    }
    Ok(())
}

fn name_len(name: &str) -> Result<u16, WireError> {
    check_limit("handshake name", name.len(), MAX_NAME_LEN)?;
    u16::try_from(name.len()).map_err(|_| WireError::InvalidValue {
        what: "handshake name length",
        value: name.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_picks_the_newest_common_version() {
        let mut req = HandshakeRequest::new("t");
        assert_eq!(req.negotiate(), Some(1));
        req.max_version = 9;
        assert_eq!(req.negotiate(), Some(MAX_PROTOCOL_VERSION));
        req.min_version = 2;
        assert_eq!(
            req.negotiate(),
            None,
            "a peer speaking only 2..=9 has nothing in common"
        );
    }

    #[test]
    fn bad_payloads_are_rejected() {
        let mut buf = BytesMut::new();
        let res = HandshakeRequest::new("x".repeat(MAX_NAME_LEN)).encode(&mut buf);
        assert_eq!(res, Ok(()));
        assert_eq!(buf.len(), HANDSHAKE_FIXED_LEN + MAX_NAME_LEN);
        let over = HandshakeRequest::new("x".repeat(MAX_NAME_LEN + 1)).encode(&mut buf);
        assert!(matches!(over, Err(WireError::LimitExceeded { .. })));
        // min > max
        let bytes = [3, 2, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(
            HandshakeRequest::decode(&bytes),
            Err(WireError::InvalidValue { .. })
        ));
        // name length past the end of the payload
        let bytes = [1, 1, 0, 0, 0, 0, 0, 0, 5, 0, b'a'];
        assert_eq!(
            HandshakeRequest::decode(&bytes),
            Err(WireError::Truncated {
                what: "HANDSHAKE request",
                need: 5,
                have: 1
            })
        );
        // shorter than the fixed fields
        assert!(matches!(
            HandshakeReply::decode(&[1, 0, 0]),
            Err(WireError::Truncated { .. })
        ));
    }
}
