//! AWS Signature Version 4 as S3 checks it: from the `Authorization` header or a presigned
//! URL's query, the canonical request is rebuilt from what arrived, signed again with the
//! key's S3 secret and compared in constant time. The payload hash the client signed
//! (`x-amz-content-sha256`) is returned so the body can be checked as it streams.

use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::error::S3Error;

type HmacSha256 = Hmac<Sha256>;

/// The algorithm name in headers and queries.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a signed request's time may be from the node's.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);
/// The longest a presigned URL may be valid (as S3 allows: 7 days).
pub const MAX_PRESIGNED: Duration = Duration::from_secs(7 * 24 * 3600);

/// What the client signed about the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// `UNSIGNED-PAYLOAD` (and every presigned URL).
    Unsigned,
    /// The body's SHA-256.
    Sha256([u8; 32]),
    /// `aws-chunked` with a signature per chunk, chained from the request's (`chunked.rs`).
    SignedChunks(ChunkSigner),
    /// `aws-chunked` without chunk signatures, with trailing headers.
    UnsignedChunks,
}

/// What chunk signatures are checked with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkSigner {
    pub key: [u8; 32],
    pub amz_date: String,
    pub scope: String,
    pub seed: String,
}

impl ChunkSigner {
    /// The signature of a chunk with `hash` following the one signed `previous`.
    pub fn sign(&self, previous: &str, hash: &[u8; 32]) -> String {
        let empty = hex(&Sha256::digest(b""));
        let to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{previous}\n{empty}\n{}",
            self.amz_date,
            self.scope,
            hex(hash)
        );
        hex(&hmac(&self.key, to_sign.as_bytes()))
    }
}

/// A request as it arrived: method, raw path and query, headers.
pub struct Arrived<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a axum::http::HeaderMap,
}

/// The signature's claims, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub key_id: String,
    pub date: String,
    pub region: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
    pub amz_date: String,
    /// Seconds a presigned URL is valid; `None` for header authentication.
    pub expires: Option<u64>,
}

/// Whether the request carries a Signature V4 (header or presigned).
pub fn is_signed(a: &Arrived<'_>) -> bool {
    let header = a
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(ALGORITHM));
    header || query_pairs(a.query).any(|(k, _)| k == "X-Amz-Algorithm")
}

/// The claims of a signed request.
pub fn claims(a: &Arrived<'_>) -> Result<Claims, S3Error> {
    if let Some(auth) = a.headers.get(axum::http::header::AUTHORIZATION) {
        let auth = auth.to_str().map_err(|_| S3Error::malformed_auth())?;
        return header_claims(auth, a.headers);
    }
    query_claims(a.query)
}

fn header_claims(auth: &str, headers: &axum::http::HeaderMap) -> Result<Claims, S3Error> {
    let rest = auth
        .strip_prefix(ALGORITHM)
        .ok_or_else(S3Error::malformed_auth)?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v.trim()),
            Some(("SignedHeaders", v)) => signed = Some(v.trim()),
            Some(("Signature", v)) => signature = Some(v.trim()),
            _ => {}
        }
    }
    let (credential, signed, signature) = match (credential, signed, signature) {
        (Some(c), Some(s), Some(g)) => (c, s, g),
        _ => return Err(S3Error::malformed_auth()),
    };
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| S3Error::access_denied("x-amz-date is missing"))?;
    build_claims(credential, signed, signature, amz_date, None)
}

fn query_claims(query: &str) -> Result<Claims, S3Error> {
    let get = |name: &str| {
        query_pairs(query)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .ok_or_else(|| S3Error::access_denied(&format!("{name} is missing")))
    };
    if get("X-Amz-Algorithm")? != ALGORITHM {
        return Err(S3Error::malformed_auth());
    }
    let expires = get("X-Amz-Expires")?
        .parse::<u64>()
        .map_err(|_| S3Error::malformed_auth())?;
    if Duration::from_secs(expires) > MAX_PRESIGNED {
        return Err(S3Error::access_denied("X-Amz-Expires is over 7 days"));
    }
    build_claims(
        &get("X-Amz-Credential")?,
        &get("X-Amz-SignedHeaders")?,
        &get("X-Amz-Signature")?,
        &get("X-Amz-Date")?,
        Some(expires),
    )
}

fn build_claims(
    credential: &str,
    signed: &str,
    signature: &str,
    amz_date: &str,
    expires: Option<u64>,
) -> Result<Claims, S3Error> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [key_id, date, region, "s3", "aws4_request"] = parts[..] else {
        return Err(S3Error::malformed_auth());
    };
    if !amz_date.starts_with(date) || amz_date.len() != 16 {
        return Err(S3Error::malformed_auth());
    }
    Ok(Claims {
        key_id: key_id.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        signed_headers: signed.split(';').map(str::to_string).collect(),
        signature: signature.to_string(),
        amz_date: amz_date.to_string(),
        expires,
    })
}

/// Checks the signature of `a` against `secret` (the key's S3 secret) at time `now`;
/// returns what the client signed about the body.
pub fn verify(
    a: &Arrived<'_>,
    c: &Claims,
    secret: &str,
    now: SystemTime,
) -> Result<Payload, S3Error> {
    let at = parse_amz_date(&c.amz_date).ok_or_else(S3Error::malformed_auth)?;
    match c.expires {
        None => {
            let skew = now
                .duration_since(at)
                .or_else(|e| Ok::<_, ()>(e.duration()));
            if skew.map_or(true, |d| d > MAX_SKEW) {
                return Err(S3Error::skewed());
            }
        }
        Some(secs) => {
            if at > now + MAX_SKEW {
                return Err(S3Error::access_denied("the presigned URL is not valid yet"));
            }
            if now > at + Duration::from_secs(secs) {
                return Err(S3Error::access_denied("Request has expired"));
            }
        }
    }
    let payload_text = match c.expires {
        Some(_) => "UNSIGNED-PAYLOAD".to_string(),
        None => a
            .headers
            .get("x-amz-content-sha256")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("UNSIGNED-PAYLOAD")
            .to_string(),
    };
    let canonical = canonical_request(a, c, &payload_text)?;
    let scope = format!("{}/{}/s3/aws4_request", c.date, c.region);
    let to_sign = format!(
        "{ALGORITHM}\n{}\n{scope}\n{}",
        c.amz_date,
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let key = signing_key(secret, &c.date, &c.region);
    let expected = hex(&hmac(&key, to_sign.as_bytes()));
    if !constant_time_eq(expected.as_bytes(), c.signature.as_bytes()) {
        return Err(S3Error::signature_mismatch());
    }
    payload(
        &payload_text,
        ChunkSigner {
            key,
            amz_date: c.amz_date.clone(),
            scope,
            seed: c.signature.clone(),
        },
    )
}

fn payload(text: &str, signer: ChunkSigner) -> Result<Payload, S3Error> {
    Ok(match text {
        "UNSIGNED-PAYLOAD" => Payload::Unsigned,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => Payload::SignedChunks(signer),
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => Payload::UnsignedChunks,
        hash => {
            let bytes = unhex32(hash).ok_or_else(|| {
                S3Error::invalid_argument("x-amz-content-sha256 is not a SHA-256 or a known mode")
            })?;
            Payload::Sha256(bytes)
        }
    })
}

fn canonical_request(a: &Arrived<'_>, c: &Claims, payload: &str) -> Result<String, S3Error> {
    let mut headers = String::new();
    for name in &c.signed_headers {
        let values: Vec<&str> = a
            .headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            return Err(S3Error::access_denied(&format!(
                "signed header {name} is missing"
            )));
        }
        let joined: Vec<String> = values.iter().map(|v| collapse(v)).collect();
        headers.push_str(&format!("{name}:{}\n", joined.join(",")));
    }
    let mut query: Vec<(String, String)> = query_pairs(a.query)
        .filter(|(k, _)| k != "X-Amz-Signature")
        .map(|(k, v)| (uri_encode(&k, true), uri_encode(&v, true)))
        .collect();
    query.sort();
    let query: Vec<String> = query.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let path = percent_decode(a.path);
    Ok(format!(
        "{}\n{}\n{}\n{headers}\n{}\n{payload}",
        a.method,
        uri_encode(&path, false),
        query.join("&"),
        c.signed_headers.join(";"),
    ))
}

/// A header value trimmed, inner runs of spaces made one.
fn collapse(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The signing key: `HMAC` chained over date, region, service and `aws4_request`.
pub fn signing_key(secret: &str, date: &str, region: &str) -> [u8; 32] {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, b"s3");
    hmac(&k, b"aws4_request")
}

pub fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    let bytes = crate::auth::unhex(text)?;
    bytes.try_into().ok()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `20130524T000000Z` as a time.
fn parse_amz_date(text: &str) -> Option<SystemTime> {
    if text.len() != 16 || !text.is_ascii() {
        return None;
    }
    let n = |r: std::ops::Range<usize>| text.get(r)?.parse::<u64>().ok();
    let (y, mo, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (h, mi, s) = (n(9..11)?, n(11..13)?, n(13..15)?);
    if text.as_bytes().get(8) != Some(&b'T') || text.as_bytes().get(15) != Some(&b'Z') {
        return None;
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(y as i64, mo as i64, d as i64);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + mi * 60 + s;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The `name=value` pairs of a raw query, percent-decoded (`+` is a plus, as S3 has it).
pub fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (percent_decode(k), percent_decode(v))
    })
}

/// Percent-decodes `s` (invalid escapes are kept as they are).
pub fn percent_decode(s: &str) -> String {
    percent_decode_strict(s).unwrap_or_else(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// `%XX` escapes decoded, if the result is UTF-8 (else its bytes): for a request's path,
/// whose names must be UTF-8.
pub fn percent_decode_strict(s: &str) -> Result<String, Vec<u8>> {
    if !s.contains('%') {
        return Ok(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_at = |j: usize| bytes.get(j).and_then(|b| (*b as char).to_digit(16));
        match (bytes[i], hex_at(i + 1), hex_at(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|e| e.into_bytes())
}

/// AWS's URI encoding: unreserved characters kept, `/` kept unless `slash`, the rest `%XX`.
pub fn uri_encode(s: &str, slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if !slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    /// The GET Object example of the AWS Signature V4 documentation for S3.
    fn example() -> HeaderMap {
        let mut h = HeaderMap::new();
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        for (k, v) in [
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", empty),
            ("x-amz-date", "20130524T000000Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            ),
        ] {
            h.insert(k, HeaderValue::from_static(v));
        }
        h
    }

    fn at(text: &str) -> SystemTime {
        parse_amz_date(text).unwrap_or(SystemTime::UNIX_EPOCH)
    }

    #[test]
    fn the_documented_get_object_example_verifies() -> TestResult {
        let h = example();
        let a = Arrived {
            method: "GET",
            path: "/test.txt",
            query: "",
            headers: &h,
        };
        assert!(is_signed(&a));
        let c = claims(&a)?;
        assert_eq!(c.key_id, "AKIAIOSFODNN7EXAMPLE");
        let payload = verify(&a, &c, SECRET, at("20130524T000500Z"))?;
        assert!(matches!(payload, Payload::Sha256(_)));
        // Another secret, another path, another header value, or too late: refused.
        assert!(verify(&a, &c, "other", at("20130524T000000Z")).is_err());
        let other = Arrived {
            path: "/test2.txt",
            ..a
        };
        assert!(verify(&other, &c, SECRET, at("20130524T000000Z")).is_err());
        let mut changed = example();
        changed.insert("range", HeaderValue::from_static("bytes=0-10"));
        let a2 = Arrived {
            method: "GET",
            path: "/test.txt",
            query: "",
            headers: &changed,
        };
        assert!(verify(&a2, &c, SECRET, at("20130524T000000Z")).is_err());
        let late = verify(&a, &c, SECRET, at("20130524T010000Z"));
        assert_eq!(late.err().map(|e| e.code), Some("RequestTimeTooSkewed"));
        Ok(())
    }

    #[test]
    fn the_documented_presigned_url_verifies() -> TestResult {
        let mut h = HeaderMap::new();
        h.insert(
            "host",
            HeaderValue::from_static("examplebucket.s3.amazonaws.com"),
        );
        let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
        let a = Arrived {
            method: "GET",
            path: "/test.txt",
            query,
            headers: &h,
        };
        assert!(is_signed(&a));
        let c = claims(&a)?;
        assert_eq!(
            verify(&a, &c, SECRET, at("20130524T120000Z"))?,
            Payload::Unsigned
        );
        assert!(
            verify(&a, &c, SECRET, at("20130525T000001Z")).is_err(),
            "expired"
        );
        Ok(())
    }

    #[test]
    fn dates_and_encodings() {
        assert_eq!(
            parse_amz_date("19700102T000001Z"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(86_401))
        );
        assert_eq!(parse_amz_date("2013-05-24T00:00:00Z"), None);
        assert_eq!(uri_encode("a b/c~d*", false), "a%20b/c~d%2A");
        assert_eq!(uri_encode("a/b", true), "a%2Fb");
        assert_eq!(percent_decode("a%2Fb%zz"), "a/b%zz");
    }
}
