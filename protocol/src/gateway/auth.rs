//! Who an HTTP request acts as, and the client it is made through: on an open node, one
//! shared client; on a node with access keys, a client authenticated as the key the request
//! presents (`Authorization: Basic` with the key id as user and the secret as password, or
//! `Bearer ID:SECRET`), checked here first so a wrong secret costs no connection. Failures
//! count against the source address like failed `AUTH`s; secrets are never logged.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::http::{header, HeaderMap};
use axum::response::Response;

use super::errors::{plain, refuse};
use crate::client::{Client, ClientConfig, Credentials};
use crate::node::access::Access;

/// Most per-key clients kept; past it the cache starts over.
const MAX_CLIENTS: usize = 1024;

/// The gateway's view of its node.
pub struct Gateway {
    node_addr: String,
    base: ClientConfig,
    /// Set when the node requires keys.
    access: Option<Arc<Access>>,
    clients: tokio::sync::Mutex<HashMap<String, Arc<Client>>>,
}

impl Gateway {
    /// A gateway to the node listening on `node_addr`; `base` carries its TLS settings,
    /// `access` its keys (used only if it requires them).
    pub fn new(node_addr: String, base: ClientConfig, access: Arc<Access>) -> Gateway {
        Gateway {
            node_addr,
            base,
            access: access.required().then_some(access),
            clients: tokio::sync::Mutex::default(),
        }
    }

    /// The client a request with `headers` from `source` is made through, or its refusal.
    pub async fn client_for(
        &self,
        headers: &HeaderMap,
        source: IpAddr,
    ) -> Result<Arc<Client>, Response> {
        let Some(access) = &self.access else {
            return self.client("", Credentials::default()).await;
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
        let key = match presented {
            Ok(key) if access.check_secret(&key).is_some() => key,
            Ok(_) => return Err(self.failed(access, source, "unknown key or wrong secret")),
            Err(why) => return Err(self.failed(access, source, why)),
        };
        let id = key.id.clone();
        self.client(&id, Credentials::new(Some(key))).await
    }

    fn failed(&self, access: &Access, source: IpAddr, why: &'static str) -> Response {
        access.failed(Some(source));
        tracing::debug!(%source, why, "HTTP request refused");
        refuse::unauthorized(why)
    }

    /// The cached client for `id`, connected on first use.
    async fn client(&self, id: &str, credentials: Credentials) -> Result<Arc<Client>, Response> {
        if let Some(c) = self.clients.lock().await.get(id) {
            return Ok(c.clone());
        }
        let mut config = self.base.clone();
        config.security.credentials = credentials;
        config.name = "ringblob-gateway".into();
        let c = Client::connect(&self.node_addr, config)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "the gateway cannot reach its node");
                plain(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "the node cannot be reached",
                )
            })?;
        let mut clients = self.clients.lock().await;
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        Ok(clients.entry(id.to_string()).or_insert(Arc::new(c)).clone())
    }
}
