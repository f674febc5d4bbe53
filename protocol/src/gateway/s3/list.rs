//! ListObjectsV2 and ListObjects (v1): a bucket's names in byte order from the cluster
//! listing (`Client::list`), with `prefix`, `delimiter` (names sharing the part up to the
//! delimiter are rolled up into one common prefix, and the walk jumps past them),
//! `max-keys` (up to 1000), continuation tokens (v2, opaque: the name to resume after) and
//! markers (v1), and `encoding-type=url`.

use base64::Engine as _;
use bytes::Bytes;
use ringblob_backends::names::NameRecord;

use super::buckets::require;
use super::error::S3Error;
use super::sigv4::uri_encode;
use super::xml::{self, element, S3_NS};
use super::{iso_time, Ask};
use crate::wire::{ListEntry, ListRequest};

/// One listed thing: an object or a common prefix.
enum Item {
    Object(ListEntry),
    Prefix(String),
}

/// What a walk found, and where the next page resumes (if more may follow).
struct Walk {
    items: Vec<Item>,
    next_after: Option<Vec<u8>>,
}

/// Bytes after every name that begins with `prefix`: names are UTF-8, which never holds
/// 0xFF.
fn past(prefix: &str) -> Vec<u8> {
    let mut b = prefix.as_bytes().to_vec();
    b.push(0xFF);
    b
}

async fn walk(
    ask: &Ask,
    prefix: &str,
    delimiter: Option<&str>,
    mut after: Option<Vec<u8>>,
    max: usize,
) -> Result<Walk, S3Error> {
    let mut items = Vec::new();
    loop {
        let req = ListRequest {
            namespace: ask.bucket.clone(),
            prefix: Bytes::from(prefix.as_bytes().to_vec()),
            after: after.clone().map(Bytes::from),
            limit: 1000,
            ..ListRequest::default()
        };
        let page = ask
            .client
            .list(&req, &[])
            .await
            .map_err(|e| S3Error::from_client(&e))?;
        let more_pages = page.next.is_some();
        let mut jumped = false;
        for e in page.entries {
            if items.len() == max {
                return Ok(Walk {
                    items,
                    next_after: after,
                });
            }
            let name = String::from_utf8_lossy(&e.name).into_owned();
            let rolled = delimiter.and_then(|d| {
                let rest = name.get(prefix.len()..)?;
                rest.find(d)
                    .map(|i| format!("{prefix}{}", &rest[..i + d.len()]))
            });
            match rolled {
                Some(cp) => {
                    after = Some(past(&cp));
                    items.push(Item::Prefix(cp));
                    jumped = true;
                    break;
                }
                None => {
                    after = Some(e.name.to_vec());
                    items.push(Item::Object(e));
                }
            }
        }
        if !jumped && !more_pages {
            return Ok(Walk {
                items,
                next_after: None,
            });
        }
        if items.len() == max {
            return Ok(Walk {
                items,
                next_after: after,
            });
        }
    }
}

/// Where a v1 listing resumes after `marker`: past every name of the common prefix the
/// marker itself rolls up into (a `NextMarker` that was a common prefix, or a name inside
/// one), so a page never repeats the previous page's last common prefix; else right after
/// the marker.
fn after_marker(marker: &str, prefix: &str, delimiter: Option<&str>) -> Vec<u8> {
    let rolled = delimiter.and_then(|d| {
        let rest = marker.strip_prefix(prefix)?;
        rest.find(d).map(|i| &marker[..prefix.len() + i + d.len()])
    });
    match rolled {
        Some(common) => past(common),
        None => marker.as_bytes().to_vec(),
    }
}

fn token(after: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(after)
}

fn untoken(text: &str) -> Result<Vec<u8>, S3Error> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| S3Error::invalid_argument("The continuation token provided is incorrect"))
}

pub async fn objects(ask: Ask) -> Result<Response, S3Error> {
    require(&ask).await?;
    let v2 = ask.param("list-type") == Some("2");
    let prefix = ask.param("prefix").unwrap_or_default().to_string();
    let delimiter = ask
        .param("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    let max = match ask.param("max-keys") {
        Some(m) => m
            .parse::<usize>()
            .map_err(|_| S3Error::invalid_argument("max-keys is not a number"))?
            .min(1000),
        None => 1000,
    };
    let url = ask.param("encoding-type") == Some("url");
    let enc = |s: &str| {
        if url {
            uri_encode(s, false)
        } else {
            s.to_string()
        }
    };
    let start = match (
        v2,
        ask.param("continuation-token"),
        ask.param("start-after"),
        ask.param("marker"),
    ) {
        (true, Some(t), _, _) => Some(untoken(t)?),
        (true, None, Some(s), _) => Some(s.as_bytes().to_vec()),
        (false, _, _, Some(m)) if !m.is_empty() => {
            Some(after_marker(m, &prefix, delimiter.as_deref()))
        }
        _ => None,
    };
    let w = match max {
        0 => Walk {
            items: Vec::new(),
            next_after: start.clone(),
        },
        _ => walk(&ask, &prefix, delimiter.as_deref(), start, max).await?,
    };
    let truncated = w.next_after.is_some() && max > 0;
    let mut body = format!("<ListBucketResult xmlns=\"{S3_NS}\">");
    body.push_str(&element("Name", &ask.bucket));
    body.push_str(&element("Prefix", &enc(&prefix)));
    body.push_str(&element("MaxKeys", &max.to_string()));
    if let Some(d) = &delimiter {
        body.push_str(&element("Delimiter", &enc(d)));
    }
    if url {
        body.push_str(&element("EncodingType", "url"));
    }
    body.push_str(&element(
        "IsTruncated",
        if truncated { "true" } else { "false" },
    ));
    if v2 {
        body.push_str(&element("KeyCount", &w.items.len().to_string()));
        if let Some(t) = ask.param("continuation-token") {
            body.push_str(&element("ContinuationToken", t));
        }
        if let Some(s) = ask.param("start-after") {
            body.push_str(&element("StartAfter", &enc(s)));
        }
        if let (true, Some(next)) = (truncated, &w.next_after) {
            body.push_str(&element("NextContinuationToken", &token(next)));
        }
    } else {
        body.push_str(&element(
            "Marker",
            &enc(ask.param("marker").unwrap_or_default()),
        ));
        if let (true, Some(next)) = (truncated, &w.next_after) {
            let text =
                String::from_utf8_lossy(next.strip_suffix(&[0xFF]).unwrap_or(next)).into_owned();
            body.push_str(&element("NextMarker", &enc(&text)));
        }
    }
    for item in &w.items {
        match item {
            Item::Object(e) => body.push_str(&contents(e, &enc)),
            Item::Prefix(p) => body.push_str(&format!(
                "<CommonPrefixes>{}</CommonPrefixes>",
                element("Prefix", &enc(p))
            )),
        }
    }
    body.push_str("</ListBucketResult>");
    Ok(xml::ok(body))
}

fn contents(e: &ListEntry, enc: &dyn Fn(&str) -> String) -> String {
    let rec = NameRecord::decode(&e.record).unwrap_or_default();
    let etag = match rec.etag.is_empty() {
        false => rec.etag,
        true => format!("\"{:016x}\"", e.timestamp_ns),
    };
    format!(
        "<Contents>{}{}{}{}<StorageClass>STANDARD</StorageClass></Contents>",
        element("Key", &enc(&String::from_utf8_lossy(&e.name))),
        element("LastModified", &iso_time(e.timestamp_ns)),
        element("ETag", &etag),
        element("Size", &rec.size.to_string()),
    )
}

use axum::response::Response;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_inside_a_common_prefix_resumes_past_the_prefix() {
        assert_eq!(after_marker("b/", "", Some("/")), past("b/"));
        assert_eq!(after_marker("b/1", "", Some("/")), past("b/"));
        assert_eq!(after_marker("p/b/x", "p/", Some("/")), past("p/b/"));
        assert_eq!(after_marker("a", "", Some("/")), b"a".to_vec());
        assert_eq!(after_marker("b/1", "", None), b"b/1".to_vec());
        assert_eq!(after_marker("q/b/1", "p/", Some("/")), b"q/b/1".to_vec());
    }
}
