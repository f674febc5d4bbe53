//! Streamed writes: a value larger than one frame goes to its key's owner as `PREPARE`,
//! `PART`s and `COMMIT`; the owner's staging area holds the parts until the commit
//! (`docs/PROTOCOL.md` §7.4).
//!
//! The upload lives on the node that owned the key at the `PREPARE`. If the key's range
//! moves meanwhile (a node joins, leaves, or the ring is rebalanced), the parts after the
//! move reach a node that has no upload and answers `BAD_REQUEST`; after an acknowledged
//! `PREPARE` that is reported as [`ClientError::UploadLost`]: nothing was stored. A write
//! whose source can be read again starts over ([`restarting`]), and its new `PREPARE` goes
//! to the new owner; a source that cannot (a pipe, an HTTP body) gets the error, which
//! says the write can be made again.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncRead;

use super::{read_up_to, Client, ClientError, PutOptions, Result, Target};
use crate::wire::{Status, WriteMode, MAX_VALUE_IN_FRAME};

/// How many times in all [`restarting`] makes a write whose upload was lost.
pub const UPLOAD_ATTEMPTS: u32 = 3;

/// Makes `upload` again while it fails with [`ClientError::UploadLost`], at most
/// [`UPLOAD_ATTEMPTS`] times in all, after a pause that lets the route tables agree on the
/// key's new owner. For writes whose source can be read again from its start.
pub async fn restarting<T, F, Fut>(upload: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    restarting_when(ClientError::is_upload_lost, upload).await
}

/// [`restarting`] for writes that fail with errors of their own (a binding's, a gateway's):
/// `lost` says which of them is a lost upload worth starting over for.
pub async fn restarting_when<T, E, F, Fut>(
    lost: impl Fn(&E) -> bool,
    mut upload: F,
) -> std::result::Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        match upload().await {
            Err(e) if lost(&e) && attempt < UPLOAD_ATTEMPTS => {
                tracing::info!(attempt, error = %e, "a streamed write lost its upload; starting it over");
                tokio::time::sleep(restart_pause(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// How long [`restarting_when`] waits after attempt `attempt` (from 1) lost its upload:
/// long enough for the route tables to agree on the key's new owner.
fn restart_pause(attempt: u32) -> Duration {
    Duration::from_millis(200 << attempt.min(4))
}

/// A `PART` or `COMMIT` refused as malformed after its `PREPARE` was acknowledged: the
/// upload is not where the parts go any more (module docs).
fn lost(e: ClientError) -> ClientError {
    match e {
        ClientError::Status {
            status: Status::BadRequest,
            message,
        } => ClientError::UploadLost(message),
        other => other,
    }
}

impl Client {
    /// Stores a value (column 0); values larger than one frame are streamed (prepare,
    /// parts, commit), and started over if the key moves to another node meanwhile.
    pub async fn put(&self, key: impl Into<Target>, data: Bytes, o: PutOptions) -> Result<u64> {
        self.put_column(key, 0, data, o).await
    }

    /// Stores one column of a key, leaving the others; streamed like [`put`](Self::put).
    pub async fn put_column(
        &self,
        key: impl Into<Target>,
        column: u16,
        data: Bytes,
        o: PutOptions,
    ) -> Result<u64> {
        let at = (key.into(), column);
        if data.len() <= MAX_VALUE_IN_FRAME {
            return self.write(at, WriteMode::Whole, data, o).await;
        }
        restarting(|| self.put_parts(at.clone(), data.clone(), o)).await
    }

    /// One streamed write of `data`: `PREPARE`, `PART`s, `COMMIT`.
    async fn put_parts(&self, at: (Target, u16), data: Bytes, o: PutOptions) -> Result<u64> {
        let total = data.len() as u64;
        let prepare = WriteMode::Prepare { reserve: total };
        self.write(at.clone(), prepare, Bytes::new(), o).await?;
        let mut offset = 0usize;
        while offset < data.len() {
            let end = (offset + self.config.part_size.clamp(1, MAX_VALUE_IN_FRAME)).min(data.len());
            let part = WriteMode::Part {
                offset: offset as u64,
            };
            self.write(at.clone(), part, data.slice(offset..end), o)
                .await
                .map_err(lost)?;
            offset = end;
        }
        self.write(at, WriteMode::Commit { size: total }, Bytes::new(), o)
            .await
            .map_err(lost)
    }

    /// Stores the bytes `source` yields (to its end) in one column of a key, streamed in
    /// parts of `part_size` (PREPARE, PARTs, COMMIT): memory stays at one part whatever the
    /// value's size. A value that fits one part is written whole. `size_hint` (the size, if
    /// known; else the largest value) is the upload's reservation; `sent` hears the bytes
    /// acknowledged so far. Returns the value's size. If the key moves to another node
    /// mid-way the error is [`ClientError::UploadLost`] (the source is not read again).
    pub async fn put_stream<R: AsyncRead + Unpin>(
        &self,
        key: impl Into<Target>,
        column: u16,
        source: &mut R,
        (size_hint, o): (Option<u64>, PutOptions),
        mut sent: impl FnMut(u64),
    ) -> Result<u64> {
        let at = (key.into(), column);
        let part = self.config.part_size.clamp(1, MAX_VALUE_IN_FRAME);
        let mut chunk = read_up_to(source, part).await?;
        if chunk.len() < part {
            let n = chunk.len() as u64;
            let size = self.write(at, WriteMode::Whole, chunk.freeze(), o).await?;
            sent(n);
            return Ok(size);
        }
        // Unknown size (a pipe): reserve the largest value; the staging file is sparse.
        let reserve = size_hint.unwrap_or(ringblob_engine::format::record::MAX_VALUE_LEN);
        self.write(at.clone(), WriteMode::Prepare { reserve }, Bytes::new(), o)
            .await?;
        let mut offset = 0u64;
        while !chunk.is_empty() {
            let len = chunk.len();
            let mode = WriteMode::Part { offset };
            self.write(at.clone(), mode, chunk.freeze(), o)
                .await
                .map_err(lost)?;
            offset += len as u64;
            sent(offset);
            if len < part {
                break;
            }
            chunk = read_up_to(source, part).await?;
        }
        self.write(at, WriteMode::Commit { size: offset }, Bytes::new(), o)
            .await
            .map_err(lost)
    }
}
