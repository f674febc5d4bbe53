//! AWS Signature Version 2 presigned URLs (`AWSAccessKeyId`, `Expires`, `Signature` in the
//! query), which boto3 still makes by default for `generate_presigned_url` on S3: HMAC-SHA1
//! over the method, the empty content headers, the expiry and the resource.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::error::S3Error;
use super::sigv4::{query_pairs, Arrived};

/// Sub-resources (and response overrides) that are part of a V2 string to sign, as S3's
/// V2 signers list them.
const SIGNED_SUBRESOURCES: [&str; 34] = [
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "website",
];

/// The key id of a V2 presigned request, if it is one.
pub fn key_id(a: &Arrived<'_>) -> Option<String> {
    let mut pairs = query_pairs(a.query);
    let id = pairs.find(|(k, _)| k == "AWSAccessKeyId").map(|(_, v)| v)?;
    query_pairs(a.query)
        .any(|(k, _)| k == "Signature")
        .then_some(id)
}

/// Checks a V2 presigned request with `secret` at `now`.
pub fn verify(a: &Arrived<'_>, secret: &str, now: SystemTime) -> Result<(), S3Error> {
    let get = |name: &str| {
        query_pairs(a.query)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    };
    let expires = get("Expires")
        .and_then(|e| e.parse::<u64>().ok())
        .ok_or_else(S3Error::malformed_auth)?;
    if now > SystemTime::UNIX_EPOCH + Duration::from_secs(expires) {
        return Err(S3Error::access_denied("Request has expired"));
    }
    let signature = get("Signature").ok_or_else(S3Error::malformed_auth)?;
    let mut sub: Vec<(String, String)> = query_pairs(a.query)
        .filter(|(k, _)| SIGNED_SUBRESOURCES.contains(&k.as_str()))
        .collect();
    sub.sort();
    let mut resource = a.path.to_string();
    for (i, (k, v)) in sub.iter().enumerate() {
        resource.push(if i == 0 { '?' } else { '&' });
        resource.push_str(k);
        if !v.is_empty() {
            resource.push('=');
            resource.push_str(v);
        }
    }
    let header = |n: &str| {
        a.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let to_sign = format!(
        "{}\n{}\n{}\n{expires}\n{resource}",
        a.method,
        header("content-md5"),
        header("content-type")
    );
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.as_bytes()) else {
        return Err(S3Error::signature_mismatch());
    };
    mac.update(to_sign.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    match expected == signature {
        true => Ok(()),
        false => Err(S3Error::signature_mismatch()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query string authentication example of the S3 (Signature V2) documentation.
    #[test]
    fn the_documented_example_verifies() {
        let h = axum::http::HeaderMap::new();
        let a = Arrived {
            method: "GET",
            path: "/johnsmith/photos/puppy.jpg",
            query: "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620",
            headers: &h,
        };
        assert_eq!(key_id(&a).as_deref(), Some("AKIAIOSFODNN7EXAMPLE"));
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let before = SystemTime::UNIX_EPOCH + Duration::from_secs(1_175_139_000);
        assert_eq!(verify(&a, secret, before), Ok(()));
        assert!(verify(&a, "other", before).is_err());
        let after = SystemTime::UNIX_EPOCH + Duration::from_secs(1_175_139_621);
        assert!(verify(&a, secret, after).is_err());
    }
}
