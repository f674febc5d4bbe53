//! AUTH payloads (protocol version 2): the client's proof of its key's secret, and the
//! node's proof and verdict. See `docs/PROTOCOL.md` §7.11 and `docs/SECURITY.md`.

use bytes::{BufMut, BytesMut};

use crate::wire::cursor::{check_limit, Reader};
use crate::wire::error::WireError;

/// Bytes of a proof.
pub const PROOF_LEN: usize = 32;
/// Most namespaces an AUTH reply lists.
pub const MAX_AUTH_NAMESPACES: usize = 64;
/// Longest namespace (bytes).
pub const MAX_NAMESPACE_LEN: usize = 255;

/// Role numbers in an AUTH reply.
pub const ROLE_READ: u8 = 1;
pub const ROLE_WRITE: u8 = 2;
pub const ROLE_ADMIN: u8 = 3;
pub const ROLE_NODE: u8 = 4;

/// The client's proof. Layout: proof \[u8; 32\].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthRequest {
    pub proof: [u8; PROOF_LEN],
}

/// The node's answer to a valid proof. Layout: node_proof \[u8; 32\], role u8, reserved u8,
/// ns_count u16, then ns_count × (ns_len u8 (1..=255), ns). No namespaces = all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthReply {
    /// `HMAC(ServerKey, message)`: proves the node holds the key's verifier.
    pub node_proof: [u8; PROOF_LEN],
    /// `ROLE_READ`..`ROLE_NODE`.
    pub role: u8,
    /// The namespaces the key may touch; empty = all.
    pub namespaces: Vec<String>,
}

impl AuthRequest {
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_slice(&self.proof);
    }

    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "AUTH request");
        let mut proof = [0u8; PROOF_LEN];
        proof.copy_from_slice(r.slice(PROOF_LEN)?);
        r.finish()?;
        Ok(AuthRequest { proof })
    }
}

impl AuthReply {
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        check_role(self.role)?;
        check_limit(
            "AUTH reply namespaces",
            self.namespaces.len(),
            MAX_AUTH_NAMESPACES,
        )?;
        for ns in &self.namespaces {
            check_namespace(ns)?;
        }
        dst.put_slice(&self.node_proof);
        dst.put_u8(self.role);
        dst.put_u8(0);
        dst.put_u16_le(self.namespaces.len() as u16);
        for ns in &self.namespaces {
            dst.put_u8(ns.len() as u8);
            dst.put_slice(ns.as_bytes());
        }
        Ok(())
    }

    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "AUTH reply");
        let mut node_proof = [0u8; PROOF_LEN];
        node_proof.copy_from_slice(r.slice(PROOF_LEN)?);
        let role = r.u8()?;
        r.reserved(1, "AUTH reply reserved")?;
        let count = r.len_u16(MAX_AUTH_NAMESPACES)?;
        let mut namespaces = Vec::with_capacity(count);
        for _ in 0..count {
            let len = usize::from(r.u8()?);
            let ns = r.utf8(len)?;
            check_namespace(&ns)?;
            namespaces.push(ns);
        }
        r.finish()?;
        check_role(role)?;
        Ok(AuthReply {
            node_proof,
            role,
            namespaces,
        })
    }
}

fn check_role(role: u8) -> Result<(), WireError> {
    if (ROLE_READ..=ROLE_NODE).contains(&role) {
        Ok(())
    } else {
        Err(WireError::InvalidValue {
            what: "AUTH reply role (1 read, 2 write, 3 admin, 4 node)",
            value: u64::from(role),
        })
    }
}

fn check_namespace(ns: &str) -> Result<(), WireError> {
    if ns.is_empty() {
        return Err(WireError::InvalidValue {
            what: "empty namespace in an AUTH reply",
            value: 0,
        });
    }
    check_limit("namespace", ns.len(), MAX_NAMESPACE_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_payloads_round_trip_and_reject_bad_bytes() -> Result<(), WireError> {
        let req = AuthRequest { proof: [7; 32] };
        let mut buf = BytesMut::new();
        req.encode(&mut buf);
        assert_eq!(AuthRequest::decode(&buf)?, req);
        assert!(AuthRequest::decode(&buf[..31]).is_err());
        buf.put_u8(0);
        assert!(AuthRequest::decode(&buf).is_err(), "trailing byte");

        let reply = AuthReply {
            node_proof: [9; 32],
            role: ROLE_WRITE,
            namespaces: vec!["photos".into(), "docs".into()],
        };
        let mut out = BytesMut::new();
        reply.encode(&mut out)?;
        assert_eq!(out.len(), 32 + 4 + 7 + 5);
        assert_eq!(AuthReply::decode(&out)?, reply);
        let mut bad = out.to_vec();
        bad[32] = 9;
        assert!(AuthReply::decode(&bad).is_err(), "unknown role");
        let mut bad = out.to_vec();
        bad[36] = 0;
        assert!(AuthReply::decode(&bad).is_err(), "empty namespace");
        Ok(())
    }
}
