//! Reading a name that may hold a plain value or a chunked object: a whole read streams
//! column 0 through a [`Sniffer`]; a ranged read looks the value up first and pins every
//! request to the version it saw (`READ` `IF_VERSION`), so bytes of two versions are never
//! joined. An object's chunks are read a part at a time (memory: one part), each whole
//! chunk checked against the manifest's CRC and the whole object against its own.

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::sniff::{Sniffed, Sniffer};
use super::{chunk_target, replaced, Manifest};
use crate::client::target::Target;
use crate::client::{Client, ClientError, Result};
use crate::wire::{ReadRequest, Reply, Request, Status, READ_TO_END};

impl Client {
    /// Streams `size` bytes (`None`: to the end) from `offset` of the value or object under
    /// `key` into `out`; returns the bytes written.
    pub async fn get_object_to<W: AsyncWrite + Unpin>(
        &self,
        key: impl Into<Target>,
        (offset, size): (u64, Option<u64>),
        out: &mut W,
    ) -> Result<u64> {
        let key = key.into();
        if offset == 0 && size.is_none() {
            let mut sniffer = Sniffer::new(out);
            self.get_column_to(key.clone(), 0, (0, None), &mut sniffer)
                .await?;
            let sniffed = sniffer
                .finish()
                .await
                .map_err(|e| ClientError::Output(e.to_string()))?;
            return match sniffed {
                Sniffed::Plain(n) => Ok(n),
                Sniffed::Object(m) => self.write_chunks(&key, &m, (0, m.size), out).await,
            };
        }
        let meta = self.lookup_column(key.clone(), 0).await?;
        let version = meta.timestamp_ns;
        let Some(m) = self.manifest_of(&key, meta.size, version).await? else {
            let mut req = ReadRequest::range(0, offset, size.unwrap_or(READ_TO_END));
            req.if_version = Some(version);
            return self.read_request_to(key, req, out).await;
        };
        if offset > m.size {
            return Err(ClientError::Status {
                status: Status::RangeOutOfBounds,
                message: format!(
                    "offset {offset} is past the object's end ({} bytes)",
                    m.size
                ),
            });
        }
        let end = size.map_or(m.size, |s| offset.saturating_add(s).min(m.size));
        self.write_chunks(&key, &m, (offset, end), out).await
    }

    /// `size` bytes (`None`: to the end) from `offset` of the value or object under `key`,
    /// in memory.
    pub async fn get_object(
        &self,
        key: impl Into<Target>,
        offset: u64,
        size: Option<u64>,
    ) -> Result<Bytes> {
        let mut out = Vec::new();
        self.get_object_to(key, (offset, size), &mut out).await?;
        Ok(Bytes::from(out))
    }

    /// Bytes `range` of the value written at `version` (whole, in memory: small reads).
    pub(super) async fn read_pinned(
        &self,
        key: &Target,
        (offset, size): (u64, u64),
        version: u64,
    ) -> Result<Bytes> {
        let mut req = ReadRequest::range(0, offset, size);
        req.if_version = Some(version);
        let mut out = Vec::new();
        for r in self.call(&Request::Read(req), key.clone()).await? {
            match r {
                Reply::ReadPart { data, .. } => out.extend_from_slice(&data),
                other => return Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        }
        Ok(Bytes::from(out))
    }

    /// Writes bytes `start..end` of object `m` to `out`, a part at a time.
    async fn write_chunks<W: AsyncWrite + Unpin>(
        &self,
        key: &Target,
        m: &Manifest,
        (start, end): (u64, u64),
        out: &mut W,
    ) -> Result<u64> {
        let piece = self.config.part_size.max(1) as u64;
        let mut whole = (start == 0 && end == m.size).then(crc32fast::Hasher::new);
        let mut at = start;
        while at < end {
            let index = (at / m.chunk_size) as u32;
            let chunk_start = u64::from(index) * m.chunk_size;
            let chunk_end = chunk_start + m.chunk_len(index);
            let stop = chunk_end.min(end);
            let mut chunk_crc =
                (at == chunk_start && stop == chunk_end).then(crc32fast::Hasher::new);
            let target = chunk_target(key, &m.upload_id, index);
            while at < stop {
                let len = (stop - at).min(piece);
                let data = match self
                    .get_column(target.clone(), 0, at - chunk_start, Some(len))
                    .await
                {
                    Ok(d) => d,
                    Err(e) => return Err(self.chunk_failure(key, m, index, e).await),
                };
                if data.len() as u64 != len {
                    return Err(damaged(index, "is shorter than its manifest says"));
                }
                for h in [chunk_crc.as_mut(), whole.as_mut()].into_iter().flatten() {
                    h.update(&data);
                }
                out.write_all(&data)
                    .await
                    .map_err(|e| ClientError::Output(e.to_string()))?;
                at += len;
            }
            let want = m.chunk_crcs.get(index as usize).copied();
            if chunk_crc.is_some_and(|h| Some(h.finalize()) != want) {
                return Err(damaged(
                    index,
                    "does not match its checksum in the manifest",
                ));
            }
        }
        if whole.is_some_and(|h| h.finalize() != m.crc32) {
            return Err(ClientError::Status {
                status: Status::ChecksumMismatch,
                message: "the object's bytes do not match its checksum".into(),
            });
        }
        out.flush()
            .await
            .map_err(|e| ClientError::Output(e.to_string()))?;
        Ok(end - start)
    }

    /// Why a chunk could not be read: the object was replaced meanwhile (`CHANGED`), or —
    /// its manifest unchanged — the chunk is missing or failing.
    async fn chunk_failure(
        &self,
        key: &Target,
        m: &Manifest,
        index: u32,
        e: ClientError,
    ) -> ClientError {
        if !e.is_not_found() {
            return e;
        }
        match self.object_manifest(key).await {
            Ok(Some(now)) if now.upload_id == m.upload_id => {
                damaged(index, "is missing (its manifest still names it)")
            }
            _ => replaced(e),
        }
    }
}

fn damaged(index: u32, why: &str) -> ClientError {
    ClientError::Status {
        status: Status::ChecksumMismatch,
        message: format!("chunk {index} of the object {why}"),
    }
}
