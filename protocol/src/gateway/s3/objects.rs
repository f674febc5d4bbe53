//! Objects: GetObject and HeadObject (ranges, conditions), PutObject (the body checked as
//! it streams), DeleteObject and DeleteObjects (copies: `copy.rs`).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ringblob_backends::names::NameRecord;
use serde::Deserialize;

use super::buckets::require;
use super::error::S3Error;
use super::xml::{self, element, S3_NS};
use super::Ask;
use crate::client::{Client, ClientError, PutOptions, Target};
use crate::gateway::conditional::{range_applies, Verdict};
use crate::gateway::object::{
    conditions, describe, etag_for, max_object_size, modified_at, plain_whole_get, stream_body,
    user_meta, version_now, write_conditions_hold,
};
use crate::gateway::range::{resolve, RangeAsk};
use crate::gateway::replicas::{put_named_object, remove_object as remove_in_groups};
use crate::wire::Durability;
use std::time::SystemTime;

fn target(ask: &Ask) -> Target {
    Target::named(
        &ask.bucket,
        ask.key.clone().unwrap_or_default().into_bytes(),
    )
}

pub async fn get(ask: Ask, body: bool) -> Result<Response, S3Error> {
    let target = target(&ask);
    let whole = body && plain_whole_get(&ask.headers);
    let read = ask
        .gw
        .read_object(&ask.who, &ask.client, &target, (0, whole));
    let ((found, opened), client) = match read.await {
        Ok(f) => f,
        Err(e) if e.is_not_found() => {
            require(&ask).await?;
            return Err(S3Error::no_such_key());
        }
        Err(e) => return Err(S3Error::from_client(&e)),
    };
    let current = found.current();
    match conditions(&ask.headers).evaluate(Some(&current), true) {
        Verdict::Proceed => {}
        Verdict::NotModified => {
            let mut r = StatusCode::NOT_MODIFIED.into_response();
            describe(r.headers_mut(), &current, None);
            r.headers_mut().remove(header::CONTENT_TYPE);
            return Ok(r);
        }
        Verdict::Failed => return Err(precondition_failed()),
    }
    let range = ask.header("range");
    let range = range.filter(|_| range_applies(ask.header("if-range"), &current));
    let (status, start, len) = match resolve(range, found.size) {
        RangeAsk::Whole => (StatusCode::OK, 0, found.size),
        RangeAsk::Part { start, len } => (StatusCode::PARTIAL_CONTENT, start, len),
        RangeAsk::Unsatisfiable => return Err(S3Error::invalid_range(found.size)),
    };
    let content = match (opened, body, len) {
        (Some(b), _, _) => b,
        (None, true, 1..) => stream_body(client, target, 0, (start, len)),
        _ => Body::empty(),
    };
    let mut r = Response::new(content);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        let value = format!("bytes {start}-{}/{}", start + len - 1, found.size);
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    describe(h, &current, found.record.as_ref());
    override_headers(&ask, h)?;
    Ok(r)
}

/// The response headers a GET or HEAD may ask to be answered with (`response-*` query
/// parameters), in place of what is stored.
const OVERRIDES: [(&str, header::HeaderName); 6] = [
    ("response-content-type", header::CONTENT_TYPE),
    ("response-content-language", header::CONTENT_LANGUAGE),
    ("response-expires", header::EXPIRES),
    ("response-cache-control", header::CACHE_CONTROL),
    ("response-content-disposition", header::CONTENT_DISPOSITION),
    ("response-content-encoding", header::CONTENT_ENCODING),
];

fn override_headers(ask: &Ask, h: &mut axum::http::HeaderMap) -> Result<(), S3Error> {
    for (param, name) in &OVERRIDES {
        if let Some(value) = ask.param(param) {
            let value = HeaderValue::from_str(value).map_err(|_| {
                S3Error::invalid_argument(&format!("{param} is not a header value"))
            })?;
            h.insert(name.clone(), value);
        }
    }
    Ok(())
}

pub(super) fn precondition_failed() -> S3Error {
    S3Error::new(
        StatusCode::PRECONDITION_FAILED,
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold",
    )
}

/// The error of a failed upload: a body that failed its check is the client's fault.
pub fn upload_error(e: &ClientError) -> S3Error {
    match e {
        ClientError::Input(m) if m.contains(super::body::HASH_MISMATCH) => S3Error::new(
            StatusCode::BAD_REQUEST,
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        ),
        ClientError::Input(m) if m.contains(super::digest::BAD_DIGEST) => {
            super::digest::bad_digest()
        }
        ClientError::Input(m) if m.contains("SignatureDoesNotMatch") => {
            S3Error::signature_mismatch()
        }
        ClientError::Input(m) => S3Error::new(StatusCode::BAD_REQUEST, "IncompleteBody", m.clone()),
        other => S3Error::from_client(other),
    }
}

/// Stores the name record of an object just written: size, type, tag, metadata.
pub async fn record(
    client: &Client,
    (bucket, key): (&str, &str),
    size: u64,
    (content_type, etag, meta): (String, String, Vec<(String, String)>),
    o: PutOptions,
) -> Result<(), S3Error> {
    let record = NameRecord {
        content_type,
        etag,
        attrs: crate::gateway::object::attrs_of_meta(&meta),
        user_meta: meta,
        ..NameRecord::new(bucket, key.as_bytes().to_vec(), size)
    };
    let failed = |e: ClientError| S3Error::from_client(&e);
    if record.attrs.is_empty() {
        return client
            .put_name_record(&record, o)
            .await
            .map(|_| ())
            .map_err(failed);
    }
    let space = client.attribute_space(bucket).await.map_err(failed)?;
    client
        .put_record_indexed(&record, None, &space, o)
        .await
        .map(|_| ())
        .map_err(failed)
}

/// What describes a stored object: content type, user metadata, and the number of parts
/// it was completed from (its entity tag then ends `-N`, as S3's).
#[derive(Clone)]
pub struct Described {
    pub content_type: String,
    pub meta: Vec<(String, String)>,
    pub parts: Option<usize>,
}

/// Stores `source` as the object `key` of the request's bucket in every group (the quorum of
/// the gateway), then its name record; its entity tag and metadata.
pub async fn store(
    ask: &Ask,
    key: &str,
    source: &mut (dyn tokio::io::AsyncRead + Unpin + Send),
    size_hint: Option<u64>,
    d: Described,
) -> Result<(String, SystemTime), S3Error> {
    let target = Target::named(&ask.bucket, key.as_bytes().to_vec());
    let (groups, w) = ask.gw.replicas().await;
    let o = PutOptions {
        version: Some(version_now()),
        ..PutOptions::default()
    };
    // What a lookup of this write reports: its content's CRC and the version chosen here.
    let version = o.version.unwrap_or_default();
    let describe = |size, crc| {
        let own = etag_for(crc, version);
        NameRecord {
            content_type: d.content_type,
            etag: match d.parts {
                None => own,
                Some(n) => format!("\"{}-{n}\"", own.trim_matches('"')),
            },
            attrs: crate::gateway::object::attrs_of_meta(&d.meta),
            user_meta: d.meta,
            ..NameRecord::new(&ask.bucket, key.as_bytes().to_vec(), size)
        }
    };
    let at = (size_hint, o);
    let (size, record) = put_named_object(&ask.client, &target, source, at, (&groups, w), describe)
        .await
        .map_err(|e| upload_error(&e))?;
    if size_hint.is_some_and(|n| n != size) {
        return Err(S3Error::new(
            StatusCode::BAD_REQUEST,
            "IncompleteBody",
            "the body ended early",
        ));
    }
    Ok((record.etag, modified_at(version)))
}

pub async fn put(mut ask: Ask) -> Result<Response, S3Error> {
    require(&ask).await?;
    let meta = user_meta(&ask.headers)
        .map_err(|(_, why)| S3Error::new(StatusCode::BAD_REQUEST, "MetadataTooLarge", why))?;
    let conds = conditions(&ask.headers);
    let target = target(&ask);
    match write_conditions_hold(&ask.client, &target, 0, &conds).await {
        Ok(true) => {}
        Ok(false) => return Err(precondition_failed()),
        Err(e) => return Err(S3Error::from_client(&e)),
    }
    let content_type = ask.header("content-type").unwrap_or_default().to_string();
    let (mut source, size_hint) = ask.take_body()?;
    if size_hint.is_some_and(|n| n > max_object_size(&ask.client)) {
        return Err(S3Error::new(
            StatusCode::BAD_REQUEST,
            "EntityTooLarge",
            format!(
                "an object is at most {} bytes",
                max_object_size(&ask.client)
            ),
        ));
    }
    let key = ask.key.clone().unwrap_or_default();
    let d = Described {
        content_type,
        meta,
        parts: None,
    };
    let (etag, _) = store(&ask, &key, &mut source, size_hint, d).await?;
    let mut r = StatusCode::OK.into_response();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    Ok(r)
}

pub async fn delete(ask: Ask) -> Result<Response, S3Error> {
    require(&ask).await?;
    let conds = conditions(&ask.headers);
    match write_conditions_hold(&ask.client, &target(&ask), 0, &conds).await {
        Ok(true) => {}
        Ok(false) => return Err(precondition_failed()),
        Err(e) => return Err(S3Error::from_client(&e)),
    }
    let (groups, w) = ask.gw.replicas().await;
    match remove_in_groups(
        &ask.client,
        &target(&ask),
        Durability::Default,
        (&groups, w),
    )
    .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e) if e.is_not_found() => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e) => Err(S3Error::from_client(&e)),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteBody {
    #[serde(rename = "Object", default)]
    objects: Vec<DeleteEntry>,
    #[serde(default)]
    quiet: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteEntry {
    key: String,
}

/// The most keys one DeleteObjects names (as S3 allows).
const MAX_DELETE_KEYS: usize = 1000;
/// The largest request body the gateway reads whole (DeleteObjects, Complete).
pub const MAX_XML_BODY: usize = 2 << 20;

/// A small XML request body, read whole (bounded).
pub async fn xml_body<T: serde::de::DeserializeOwned>(ask: &mut Ask) -> Result<T, S3Error> {
    use tokio::io::AsyncReadExt;
    let (source, _) = ask.take_body()?;
    let mut text = Vec::new();
    source
        .take(MAX_XML_BODY as u64 + 1)
        .read_to_end(&mut text)
        .await
        .map_err(|e| match e.to_string() {
            m if m.contains(super::digest::BAD_DIGEST) => super::digest::bad_digest(),
            m => S3Error::new(StatusCode::BAD_REQUEST, "IncompleteBody", m),
        })?;
    if text.len() > MAX_XML_BODY {
        return Err(S3Error::new(
            StatusCode::BAD_REQUEST,
            "MalformedXML",
            "the body is too large",
        ));
    }
    let text = String::from_utf8(text)
        .map_err(|_| S3Error::new(StatusCode::BAD_REQUEST, "MalformedXML", "not UTF-8"))?;
    quick_xml::de::from_str(&text)
        .map_err(|e| S3Error::new(StatusCode::BAD_REQUEST, "MalformedXML", e.to_string()))
}

pub async fn delete_many(mut ask: Ask) -> Result<Response, S3Error> {
    require(&ask).await?;
    let body: DeleteBody = xml_body(&mut ask).await?;
    if body.objects.is_empty() || body.objects.len() > MAX_DELETE_KEYS {
        return Err(S3Error::new(
            StatusCode::BAD_REQUEST,
            "MalformedXML",
            "a DeleteObjects request names 1 to 1000 keys",
        ));
    }
    let client: &Arc<Client> = &ask.client;
    let (groups, w) = ask.gw.replicas().await;
    let mut out = format!("<DeleteResult xmlns=\"{S3_NS}\">");
    for entry in &body.objects {
        let t = Target::named(&ask.bucket, entry.key.clone().into_bytes());
        match remove_in_groups(client, &t, Durability::Default, (&groups, w)).await {
            Err(e) if !e.is_not_found() => {
                let err = S3Error::from_client(&e);
                out.push_str(&format!(
                    "<Error>{}{}{}</Error>",
                    element("Key", &entry.key),
                    element("Code", err.code),
                    element("Message", &err.message)
                ));
            }
            _ if body.quiet => {}
            _ => out.push_str(&format!(
                "<Deleted>{}</Deleted>",
                element("Key", &entry.key)
            )),
        }
    }
    out.push_str("</DeleteResult>");
    Ok(xml::ok(out))
}

/// Nanoseconds since the Unix epoch of `t`.
pub(super) fn ns_of(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
