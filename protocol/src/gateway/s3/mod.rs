//! The S3 API (`docs/HTTP.md` §S3): path-style requests (`/{bucket}/{key}`), buckets being
//! namespaces, authenticated with AWS Signature V4. Which operation a request is follows
//! S3's rules: the method, whether there is a key, and the sub-resource in the query.

pub mod body;
mod buckets;
mod copy;
pub mod digest;
pub mod error;
mod list;
mod multipart;
mod objects;
pub mod sigv2;
pub mod sigv4;
mod xml;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::AsyncRead;

use self::error::S3Error;
use self::sigv4::{Arrived, Payload};
use super::{Gateway, Who};
use crate::client::Client;
use crate::node::admin::PeerAddr;
use crate::wire::MAX_OBJECT_NAME_LEN;

/// Query names that make a request an S3 one even unsigned.
const SUBRESOURCES: [&str; 8] = [
    "list-type",
    "uploads",
    "uploadId",
    "partNumber",
    "delete",
    "location",
    "versioning",
    "X-Amz-Algorithm",
];

/// S3 sub-resources of operations this gateway does not implement. A request naming one is
/// refused (`501 NotImplemented`) whatever its method — never taken for the plain object or
/// bucket operation it would otherwise look like (a `PUT ?tagging` storing the tag set as
/// the object, a `DELETE ?policy` deleting the bucket).
const UNSUPPORTED: [&str; 30] = [
    "accelerate",
    "acl",
    "analytics",
    "attributes",
    "cors",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "logging",
    "metadataTable",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "renameObject",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "session",
    "tagging",
    "torrent",
    "versions",
    "website",
];

/// Why `ask` names an operation this gateway does not implement, if it does: an
/// [`UNSUPPORTED`] sub-resource, a version other than `null`, a part of an object
/// (`GET ?partNumber` without an upload), or a change of versioning.
fn unsupported(ask: &Ask) -> Option<&'static str> {
    if let Some(name) = UNSUPPORTED.iter().find(|name| ask.has(name)) {
        return Some(name);
    }
    if ask.param("versionId").is_some_and(|v| v != "null") {
        return Some("versionId");
    }
    let reads = matches!(ask.method, Method::GET | Method::HEAD);
    if reads && ask.has("partNumber") && !ask.has("uploadId") {
        return Some("partNumber (reading one part of an object)");
    }
    if ask.has("versioning") && ask.method != Method::GET {
        return Some("versioning (only GetBucketVersioning is supported)");
    }
    None
}

/// Whether `req` is for the S3 API.
pub fn wants(req: &Request) -> bool {
    let query = req.uri().query().unwrap_or_default();
    let arrived = Arrived {
        method: req.method().as_str(),
        path: req.uri().path(),
        query,
        headers: req.headers(),
    };
    sigv4::is_signed(&arrived)
        || sigv2::key_id(&arrived).is_some()
        || sigv4::query_pairs(query)
            .any(|(k, _)| SUBRESOURCES.contains(&k.as_str()) || UNSUPPORTED.contains(&k.as_str()))
        || req.headers().contains_key("x-amz-copy-source")
}

/// One S3 request, authenticated.
pub struct Ask {
    pub gw: Arc<Gateway>,
    pub method: Method,
    pub bucket: String,
    pub key: Option<String>,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    /// The body, until it is taken (in a mutex: a body is not `Sync`, and handlers hold
    /// `&Ask` across awaits).
    pub body: parking_lot::Mutex<Option<Body>>,
    pub who: Who,
    pub client: Arc<Client>,
    pub payload: Payload,
}

impl Ask {
    pub fn has(&self, name: &str) -> bool {
        self.query.contains_key(name)
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as the client meant it (unwrapped and checked as it streams: its signed
    /// SHA-256 or chunk signatures, and the digests it comes with — `Content-MD5`,
    /// `x-amz-checksum-*` headers or trailer), and its size if the request says it.
    /// `InvalidDigest` if a digest given is malformed.
    pub fn take_body(
        &mut self,
    ) -> Result<(Box<dyn AsyncRead + Unpin + Send>, Option<u64>), S3Error> {
        use futures_util::TryStreamExt;
        let expected = digest::expected_in(&self.headers)?;
        let trailer = self
            .header("x-amz-trailer")
            .and_then(digest::Algorithm::of_header);
        let stream = self
            .body
            .lock()
            .take()
            .unwrap_or_default()
            .into_data_stream()
            .map_err(|e| std::io::Error::other(e.to_string()));
        let reader = tokio_util::io::StreamReader::new(stream);
        let length = |name| self.header(name).and_then(|v| v.parse::<u64>().ok());
        let (body, size): (Box<dyn AsyncRead + Unpin + Send>, _) = match self.payload.clone() {
            Payload::Unsigned => (Box::new(reader), length("content-length")),
            Payload::Sha256(h) => {
                let signed = digest::Expected {
                    algorithm: digest::Algorithm::Sha256,
                    value: h.to_vec(),
                };
                let hashed =
                    digest::Checked::new(reader, expected).with(vec![signed], body::HASH_MISMATCH);
                return Ok((Box::new(hashed), length("content-length")));
            }
            Payload::SignedChunks(s) => (
                Box::new(body::Piped::unchunked(reader, Some(s), trailer)),
                length("x-amz-decoded-content-length"),
            ),
            Payload::UnsignedChunks => (
                Box::new(body::Piped::unchunked(reader, None, trailer)),
                length("x-amz-decoded-content-length"),
            ),
        };
        match expected.is_empty() {
            true => Ok((body, size)),
            false => Ok((Box::new(digest::Checked::new(body, expected)), size)),
        }
    }
}

/// Serves one S3 request.
pub async fn handle(gw: &Arc<Gateway>, peer: PeerAddr, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let query_text = parts.uri.query().unwrap_or_default().to_string();
    let arrived = Arrived {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: &query_text,
        headers: &parts.headers,
    };
    let (client, who, payload) = match gw.s3_client(&arrived, peer.0.ip()).await {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let Ok(path) = sigv4::percent_decode_strict(parts.uri.path()) else {
        let why = "The key is not UTF-8 once percent-decoded";
        return S3Error::new(StatusCode::BAD_REQUEST, "InvalidURI", why).into_response();
    };
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let bucket = segments.next().unwrap_or_default().to_string();
    let key = segments
        .next()
        .filter(|k| !k.is_empty())
        .map(str::to_string);
    if key.as_ref().is_some_and(|k| k.len() > MAX_OBJECT_NAME_LEN) {
        let why = format!("Your key is too long (at most {MAX_OBJECT_NAME_LEN} bytes)");
        return S3Error::new(StatusCode::BAD_REQUEST, "KeyTooLongError", why).into_response();
    }
    let ask = Ask {
        gw: gw.clone(),
        method: parts.method,
        bucket,
        key,
        query: sigv4::query_pairs(&query_text).collect(),
        headers: parts.headers,
        body: parking_lot::Mutex::new(Some(body)),
        who,
        client,
        payload,
    };
    match route(ask).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn route(ask: Ask) -> Result<Response, S3Error> {
    if let Some(what) = unsupported(&ask) {
        return Err(S3Error::not_implemented(what));
    }
    let m = ask.method.clone();
    if ask.bucket.is_empty() {
        return match m {
            Method::GET => buckets::list(ask).await,
            _ => Err(S3Error::not_implemented("this request on the service")),
        };
    }
    let Some(_) = &ask.key else {
        return match m {
            Method::GET if ask.has("uploads") => multipart::list_uploads(ask).await,
            Method::GET if ask.has("location") => buckets::location(ask).await,
            Method::GET if ask.has("versioning") => buckets::versioning(ask).await,
            Method::GET => list::objects(ask).await,
            Method::HEAD => buckets::head(ask).await,
            Method::PUT => buckets::create(ask).await,
            Method::DELETE => buckets::delete(ask).await,
            Method::POST if ask.has("delete") => objects::delete_many(ask).await,
            _ => Err(S3Error::not_implemented("this request on a bucket")),
        };
    };
    match m {
        Method::GET if ask.has("uploadId") => multipart::list_parts(ask).await,
        Method::GET => objects::get(ask, true).await,
        Method::HEAD => objects::get(ask, false).await,
        Method::PUT if ask.has("uploadId") && copies(&ask) => copy::upload_part(ask).await,
        Method::PUT if ask.has("uploadId") => multipart::upload_part(ask).await,
        Method::PUT if copies(&ask) => copy::copy(ask).await,
        Method::PUT => objects::put(ask).await,
        Method::POST if ask.has("uploads") => multipart::create(ask).await,
        Method::POST if ask.has("uploadId") => multipart::complete(ask).await,
        Method::DELETE if ask.has("uploadId") => multipart::abort(ask).await,
        Method::DELETE => objects::delete(ask).await,
        _ => Err(S3Error::not_implemented("this request on an object")),
    }
}

/// Whether `ask` copies from another object (`x-amz-copy-source`).
fn copies(ask: &Ask) -> bool {
    ask.headers.contains_key("x-amz-copy-source")
}

/// An S3 time: `2009-10-12T17:50:30.000Z`.
pub fn iso_time(timestamp_ns: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(timestamp_ns / 1_000_000);
    humantime::format_rfc3339_millis(t).to_string()
}
