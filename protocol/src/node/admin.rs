//! The admin listener (HTTP/1.1, axum): `/metrics` in the Prometheus text format, `/health`
//! (the process serves) and `/ready` (the backend is open and writable, the node is not
//! quarantined, and in a cluster it is in its route table, alive, with ranges to serve). It
//! starts before the backend opens, so a probe sees "not ready: opening" during a long
//! recovery rather than a refused connection. On loopback it is open; beyond loopback on a
//! node that requires keys, `/metrics` takes an admin key (`admin_guard.rs`) and the binary
//! serves it over TLS (`admin_listener.rs`; docs/SECURITY.md).

use std::future::Future;
use std::sync::{Arc, OnceLock};

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::access::Access;
use super::admin_guard::{check, AdminDenied};
pub use super::admin_listener::{AdminListener, PeerAddr};
use super::Node;

/// What the admin listener serves: the node, once it is built; and, if `/metrics` needs an
/// admin key, the node's access keys.
#[derive(Clone, Default)]
pub struct AdminState {
    node: Arc<OnceLock<Arc<Node>>>,
    guard: Option<Arc<Access>>,
}

impl AdminState {
    /// `/metrics` answers only requests carrying an admin key of `access`.
    pub fn guarded(access: Arc<Access>) -> AdminState {
        AdminState {
            guard: Some(access),
            ..AdminState::default()
        }
    }

    /// The node is built: metrics and readiness come from it from now on.
    pub fn set(&self, node: Arc<Node>) {
        let _ = self.node.set(node);
    }

    fn node(&self) -> Option<&Arc<Node>> {
        self.node.get()
    }
}

/// Serves the admin routes on `listener` until `shutdown` completes.
pub async fn serve(
    listener: AdminListener,
    state: AdminState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(state);
    let app = app.into_make_service_with_connect_info::<PeerAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The refusal of a guarded request, if it is refused.
fn refusal(state: &AdminState, headers: &HeaderMap, peer: PeerAddr) -> Option<Response> {
    let access = state.guard.as_ref()?;
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let denied = check(access, authorization, Some(peer.0.ip())).err()?;
    Some(match denied {
        AdminDenied::Unauthorized(why) => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"ringblob\"")],
            format!("{why}\n"),
        )
            .into_response(),
        AdminDenied::Forbidden(why) => (StatusCode::FORBIDDEN, format!("{why}\n")).into_response(),
        AdminDenied::Throttled(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, secs.to_string())],
            "too many failed attempts from this address\n".to_string(),
        )
            .into_response(),
    })
}

async fn health() -> &'static str {
    "ok\n"
}

async fn ready(State(state): State<AdminState>) -> Response {
    match readiness(&state).await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

/// Why the node should not get traffic yet, if it should not.
async fn readiness(state: &AdminState) -> Result<(), String> {
    let Some(node) = state.node() else {
        return Err("opening the backend".into());
    };
    let stats = node
        .backend
        .run(|b| b.stats())
        .await
        .map_err(|e| format!("backend statistics failed: {e}"))?;
    if let Some(why) = stats.read_only {
        return Err(format!("the backend refuses writes: {why}"));
    }
    if node.info.quarantine.before().is_some() {
        return Err("quarantined until repair has compared its data with another group".into());
    }
    if node.info.routes.is_some() {
        let Some(table) = node.info.route_table() else {
            return Err("no route table yet (joining)".into());
        };
        let me = node.info.addr.to_string();
        let own = table.nodes.iter().find(|n| n.addr == me);
        match own {
            None => return Err("not in the route table yet (joining)".into()),
            Some(n) if n.leaving => return Err("draining: handing its ranges over".into()),
            Some(n) if !n.alive => return Err("not serving: left the cluster".into()),
            Some(n) if n.ids.is_empty() => return Err("owns no ranges yet (joining)".into()),
            Some(_) => {}
        }
    }
    Ok(())
}

async fn metrics(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refusal(&state, &headers, peer) {
        return refused;
    }
    let Some(node) = state.node().cloned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "opening the backend\n").into_response();
    };
    let n = node.clone();
    let stat = node.backend.run(move |b| Ok(n.info.stat_json(b))).await;
    let mut stat: serde_json::Value = match stat {
        Ok(text) => serde_json::from_str(&text).unwrap_or_default(),
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    };
    stat["reply_memory_available"] = node.reply_budget.available().into();
    super::metrics::derive_from_stat(&mut stat);
    let nodes: Vec<(u32, bool)> = node
        .info
        .route_table()
        .map(|t| t.nodes.iter().map(|n| (n.group, n.alive)).collect())
        .unwrap_or_default();
    node.metrics.update(&stat, &nodes);
    match node.metrics.encode() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use ringblob_backends::{Backend, BlobBackend};
    use ringblob_engine::io::{FaultDevice, FaultPlan, OsDevice};
    use ringblob_engine::{Config, Durability, Engine, Key, WriteOptions};

    use super::*;
    use crate::node::NodeConfig;

    fn open_engine(dir: &std::path::Path, plan: Arc<FaultPlan>) -> Engine {
        let os = OsDevice::open(dir).unwrap_or_else(|e| panic!("{e}"));
        let device = Arc::new(FaultDevice::new(os, plan));
        Engine::open_on(device, Config::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn ready_until_the_backend_refuses_writes_and_not_before_it_opens() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let state = AdminState::default();
        let before = readiness(&state).await;
        assert!(before.is_err_and(|why| why.contains("opening")));

        // The first fdatasync after the open fails (counted on a first, fault-free open).
        let open_syncs = {
            let plan = FaultPlan::new(None, None);
            let _open = open_engine(&dir.path().join("count"), plan.clone());
            plan.counts().1
        };
        let plan = FaultPlan::new(None, Some(open_syncs + 1));
        let engine = open_engine(&dir.path().join("engine"), plan.clone());
        let backend = BlobBackend::on_engine(engine, dir.path(), Duration::from_secs(3600))
            .unwrap_or_else(|e| panic!("{e}"));
        let backend: Arc<dyn Backend> = Arc::new(backend);
        let addr = "127.0.0.1:1".parse().unwrap_or_else(|e| panic!("{e}"));
        let node = Node::new(backend.clone(), NodeConfig::default(), addr);
        state.set(node);
        assert_eq!(readiness(&state).await, Ok(()));

        // A durable write meets the failed sync: the engine stops taking writes.
        let durable = WriteOptions {
            durability: Some(Durability::Sync),
            ..WriteOptions::default()
        };
        let written = backend.write(&Key([1; 32]), b"value", durable);
        let synced = written.and_then(|_| backend.sync());
        assert!(synced.is_err(), "the sync failed, so must the write");
        let after = readiness(&state).await;
        assert!(
            after
                .as_ref()
                .is_err_and(|why| why.contains("refuses writes")),
            "{after:?}"
        );
        let response = ready(State(state)).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
