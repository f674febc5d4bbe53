//! The integrity values a client may send with a body — `Content-MD5`, and
//! `x-amz-checksum-crc32`, `-sha1`, `-sha256` as headers or as `aws-chunked` trailers — each
//! checked against the body as it streams. A body that differs fails its read at the end
//! (`BadDigest`), so the upload fails before its commit and nothing is stored. Other
//! algorithms (`crc32c`, `crc64nvme`) are taken without a check (docs/HTTP.md §8).

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

use super::error::S3Error;

/// The message of a body whose digest differs from the one given.
pub const BAD_DIGEST: &str = "BadDigest";

/// A digest algorithm, and the header (or trailer) that carries its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Crc32,
    Sha1,
    Sha256,
}

impl Algorithm {
    const ALL: [Algorithm; 4] = [
        Algorithm::Md5,
        Algorithm::Crc32,
        Algorithm::Sha1,
        Algorithm::Sha256,
    ];

    /// The header (lower case) whose base64 value this algorithm checks.
    pub fn header(self) -> &'static str {
        match self {
            Algorithm::Md5 => "content-md5",
            Algorithm::Crc32 => "x-amz-checksum-crc32",
            Algorithm::Sha1 => "x-amz-checksum-sha1",
            Algorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    fn len(self) -> usize {
        match self {
            Algorithm::Md5 => 16,
            Algorithm::Crc32 => 4,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
        }
    }

    /// The algorithm a header or trailer name is of, if one this gateway checks.
    pub fn of_header(name: &str) -> Option<Algorithm> {
        let name = name.trim().to_ascii_lowercase();
        Algorithm::ALL.into_iter().find(|a| a.header() == name)
    }
}

/// One expected digest: the algorithm and the value the body must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub algorithm: Algorithm,
    pub value: Vec<u8>,
}

impl Expected {
    /// `text` (base64) as the expected value of `algorithm`; `InvalidDigest` if it is not
    /// base64 of the algorithm's length.
    pub fn parse(algorithm: Algorithm, text: &str) -> Result<Expected, S3Error> {
        let value = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
            .filter(|v| v.len() == algorithm.len())
            .ok_or_else(|| {
                let why = format!("The {} you specified is not valid", algorithm.header());
                S3Error::new(StatusCode::BAD_REQUEST, "InvalidDigest", why)
            })?;
        Ok(Expected { algorithm, value })
    }
}

/// The digests the headers of a request give for its body.
pub fn expected_in(headers: &HeaderMap) -> Result<Vec<Expected>, S3Error> {
    let mut out = Vec::new();
    for algorithm in Algorithm::ALL {
        if let Some(v) = headers.get(algorithm.header()) {
            let text = v.to_str().unwrap_or_default();
            out.push(Expected::parse(algorithm, text)?);
        }
    }
    Ok(out)
}

/// A digest being computed.
#[derive(Clone)]
pub enum Running {
    Md5(Md5),
    Crc32(crc32fast::Hasher),
    Sha1(Sha1),
    Sha256(Sha256),
}

impl Running {
    pub fn new(algorithm: Algorithm) -> Running {
        match algorithm {
            Algorithm::Md5 => Running::Md5(Md5::new()),
            Algorithm::Crc32 => Running::Crc32(crc32fast::Hasher::new()),
            Algorithm::Sha1 => Running::Sha1(Sha1::new()),
            Algorithm::Sha256 => Running::Sha256(Sha256::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Running::Md5(h) => h.update(data),
            Running::Crc32(h) => h.update(data),
            Running::Sha1(h) => h.update(data),
            Running::Sha256(h) => h.update(data),
        }
    }

    /// The digest of what was given so far (big-endian for CRC-32, as S3 encodes it).
    pub fn value(&self) -> Vec<u8> {
        match self.clone() {
            Running::Md5(h) => h.finalize().to_vec(),
            Running::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            Running::Sha1(h) => h.finalize().to_vec(),
            Running::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// A body checked against expected digests as it is read: at its end each must match, or
/// the read fails with that check's message (the first that differs).
pub struct Checked<R> {
    inner: R,
    checks: Vec<Check>,
}

/// One digest a [`Checked`] body computes, the value it must reach, and the message of the
/// read that fails when it does not.
struct Check {
    running: Running,
    want: Vec<u8>,
    mismatch: &'static str,
}

impl<R> Checked<R> {
    /// `inner` checked against `expected` (each failing with [`BAD_DIGEST`]).
    pub fn new(inner: R, expected: Vec<Expected>) -> Self {
        Checked {
            inner,
            checks: Vec::new(),
        }
        .with(expected, BAD_DIGEST)
    }

    /// Also checked against `expected`, each failing with `mismatch`.
    pub fn with(mut self, expected: Vec<Expected>, mismatch: &'static str) -> Self {
        self.checks.extend(expected.into_iter().map(|e| Check {
            running: Running::new(e.algorithm),
            want: e.value,
            mismatch,
        }));
        self
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Checked<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        if !read.is_empty() {
            for check in &mut this.checks {
                check.running.update(read);
            }
            return Poll::Ready(Ok(()));
        }
        let failed = this.checks.iter().find(|c| c.running.value() != c.want);
        if let (true, Some(check)) = (buf.remaining() > 0, failed) {
            return Poll::Ready(Err(std::io::Error::other(check.mismatch)));
        }
        Poll::Ready(Ok(()))
    }
}

/// The error of a body that failed its digest.
pub fn bad_digest() -> S3Error {
    S3Error::new(
        StatusCode::BAD_REQUEST,
        "BadDigest",
        "The digest or checksum you specified did not match what we received.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn b64(v: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(v)
    }

    #[tokio::test]
    async fn a_body_passes_with_its_digests_and_fails_with_others() -> Result<(), S3Error> {
        let body = b"The quick brown fox".to_vec();
        let md5 = Md5::digest(&body).to_vec();
        let crc = crc32fast::hash(&body).to_be_bytes();
        let good = vec![
            Expected::parse(Algorithm::Md5, &b64(&md5))?,
            Expected::parse(Algorithm::Crc32, &b64(&crc))?,
        ];
        let mut out = Vec::new();
        let mut checked = Checked::new(&body[..], good);
        assert!(checked.read_to_end(&mut out).await.is_ok());
        assert_eq!(out, body);

        let other = crc32fast::hash(b"other").to_be_bytes();
        let bad = vec![Expected::parse(Algorithm::Crc32, &b64(&other))?];
        let mut checked = Checked::new(&body[..], bad);
        let err = checked.read_to_end(&mut Vec::new()).await.err();
        assert_eq!(err.map(|e| e.to_string()), Some(BAD_DIGEST.to_string()));
        Ok(())
    }

    #[test]
    fn malformed_values_are_invalid_digests() {
        assert!(Expected::parse(Algorithm::Md5, "not base64!").is_err());
        assert!(Expected::parse(Algorithm::Crc32, &b64(&[1, 2, 3])).is_err());
        assert!(Expected::parse(Algorithm::Sha256, &b64(&[0; 32])).is_ok());
        assert_eq!(
            Algorithm::of_header("X-Amz-Checksum-SHA1"),
            Some(Algorithm::Sha1)
        );
        assert_eq!(Algorithm::of_header("x-amz-checksum-crc32c"), None);
    }
}
