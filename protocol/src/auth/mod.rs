//! Access keys and proof of their secrets (issue 16; see `docs/SECURITY.md`). Pure: no IO,
//! no clock, no randomness of its own — callers pass nonces and secrets in.
//!
//! - [`Role`]: what a key may do, command by command ([`Role::allows`]).
//! - [`AccessKey`]: an id and a secret, written `ID:SECRET` — what a client holds.
//! - [`Verifier`]: what a node stores of a secret. It cannot be used to prove the secret
//!   (it holds `SHA-256(ClientKey)`, not `ClientKey`), so a stolen keys file does not let
//!   anyone authenticate.
//! - [`proof`] and [`Verifier::check`]: a SCRAM-style challenge–response (RFC 5802's
//!   construction with HMAC-SHA-256, without password stretching: secrets are 256 random
//!   bits, not passwords). The proof covers both sides' nonces and the connection's
//!   parameters, so a captured exchange cannot be replayed on another connection, and the
//!   secret never crosses the wire.

mod keys_file;
mod role;

pub use keys_file::{valid_namespace, KeyEntry, KeysFile, KeysFileError, KEYS_FILE};
pub use role::{Role, UnknownRole};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Bytes of a secret (256 random bits).
pub const SECRET_LEN: usize = 32;

/// Bytes of each side's nonce in the handshake.
pub const NONCE_LEN: usize = 32;

/// Longest key id accepted.
pub const MAX_KEY_ID_LEN: usize = 64;

/// A client's access key: an id and its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub id: String,
    pub secret: [u8; SECRET_LEN],
}

impl std::fmt::Debug for AccessKey {
    /// The secret is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccessKey({}:<secret>)", self.id)
    }
}

/// Why an `ID:SECRET` text is not an access key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadAccessKey {
    #[error("an access key is written ID:SECRET (no ':' found)")]
    NoColon,
    #[error("the key id must be 1 to {MAX_KEY_ID_LEN} characters of a-z, 0-9, '-' or '_'")]
    BadId,
    #[error("the secret must be {} hex digits", SECRET_LEN * 2)]
    BadSecret,
}

impl AccessKey {
    /// A new key from 16 + 32 random bytes (the caller's randomness).
    pub fn generate(random_id: [u8; 8], secret: [u8; SECRET_LEN]) -> AccessKey {
        AccessKey {
            id: format!("rbk-{}", hex(&random_id)),
            secret,
        }
    }

    /// Parses `ID:SECRET`.
    pub fn parse(text: &str) -> Result<AccessKey, BadAccessKey> {
        let (id, secret) = text.trim().split_once(':').ok_or(BadAccessKey::NoColon)?;
        check_id(id)?;
        let bytes = unhex(secret).ok_or(BadAccessKey::BadSecret)?;
        let secret: [u8; SECRET_LEN] = bytes.try_into().map_err(|_| BadAccessKey::BadSecret)?;
        Ok(AccessKey {
            id: id.to_string(),
            secret,
        })
    }

    /// The `ID:SECRET` form, shown once when a key is made.
    pub fn to_text(&self) -> String {
        format!("{}:{}", self.id, hex(&self.secret))
    }

    /// What a node stores of this key.
    pub fn verifier(&self) -> Verifier {
        let client_key = self.client_key();
        Verifier {
            stored_key: Sha256::digest(client_key).into(),
            server_key: hmac(&self.secret, b"ringblob server key"),
        }
    }

    /// The key's S3 secret access key: `hex(HMAC-SHA256(secret, "ringblob s3 secret"))`.
    /// S3 clients sign with it (Signature V4, access key id = the key id); the keys file
    /// keeps it because checking such a signature needs it (`keys_file`).
    pub fn s3_secret(&self) -> String {
        hex(&hmac(&self.secret, b"ringblob s3 secret"))
    }

    fn client_key(&self) -> [u8; 32] {
        hmac(&self.secret, b"ringblob client key")
    }
}

/// Checks a key id: 1 to 64 of `a-z 0-9 - _`.
pub fn check_id(id: &str) -> Result<(), BadAccessKey> {
    let ok = !id.is_empty()
        && id.len() <= MAX_KEY_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(BadAccessKey::BadId)
    }
}

/// What a node keeps of a secret: `StoredKey = SHA-256(HMAC(secret, "ringblob client
/// key"))` and `ServerKey = HMAC(secret, "ringblob server key")`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Verifier {
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier(<hidden>)")
    }
}

/// What a proof is bound to: both nonces and the connection's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange<'a> {
    pub key_id: &'a str,
    pub client_name: &'a str,
    pub node_name: &'a str,
    /// The protocol version the handshake settled on.
    pub version: u8,
    pub client_nonce: [u8; NONCE_LEN],
    pub node_nonce: [u8; NONCE_LEN],
}

impl Exchange<'_> {
    /// The bytes both proofs sign: a label, then every field, strings length-prefixed
    /// (u16 little-endian) so no two exchanges share an encoding.
    pub fn message(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(128);
        m.extend_from_slice(b"ringblob-auth-v1");
        for s in [self.key_id, self.client_name, self.node_name] {
            m.extend_from_slice(&(s.len().min(u16::MAX as usize) as u16).to_le_bytes());
            m.extend_from_slice(s.as_bytes());
        }
        m.push(self.version);
        m.extend_from_slice(&self.client_nonce);
        m.extend_from_slice(&self.node_nonce);
        m
    }
}

/// The client's proof that it holds `key`'s secret, for this exchange:
/// `ClientKey XOR HMAC(StoredKey, message)`.
pub fn proof(key: &AccessKey, exchange: &Exchange<'_>) -> [u8; 32] {
    let stored_key: [u8; 32] = Sha256::digest(key.client_key()).into();
    let signature = hmac(&stored_key, &exchange.message());
    xor(&key.client_key(), &signature)
}

/// The node's proof that it knows the key too (`HMAC(ServerKey, message)`): a client can
/// check it to know it is not talking to an impostor.
pub fn node_proof(verifier: &Verifier, exchange: &Exchange<'_>) -> [u8; 32] {
    hmac(&verifier.server_key, &exchange.message())
}

/// [`node_proof`] as a client computes it from its own key.
pub fn expected_node_proof(key: &AccessKey, exchange: &Exchange<'_>) -> [u8; 32] {
    node_proof(&key.verifier(), exchange)
}

impl Verifier {
    /// Whether `proof` proves the secret for this exchange. Constant time in the proof's
    /// bytes.
    pub fn check(&self, exchange: &Exchange<'_>, proof: &[u8; 32]) -> bool {
        let signature = hmac(&self.stored_key, &exchange.message());
        let client_key = xor(proof, &signature);
        let stored: [u8; 32] = Sha256::digest(client_key).into();
        constant_time_eq(&stored, &self.stored_key)
    }
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn xor(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, (x, y)) in out.iter_mut().zip(a.iter().zip(b)) {
        *o = x ^ y;
    }
    out
}

/// Equality whose time does not depend on where the bytes differ.
pub fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from hex (either case); `None` if it is not hex of whole bytes.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests;
