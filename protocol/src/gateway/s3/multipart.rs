//! Multipart uploads. An upload is a record in the reserved namespace [`UPLOADS_NS`]
//! (`{bucket}/{upload id}`: the object's key, content type and metadata) and its parts are
//! objects beside it (`{bucket}/{upload id}/{part number:05}`), written by the gateway's
//! own client once the request's key is known to may write the bucket. Completing streams
//! the parts in order into the object (a chunked object past one value; memory bounded by
//! the pipe), then removes the parts and the record.

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use ringblob_backends::names::{NameRecord, NAME_COLUMN};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::body::Piped;
use super::buckets::require;
use super::error::S3Error;
use super::objects::{record, store, xml_body, Described};
use super::xml::{self, element, S3_NS};
use super::{iso_time, Ask};
use crate::client::{restarting_when, Client, PutOptions, Target};
use crate::gateway::object::{etag_of, user_meta};
use crate::wire::{Durability, ListEntry, ListRequest};

/// The namespace uploads and their parts live in (not a bucket).
pub const UPLOADS_NS: &str = "ringblob.uploads";
/// Part numbers S3 allows.
const PARTS: std::ops::RangeInclusive<u32> = 1..=10_000;
/// The smallest part but the last (as S3 requires).
const MIN_PART: u64 = 5 << 20;
/// The metadata name of the object's key and content type in an upload record.
const KEY_META: &str = "key";
const TYPE_META: &str = "content-type";
const USER_META: &str = "meta:";

fn upload_target(bucket: &str, id: &str) -> Target {
    Target::named(UPLOADS_NS, format!("{bucket}/{id}").into_bytes())
}

fn part_target(bucket: &str, id: &str, n: u32) -> Target {
    Target::named(UPLOADS_NS, format!("{bucket}/{id}/{n:05}").into_bytes())
}

fn check_write(ask: &Ask) -> Result<(), S3Error> {
    match ask.who.may_write(&ask.bucket) {
        true => Ok(()),
        false => Err(S3Error::access_denied("this key may not write this bucket")),
    }
}

pub async fn create(ask: Ask) -> Result<Response, S3Error> {
    require(&ask).await?;
    check_write(&ask)?;
    let key = ask.key.clone().unwrap_or_default();
    let id: [u8; 16] = rand::random();
    let id = super::sigv4::hex(&id);
    let meta = user_meta(&ask.headers).map_err(|(_, why)| S3Error::invalid_argument(&why))?;
    let mut pairs = vec![
        (KEY_META.to_string(), key.clone()),
        (
            TYPE_META.to_string(),
            ask.header("content-type").unwrap_or_default().to_string(),
        ),
    ];
    pairs.extend(
        meta.into_iter()
            .map(|(k, v)| (format!("{USER_META}{k}"), v)),
    );
    let system = ask.gw.system().await?;
    let o = PutOptions::default();
    let failed = |e: crate::client::ClientError| S3Error::from_client(&e);
    system
        .put_column(
            upload_target(&ask.bucket, &id),
            0,
            Bytes::from(key.clone()),
            o,
        )
        .await
        .map_err(failed)?;
    let rec = NameRecord {
        user_meta: pairs,
        ..NameRecord::new(UPLOADS_NS, format!("{}/{id}", ask.bucket).into_bytes(), 0)
    };
    system.put_name_record(&rec, o).await.map_err(failed)?;
    Ok(xml::ok(format!(
        "<InitiateMultipartUploadResult xmlns=\"{S3_NS}\">{}{}{}</InitiateMultipartUploadResult>",
        element("Bucket", &ask.bucket),
        element("Key", &key),
        element("UploadId", &id)
    )))
}

/// The upload record of the request's `uploadId`, checked to be for its key.
async fn upload(ask: &Ask, system: &Client) -> Result<(String, NameRecord), S3Error> {
    let id = ask.param("uploadId").unwrap_or_default().to_string();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(S3Error::no_such_upload());
    }
    let bytes = match system
        .get_column(upload_target(&ask.bucket, &id), NAME_COLUMN, 0, None)
        .await
    {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Err(S3Error::no_such_upload()),
        Err(e) => return Err(S3Error::from_client(&e)),
    };
    let rec = NameRecord::decode(&bytes).map_err(S3Error::internal)?;
    let key = meta_of(&rec, KEY_META).unwrap_or_default();
    if Some(key.as_str()) != ask.key.as_deref() {
        return Err(S3Error::no_such_upload());
    }
    Ok((id, rec))
}

fn meta_of(rec: &NameRecord, name: &str) -> Option<String> {
    rec.user_meta
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn part_number(ask: &Ask) -> Result<u32, S3Error> {
    ask.param("partNumber")
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| PARTS.contains(n))
        .ok_or_else(|| {
            S3Error::invalid_argument(
                "Part number must be an integer between 1 and 10000, inclusive",
            )
        })
}

pub async fn upload_part(mut ask: Ask) -> Result<Response, S3Error> {
    let (system, id, n) = part_of(&ask).await?;
    let (mut source, size_hint) = ask.take_body()?;
    let etag = store_part(&system, (&ask.bucket, &id, n), &mut source, size_hint).await?;
    let mut r = StatusCode::OK.into_response();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    Ok(r)
}

/// The upload and part number an `UploadPart` or `UploadPartCopy` writes, checked: the
/// key may write the bucket, the upload exists for the request's key.
pub(super) async fn part_of(ask: &Ask) -> Result<(Arc<Client>, String, u32), S3Error> {
    check_write(ask)?;
    let system = ask.gw.system().await?;
    let (id, _) = upload(ask, &system).await?;
    let n = part_number(ask)?;
    Ok((system, id, n))
}

/// Stores part `n` of upload `id` of `bucket` from `source`, and its record; its entity
/// tag.
pub(super) async fn store_part(
    system: &Client,
    (bucket, id, n): (&str, &str, u32),
    source: &mut (dyn tokio::io::AsyncRead + Unpin + Send),
    size_hint: Option<u64>,
) -> Result<String, S3Error> {
    let target = part_target(bucket, id, n);
    let o = PutOptions::default();
    let mut source = source; // a sized reader: the reference
    let size = system
        .put_object(target.clone(), &mut source, (size_hint, o), |_| {})
        .await
        .map_err(|e| super::objects::upload_error(&e))?;
    let stored = system
        .lookup_column(target, 0)
        .await
        .map_err(|e| S3Error::from_client(&e))?;
    let etag = etag_of(&stored);
    let name = format!("{bucket}/{id}/{n:05}");
    record(
        system,
        (UPLOADS_NS, &name),
        size,
        (String::new(), etag.clone(), Vec::new()),
        o,
    )
    .await?;
    Ok(etag)
}

/// Every name under `prefix` in the uploads namespace.
async fn all_under(system: &Client, prefix: String) -> Result<Vec<ListEntry>, S3Error> {
    let req = ListRequest {
        namespace: UPLOADS_NS.into(),
        prefix: Bytes::from(prefix),
        limit: 1000,
        ..ListRequest::default()
    };
    system
        .list_all(&req)
        .await
        .map_err(|e| S3Error::from_client(&e))
}

/// The parts of upload `id`: number, size, entity tag, time.
async fn parts_of(
    system: &Client,
    bucket: &str,
    id: &str,
) -> Result<Vec<(u32, NameRecord, u64)>, S3Error> {
    let entries = all_under(system, format!("{bucket}/{id}/")).await?;
    Ok(entries
        .into_iter()
        .filter_map(|e| {
            let name = String::from_utf8_lossy(&e.name).into_owned();
            let n = name.rsplit('/').next()?.parse::<u32>().ok()?;
            Some((n, NameRecord::decode(&e.record).ok()?, e.timestamp_ns))
        })
        .collect())
}

pub async fn list_parts(ask: Ask) -> Result<Response, S3Error> {
    require(&ask).await?;
    let system = ask.gw.system().await?;
    let (id, _) = upload(&ask, &system).await?;
    let mut body = format!("<ListPartsResult xmlns=\"{S3_NS}\">");
    body.push_str(&element("Bucket", &ask.bucket));
    body.push_str(&element("Key", ask.key.as_deref().unwrap_or_default()));
    body.push_str(&element("UploadId", &id));
    body.push_str("<MaxParts>10000</MaxParts><IsTruncated>false</IsTruncated>");
    for (n, rec, ts) in parts_of(&system, &ask.bucket, &id).await? {
        body.push_str(&format!(
            "<Part>{}{}{}{}</Part>",
            element("PartNumber", &n.to_string()),
            element("LastModified", &iso_time(ts)),
            element("ETag", &rec.etag),
            element("Size", &rec.size.to_string())
        ));
    }
    body.push_str("</ListPartsResult>");
    Ok(xml::ok(body))
}

pub async fn list_uploads(ask: Ask) -> Result<Response, S3Error> {
    require(&ask).await?;
    let system = ask.gw.system().await?;
    let entries = all_under(&system, format!("{}/", ask.bucket)).await?;
    let mut body = format!("<ListMultipartUploadsResult xmlns=\"{S3_NS}\">");
    body.push_str(&element("Bucket", &ask.bucket));
    body.push_str("<KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>");
    for e in entries {
        let name = String::from_utf8_lossy(&e.name).into_owned();
        let Some(id) = name
            .strip_prefix(&format!("{}/", ask.bucket))
            .filter(|r| !r.contains('/'))
        else {
            continue;
        };
        let Ok(rec) = NameRecord::decode(&e.record) else {
            continue;
        };
        body.push_str(&format!(
            "<Upload>{}{}{}</Upload>",
            element("Key", &meta_of(&rec, KEY_META).unwrap_or_default()),
            element("UploadId", id),
            element("Initiated", &iso_time(e.timestamp_ns))
        ));
    }
    body.push_str("</ListMultipartUploadsResult>");
    Ok(xml::ok(body))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CompleteBody {
    #[serde(rename = "Part", default)]
    parts: Vec<CompletePart>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CompletePart {
    part_number: u32,
    #[serde(rename = "ETag")]
    etag: String,
}

fn invalid_part(why: &str) -> S3Error {
    S3Error::new(StatusCode::BAD_REQUEST, "InvalidPart", why)
}

pub async fn complete(mut ask: Ask) -> Result<Response, S3Error> {
    check_write(&ask)?;
    let system = ask.gw.system().await?;
    let (id, rec) = upload(&ask, &system).await?;
    let asked: CompleteBody = xml_body(&mut ask).await?;
    if asked.parts.is_empty()
        || asked
            .parts
            .windows(2)
            .any(|w| w[0].part_number >= w[1].part_number)
    {
        return Err(S3Error::new(
            StatusCode::BAD_REQUEST,
            "InvalidPartOrder",
            "parts must be listed in ascending order",
        ));
    }
    let stored = parts_of(&system, &ask.bucket, &id).await?;
    let mut chosen = Vec::with_capacity(asked.parts.len());
    for (i, p) in asked.parts.iter().enumerate() {
        let Some((_, r, _)) = stored.iter().find(|(n, _, _)| *n == p.part_number) else {
            return Err(invalid_part(&format!(
                "part {} was not uploaded",
                p.part_number
            )));
        };
        if r.etag.trim_matches('"') != p.etag.trim_matches('"') {
            return Err(invalid_part(&format!(
                "part {}'s ETag differs",
                p.part_number
            )));
        }
        if r.size < MIN_PART && i + 1 < asked.parts.len() {
            return Err(S3Error::new(
                StatusCode::BAD_REQUEST,
                "EntityTooSmall",
                "a part but the last is under 5 MiB",
            ));
        }
        chosen.push((p.part_number, r.size));
    }
    let total: u64 = chosen.iter().map(|(_, s)| s).sum();
    let key = ask.key.clone().unwrap_or_default();
    let user: Vec<(String, String)> = rec
        .user_meta
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(USER_META)?.to_string(), v.clone())))
        .collect();
    let d = Described {
        content_type: meta_of(&rec, TYPE_META).unwrap_or_default(),
        meta: user,
        parts: Some(chosen.len()),
    };
    let (etag, _) = store_joined(&ask, &key, (&id, &chosen, total), d).await?;
    let upload_id = ask.param("uploadId").unwrap_or_default().to_string();
    drop_upload(&system, &ask.bucket, &upload_id).await;
    Ok(xml::ok(format!(
        "<CompleteMultipartUploadResult xmlns=\"{S3_NS}\">{}{}{}{}</CompleteMultipartUploadResult>",
        element("Location", &format!("/{}/{key}", ask.bucket)),
        element("Bucket", &ask.bucket),
        element("Key", &key),
        element("ETag", &etag)
    )))
}

/// Stores the chosen parts, joined, as the object `key`. The parts stay until the upload is
/// dropped, so they can be read again: a write that failed as unavailable (the key moved
/// to another node mid-way, a quorum missed) is made again, up to [`UPLOAD_ATTEMPTS`] times.
async fn store_joined(
    ask: &Ask,
    key: &str,
    (id, chosen, total): (&str, &[(u32, u64)], u64),
    d: Described,
) -> Result<(String, std::time::SystemTime), S3Error> {
    let unavailable = |e: &S3Error| e.status == StatusCode::SERVICE_UNAVAILABLE;
    restarting_when(unavailable, || async {
        let (bucket, sys, id) = (ask.bucket.clone(), ask.gw.system().await?, id.to_string());
        let parts = chosen.to_vec();
        let mut joined = Piped::spawn(move |mut tx| async move {
            for (n, size) in parts {
                sys.get_object_to(part_target(&bucket, &id, n), (0, Some(size)), &mut tx)
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
            }
            tx.shutdown().await
        });
        store(ask, key, &mut joined, Some(total), d.clone()).await
    })
    .await
}

/// Removes an upload's parts and record (what fails is left for a later abort).
async fn drop_upload(system: &Client, bucket: &str, id: &str) {
    if let Ok(parts) = parts_of(system, bucket, id).await {
        for (n, _, _) in parts {
            let _ = system
                .remove_object(part_target(bucket, id, n), Durability::Default)
                .await;
        }
    }
    let _ = system
        .remove_object(upload_target(bucket, id), Durability::Default)
        .await;
}

pub async fn abort(ask: Ask) -> Result<Response, S3Error> {
    check_write(&ask)?;
    let system = ask.gw.system().await?;
    let (id, _) = upload(&ask, &system).await?;
    drop_upload(&system, &ask.bucket, &id).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
