//! A small value in one round trip (`docs/OBJECTS.md` §4): the read of the replaced value's
//! first bytes, the value's write and its name record's write go out together, and the
//! owner applies them in order (`docs/PROTOCOL.md` §9), so the read sees what the write
//! replaced. If that was a chunked object, its chunks are removed after.

use bytes::{Bytes, BytesMut};
use ringblob_backends::names::NAME_COLUMN;

use super::manifest::{ManifestHead, MANIFEST_FIXED_LEN};
use super::Manifest;
use crate::client::{write_request, written, Client, ClientError, PutOptions, Result, Target};
use crate::wire::{ReadRequest, Reply, Request, WriteMode, MAX_VALUE_IN_FRAME};

impl Client {
    /// Whether [`put_small`](Self::put_small) takes `data`: it fits one part and does not
    /// begin like a manifest.
    pub fn fits_small_put(&self, data: &[u8]) -> bool {
        data.len() <= self.small_put_limit() && !Manifest::sniff(data)
    }

    /// The longest value [`put_small`](Self::put_small) takes: one part.
    pub fn small_put_limit(&self) -> usize {
        self.config.part_size.clamp(1, MAX_VALUE_IN_FRAME)
    }

    /// Stores `data` as the value (column 0) of `key`, replacing whatever was there (a
    /// chunked object's chunks are removed after), and `record` — an encoded name record —
    /// in the name column beside it, in one round trip. Only for values that
    /// [`fits_small_put`](Self::fits_small_put) (else an input error: use
    /// [`put_object`](Self::put_object)). Returns the value's size.
    pub async fn put_small(
        &self,
        key: impl Into<Target>,
        data: Bytes,
        record: Option<Bytes>,
        o: PutOptions,
    ) -> Result<u64> {
        if !self.fits_small_put(&data) {
            return Err(ClientError::Input(
                "a small put takes a value of one part that does not begin like a manifest".into(),
            ));
        }
        let key = key.into();
        let head = ReadRequest::range(0, 0, MANIFEST_FIXED_LEN as u64);
        let mut reqs = vec![
            (Request::Read(head), key.clone()),
            (write_request((WriteMode::Whole, 0), data, o), key.clone()),
        ];
        if let Some(r) = record {
            let named = write_request((WriteMode::Whole, NAME_COLUMN), r, o);
            reqs.push((named, key.clone()));
        }
        let mut replies = self.call_together(&reqs).await?.into_iter();
        let (Some(head), Some(value)) = (replies.next(), replies.next()) else {
            return Err(ClientError::Unexpected("replies missing".into()));
        };
        let named = replies.next();
        let size = match value.and_then(written) {
            Ok(size) => size,
            Err(e) => {
                if matches!(&named, Some(Ok(_))) {
                    self.unname_unwritten(&key, &head, o).await;
                }
                return Err(e);
            }
        };
        if let Some(named) = named {
            named?;
        }
        if let Some(old) = replaced_object(head) {
            self.drop_chunks_of(&key, (&old.upload_id, old.count), o.durability)
                .await;
        }
        Ok(size)
    }
}

impl Client {
    /// The value's write failed but its name record's landed: where there was no value
    /// before either, the record would list a name nothing can read, so it is removed (best
    /// effort). Over an older value the record stays: the name is readable, as before.
    async fn unname_unwritten(&self, key: &Target, head: &Result<Vec<Reply>>, o: PutOptions) {
        if !head.as_ref().is_err_and(|e| e.is_not_found()) {
            return;
        }
        if let Err(e) = self
            .remove_column(key.clone(), NAME_COLUMN, o.durability)
            .await
        {
            tracing::warn!(error = %e, "a name record whose value was not written stays");
        }
    }
}

/// The chunked object the write replaced, from the read of its first bytes; `None` for a
/// plain value, none, or a read that failed (its chunks, if any, are orphans for `reclaim`).
fn replaced_object(head: Result<Vec<Reply>>) -> Option<ManifestHead> {
    let parts = match head {
        Ok(parts) => parts,
        Err(e) => {
            if !e.is_not_found() {
                tracing::debug!(error = %e, "the replaced value's head was not read");
            }
            return None;
        }
    };
    let mut bytes = BytesMut::new();
    for p in parts {
        if let Reply::ReadPart { data, .. } = p {
            bytes.extend_from_slice(&data);
        }
    }
    ManifestHead::decode(&bytes).ok()
}
