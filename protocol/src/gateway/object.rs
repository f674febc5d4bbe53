//! `GET`, `HEAD`, `PUT` and `DELETE` of `/{namespace}/{name}` (`docs/HTTP.md`). Bodies
//! stream both ways: a download is pulled from the node a part at a time as the HTTP
//! client reads it, an upload is stored in parts (a chunked object past one value), so
//! memory stays bounded whatever the size.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::{Body, HttpBody};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use ringblob_backends::names::{NameRecord, NAME_COLUMN};
use serde::Deserialize;
use tokio_util::io::{ReaderStream, StreamReader};

use super::conditional::{range_applies, Conditions, Current, Verdict};
use super::errors::{failure, plain};
use super::range::{resolve, RangeAsk};
use super::replicas::{
    put_named_object, put_object as put_in_groups, remove_column_groups, remove_object,
};
use super::s3::body::Piped;
use super::Gateway;
use crate::client::object::{Manifest, MANIFEST_MAGIC, MAX_MANIFEST_LEN};
use crate::client::{Client, ClientError, PutOptions, Target};
use crate::node::admin::PeerAddr;
use crate::wire::{Durability, ReadRequest, ValueMeta, READ_TO_END};
use futures_util::StreamExt;

/// User metadata a PUT may carry, in bytes of names and values (as S3 allows).
pub const MAX_USER_META_BYTES: usize = 2048;
/// The header prefix of user metadata.
pub const META_PREFIX: &str = "x-amz-meta-";

/// Query parameters of object requests.
#[derive(Debug, Default, Deserialize)]
pub struct ObjectQuery {
    /// The column (0..=65535, default 0: the value).
    column: Option<u16>,
    /// none | batch | sync (PUT and DELETE; default: the node's).
    durability: Option<String>,
}

type Ask = (
    State<Arc<Gateway>>,
    Path<(String, String)>,
    Query<ObjectQuery>,
    ConnectInfo<PeerAddr>,
    HeaderMap,
);

/// What a GET or HEAD serves: the value's metadata, its size (an object's, for a chunked
/// one) and its name record.
pub(crate) struct Found {
    pub meta: ValueMeta,
    pub size: u64,
    pub record: Option<NameRecord>,
    /// A chunked object's whole-object CRC-32 (its manifest's `crc32`).
    pub object_crc: Option<u32>,
}

impl Found {
    /// The entity tag: the content's CRC-32 and the write's version (one version in every
    /// group a write went to, so one tag for the object wherever it is read); or the name
    /// record's, when that was made from this very tag with a suffix (a multipart object's
    /// `-N`).
    pub(crate) fn current(&self) -> Current {
        let own = object_etag(&self.meta, self.object_crc);
        let recorded = self.record.as_ref().map(|r| r.etag.as_str()).filter(|e| {
            let bare = e.trim_matches('"');
            bare.split_once('-').is_some_and(|(tag, n)| {
                tag == own.trim_matches('"') && n.bytes().all(|b| b.is_ascii_digit())
            })
        });
        Current {
            etag: recorded.map_or(own, str::to_string),
            modified: modified_of(&self.meta),
        }
    }
}

/// A version for a write made now (nanoseconds since the Unix epoch), chosen once for every
/// group it goes to.
pub(crate) use crate::clock::now_ns as version_now;

/// The entity tag the gateway serves for the value of column 0 described by `meta`, a
/// chunked object's whole-content CRC-32 (`object_crc`, its manifest's) in place of the
/// stored value's: what a name record written beside the value should carry, so listings
/// show the tag a GET answers.
pub fn object_etag(meta: &ValueMeta, object_crc: Option<u32>) -> String {
    etag_for(object_crc.unwrap_or(meta.checksum), meta.timestamp_ns)
}

/// The entity tag of a value: its CRC-32 and write time, so every write gets a new one.
pub fn etag_of(meta: &ValueMeta) -> String {
    etag_for(meta.checksum, meta.timestamp_ns)
}

/// The entity tag of content with CRC-32 `crc` written at `version` (what [`etag_of`] and
/// [`Found::current`] make of its lookup).
pub(crate) fn etag_for(crc: u32, version: u64) -> String {
    use std::fmt::Write;
    // Sized exactly (two quotes, 8 + 16 hex digits), so its bytes become a header value
    // without another allocation (`describe`).
    let mut tag = String::with_capacity(ETAG_LEN);
    let _ = write!(tag, "\"{crc:08x}{version:016x}\"");
    tag
}

/// The length of an entity tag [`etag_for`] makes.
const ETAG_LEN: usize = 26;

pub(crate) fn modified_of(meta: &ValueMeta) -> SystemTime {
    modified_at(meta.timestamp_ns)
}

/// The modification time of a write at `version` (nanoseconds since the Unix epoch).
pub(crate) fn modified_at(version: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(version)
}

pub async fn get(ask: Ask) -> Response {
    serve_read(ask, true).await
}

pub async fn head(ask: Ask) -> Response {
    serve_read(ask, false).await
}

async fn serve_read(
    (State(gw), Path((ns, name)), Query(q), ConnectInfo(peer), headers): Ask,
    body: bool,
) -> Response {
    let (client, who) = match gw.client_for(&headers, peer.0.ip()).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let column = q.column.unwrap_or(0);
    let target = Target::named(&ns, name.into_bytes());
    let whole = body && column == 0 && plain_whole_get(&headers);
    let read = gw.read_object(&who, &client, &target, (column, whole));
    let ((found, opened), client) = match read.await {
        Ok(f) => f,
        Err(e) => return failure(&e),
    };
    let current = found.current();
    match conditions(&headers).evaluate(Some(&current), true) {
        Verdict::Proceed => {}
        Verdict::NotModified => return not_modified(&current),
        Verdict::Failed => return plain(StatusCode::PRECONDITION_FAILED, "precondition failed"),
    }
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let if_range = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok());
    let range = range.filter(|_| range_applies(if_range, &current));
    let (status, start, len) = match resolve(range, found.size) {
        RangeAsk::Whole => (StatusCode::OK, 0, found.size),
        RangeAsk::Part { start, len } => (StatusCode::PARTIAL_CONTENT, start, len),
        RangeAsk::Unsatisfiable => return unsatisfiable(found.size),
    };
    let content = match (opened, body, len) {
        (Some(b), _, _) => b,
        (None, false, _) | (None, true, 0) => Body::empty(),
        (None, true, _) => stream_body(client, target, column, (start, len)),
    };
    // A body of known length gets its `Content-Length` from hyper, written straight into
    // the response head; HEAD's and a streamed body's are set here.
    let sized = body && HttpBody::size_hint(&content).exact() == Some(len);
    let mut response = Response::new(content);
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.reserve(8);
    if !sized {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        let last = start + len - 1;
        let range = format!("bytes {start}-{last}/{}", found.size);
        if let Ok(v) = HeaderValue::from_str(&range) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    describe(h, &current, found.record.as_ref());
    response
}

/// The value's metadata, size and name record (`NOT_FOUND` if it has no value): the lookup
/// (and a look at the value's head, if it may be a chunked object's manifest) and the name
/// record are asked at once.
pub(crate) async fn find(
    client: &Client,
    target: &Target,
    column: u16,
) -> Result<Found, ClientError> {
    if column != 0 {
        let meta = client.lookup_column(target.clone(), column).await?;
        let size = meta.size;
        return Ok(Found {
            meta,
            size,
            record: None,
            object_crc: None,
        });
    }
    let (object, record) = tokio::join!(client.object_meta(target), name_record(client, target));
    let (meta, manifest) = object?;
    let size = manifest.as_ref().map_or(meta.size, |m| m.size);
    Ok(Found {
        meta,
        size,
        record: record?,
        object_crc: manifest.map(|m| m.crc32),
    })
}

/// The name record of `target`, if it has a valid one.
pub(crate) async fn name_record(
    client: &Client,
    target: &Target,
) -> Result<Option<NameRecord>, ClientError> {
    match client
        .get_column(target.clone(), NAME_COLUMN, 0, None)
        .await
    {
        Ok(bytes) => Ok(NameRecord::decode(&bytes).ok()),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// A whole value of column 0 with what describes it, in two round trips: the lookup and the
/// name record at once, then one read of the version looked up, whose first bytes tell a
/// plain value (streamed on as it is) from a chunked object's manifest (whose chunks are then
/// streamed). `None` when the value changed between the lookup and the read: ask again.
pub(crate) async fn open_whole(
    client: &Arc<Client>,
    target: &Target,
) -> Result<Option<(Found, Body)>, ClientError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (meta, record) = tokio::join!(
        client.lookup_column(target.clone(), 0),
        name_record(client, target)
    );
    let (meta, record) = (meta?, record?);
    let mut req = ReadRequest::range(0, 0, READ_TO_END);
    req.if_version = Some(meta.timestamp_ns);
    let (c, t) = (
        own_connection_if_long(client.clone(), meta.size),
        target.clone(),
    );
    let mut piped = Piped::spawn(move |mut tx| async move {
        c.read_request_to(t, req, &mut tx)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        tx.shutdown().await
    });
    let mut head = vec![0u8; meta.size.min(MANIFEST_MAGIC.len() as u64) as usize];
    if piped.read_exact(&mut head).await.is_err() {
        return Ok(None);
    }
    if !Manifest::sniff(&head) || meta.size > MAX_MANIFEST_LEN as u64 {
        let size = meta.size;
        let first = futures_util::stream::once(std::future::ready(Ok::<_, std::io::Error>(
            bytes::Bytes::from(head),
        )));
        let body = Body::from_stream(first.chain(ReaderStream::new(piped)));
        let found = Found {
            meta,
            size,
            record,
            object_crc: None,
        };
        return Ok(Some((found, body)));
    }
    let mut all = head;
    if (&mut piped)
        .take(meta.size)
        .read_to_end(&mut all)
        .await
        .is_err()
    {
        return Ok(None);
    }
    let Ok(manifest) = Manifest::decode(&all) else {
        // Manifest-like bytes that are not one: a plain value.
        let size = meta.size;
        let body = Body::from(all);
        let found = Found {
            meta,
            size,
            record,
            object_crc: None,
        };
        return Ok(Some((found, body)));
    };
    let size = manifest.size;
    let body = stream_body(client.clone(), target.clone(), 0, (0, size));
    let found = Found {
        meta,
        size,
        record,
        object_crc: Some(manifest.crc32),
    };
    Ok(Some((found, body)))
}

/// Whether a GET asks for the whole value without conditions (served by `open_whole`).
pub(crate) fn plain_whole_get(h: &HeaderMap) -> bool {
    let asks = [
        header::RANGE,
        header::IF_MATCH,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_UNMODIFIED_SINCE,
    ];
    !asks.iter().any(|name| h.contains_key(name))
}

/// What a GET serves: for a whole value of column 0, opened at once (`open_whole`, asked
/// again if the value changed meanwhile); otherwise described, its body read afterwards.
pub(crate) async fn whole_or_found(
    client: &Arc<Client>,
    target: &Target,
    column: u16,
    whole: bool,
) -> Result<(Found, Option<Body>), ClientError> {
    if whole {
        for _ in 0..3 {
            if let Some((found, body)) = open_whole(client, target).await? {
                return Ok((found, Some(body)));
            }
        }
    }
    Ok((find(client, target, column).await?, None))
}

/// `len` bytes from `start`, pulled from the node as the HTTP client reads them.
pub(crate) fn stream_body(
    client: Arc<Client>,
    target: Target,
    column: u16,
    (start, len): (u64, u64),
) -> Body {
    let client = own_connection_if_long(client, len);
    if column == 0 {
        let reader = client.reader(target, (start, Some(len)));
        return Body::from_stream(ReaderStream::new(reader));
    }
    let (mut tx, rx) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Err(e) = client
            .get_column_to(target, column, (start, Some(len)), &mut tx)
            .await
        {
            tracing::debug!(error = %e, "HTTP download failed mid-way");
        }
    });
    Body::from_stream(ReaderStream::new(rx))
}

/// `client`, or for a body of more than [`LONG_BODY`] bytes a client with a connection of
/// its own: the HTTP client's reading paces the transfer, and a slow reader of a long body
/// on the shared connection would hold up every other request on it.
pub(crate) fn own_connection_if_long(client: Arc<Client>, len: u64) -> Arc<Client> {
    match len > LONG_BODY {
        true => Arc::new(client.with_own_connection()),
        false => client,
    }
}

/// Bodies longer than this are read over a connection of their own (one frame's worth
/// never waits on its reader).
pub(crate) const LONG_BODY: u64 = 1 << 20;

/// Sets the representation headers: entity tag, time, type and user metadata.
pub(crate) fn describe(h: &mut HeaderMap, current: &Current, record: Option<&NameRecord>) {
    if let Ok(v) = HeaderValue::from_str(&current.etag) {
        h.insert(header::ETAG, v);
    }
    if let Some(v) = http_date(current.modified) {
        h.insert(header::LAST_MODIFIED, v);
    }
    let content_type = record
        .map(|r| r.content_type.as_str())
        .filter(|t| !t.is_empty());
    let content_type = match content_type {
        None => Ok(HeaderValue::from_static("application/octet-stream")),
        Some(t) => HeaderValue::from_str(t),
    };
    if let Ok(v) = content_type {
        h.insert(header::CONTENT_TYPE, v);
    }
    for (k, v) in record.map_or(&[][..], |r| &r.user_meta[..]) {
        let name = header::HeaderName::from_bytes(format!("{META_PREFIX}{k}").as_bytes());
        if let (Ok(name), Ok(value)) = (name, HeaderValue::from_str(v)) {
            h.insert(name, value);
        }
    }
}

/// `time` as an HTTP date header value (IMF-fixdate, 29 bytes), written on the stack.
fn http_date(time: SystemTime) -> Option<HeaderValue> {
    use std::io::Write;
    let mut text = [0u8; 29];
    let mut out = &mut text[..];
    write!(out, "{}", httpdate::HttpDate::from(time)).ok()?;
    let written = 29 - out.len();
    HeaderValue::from_bytes(&text[..written]).ok()
}

/// The body length a request declares (`Content-Length`), if it does.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// The largest object `client` writes: its chunk size times the most chunks an object has
/// (64 TiB with the default 64 MiB chunks). A body declared longer is refused at once
/// (413), before any of it is read.
pub(crate) fn max_object_size(client: &Client) -> u64 {
    client
        .chunk_size()
        .saturating_mul(u64::from(crate::client::object::MAX_CHUNKS))
}

/// Whether the conditions a write or removal may carry (`If-Match`, `If-None-Match`,
/// `If-Unmodified-Since`) hold for `target`'s current value of `column` — looked up only
/// when one is asked. (Checked before the change is sent, as a separate step: a change made
/// by another client in between is not seen.)
pub(crate) async fn write_conditions_hold(
    client: &Client,
    target: &Target,
    column: u16,
    conds: &Conditions<'_>,
) -> Result<bool, ClientError> {
    let asked = [
        conds.if_match,
        conds.if_none_match,
        conds.if_unmodified_since,
    ];
    if asked.iter().all(Option::is_none) {
        return Ok(true);
    }
    let current = match find(client, target, column).await {
        Ok(found) => Some(found.current()),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e),
    };
    Ok(conds.evaluate(current.as_ref(), false) == Verdict::Proceed)
}

pub(crate) fn conditions(h: &HeaderMap) -> Conditions<'_> {
    let text = |name| h.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    Conditions {
        if_match: text(header::IF_MATCH),
        if_none_match: text(header::IF_NONE_MATCH),
        if_modified_since: text(header::IF_MODIFIED_SINCE),
        if_unmodified_since: text(header::IF_UNMODIFIED_SINCE),
    }
}

fn not_modified(current: &Current) -> Response {
    let mut r = StatusCode::NOT_MODIFIED.into_response();
    describe(r.headers_mut(), current, None);
    r.headers_mut().remove(header::CONTENT_TYPE);
    r
}

fn unsatisfiable(size: u64) -> Response {
    let mut r = plain(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable");
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
        r.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    r
}

/// A request refused before it reaches the node: the status and why.
pub(crate) type Refusal = (StatusCode, String);

fn durability(q: &ObjectQuery) -> Result<Durability, Refusal> {
    match q.durability.as_deref() {
        None => Ok(Durability::Default),
        Some("none") => Ok(Durability::None),
        Some("batch") => Ok(Durability::Batch),
        Some("sync") => Ok(Durability::Sync),
        Some(other) => Err((
            StatusCode::BAD_REQUEST,
            format!("durability {other:?}: none, batch or sync"),
        )),
    }
}

/// The attributes user metadata gives an object (`docs/ATTRIBUTES.md` §1): every pair whose
/// name and value are a valid attribute (the first 32), typed as the CLI types values.
pub(crate) fn attrs_of_meta(meta: &[(String, String)]) -> ringblob_backends::names::Attrs {
    use ringblob_backends::names::{attrs::MAX_ATTRS, AttrValue, Attrs};
    let mut attrs = Attrs::new();
    for (k, v) in meta {
        if attrs.len() < MAX_ATTRS {
            let _ = attrs.insert(k, AttrValue::parse(v));
        }
    }
    attrs
}

/// The user metadata of a PUT's `x-amz-meta-*` headers (names lower case), bounded.
pub(crate) fn user_meta(h: &HeaderMap) -> Result<Vec<(String, String)>, Refusal> {
    let mut meta = Vec::new();
    let mut bytes = 0;
    for (name, value) in h {
        let Some(key) = name.as_str().strip_prefix(META_PREFIX) else {
            continue;
        };
        let value = value.to_str().map_err(|_| {
            (
                StatusCode::BAD_REQUEST,
                format!("{name}: metadata must be ASCII text"),
            )
        })?;
        // A name given twice keeps both values, joined with commas (as HTTP folds them).
        match meta
            .iter_mut()
            .find(|(k, _): &&mut (String, String)| k == key)
        {
            Some((_, joined)) => {
                bytes += 1 + value.len();
                joined.push(',');
                joined.push_str(value);
            }
            None => {
                bytes += key.len() + value.len();
                meta.push((key.to_string(), value.to_string()));
            }
        }
    }
    if bytes > MAX_USER_META_BYTES {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("user metadata of {bytes} bytes is over {MAX_USER_META_BYTES}"),
        ));
    }
    Ok(meta)
}

pub async fn put(
    State(gw): State<Arc<Gateway>>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<ObjectQuery>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (client, _) = match gw.client_for(&headers, peer.0.ip()).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let (meta, d) = match (user_meta(&headers), durability(&q)) {
        (Ok(m), Ok(d)) => (m, d),
        (Err((status, why)), _) | (_, Err((status, why))) => return plain(status, why),
    };
    let column = q.column.unwrap_or(0);
    let target = Target::named(&ns, name.clone().into_bytes());
    if declared_length(&headers).is_some_and(|n| n > max_object_size(&client)) {
        let why = format!("an object is at most {} bytes", max_object_size(&client));
        return plain(StatusCode::PAYLOAD_TOO_LARGE, why);
    }
    match write_conditions_hold(&client, &target, column, &conditions(&headers)).await {
        Ok(true) => {}
        Ok(false) => return plain(StatusCode::PRECONDITION_FAILED, "precondition failed"),
        Err(e) => return failure(&e),
    }
    let size_hint = declared_length(&headers);
    let opts = PutOptions {
        durability: d,
        version: Some(version_now()),
        ..PutOptions::default()
    };
    let stream = body
        .into_data_stream()
        .map_err(|e| std::io::Error::other(e.to_string()));
    let mut source = StreamReader::new(stream);
    let replicas = gw.replicas().await;
    let replicas = (&replicas.0[..], replicas.1);
    // What a lookup of this write reports: its content's CRC and the version chosen here.
    let version = opts.version.unwrap_or_default();
    let stored = if column == 0 {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let describe = |size, crc| NameRecord {
            content_type,
            etag: etag_for(crc, version),
            attrs: attrs_of_meta(&meta),
            user_meta: meta,
            ..NameRecord::new(ns, name.into_bytes(), size)
        };
        let at = (size_hint, opts);
        put_named_object(&client, &target, &mut source, at, replicas, describe)
            .await
            .map(|(size, record)| (size, record.etag))
    } else {
        let at = (&target, column);
        put_in_groups(&client, at, &mut source, (size_hint, opts), replicas)
            .await
            .map(|(size, crc)| (size, etag_for(crc, version)))
    };
    let (size, etag) = match stored {
        Ok(stored) => stored,
        Err(e) => return failure(&e),
    };
    if size_hint.is_some_and(|n| n != size) {
        return plain(
            StatusCode::BAD_REQUEST,
            "the body ended before Content-Length",
        );
    }
    let mut r = StatusCode::OK.into_response();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

pub async fn delete(
    (State(gw), Path((ns, name)), Query(q), ConnectInfo(peer), headers): Ask,
) -> Response {
    let (client, _) = match gw.client_for(&headers, peer.0.ip()).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let d = match durability(&q) {
        Ok(d) => d,
        Err((status, why)) => return plain(status, why),
    };
    let target = Target::named(&ns, name.into_bytes());
    let column = q.column.unwrap_or(0);
    match write_conditions_hold(&client, &target, column, &conditions(&headers)).await {
        Ok(true) => {}
        Ok(false) => return plain(StatusCode::PRECONDITION_FAILED, "precondition failed"),
        Err(e) => return failure(&e),
    }
    let (groups, w) = gw.replicas().await;
    let removed = match q.column {
        None => remove_object(&client, &target, d, (&groups, w)).await,
        Some(c) => remove_column_groups(&client, (&target, c), d, (&groups, w)).await,
    };
    match removed {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => failure(&e),
    }
}
