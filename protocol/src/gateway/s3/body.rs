//! Request bodies as S3 clients send them, checked as they stream: an `aws-chunked` body
//! is unwrapped (each chunk's signature checked when the chunks are signed, its checksum
//! trailer when one is announced); bodies whose signed SHA-256 or digests are given are
//! checked by `digest::Checked`. A failure is an IO error of the read, so an upload fails
//! before its commit and nothing is stored.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};

use super::digest::{Algorithm, Expected, Running, BAD_DIGEST};
use super::sigv4::ChunkSigner;

/// The message of a body whose hash differs from the signed one.
pub const HASH_MISMATCH: &str = "XAmzContentSHA256Mismatch";
/// The message of a chunk whose signature is wrong.
pub const CHUNK_SIGNATURE: &str = "SignatureDoesNotMatch: chunk signature";
/// The largest chunk an `aws-chunked` body may have.
const MAX_CHUNK: usize = 16 << 20;
/// The longest chunk header or trailer line.
const MAX_LINE: usize = 4096;

/// A body produced by a task into a bounded pipe: read as it is produced, and at its end
/// the task's outcome decides whether it was whole (an error, never a silent early end).
pub struct Piped {
    pipe: tokio::io::DuplexStream,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Piped {
    /// Runs `produce` with the pipe's writing end.
    pub fn spawn<F, Fut>(produce: F) -> Piped
    where
        F: FnOnce(tokio::io::DuplexStream) -> Fut,
        Fut: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let (tx, rx) = tokio::io::duplex(1 << 20);
        Piped {
            pipe: rx,
            task: Some(tokio::spawn(produce(tx))),
        }
    }

    /// An `aws-chunked` body unwrapped: the chunks' data, then the end (trailers read).
    /// With `signer`, every chunk's signature is checked, chained from the seed; with
    /// `trailer`, the data's digest must be the one the trailer of that algorithm gives
    /// (`x-amz-trailer: x-amz-checksum-crc32`, …), and that trailer must come.
    pub fn unchunked<R: AsyncBufRead + Unpin + Send + 'static>(
        source: R,
        signer: Option<ChunkSigner>,
        trailer: Option<Algorithm>,
    ) -> Piped {
        Piped::spawn(move |tx| unchunk(source, (signer, trailer), tx))
    }
}

impl AsyncRead for Piped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.pipe).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            return Poll::Ready(Ok(()));
        }
        let Some(task) = self.task.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let ended = ready!(Pin::new(task).poll(cx));
        self.task = None;
        Poll::Ready(match ended {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e.to_string())),
        })
    }
}

use std::future::Future;

async fn unchunk<R: AsyncBufRead + Unpin + Send>(
    mut source: R,
    (signer, trailer): (Option<ChunkSigner>, Option<Algorithm>),
    mut out: tokio::io::DuplexStream,
) -> std::io::Result<()> {
    let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string());
    let mut previous = signer.as_ref().map(|s| s.seed.clone()).unwrap_or_default();
    let mut running = trailer.map(Running::new);
    loop {
        let line = read_line(&mut source).await?;
        let (size_text, extension) = line.split_once(';').unwrap_or((&line, ""));
        let size = usize::from_str_radix(size_text.trim(), 16)
            .map_err(|_| bad("aws-chunked: a chunk size is not hex"))?;
        if size > MAX_CHUNK {
            return Err(bad("aws-chunked: a chunk is over 16 MiB"));
        }
        let mut data = vec![0u8; size];
        source.read_exact(&mut data).await?;
        if let Some(s) = &signer {
            let given = extension
                .trim()
                .strip_prefix("chunk-signature=")
                .ok_or_else(|| bad("aws-chunked: a chunk has no signature"))?;
            let hash: [u8; 32] = Sha256::digest(&data).into();
            let expected = s.sign(&previous, &hash);
            if expected != given {
                return Err(std::io::Error::other(CHUNK_SIGNATURE));
            }
            previous = expected;
        }
        if size == 0 {
            // Trailers (if any) up to the empty line, or the end of the body.
            let mut checked = running.is_none();
            loop {
                let line = match read_line(&mut source).await {
                    Ok(l) if l.is_empty() => break,
                    Ok(l) => l,
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e),
                };
                let (name, value) = line.split_once(':').unwrap_or((&line, ""));
                if let (Some(algorithm), Some(r)) = (trailer, &running) {
                    if Algorithm::of_header(name) == Some(algorithm) {
                        let want = Expected::parse(algorithm, value)
                            .map_err(|_| bad("aws-chunked: a checksum trailer is not valid"))?;
                        if r.value() != want.value {
                            return Err(std::io::Error::other(BAD_DIGEST));
                        }
                        checked = true;
                    }
                }
            }
            if !checked {
                return Err(bad(
                    "aws-chunked: the checksum trailer announced did not come",
                ));
            }
            out.shutdown().await?;
            return Ok(());
        }
        let mut crlf = [0u8; 2];
        source.read_exact(&mut crlf).await?;
        if &crlf != b"\r\n" {
            return Err(bad("aws-chunked: a chunk does not end with CRLF"));
        }
        if let Some(r) = &mut running {
            r.update(&data);
        }
        out.write_all(&data).await?;
    }
}

/// One CRLF-terminated line (without it), bounded.
async fn read_line<R: AsyncBufRead + Unpin>(source: &mut R) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut limited = source.take(MAX_LINE as u64 + 2);
    let n = limited.read_until(b'\n', &mut line).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    if line.last() != Some(&b'\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "aws-chunked: a line is too long or unterminated",
        ));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "aws-chunked: not text"))
}

#[cfg(test)]
mod tests {
    use super::super::digest::Checked;
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    async fn read_all<R: AsyncRead + Unpin>(mut r: R) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        r.read_to_end(&mut out).await?;
        Ok(out)
    }

    #[tokio::test]
    async fn hashed_bodies_fail_at_the_end_when_they_differ() -> TestResult {
        let want = Sha256::digest(b"hello").to_vec();
        let signed = || {
            vec![Expected {
                algorithm: Algorithm::Sha256,
                value: want.clone(),
            }]
        };
        let hashed = |body| Checked::new(body, Vec::new()).with(signed(), HASH_MISMATCH);
        assert_eq!(read_all(hashed(&b"hello"[..])).await?, b"hello");
        let err = read_all(hashed(&b"hellO"[..])).await.err();
        assert_eq!(err.map(|e| e.to_string()), Some(HASH_MISMATCH.to_string()));
        Ok(())
    }

    #[tokio::test]
    async fn unsigned_chunks_with_trailers_unwrap() -> TestResult {
        let body = b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:AAAA\r\n\r\n";
        let got = read_all(Piped::unchunked(&body[..], None, None)).await?;
        assert_eq!(got, b"hello world");
        let cut = b"5\r\nhel";
        assert!(read_all(Piped::unchunked(&cut[..], None, None))
            .await
            .is_err());
        Ok(())
    }

    #[tokio::test]
    async fn a_checksum_trailer_is_checked_when_announced() -> TestResult {
        use base64::Engine as _;
        let crc = crc32fast::hash(b"hello world").to_be_bytes();
        let good = base64::engine::general_purpose::STANDARD.encode(crc);
        let body = |value: &str| {
            format!("5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:{value}\r\n\r\n")
                .into_bytes()
        };
        let crc32 = Some(Algorithm::Crc32);
        let got = read_all(Piped::unchunked(
            std::io::Cursor::new(body(&good)),
            None,
            crc32,
        ))
        .await?;
        assert_eq!(got, b"hello world");
        let wrong = read_all(Piped::unchunked(
            std::io::Cursor::new(body("AAAAAA==")),
            None,
            crc32,
        ));
        assert_eq!(
            wrong.await.err().map(|e| e.to_string()),
            Some(BAD_DIGEST.to_string())
        );
        let missing = b"5\r\nhello\r\n0\r\n\r\n";
        assert!(read_all(Piped::unchunked(&missing[..], None, crc32))
            .await
            .is_err());
        Ok(())
    }

    /// The streaming example of the AWS documentation (a 66560-byte PUT in 64 KiB chunks).
    #[tokio::test]
    async fn the_documented_signed_chunks_verify() -> TestResult {
        let key = super::super::sigv4::signing_key(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "20130524",
            "us-east-1",
        );
        let signer = ChunkSigner {
            key,
            amz_date: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            seed: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into(),
        };
        let first = vec![b'a'; 65536];
        let second = vec![b'a'; 1024];
        let mut body = Vec::new();
        body.extend_from_slice(b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n");
        body.extend_from_slice(&first);
        body.extend_from_slice(b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n");
        body.extend_from_slice(&second);
        body.extend_from_slice(b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n");
        let got = read_all(Piped::unchunked(
            std::io::Cursor::new(body.clone()),
            Some(signer.clone()),
            None,
        ))
        .await?;
        assert_eq!(got.len(), 66560);
        let last = body.len() - 10;
        body[last] ^= 1;
        let bad = read_all(Piped::unchunked(
            std::io::Cursor::new(body),
            Some(signer),
            None,
        ))
        .await;
        assert!(bad.is_err());
        Ok(())
    }
}
