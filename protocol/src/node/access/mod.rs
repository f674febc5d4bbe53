//! Who may do what on this node (issue 16, `docs/SECURITY.md`): the access keys it accepts
//! (its keys file), the cluster secret other nodes prove, and the per-source limit on
//! failed attempts. Authentication is **required** as soon as the node has any key or a
//! cluster secret; without either it serves every connection as before (the zero-config
//! single node on loopback).
//!
//! Lock order: `state` is a leaf (held only to clone an `Arc` or swap it).

mod admit;
mod limiter;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use tokio::sync::watch;

pub use admit::{admit, seal_for_forward, strip_envelope, Denied};
pub use limiter::FailureLimiter;

use crate::auth::{self, AccessKey, Exchange, KeyEntry, KeysFile, Role, Verifier};
use crate::client::Credentials;

/// The key id nodes authenticate to each other with (its secret is the cluster secret).
pub const NODE_KEY_ID: &str = "node";

/// What a connection may do, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The key it proved (`node` for another node); `None` when authentication is off.
    pub key_id: Option<String>,
    pub role: Role,
    /// Namespaces it may touch; `None` = all.
    pub namespaces: Option<Vec<String>>,
    /// The verifier it proved, to notice when a reload removes or replaces it.
    verifier: Option<[u8; 32]>,
}

impl Identity {
    /// Everything: a node without authentication.
    pub fn open() -> Identity {
        Identity {
            key_id: None,
            role: Role::Admin,
            namespaces: None,
            verifier: None,
        }
    }

    fn of(entry: &KeyEntry) -> Identity {
        Identity {
            key_id: Some(entry.id.clone()),
            role: entry.role,
            namespaces: (!entry.all_namespaces()).then(|| entry.namespaces.clone()),
            verifier: Some(entry.verifier.stored_key),
        }
    }

    fn node(verifier: &Verifier) -> Identity {
        Identity {
            key_id: Some(NODE_KEY_ID.into()),
            role: Role::Node,
            namespaces: None,
            verifier: Some(verifier.stored_key),
        }
    }

    /// A key id to name in logs and messages.
    pub fn name(&self) -> &str {
        self.key_id.as_deref().unwrap_or("(no key)")
    }
}

/// Why the keys or the cluster secret cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Keys {
        path: PathBuf,
        #[source]
        source: auth::KeysFileError,
    },
    #[error("{path}: {why}")]
    Secret { path: PathBuf, why: String },
}

/// The loaded keys and cluster secrets.
#[derive(Default)]
struct Loaded {
    keys: HashMap<String, KeyEntry>,
    /// Accepted cluster secrets' verifiers (the first is also the one this node proves).
    cluster: Vec<Verifier>,
    /// Accepted cluster secrets' datagram MAC keys (the first seals what this node sends).
    macs: Vec<[u8; 32]>,
}

/// The node's access control.
pub struct Access {
    keys_path: Option<PathBuf>,
    secret_path: Option<PathBuf>,
    state: RwLock<Arc<Loaded>>,
    /// Bumped at every reload: connections re-check their identity.
    generation: watch::Sender<u64>,
    /// The cluster key this node proves to its peers (updated by a reload).
    peer_credentials: Credentials,
    /// A node key made at start and never written anywhere: the HTTP gateway in this
    /// process authenticates to its own node with it (as a node, acting for each request's
    /// key), so it needs neither the users' secrets nor a cluster secret.
    local: AccessKey,
    local_verifier: Verifier,
    pub limiter: FailureLimiter,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.read();
        write!(
            f,
            "Access({} keys, {} cluster secrets)",
            s.keys.len(),
            s.cluster.len()
        )
    }
}

impl Default for Access {
    /// No keys, no cluster secret: authentication off.
    fn default() -> Self {
        let local = AccessKey {
            id: NODE_KEY_ID.into(),
            secret: rand::random(),
        };
        Access {
            keys_path: None,
            secret_path: None,
            state: RwLock::default(),
            generation: watch::channel(0).0,
            peer_credentials: Credentials::default(),
            local_verifier: local.verifier(),
            local,
            limiter: FailureLimiter::default(),
        }
    }
}

impl Access {
    /// Loads the keys file at `keys_path` (a missing file is no keys) and the cluster
    /// secret file at `secret_path` (which must exist when given).
    pub fn open(
        keys_path: Option<PathBuf>,
        secret_path: Option<PathBuf>,
    ) -> Result<Access, AccessError> {
        let access = Access {
            keys_path,
            secret_path,
            ..Access::default()
        };
        access.reload()?;
        Ok(access)
    }

    /// Reads the files again. On error nothing changes. Connections whose key was removed
    /// (or whose cluster secret is no longer accepted) close at their next look.
    pub fn reload(&self) -> Result<(usize, usize), AccessError> {
        let keys = match &self.keys_path {
            Some(p) => load_keys(p)?,
            None => HashMap::new(),
        };
        let secrets = match &self.secret_path {
            Some(p) => load_secrets(p)?,
            None => Vec::new(),
        };
        let cluster = secrets.iter().map(AccessKey::verifier).collect();
        let macs = secrets
            .iter()
            .map(|k| crate::cluster::seal::mac_key(&k.secret))
            .collect();
        let counts = (keys.len(), secrets.len());
        self.peer_credentials.set(secrets.into_iter().next());
        *self.state.write() = Arc::new(Loaded {
            keys,
            cluster,
            macs,
        });
        self.generation.send_modify(|g| *g += 1);
        Ok(counts)
    }

    /// Whether connections must authenticate: any key or a cluster secret is configured.
    pub fn required(&self) -> bool {
        let s = self.state.read();
        !s.keys.is_empty() || !s.cluster.is_empty()
    }

    /// Keys and cluster secrets loaded.
    pub fn counts(&self) -> (usize, usize) {
        let s = self.state.read();
        (s.keys.len(), s.cluster.len())
    }

    /// Whether a cluster secret is configured.
    pub fn has_cluster_secret(&self) -> bool {
        !self.state.read().cluster.is_empty()
    }

    /// The MAC keys of the accepted cluster secrets (the first seals); empty without one.
    pub fn cluster_macs(&self) -> Vec<[u8; 32]> {
        self.state.read().macs.clone()
    }

    /// The credentials of this process's own clients of its node (the HTTP gateway): a node
    /// key known only in memory.
    pub fn local_credentials(&self) -> Credentials {
        Credentials::new(Some(self.local.clone()))
    }

    /// The verifiers a node key is checked against: the cluster secrets', then the local key's.
    fn node_verifiers(&self, s: &Loaded) -> Vec<Verifier> {
        s.cluster
            .iter()
            .copied()
            .chain([self.local_verifier])
            .collect()
    }

    /// The key this node proves to other nodes (shared with its peer clients).
    pub fn peer_credentials(&self) -> Credentials {
        self.peer_credentials.clone()
    }

    /// Notified at every reload.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Checks `proof` for `exchange`: the identity it proves, or `None` (an unknown key id
    /// and a wrong secret are not told apart).
    pub fn verify(&self, exchange: &Exchange<'_>, proof: &[u8; 32]) -> Option<Identity> {
        let s = self.state.read().clone();
        if exchange.key_id == NODE_KEY_ID {
            return self
                .node_verifiers(&s)
                .iter()
                .find(|v| v.check(exchange, proof))
                .map(Identity::node);
        }
        let entry = s.keys.get(exchange.key_id)?;
        entry
            .verifier
            .check(exchange, proof)
            .then(|| Identity::of(entry))
    }

    /// The verifier the node proves itself with for `key_id` (for the node proof); the
    /// first cluster secret for nodes.
    pub fn verifier(&self, key_id: &str, identity: &Identity) -> Option<Verifier> {
        let s = self.state.read();
        if key_id == NODE_KEY_ID {
            return self
                .node_verifiers(&s)
                .into_iter()
                .find(|v| Some(v.stored_key) == identity.verifier);
        }
        s.keys.get(key_id).map(|e| e.verifier)
    }

    /// The identity of `key_id` as this node knows it now (a node acting for a client).
    pub fn lookup(&self, key_id: &str) -> Option<Identity> {
        self.state.read().keys.get(key_id).map(Identity::of)
    }

    /// `identity` as it stands after a reload: `None` if its key was removed or its secret
    /// changed (the connection must close); role and namespaces as the file now says.
    pub fn refresh(&self, identity: &Identity) -> Option<Identity> {
        let Some(id) = identity.key_id.as_deref() else {
            return (!self.required()).then(Identity::open);
        };
        let s = self.state.read();
        if id == NODE_KEY_ID {
            return self
                .node_verifiers(&s)
                .iter()
                .find(|v| Some(v.stored_key) == identity.verifier)
                .map(Identity::node);
        }
        s.keys
            .get(id)
            .filter(|e| Some(e.verifier.stored_key) == identity.verifier)
            .map(Identity::of)
    }

    /// The identity of `key` if this node accepts it with that secret (HTTP admin
    /// requests, `admin_guard.rs`): its verifier is derived and compared in constant time.
    pub fn check_secret(&self, key: &crate::auth::AccessKey) -> Option<Identity> {
        let s = self.state.read().clone();
        let entry = s.keys.get(&key.id)?;
        let presented = key.verifier();
        let stored = entry.verifier;
        let diff = presented
            .stored_key
            .iter()
            .chain(&presented.server_key)
            .zip(stored.stored_key.iter().chain(&stored.server_key))
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        (diff == 0).then(|| Identity::of(entry))
    }

    /// The identity and S3 secret of `key_id` (for Signature V4), if the node has both.
    pub fn s3_key(&self, key_id: &str) -> Option<(Identity, String)> {
        let s = self.state.read();
        let entry = s.keys.get(key_id)?;
        Some((Identity::of(entry), entry.s3_secret.clone()?))
    }

    /// Notes a failed attempt from `source`.
    pub fn failed(&self, source: Option<IpAddr>) {
        if let Some(ip) = source {
            self.limiter.failed(ip, std::time::Instant::now());
        }
    }
}

fn load_keys(path: &Path) -> Result<HashMap<String, KeyEntry>, AccessError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(source) => {
            return Err(AccessError::Read {
                path: path.into(),
                source,
            })
        }
    };
    let file = KeysFile::parse(&text).map_err(|source| AccessError::Keys {
        path: path.into(),
        source,
    })?;
    let mut keys = HashMap::new();
    for e in file.keys {
        if e.id == NODE_KEY_ID {
            return Err(AccessError::Keys {
                path: path.into(),
                source: auth::KeysFileError::BadEntry {
                    id: e.id,
                    why: "the id `node` is reserved for the cluster secret".into(),
                },
            });
        }
        keys.insert(e.id.clone(), e);
    }
    Ok(keys)
}

/// The cluster secret file: one secret per line (64 hex digits); `#` starts a comment.
/// The first secret is the one this node proves; every listed one is accepted (rotation).
pub fn load_secrets(path: &Path) -> Result<Vec<AccessKey>, AccessError> {
    let text = std::fs::read_to_string(path).map_err(|source| AccessError::Read {
        path: path.into(),
        source,
    })?;
    let bad = |why: String| AccessError::Secret {
        path: path.into(),
        why,
    };
    let mut secrets = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let key = AccessKey::parse(&format!("{NODE_KEY_ID}:{line}"))
            .map_err(|_| bad(format!("line {}: a secret is 64 hex digits", n + 1)))?;
        secrets.push(key);
    }
    if secrets.is_empty() {
        return Err(bad("no secret in the file".into()));
    }
    Ok(secrets)
}

#[cfg(test)]
mod tests;
