//! JSON listings: `GET /` (the namespaces) and `GET /{namespace}/` (its names, in byte order,
//! `?prefix=`, `?after=` to continue, `?limit=` up to 1000), merged across the cluster like
//! `ringblob ls` (`Client::list`); and `GET /{namespace}/?find=QUERY` (objects whose
//! attributes match, `?exact=1`, `?after=` the token, `?limit=` up to 1000), like
//! `ringblob find` (`Client::find`, `docs/ATTRIBUTES.md`).

use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use ringblob_backends::names::NameRecord;
use serde::Deserialize;
use serde_json::json;

use super::errors::{failure, plain};
use super::Gateway;
use crate::node::admin::PeerAddr;
use crate::wire::{ListRequest, MAX_LIST_LIMIT};

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    prefix: Option<String>,
    after: Option<String>,
    limit: Option<u32>,
    /// A query on attributes (terms separated by spaces): a find, not a listing.
    find: Option<String>,
    /// `1` or `true`: the query is exact.
    exact: Option<String>,
}

pub async fn namespaces(
    State(gw): State<Arc<Gateway>>,
    Query(q): Query<ListQuery>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
) -> Response {
    let req = ListRequest {
        namespaces: true,
        after: q.after.map(Bytes::from),
        limit: q.limit.unwrap_or(MAX_LIST_LIMIT).clamp(1, MAX_LIST_LIMIT),
        ..ListRequest::default()
    };
    list(&gw, &headers, peer, req, |e| {
        json!(String::from_utf8_lossy(&e.name))
    })
    .await
}

pub async fn names(
    State(gw): State<Arc<Gateway>>,
    Path(namespace): Path<String>,
    Query(q): Query<ListQuery>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
) -> Response {
    if let Some(words) = q.find.clone() {
        return find(&gw, &headers, peer, namespace, (words, q)).await;
    }
    let req = ListRequest {
        namespace,
        prefix: Bytes::from(q.prefix.unwrap_or_default()),
        after: q.after.map(Bytes::from),
        limit: q.limit.unwrap_or(MAX_LIST_LIMIT).clamp(1, MAX_LIST_LIMIT),
        ..ListRequest::default()
    };
    list(&gw, &headers, peer, req, |e| {
        let rec = NameRecord::decode(&e.record).unwrap_or_default();
        let modified = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(e.timestamp_ns);
        json!({
            "name": String::from_utf8_lossy(&e.name),
            "size": rec.size,
            "etag": rec.etag,
            "content_type": rec.content_type,
            "last_modified": httpdate::fmt_http_date(modified),
        })
    })
    .await
}

/// One page of a query on attributes: `{"objects": [...], "next": token|null, "cost": {...}}`.
async fn find(
    gw: &Gateway,
    headers: &HeaderMap,
    peer: PeerAddr,
    namespace: String,
    (words, q): (String, ListQuery),
) -> Response {
    let exact = matches!(q.exact.as_deref(), Some("1" | "true"));
    let terms: Vec<&str> = words.split_whitespace().collect();
    let query = match crate::attrs::Query::parse(&terms, exact) {
        Ok(query) => query,
        Err(e) => return plain(StatusCode::BAD_REQUEST, e),
    };
    let after = match q.after.as_deref().map(crate::ring::RingId::from_hex) {
        None => None,
        Some(Ok(id)) => Some(id.0),
        Some(Err(e)) => return plain(StatusCode::BAD_REQUEST, format!("after: {e}")),
    };
    let (client, _) = match gw.client_for(headers, peer.0.ip()).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let ask = crate::client::FindAsk {
        namespace,
        query,
        after,
        limit: q.limit.unwrap_or(MAX_LIST_LIMIT).clamp(1, MAX_LIST_LIMIT) as usize,
        groups: Vec::new(),
        scan: false,
    };
    match client.find(&ask).await {
        Ok(page) => {
            let objects: Vec<_> = page.hits.iter().map(found).collect();
            let next = page.next.map(|k| crate::ring::RingId(k).to_hex());
            let body = json!({ "objects": objects, "next": next, "cost": page.cost });
            (
                StatusCode::OK,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                format!("{body}\n"),
            )
                .into_response()
        }
        Err(crate::client::ClientError::Input(m)) => plain(StatusCode::BAD_REQUEST, m),
        Err(e) if e.status().is_some() => failure(&e),
        Err(e) => plain(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

/// One object a find returned, as JSON.
fn found(hit: &crate::client::FindHit) -> serde_json::Value {
    let attrs: serde_json::Map<String, serde_json::Value> = hit
        .attrs
        .iter()
        .map(|(k, v)| {
            let v = match v {
                ringblob_backends::names::AttrValue::Str(s) => json!(s),
                ringblob_backends::names::AttrValue::Int(n) => json!(n),
            };
            (k.clone(), v)
        })
        .collect();
    json!({
        "name": String::from_utf8_lossy(&hit.name),
        "attrs": attrs,
        "size": hit.record.size,
        "etag": hit.record.etag,
        "content_type": hit.record.content_type,
    })
}

async fn list(
    gw: &Gateway,
    headers: &HeaderMap,
    peer: PeerAddr,
    req: ListRequest,
    show: impl Fn(&crate::wire::ListEntry) -> serde_json::Value,
) -> Response {
    let (client, _) = match gw.client_for(headers, peer.0.ip()).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let key = if req.namespaces {
        "namespaces"
    } else {
        "names"
    };
    match client.list(&req, &[]).await {
        Ok(page) => {
            let entries: Vec<_> = page.entries.iter().map(show).collect();
            let next = page.next.map(|n| String::from_utf8_lossy(&n).into_owned());
            let body = json!({ key: entries, "next": next });
            (
                StatusCode::OK,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                format!("{body}\n"),
            )
                .into_response()
        }
        Err(e) if e.status().is_some() => failure(&e),
        Err(e) => plain(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}
