//! JSON listings: `GET /` (the namespaces) and `GET /{namespace}/` (its names, in byte order,
//! `?prefix=`, `?after=` to continue, `?limit=` up to 1000), merged across the cluster like
//! `ringblob ls` (`Client::list`).

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
