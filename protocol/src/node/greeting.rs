//! A connection's first frames: HANDSHAKE (version negotiation, and the node's nonce when
//! the client offers an access key), then — for an authenticating client — AUTH, whose proof
//! decides the connection's identity (`docs/PROTOCOL.md` §7.1 and §7.11).

use std::net::IpAddr;

use bytes::BytesMut;
use rand::RngCore;

use super::access::Identity;
use super::Node;
use crate::auth::{self, Exchange, Role};
use crate::wire::payload::auth::{ROLE_ADMIN, ROLE_NODE, ROLE_READ, ROLE_WRITE};
use crate::wire::{
    encode_error, AuthReply, Command, Frame, HandshakeReply, Reply, Request, Status, FEATURE_AUTH,
    MAX_PROTOCOL_VERSION, MIN_PROTOCOL_VERSION,
};

/// Where a connection stands after its HANDSHAKE.
pub enum Greeting {
    /// Serving, as this identity.
    Open(Identity),
    /// The node requires a key and the client offered none: only `PING` is served.
    Unauthenticated,
    /// The client offered a key; its next frame must be `AUTH`.
    Proving(Pending),
}

/// An authenticating handshake waiting for its proof.
pub struct Pending {
    key_id: String,
    client_name: String,
    version: u8,
    client_nonce: [u8; 32],
    node_nonce: [u8; 32],
}

/// An error reply to send before closing.
type Refusal = BytesMut;

fn refuse(h: &crate::wire::Header, status: Status, msg: &str) -> Refusal {
    let mut out = BytesMut::new();
    encode_error(h, status, msg, &mut out);
    out
}

/// Answers the first frame, which must be a HANDSHAKE with a shared version.
pub fn greet(
    node: &Node,
    first: &Frame,
    peer: Option<IpAddr>,
) -> Result<(BytesMut, Greeting), Refusal> {
    let h = &first.header;
    if h.command != Command::Handshake {
        let msg = "the first frame of a connection must be HANDSHAKE";
        return Err(refuse(h, Status::BadRequest, msg));
    }
    let hs = match Request::decode(first) {
        Ok(Request::Handshake(hs)) => hs,
        Ok(_) => return Err(refuse(h, Status::BadRequest, "not a handshake")),
        Err(e) => return Err(refuse(h, e.status(), &e.to_string())),
    };
    let Some(version) = hs.negotiate() else {
        let msg = format!(
            "client speaks protocol versions {}..={}, this node {MIN_PROTOCOL_VERSION}..={MAX_PROTOCOL_VERSION}",
            hs.min_version, hs.max_version
        );
        return Err(refuse(h, Status::UnsupportedVersion, &msg));
    };
    let access = &node.config.access;
    let mut reply = HandshakeReply {
        version,
        features: 0,
        node_name: node.info.name.clone(),
        node_nonce: None,
    };
    let greeting = match (access.required(), hs.auth) {
        (false, _) => Greeting::Open(Identity::open()),
        (true, _) if version < 2 => {
            let msg = format!(
                "node {} requires authentication, which needs protocol version 2; this client \
                 speaks only up to {}: upgrade it",
                node.info.name, hs.max_version
            );
            return Err(refuse(h, Status::Unauthorized, &msg));
        }
        (true, None) => Greeting::Unauthenticated,
        (true, Some(offer)) => {
            if let Some(wait) = peer.and_then(|ip| blocked(node, ip)) {
                let msg = format!(
                    "too many failed authentications from this address; retry in {} s",
                    wait.as_secs().max(1)
                );
                return Err(refuse(h, Status::Unauthorized, &msg));
            }
            let mut node_nonce = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut node_nonce);
            reply.features = FEATURE_AUTH;
            reply.node_nonce = Some(node_nonce);
            Greeting::Proving(Pending {
                key_id: offer.key_id,
                client_name: hs.client_name,
                version,
                client_nonce: offer.client_nonce,
                node_nonce,
            })
        }
    };
    let mut out = BytesMut::new();
    match Reply::Handshake(reply).encode(h, &mut out) {
        Ok(()) => Ok((out, greeting)),
        Err(e) => Err(refuse(h, Status::Internal, &e.to_string())),
    }
}

/// Whether `ip` must wait before trying again; logs the 1st, 2nd, 4th, 8th… refusal.
fn blocked(node: &Node, ip: IpAddr) -> Option<std::time::Duration> {
    let limiter = &node.config.access.limiter;
    let (wait, refused) = limiter.blocked(ip, std::time::Instant::now())?;
    if refused.is_power_of_two() {
        tracing::warn!(%ip, refused, "authentication attempts refused: too many failures from this address");
    }
    Some(wait)
}

/// Checks the AUTH frame that must follow an authenticating handshake: the reply (with the
/// node's proof) and the connection's identity, or the refusal.
pub fn prove(
    node: &Node,
    pending: &Pending,
    frame: &Frame,
    peer: Option<IpAddr>,
) -> Result<(BytesMut, Identity), Refusal> {
    let h = &frame.header;
    let proof = match (h.command, Request::decode(frame)) {
        (Command::Auth, Ok(Request::Auth(a))) => a.proof,
        (Command::Auth, Err(e)) => return Err(refuse(h, e.status(), &e.to_string())),
        _ => {
            let msg = "AUTH must follow a HANDSHAKE that offered a key";
            return Err(refuse(h, Status::Unauthorized, msg));
        }
    };
    let exchange = Exchange {
        key_id: &pending.key_id,
        client_name: &pending.client_name,
        node_name: &node.info.name,
        version: pending.version,
        client_nonce: pending.client_nonce,
        node_nonce: pending.node_nonce,
    };
    let access = &node.config.access;
    let verified = access.verify(&exchange, &proof).and_then(|identity| {
        let verifier = access.verifier(&pending.key_id, &identity)?;
        Some((identity, verifier))
    });
    let Some((identity, verifier)) = verified else {
        access.failed(peer);
        tracing::warn!(
            peer = ?peer,
            key = %pending.key_id,
            client = %pending.client_name,
            "authentication failed"
        );
        let msg = "authentication failed: unknown key id or wrong secret";
        return Err(refuse(h, Status::Unauthorized, msg));
    };
    let reply = AuthReply {
        node_proof: auth::node_proof(&verifier, &exchange),
        role: role_number(identity.role),
        namespaces: identity.namespaces.clone().unwrap_or_default(),
    };
    let mut out = BytesMut::new();
    match Reply::Auth(reply).encode(h, &mut out) {
        Ok(()) => {
            tracing::debug!(key = %pending.key_id, role = %identity.role, "authenticated");
            Ok((out, identity))
        }
        Err(e) => Err(refuse(h, Status::Internal, &e.to_string())),
    }
}

fn role_number(role: Role) -> u8 {
    match role {
        Role::Read => ROLE_READ,
        Role::Write => ROLE_WRITE,
        Role::Admin => ROLE_ADMIN,
        Role::Node => ROLE_NODE,
    }
}
