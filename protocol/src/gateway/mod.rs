//! The HTTP gateway (`http_listen`, `docs/HTTP.md`). Two faces on one listener:
//! - plain HTTP/1.1 — `GET`, `HEAD`, `PUT` and `DELETE` of `/{namespace}/{name}` with
//!   ranges, conditional requests, content types and user metadata, and JSON listings —
//!   authenticated (on a node with keys) by HTTP Basic or `Bearer ID:SECRET`;
//! - the S3 API real S3 clients use (`s3/`), for requests signed with AWS Signature V4 or
//!   naming an S3 sub-resource.
//!
//! Any node serves any object: each request is made through a client of this node's own
//! binary listener, which routes it like any client request (forwarding to owners, W of N,
//! hand-over reads), acting for the request's key (`auth.rs`) — except small whole reads
//! the node owns, which its own serving code answers in process (`local.rs`).

mod auth;
mod conditional;
mod errors;
mod listing;
mod local;
mod object;
mod range;
mod replicas;
pub mod s3;

use std::future::Future;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::Router;

pub use auth::{Gateway, Who};
pub use object::{etag_of, object_etag};
/// Streamed uploads to several groups with a write quorum (also used by the Python client).
pub use replicas::{stream_to_groups, GroupsFailure, Layout};

use crate::node::admin::{AdminListener, PeerAddr};
use crate::wire::payload::auth::MAX_NAMESPACE_LEN;
use crate::wire::MAX_OBJECT_NAME_LEN;

/// Serves the gateway's routes on `listener` until `shutdown` completes.
pub async fn serve(
    listener: AdminListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Every path goes to `entry`, which parses it itself: no route table to match, no path
    // parameters to collect.
    let app = Router::new().fallback(entry).with_state(gateway);
    let app = app.into_make_service_with_connect_info::<PeerAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Every request: S3 if it is signed or names an S3 sub-resource, else plain HTTP.
async fn entry(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    req: Request,
) -> Response {
    // Every request's future is boxed (by axum) and moved whole: the S3 face's, which is
    // large, is boxed on its own so that a plain GET's stays small (a plain GET's future
    // was 8.6 KB, the S3 face's share of it, allocated and copied per request).
    if s3::wants(&req) {
        return Box::pin(s3::handle(&gw, peer, req)).await;
    }
    plain(gw, peer, req).await
}

/// The plain HTTP routes.
async fn plain(gw: Arc<Gateway>, peer: PeerAddr, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = match checked_path(parts.uri.path()) {
        Ok(p) => p,
        Err(why) => return errors::plain(StatusCode::BAD_REQUEST, why),
    };
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let namespace = segments.next().unwrap_or_default().to_string();
    let name = segments.next().map(str::to_string);
    let headers = parts.headers;
    let listing = namespace.is_empty() || ends_listing(&path);
    let method = parts.method;
    if listing && !matches!(method, Method::GET | Method::HEAD) {
        return errors::not_allowed("GET, HEAD", "listings take GET (or HEAD)");
    }
    let q = || Query::try_from_uri(&parts.uri).unwrap_or_else(|_| Query(Default::default()));
    // The routes but GET and HEAD of an object are boxed: their futures stay out of the
    // GET's (see `entry`).
    if namespace.is_empty() {
        return Box::pin(listing::namespaces(
            State(gw),
            q(),
            ConnectInfo(peer),
            headers,
        ))
        .await;
    }
    let name = match (listing, name) {
        (false, Some(name)) => name,
        _ => {
            let names = listing::names(State(gw), Path(namespace), q(), ConnectInfo(peer), headers);
            return Box::pin(names).await;
        }
    };
    let q = match Query::try_from_uri(&parts.uri) {
        Ok(q) => q,
        Err(e) => return errors::plain(StatusCode::BAD_REQUEST, e),
    };
    let ask = (
        State(gw),
        Path((namespace, name)),
        q,
        ConnectInfo(peer),
        headers,
    );
    match method {
        Method::GET => object::get(ask).await,
        Method::HEAD => object::head(ask).await,
        Method::PUT => {
            let (s, p, q, c, h) = ask;
            Box::pin(object::put(s, p, q, c, h, body)).await
        }
        Method::DELETE => Box::pin(object::delete(ask)).await,
        _ => errors::not_allowed(
            "GET, HEAD, PUT, DELETE",
            "objects take GET, HEAD, PUT or DELETE",
        ),
    }
}

/// A request's path percent-decoded, or why it is refused (`400`): a path that is not UTF-8
/// once decoded, or whose namespace or name is longer than the protocol carries.
fn checked_path(raw: &str) -> Result<String, String> {
    let Ok(path) = s3::sigv4::percent_decode_strict(raw) else {
        return Err("the path is not UTF-8 once percent-decoded".into());
    };
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let namespace = segments.next().unwrap_or_default();
    let name = segments.next().unwrap_or_default();
    if namespace.len() > MAX_NAMESPACE_LEN {
        return Err(format!("a namespace is at most {MAX_NAMESPACE_LEN} bytes"));
    }
    if name.len() > MAX_OBJECT_NAME_LEN {
        return Err(format!("a name is at most {MAX_OBJECT_NAME_LEN} bytes"));
    }
    Ok(path)
}

/// `/{namespace}` and `/{namespace}/`: a listing, not an object.
fn ends_listing(path: &str) -> bool {
    let rest = path.trim_start_matches('/');
    match rest.split_once('/') {
        None => true,
        Some((_, name)) => name.is_empty(),
    }
}
