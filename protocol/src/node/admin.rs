//! The admin listener (HTTP/1.1, axum): `/metrics` in the Prometheus text format, `/health`
//! (the process serves) and `/ready` (the backend is open and writable, the node is not
//! quarantined, and in a cluster it is in its route table with ranges to serve). It starts
//! before the backend opens, so a probe sees "not ready: opening" during a long recovery
//! rather than a refused connection. It carries no authentication: the binary keeps it on
//! loopback on a node that requires keys (docs/OPERATIONS.md).

use std::future::Future;
use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::Node;

/// What the admin listener serves: the node, once it is built.
#[derive(Clone, Default)]
pub struct AdminState {
    node: Arc<OnceLock<Arc<Node>>>,
}

impl AdminState {
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
    listener: tokio::net::TcpListener,
    state: AdminState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
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
            Some(n) if n.ids.is_empty() => return Err("owns no ranges yet (joining)".into()),
            Some(_) => {}
        }
    }
    Ok(())
}

async fn metrics(State(state): State<AdminState>) -> Response {
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
