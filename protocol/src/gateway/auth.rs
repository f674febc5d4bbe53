//! Who an HTTP request acts as, and the client it is made through. On an open node: one
//! shared client. On a node with access keys: the request proves a key — HTTP Basic (the
//! key id as user, the secret as password) or `Bearer ID:SECRET` on the plain routes, AWS
//! Signature V4 on the S3 routes — and is made through a client of this node that
//! authenticates with the process-local node key and acts for that key (the request
//! envelope), so the node applies the key's role and namespaces exactly as to a client of
//! its own. Failures count against the source address like failed `AUTH`s; secrets are never
//! logged.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::http::{header, HeaderMap};
use axum::response::Response;

use super::errors::{plain, refuse};
use super::s3::error::S3Error;
use super::s3::sigv4::{self, Arrived, Payload};
use crate::client::{Client, ClientConfig, Credentials, Quorum};
use crate::node::access::{Access, Identity};
use crate::node::Node;

/// Most per-key clients kept; past it the cache starts over.
const MAX_CLIENTS: usize = 1024;
/// The cache slot of the gateway's own client (acting for no key).
const SYSTEM: &str = "";

/// Who a request acts as.
#[derive(Debug, Clone)]
pub enum Who {
    /// A node without keys: anyone may do anything.
    Open,
    Key(Identity),
}

impl Who {
    /// Whether it may write in `namespace` (the gateway's own checks, for bucket records).
    pub fn may_write(&self, namespace: &str) -> bool {
        self.may(crate::auth::Role::Write, namespace)
    }

    /// Whether it may read in `namespace` (the gateway's own checks, for what it keeps
    /// about a bucket under its own key: the bucket's record, its multipart uploads).
    pub fn may_read(&self, namespace: &str) -> bool {
        self.may(crate::auth::Role::Read, namespace)
    }

    fn may(&self, role: crate::auth::Role, namespace: &str) -> bool {
        match self {
            Who::Open => true,
            Who::Key(id) => {
                id.role >= role
                    && id
                        .namespaces
                        .as_ref()
                        .is_none_or(|ns| ns.iter().any(|n| n == namespace))
            }
        }
    }
}

/// The gateway's view of its node.
pub struct Gateway {
    node_addr: String,
    base: ClientConfig,
    /// Set when the node requires keys.
    access: Option<Arc<Access>>,
    /// Held only to look up or insert, never across an await.
    clients: parking_lot::Mutex<HashMap<String, Arc<Client>>>,
    /// The node's own group, read first.
    own_group: u32,
    /// How many groups must store a write.
    write_quorum: Quorum,
    /// The cluster's groups (own first) and when they were read from the route table.
    groups: parking_lot::Mutex<(Option<Instant>, Vec<u32>)>,
    /// The node itself, when the gateway runs in its process: small whole reads it owns are
    /// served in process (`local.rs`).
    local: Option<Arc<Node>>,
}

/// How long the list of groups is used before the route table is read again.
const GROUPS_TTL: std::time::Duration = std::time::Duration::from_secs(5);

impl Gateway {
    /// A gateway to the node listening on `node_addr`; `base` carries its TLS settings,
    /// `access` its keys (used only if it requires them).
    pub fn new(node_addr: String, base: ClientConfig, access: Arc<Access>) -> Gateway {
        Gateway {
            node_addr,
            base,
            access: access.required().then_some(access),
            clients: parking_lot::Mutex::default(),
            own_group: 0,
            write_quorum: Quorum::Majority,
            groups: parking_lot::Mutex::default(),
            local: None,
        }
    }

    /// Reads this node owns are served in process (`local.rs`) instead of through a client
    /// of its listener.
    pub fn with_local(mut self, node: Arc<Node>) -> Gateway {
        self.local = Some(node);
        self
    }

    /// The node, when the gateway runs in its process.
    pub(super) fn local(&self) -> Option<&Arc<Node>> {
        self.local.as_ref()
    }

    /// Writes go to every group and need `w` of them; reads ask `own_group` first.
    pub fn with_groups(mut self, own_group: u32, w: Quorum) -> Gateway {
        self.own_group = own_group;
        self.write_quorum = w;
        self
    }

    /// The groups a write goes to and a read tries (own group first), and the quorum.
    pub async fn replicas(&self) -> (Vec<u32>, Quorum) {
        {
            let g = self.groups.lock();
            if g.0.is_some_and(|at| at.elapsed() < GROUPS_TTL) && !g.1.is_empty() {
                return (g.1.clone(), self.write_quorum);
            }
        }
        // Boxed: the route table's request stays out of every request's future.
        Box::pin(self.refresh_replicas()).await
    }

    /// [`Gateway::replicas`] asked of the node's route table again.
    async fn refresh_replicas(&self) -> (Vec<u32>, Quorum) {
        let table = match self.client(SYSTEM).await {
            Ok(c) => c.route_table().await.ok(),
            Err(_) => None,
        };
        let mut list: Vec<u32> = table
            .map(|t| t.nodes.iter().map(|n| n.group).collect())
            .unwrap_or_default();
        list.sort_unstable();
        list.dedup();
        if let Some(i) = list.iter().position(|g| *g == self.own_group) {
            list[..=i].rotate_right(1);
        }
        if list.is_empty() {
            // No table: the node's own group (0 names it).
            return (vec![0], self.write_quorum);
        }
        *self.groups.lock() = (Some(Instant::now()), list.clone());
        (list, self.write_quorum)
    }

    /// The client a plain-HTTP request with `headers` from `source` is made through and who it
    /// acts as, or its refusal.
    pub async fn client_for(
        &self,
        headers: &HeaderMap,
        source: IpAddr,
    ) -> Result<(Arc<Client>, Who), Response> {
        let Some(access) = &self.access else {
            let client = self.client(SYSTEM).await.map_err(unreachable)?;
            return Ok((client, Who::Open));
        };
        if let Some((wait, _)) = access.limiter.blocked(source, Instant::now()) {
            return Err(refuse::throttled(wait.as_secs().max(1)));
        }
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or("an access key is required (HTTP Basic: key id and secret)")
            .and_then(|v| {
                crate::node::admin_guard::presented_key(v)
                    .map_err(|_| "malformed Authorization header")
            });
        let (key, identity) = match presented {
            Ok(key) => match access.check_secret(&key) {
                Some(identity) => (key, identity),
                None => return Err(self.failed(access, source, "unknown key or wrong secret")),
            },
            Err(why) => return Err(self.failed(access, source, why)),
        };
        let client = self.client(&key.id).await.map_err(unreachable)?;
        Ok((client, Who::Key(identity)))
    }

    /// The client and identity of an S3 request, and what its signature says of the body.
    pub async fn s3_client(
        &self,
        arrived: &Arrived<'_>,
        source: IpAddr,
    ) -> Result<(Arc<Client>, Who, Payload), S3Error> {
        let Some(access) = &self.access else {
            let payload = unverified_payload(arrived.headers)?;
            let client = self.client(SYSTEM).await.map_err(|_| unavailable())?;
            return Ok((client, Who::Open, payload));
        };
        if access.limiter.blocked(source, Instant::now()).is_some() {
            return Err(S3Error::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "SlowDown",
                "too many failed attempts from this address",
            ));
        }
        if let Some(id) = super::s3::sigv2::key_id(arrived) {
            let Some((identity, secret)) = access.s3_key(&id) else {
                access.failed(Some(source));
                return Err(S3Error::unknown_key());
            };
            super::s3::sigv2::verify(arrived, &secret, SystemTime::now())
                .inspect_err(|_| access.failed(Some(source)))?;
            let client = self.client(&id).await.map_err(|_| unavailable())?;
            return Ok((client, Who::Key(identity), Payload::Unsigned));
        }
        if !sigv4::is_signed(arrived) {
            return Err(S3Error::access_denied(
                "anonymous requests are refused: sign with an access key",
            ));
        }
        let claims = sigv4::claims(arrived)?;
        let Some((identity, secret)) = access.s3_key(&claims.key_id) else {
            access.failed(Some(source));
            return Err(S3Error::unknown_key());
        };
        let payload =
            sigv4::verify(arrived, &claims, &secret, SystemTime::now()).inspect_err(|e| {
                if e.code == "SignatureDoesNotMatch" {
                    access.failed(Some(source));
                }
            })?;
        let client = self
            .client(&claims.key_id)
            .await
            .map_err(|_| unavailable())?;
        Ok((client, Who::Key(identity), payload))
    }

    /// The gateway's own client: on a node with keys, the node key acting for no one (bucket
    /// records, multipart parts; the gateway checks the request's key itself first).
    pub async fn system(&self) -> Result<Arc<Client>, S3Error> {
        self.client(SYSTEM).await.map_err(|_| unavailable())
    }

    fn failed(&self, access: &Access, source: IpAddr, why: &'static str) -> Response {
        access.failed(Some(source));
        tracing::debug!(%source, why, "HTTP request refused");
        refuse::unauthorized(why)
    }

    /// The cached client acting for key `id` (`SYSTEM`: for no key), connected on first use.
    async fn client(&self, id: &str) -> Result<Arc<Client>, crate::client::ClientError> {
        if let Some(c) = self.clients.lock().get(id) {
            return Ok(c.clone());
        }
        // Boxed: the connection's future stays out of every request's.
        Box::pin(self.connect_client(id)).await
    }

    /// A new client of the node acting for `id`, kept for the next requests.
    async fn connect_client(&self, id: &str) -> Result<Arc<Client>, crate::client::ClientError> {
        let mut config = self.base.clone();
        config.name = "ringblob-gateway".into();
        if let Some(access) = &self.access {
            // The cluster secret when there is one: a listing asks every node of a group,
            // and the other nodes know only that; else the key known to this process alone.
            config.security.credentials = match access.has_cluster_secret() {
                true => access.peer_credentials(),
                false => access.local_credentials(),
            };
            config.acting = (id != SYSTEM).then(|| id.to_string());
        } else {
            config.security.credentials = Credentials::default();
        }
        let c = Client::connect(&self.node_addr, config)
            .await
            .inspect_err(|e| {
                tracing::warn!(error = %e, "the gateway cannot reach its node");
            })?;
        let mut clients = self.clients.lock();
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        Ok(clients.entry(id.to_string()).or_insert(Arc::new(c)).clone())
    }
}

fn unreachable(_: crate::client::ClientError) -> Response {
    plain(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "the node cannot be reached",
    )
}

fn unavailable() -> S3Error {
    S3Error::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        "the node cannot be reached",
    )
}

/// On a node without keys signatures are not checked, but the body is still read as the
/// client sent it (a signed hash is still checked).
fn unverified_payload(headers: &HeaderMap) -> Result<Payload, S3Error> {
    let text = headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok());
    Ok(match text {
        None | Some("UNSIGNED-PAYLOAD") => Payload::Unsigned,
        Some(t) if t.starts_with("STREAMING-") => Payload::UnsignedChunks,
        Some(t) => match crate::auth::unhex(t).and_then(|b| <[u8; 32]>::try_from(b).ok()) {
            Some(hash) => Payload::Sha256(hash),
            None => {
                return Err(S3Error::invalid_argument(
                    "x-amz-content-sha256 is not a SHA-256",
                ))
            }
        },
    })
}
