//! HANDSHAKE payloads: version negotiation, the first exchange on every connection.

use bytes::{BufMut, BytesMut};

use crate::wire::cursor::{check_limit, Reader};
use crate::wire::error::WireError;
use crate::wire::limits::{MAX_NAME_LEN, MAX_PROTOCOL_VERSION, MIN_PROTOCOL_VERSION};

/// Bytes before the name in both handshake payloads.
pub const HANDSHAKE_FIXED_LEN: usize = 10;

/// Feature bit 0 (version 2): the client authenticates with an access key. The request
/// carries the key id and the client's nonce after the name; an accepted reply carries the
/// node's nonce after the name, and the client's next frame is `AUTH`.
pub const FEATURE_AUTH: u32 = 1 << 0;

/// Bytes of each side's handshake nonce.
pub const HANDSHAKE_NONCE_LEN: usize = 32;

/// Longest key id in a handshake.
pub const MAX_KEY_ID_LEN: usize = 64;

/// The authentication part of a version-2 handshake request ([`FEATURE_AUTH`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthOffer {
    /// The access key's id (1..=64 bytes of `a-z 0-9 - _`).
    pub key_id: String,
    /// 32 random bytes, fresh per connection.
    pub client_nonce: [u8; HANDSHAKE_NONCE_LEN],
}

/// What a connecting peer speaks. Layout: min_version u8, max_version u8, reserved u16,
/// features u32, name_len u16, name; with [`FEATURE_AUTH`] then key_id_len u8, key_id,
/// client_nonce \[u8; 32\].
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
    /// Present exactly when `features` has [`FEATURE_AUTH`].
    pub auth: Option<AuthOffer>,
}

/// The node's answer. Layout: version u8, reserved u8×3, features u32, name_len u16, name;
/// with [`FEATURE_AUTH`] then node_nonce \[u8; 32\].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeReply {
    /// The version both sides use from the next frame on.
    pub version: u8,
    /// Feature bits the node accepted (a subset of those requested; 0 in version 1).
    pub features: u32,
    /// The node's id or name; at most [`MAX_NAME_LEN`] bytes.
    pub node_name: String,
    /// The node's nonce; present exactly when `features` has [`FEATURE_AUTH`].
    pub node_nonce: Option<[u8; HANDSHAKE_NONCE_LEN]>,
}

impl HandshakeRequest {
    /// A request for every version this crate speaks.
    pub fn new(client_name: impl Into<String>) -> Self {
        HandshakeRequest {
            min_version: MIN_PROTOCOL_VERSION,
            max_version: MAX_PROTOCOL_VERSION,
            features: 0,
            client_name: client_name.into(),
            auth: None,
        }
    }

    /// A request that authenticates with `key_id` (and so needs version 2).
    pub fn with_auth(mut self, offer: AuthOffer) -> Self {
        self.features |= FEATURE_AUTH;
        self.min_version = self.min_version.max(2);
        self.auth = Some(offer);
        self
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
        match (&self.auth, self.features & FEATURE_AUTH != 0) {
            (None, false) => {}
            (Some(offer), true) => {
                let id_len = key_id_len(&offer.key_id)?;
                dst.put_u16_le(name);
                dst.put_slice(self.client_name.as_bytes());
                dst.put_u8(id_len);
                dst.put_slice(offer.key_id.as_bytes());
                dst.put_slice(&offer.client_nonce);
                return Ok(());
            }
            _ => {
                return Err(WireError::InvalidValue {
                    what: "HANDSHAKE AUTH feature bit without the key id and nonce (or back)",
                    value: u64::from(self.features),
                })
            }
        }
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
        let auth = if features & FEATURE_AUTH != 0 {
            let id_len = usize::from(r.u8()?);
            let key_id = r.utf8(id_len)?;
            key_id_len(&key_id)?;
            let mut client_nonce = [0u8; HANDSHAKE_NONCE_LEN];
            client_nonce.copy_from_slice(r.slice(HANDSHAKE_NONCE_LEN)?);
            Some(AuthOffer {
                key_id,
                client_nonce,
            })
        } else {
            None
        };
        r.finish()?;
        check_versions(min_version, max_version)?;
        Ok(HandshakeRequest {
            min_version,
            max_version,
            features,
            client_name,
            auth,
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
        if self.node_nonce.is_some() != (self.features & FEATURE_AUTH != 0) {
            return Err(WireError::InvalidValue {
                what: "HANDSHAKE reply AUTH feature bit without the node nonce (or back)",
                value: u64::from(self.features),
            });
        }
        dst.put_u16_le(name);
        dst.put_slice(self.node_name.as_bytes());
        if let Some(nonce) = &self.node_nonce {
            dst.put_slice(nonce);
        }
        Ok(())
    }

    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "HANDSHAKE reply");
        let version = r.u8()?;
        r.reserved(3, "HANDSHAKE reply reserved")?;
        let features = r.u32()?;
        let len = r.len_u16(MAX_NAME_LEN)?;
        let node_name = r.utf8(len)?;
        let node_nonce = if features & FEATURE_AUTH != 0 {
            let mut nonce = [0u8; HANDSHAKE_NONCE_LEN];
            nonce.copy_from_slice(r.slice(HANDSHAKE_NONCE_LEN)?);
            Some(nonce)
        } else {
            None
        };
        r.finish()?;
        check_versions(version, version)?;
        Ok(HandshakeReply {
            version,
            features,
            node_name,
            node_nonce,
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

/// A key id's length as its u8 prefix: 1..=64 bytes of `a-z 0-9 - _`.
fn key_id_len(id: &str) -> Result<u8, WireError> {
    let ok = id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if id.is_empty() || !ok {
        return Err(WireError::InvalidValue {
            what: "HANDSHAKE key id (1 to 64 of a-z 0-9 - _)",
            value: id.len() as u64,
        });
    }
    check_limit("handshake key id", id.len(), MAX_KEY_ID_LEN)?;
    Ok(id.len() as u8)
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
        assert_eq!(req.negotiate(), Some(MAX_PROTOCOL_VERSION));
        req.max_version = 1;
        assert_eq!(req.negotiate(), Some(1));
        req.max_version = 9;
        assert_eq!(req.negotiate(), Some(MAX_PROTOCOL_VERSION));
        req.min_version = MAX_PROTOCOL_VERSION + 1;
        assert_eq!(
            req.negotiate(),
            None,
            "a peer speaking only newer versions has nothing in common"
        );
    }

    #[test]
    fn the_auth_offer_and_the_node_nonce_round_trip() -> Result<(), WireError> {
        let req = HandshakeRequest::new("cli").with_auth(AuthOffer {
            key_id: "rbk-0001020304050607".into(),
            client_nonce: [0xaa; 32],
        });
        let mut buf = BytesMut::new();
        req.encode(&mut buf)?;
        assert_eq!(buf.len(), HANDSHAKE_FIXED_LEN + 3 + 1 + 20 + 32);
        assert_eq!(HandshakeRequest::decode(&buf)?, req);
        assert_eq!(req.min_version, 2, "authentication needs version 2");
        // The bit without the fields, and the fields cut short, are refused.
        let mut bare = HandshakeRequest::new("cli");
        bare.features = FEATURE_AUTH;
        assert!(bare.encode(&mut BytesMut::new()).is_err());
        assert!(HandshakeRequest::decode(&buf[..buf.len() - 1]).is_err());
        let reply = HandshakeReply {
            version: 2,
            features: FEATURE_AUTH,
            node_name: "n".into(),
            node_nonce: Some([0x55; 32]),
        };
        let mut out = BytesMut::new();
        reply.encode(&mut out)?;
        assert_eq!(HandshakeReply::decode(&out)?, reply);
        // A bad key id is refused on both sides.
        let mut bad = req.clone();
        if let Some(a) = bad.auth.as_mut() {
            a.key_id = "Bad Id".into();
        }
        assert!(bad.encode(&mut BytesMut::new()).is_err());
        Ok(())
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
