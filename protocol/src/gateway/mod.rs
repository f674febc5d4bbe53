//! The HTTP gateway (`http_listen`, `docs/HTTP.md`): plain HTTP/1.1 routes over objects —
//! `GET`, `HEAD`, `PUT` and `DELETE` of `/{namespace}/{name}` with ranges, conditional
//! requests, content types and user metadata — and JSON listings. Any node serves any
//! object: each request is made through a client of this node's own binary listener, which
//! routes it like any client request (forwarding to owners, W of N, hand-over reads). On a
//! node with access keys every request authenticates as a key (HTTP Basic, or `Bearer
//! ID:SECRET`), and the node's checks of that key's role and namespaces apply unchanged.

mod auth;
mod conditional;
mod errors;
mod listing;
mod object;
mod range;

use std::future::Future;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;

pub use auth::Gateway;

use crate::node::admin::{AdminListener, PeerAddr};

/// Serves the gateway's routes on `listener` until `shutdown` completes.
pub async fn serve(
    listener: AdminListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/", get(listing::namespaces))
        .route("/{namespace}", get(listing::names))
        .route("/{namespace}/", get(listing::names))
        .route(
            "/{namespace}/{*name}",
            get(object::get)
                .head(object::head)
                .put(object::put)
                .delete(object::delete),
        )
        .with_state(gateway);
    let app = app.into_make_service_with_connect_info::<PeerAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
