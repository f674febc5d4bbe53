//! Buckets: a bucket is a namespace. One exists once created (a bucket record, a name in
//! the reserved namespace [`BUCKETS_NS`]) or once it holds a name. ListBuckets,
//! CreateBucket, HeadBucket, DeleteBucket (only when empty), and the location and
//! versioning queries clients ask at start.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use ringblob_backends::names::{NameRecord, NAME_COLUMN};

use super::error::S3Error;
use super::xml::{self, element, S3_NS};
use super::{iso_time, Ask};
use crate::client::{Client, PutOptions, Target};
use crate::gateway::replicas::{put_name_record, put_small, read_in_groups, remove_object};
use crate::wire::{Durability, ListRequest};

/// The namespace bucket records live in (not a bucket itself).
pub const BUCKETS_NS: &str = "ringblob.buckets";
/// Namespaces whose names begin so are the gateway's own and never listed as buckets.
pub const RESERVED_PREFIX: &str = "ringblob.";

/// Whether `bucket` exists: a group has its bucket record, or it holds a name.
pub async fn exists(system: &Client, groups: &[u32], bucket: &str) -> Result<bool, S3Error> {
    let record = Target::named(BUCKETS_NS, bucket.as_bytes().to_vec());
    let looked = read_in_groups(system, groups, |c| {
        let t = record.clone();
        async move { c.lookup_column(t, NAME_COLUMN).await }
    });
    match looked.await {
        Ok(_) => return Ok(true),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(S3Error::from_client(&e)),
    }
    has_names(system, bucket).await
}

/// Whether the namespace holds at least one name.
pub async fn has_names(client: &Client, bucket: &str) -> Result<bool, S3Error> {
    let req = ListRequest {
        namespace: bucket.to_string(),
        limit: 1,
        ..ListRequest::default()
    };
    let page = client
        .list(&req, &[])
        .await
        .map_err(|e| S3Error::from_client(&e))?;
    Ok(!page.entries.is_empty())
}

/// `NoSuchBucket` unless the request's bucket exists.
pub async fn require(ask: &Ask) -> Result<(), S3Error> {
    if ask.bucket.starts_with(RESERVED_PREFIX) {
        return Err(S3Error::no_such_bucket(&ask.bucket));
    }
    // Every bucket operation reads at least; a key without access to the namespace learns
    // nothing of the bucket (not even whether it exists).
    if !ask.who.may_read(&ask.bucket) {
        return Err(S3Error::access_denied(
            "this key may not use this bucket (its namespace)",
        ));
    }
    let system = ask.gw.system().await?;
    let (groups, _) = ask.gw.replicas().await;
    match exists(&system, &groups, &ask.bucket).await? {
        true => Ok(()),
        false => Err(S3Error::no_such_bucket(&ask.bucket)),
    }
}

/// S3's bucket naming rules: 3 to 63 of `a-z 0-9 . -`, beginning and ending with a letter
/// or digit.
pub fn valid_name(b: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&b.len())
        && b.chars().all(ok_char)
        && edge(b.chars().next())
        && edge(b.chars().last())
        && !b.contains("..")
        && b.parse::<std::net::Ipv4Addr>().is_err()
}

pub async fn list(ask: Ask) -> Result<Response, S3Error> {
    let system = ask.gw.system().await?;
    let mut buckets: std::collections::BTreeMap<String, u64> = Default::default();
    let failed = |e: crate::client::ClientError| S3Error::from_client(&e);
    // Bucket records, with their creation times; then namespaces that hold names.
    let records = ListRequest {
        namespace: BUCKETS_NS.into(),
        limit: 1000,
        ..ListRequest::default()
    };
    for e in system.list_all(&records).await.map_err(failed)? {
        let name = String::from_utf8_lossy(&e.name).into_owned();
        buckets.insert(name, e.timestamp_ns);
    }
    let namespaces = ListRequest {
        namespaces: true,
        limit: 1000,
        ..ListRequest::default()
    };
    for e in system.list_all(&namespaces).await.map_err(failed)? {
        let name = String::from_utf8_lossy(&e.name).into_owned();
        buckets.entry(name).or_insert(0);
    }
    let visible = |b: &str| {
        !b.starts_with(RESERVED_PREFIX)
            && !b.is_empty()
            && match &ask.who {
                super::Who::Open => true,
                super::Who::Key(id) => id
                    .namespaces
                    .as_ref()
                    .is_none_or(|ns| ns.iter().any(|n| n == b)),
            }
    };
    let mut body = format!("<ListAllMyBucketsResult xmlns=\"{S3_NS}\"><Owner><ID>ringblob</ID><DisplayName>ringblob</DisplayName></Owner><Buckets>");
    for (name, created) in buckets.iter().filter(|(b, _)| visible(b)) {
        body.push_str(&format!(
            "<Bucket>{}{}</Bucket>",
            element("Name", name),
            element("CreationDate", &iso_time(*created))
        ));
    }
    body.push_str("</Buckets></ListAllMyBucketsResult>");
    Ok(xml::ok(body))
}

pub async fn create(ask: Ask) -> Result<Response, S3Error> {
    if !valid_name(&ask.bucket) || ask.bucket.starts_with(RESERVED_PREFIX) {
        return Err(S3Error::new(
            StatusCode::BAD_REQUEST,
            "InvalidBucketName",
            "The specified bucket is not valid.",
        ));
    }
    if !ask.who.may_write(&ask.bucket) {
        return Err(S3Error::access_denied(
            "this key may not create this bucket",
        ));
    }
    let system = ask.gw.system().await?;
    let (groups, w) = ask.gw.replicas().await;
    let target = Target::named(BUCKETS_NS, ask.bucket.as_bytes().to_vec());
    let o = PutOptions {
        durability: Durability::Sync,
        ..PutOptions::default()
    };
    put_small(&system, (&target, 0), Bytes::new(), o, (&groups, w))
        .await
        .map_err(|e| S3Error::from_client(&e))?;
    let record = NameRecord::new(BUCKETS_NS, ask.bucket.as_bytes().to_vec(), 0);
    put_name_record(&system, &record, o, (&groups, w))
        .await
        .map_err(|e| S3Error::from_client(&e))?;
    Ok((
        StatusCode::OK,
        [(header::LOCATION, format!("/{}", ask.bucket))],
    )
        .into_response())
}

pub async fn head(ask: Ask) -> Result<Response, S3Error> {
    match require(&ask).await {
        Ok(()) => Ok(StatusCode::OK.into_response()),
        Err(e) if e.code == "NoSuchBucket" => Ok(StatusCode::NOT_FOUND.into_response()),
        Err(e) if e.code == "AccessDenied" => Ok(StatusCode::FORBIDDEN.into_response()),
        Err(e) => Err(e),
    }
}

pub async fn delete(ask: Ask) -> Result<Response, S3Error> {
    if !ask.who.may_write(&ask.bucket) {
        return Err(S3Error::access_denied(
            "this key may not delete this bucket",
        ));
    }
    let system = ask.gw.system().await?;
    if has_names(&system, &ask.bucket).await? {
        return Err(S3Error::new(
            StatusCode::CONFLICT,
            "BucketNotEmpty",
            "The bucket you tried to delete is not empty",
        ));
    }
    let target = Target::named(BUCKETS_NS, ask.bucket.as_bytes().to_vec());
    let (groups, w) = ask.gw.replicas().await;
    match remove_object(&system, &target, Durability::Sync, (&groups, w)).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e) if e.is_not_found() => Err(S3Error::no_such_bucket(&ask.bucket)),
        Err(e) => Err(S3Error::from_client(&e)),
    }
}

pub async fn location(ask: Ask) -> Result<Response, S3Error> {
    require(&ask).await?;
    Ok(xml::ok(format!(
        "<LocationConstraint xmlns=\"{S3_NS}\"></LocationConstraint>"
    )))
}

pub async fn versioning(ask: Ask) -> Result<Response, S3Error> {
    require(&ask).await?;
    Ok(xml::ok(format!(
        "<VersioningConfiguration xmlns=\"{S3_NS}\"/>"
    )))
}

#[cfg(test)]
mod tests {
    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket.2", "a1b"] {
            assert!(super::valid_name(ok), "{ok}");
        }
        for bad in [
            "ab",
            "Abc",
            "-abc",
            "abc-",
            "a_b",
            &"a".repeat(64),
            "192.168.1.1",
            "a..b",
        ] {
            assert!(!super::valid_name(bad), "{bad}");
        }
    }
}
