//! Copies: CopyObject (an object from another, or onto itself with new metadata) and
//! UploadPartCopy (a part of a multipart upload from another object, whole or a byte range
//! of it — what `aws s3 cp`, `sync` and `mv` and SDKs' managed copies send for an object
//! past their multipart threshold). The source is read as a GET of the request's key would
//! read it (the groups in turn, the key's read permission applied by the node), checked
//! against the `x-amz-copy-source-if-*` conditions, and streamed into the destination
//! through a pipe (memory bounded by the pipe, whatever the size).

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;

use super::buckets::{exists, require};
use super::error::S3Error;
use super::multipart::{part_of, store_part};
use super::objects::{ns_of, precondition_failed, store, Described};
use super::xml::{self, element, S3_NS};
use super::{iso_time, Ask};
use crate::client::{Client, Target};
use crate::gateway::conditional::{Conditions, Verdict};
use crate::gateway::object::{find, own_connection_if_long, user_meta, Found};
use crate::gateway::replicas::read_in_groups;

/// The object a copy reads: its bucket and key, what describes it, and the client of the
/// group that answered.
struct Source {
    bucket: String,
    key: String,
    target: Target,
    found: Found,
    from: Arc<Client>,
}

/// `x-amz-copy-source`: `bucket/key` (or `/bucket/key`), URL-encoded, maybe `?versionId=`.
fn copy_source(text: &str) -> Option<(String, String)> {
    let text = text.split('?').next()?;
    let decoded = super::sigv4::percent_decode(text);
    let (bucket, key) = decoded.trim_start_matches('/').split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then(|| (bucket.to_string(), key.to_string()))
}

/// The request's copy source, found, and its `x-amz-copy-source-if-*` conditions held.
async fn source(ask: &Ask) -> Result<Source, S3Error> {
    let (bucket, key) = ask
        .header("x-amz-copy-source")
        .and_then(copy_source)
        .ok_or_else(|| S3Error::invalid_argument("x-amz-copy-source must be bucket/key"))?;
    let target = Target::named(&bucket, key.clone().into_bytes());
    let (groups, _) = ask.gw.replicas().await;
    let found = read_in_groups(&ask.client, &groups, |c| {
        let t = target.clone();
        async move { find(&c, &t, 0).await }
    });
    let (found, from) = match found.await {
        Ok(f) => f,
        Err(e) if e.is_not_found() => return Err(missing_source(ask, &bucket).await),
        Err(e) => return Err(S3Error::from_client(&e)),
    };
    let conditions = Conditions {
        if_match: ask.header("x-amz-copy-source-if-match"),
        if_none_match: ask.header("x-amz-copy-source-if-none-match"),
        if_modified_since: ask.header("x-amz-copy-source-if-modified-since"),
        if_unmodified_since: ask.header("x-amz-copy-source-if-unmodified-since"),
    };
    // As a read of the source: what would be `304 Not Modified` fails the copy too.
    if conditions.evaluate(Some(&found.current()), true) != Verdict::Proceed {
        return Err(precondition_failed());
    }
    Ok(Source {
        bucket,
        key,
        target,
        found,
        from,
    })
}

pub async fn copy(ask: Ask) -> Result<Response, S3Error> {
    require(&ask).await?;
    let src = source(&ask).await?;
    let replace = ask.header("x-amz-metadata-directive") == Some("REPLACE");
    let onto_itself = src.bucket == ask.bucket && Some(&src.key) == ask.key.as_ref();
    if onto_itself && !replace {
        return Err(S3Error::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata",
        ));
    }
    let (content_type, meta) = match (replace, &src.found.record) {
        (true, _) => (
            ask.header("content-type").unwrap_or_default().to_string(),
            user_meta(&ask.headers).map_err(|(_, why)| S3Error::invalid_argument(&why))?,
        ),
        (false, Some(r)) => (r.content_type.clone(), r.user_meta.clone()),
        (false, None) => (String::new(), Vec::new()),
    };
    let size = src.found.size;
    let from = own_connection_if_long(src.from, size);
    let mut reader = from.reader(src.target, (0, Some(size)));
    let key = ask.key.clone().unwrap_or_default();
    let d = Described {
        content_type,
        meta,
        parts: None,
    };
    let (etag, stored) = store(&ask, &key, &mut reader, Some(size), d).await?;
    Ok(xml::ok(format!(
        "<CopyObjectResult xmlns=\"{S3_NS}\">{}{}</CopyObjectResult>",
        element("LastModified", &iso_time(ns_of(stored))),
        element("ETag", &etag)
    )))
}

/// UploadPartCopy: part `partNumber` of upload `uploadId` is the copy source, or the bytes
/// `x-amz-copy-source-range: bytes=first-last` of it.
pub async fn upload_part(ask: Ask) -> Result<Response, S3Error> {
    let (system, id, n) = part_of(&ask).await?;
    let src = source(&ask).await?;
    let size = src.found.size;
    let (start, len) = match ask.header("x-amz-copy-source-range") {
        None => (0, size),
        Some(text) => source_range(text, size)?,
    };
    let from = own_connection_if_long(src.from, len);
    let mut reader = from.reader(src.target, (start, Some(len)));
    let etag = store_part(&system, (&ask.bucket, &id, n), &mut reader, Some(len)).await?;
    Ok(xml::ok(format!(
        "<CopyPartResult xmlns=\"{S3_NS}\">{}{}</CopyPartResult>",
        element(
            "LastModified",
            &iso_time(crate::gateway::object::version_now())
        ),
        element("ETag", &etag)
    )))
}

/// `bytes=first-last` (both inclusive, as S3 takes it for a part copy) of a source of
/// `size` bytes: where the bytes start, and how many.
fn source_range(text: &str, size: u64) -> Result<(u64, u64), S3Error> {
    let parsed = text.trim().strip_prefix("bytes=").and_then(|r| {
        let (first, last) = r.split_once('-')?;
        Some((
            first.trim().parse::<u64>().ok()?,
            last.trim().parse::<u64>().ok()?,
        ))
    });
    match parsed {
        Some((first, last)) if first <= last && last < size => Ok((first, last - first + 1)),
        Some(_) => Err(S3Error::new(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            format!("Range specified is not valid for source object of size: {size}"),
        )),
        None => Err(S3Error::invalid_argument(
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
        )),
    }
}

/// The error for a copy source that was not found: its bucket's, if the bucket does not
/// exist (or may not be read by this key), else `NoSuchKey`.
async fn missing_source(ask: &Ask, bucket: &str) -> S3Error {
    if !ask.who.may_read(bucket) {
        return S3Error::access_denied("this key may not read the copy source's bucket");
    }
    let (groups, _) = ask.gw.replicas().await;
    let bucket_exists = match ask.gw.system().await {
        Ok(system) => exists(&system, &groups, bucket).await,
        Err(e) => Err(e),
    };
    match bucket_exists {
        Ok(false) => S3Error::no_such_bucket(bucket),
        Ok(true) => S3Error::no_such_key(),
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_sources() {
        let s = copy_source;
        assert_eq!(s("b/k/x"), Some(("b".into(), "k/x".into())));
        assert_eq!(s("/b/a%20b?versionId=1"), Some(("b".into(), "a b".into())));
        assert_eq!(s("b"), None);
        assert_eq!(s("/b/"), None);
    }

    #[test]
    fn source_ranges_are_inclusive_and_within_the_source() {
        let r = |t| source_range(t, 100).map_err(|e| e.code.to_string());
        assert_eq!(r("bytes=0-99"), Ok((0, 100)));
        assert_eq!(r("bytes=10-10"), Ok((10, 1)));
        assert_eq!(r(" bytes=5-20 "), Ok((5, 16)));
        for bad in ["bytes=0-100", "bytes=20-10", "bytes=100-100"] {
            assert_eq!(r(bad), Err("InvalidArgument".into()), "{bad}");
        }
        for malformed in [
            "bytes=-10",
            "bytes=10-",
            "0-10",
            "bytes=a-b",
            "bytes=1-2,4-5",
        ] {
            assert_eq!(r(malformed), Err("InvalidArgument".into()), "{malformed}");
        }
    }
}
