//! What a client proves and checks when it connects: its access key (and, once configured,
//! TLS). Shared by every connection a client opens; a node's peer clients read the cluster
//! key from here at each connect, so a reloaded cluster secret is used from the next one.

use std::sync::Arc;

use parking_lot::RwLock;
use rand::RngCore;

use super::error::ClientError;
use crate::auth::{self, AccessKey, Exchange};
use crate::wire::{AuthOffer, AuthReply, HandshakeReply, HandshakeRequest};

/// The access key a client authenticates with, changeable while connections exist.
#[derive(Clone, Default)]
pub struct Credentials(Arc<RwLock<Option<AccessKey>>>);

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.read().as_ref() {
            Some(k) => write!(f, "Credentials({}:<secret>)", k.id),
            None => f.write_str("Credentials(none)"),
        }
    }
}

impl Credentials {
    pub fn new(key: Option<AccessKey>) -> Credentials {
        Credentials(Arc::new(RwLock::new(key)))
    }

    /// The key used from the next connection on.
    pub fn set(&self, key: Option<AccessKey>) {
        *self.0.write() = key;
    }

    pub fn get(&self) -> Option<AccessKey> {
        self.0.read().clone()
    }
}

/// Client-side security settings.
#[derive(Clone, Debug, Default)]
pub struct ClientSecurity {
    pub credentials: Credentials,
    /// TLS on every connection (`None`: plaintext).
    pub tls: Option<crate::tls::TlsClient>,
}

impl ClientSecurity {
    /// Authenticates with `key`, in plaintext.
    pub fn with_key(key: AccessKey) -> ClientSecurity {
        ClientSecurity {
            credentials: Credentials::new(Some(key)),
            tls: None,
        }
    }
}

/// An authenticating handshake in progress: the key and this side's nonce. (The client
/// uses it; so can a tool that speaks the protocol itself, like the benchmark.)
pub struct Attempt {
    key: AccessKey,
    client_nonce: [u8; 32],
}

impl Attempt {
    /// A fresh attempt for `key` (32 random bytes of nonce from the OS).
    pub fn new(key: AccessKey) -> Attempt {
        let mut client_nonce = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut client_nonce);
        Attempt { key, client_nonce }
    }

    pub fn offer(&self, hs: HandshakeRequest) -> HandshakeRequest {
        hs.with_auth(AuthOffer {
            key_id: self.key.id.clone(),
            client_nonce: self.client_nonce,
        })
    }

    /// The proof to send in AUTH after the node's handshake reply, and the node proof to
    /// expect back.
    pub fn prove(
        &self,
        client_name: &str,
        reply: &HandshakeReply,
    ) -> Result<([u8; 32], [u8; 32]), ClientError> {
        let node_nonce = reply.node_nonce.ok_or_else(|| {
            ClientError::Auth(format!(
                "node {} does not authenticate clients (it has no keys configured); refusing \
                 to use access key {} with it",
                reply.node_name, self.key.id
            ))
        })?;
        let exchange = Exchange {
            key_id: &self.key.id,
            client_name,
            node_name: &reply.node_name,
            version: reply.version,
            client_nonce: self.client_nonce,
            node_nonce,
        };
        Ok((
            auth::proof(&self.key, &exchange),
            auth::expected_node_proof(&self.key, &exchange),
        ))
    }
}

/// Checks the node's AUTH reply against the proof it must carry.
pub fn check_node_proof(reply: &AuthReply, expected: &[u8; 32]) -> Result<(), ClientError> {
    if auth::constant_time_eq(&reply.node_proof, expected) {
        Ok(())
    } else {
        Err(ClientError::Auth(
            "the node's proof is wrong: it does not hold this key (an impostor?)".into(),
        ))
    }
}
