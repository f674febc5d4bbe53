//! Chunked objects: values larger than one chunk stored as a manifest (column 0 of the
//! object's key) and chunk values under keys of their own, spread over the ring, so one
//! object is not limited by a record's size nor held by one node. Written and read here,
//! transparently: `put_object`, `get_object_to`, `remove_object` treat a plain value and
//! an object alike. `docs/OBJECTS.md` is the specification.
//!
//! Order of writes, so a crash leaves nothing a reader can see half-done and nothing that
//! cannot be found again: the upload record first (it names the object), then the chunks,
//! then the manifest (the object becomes visible at once, whole), then the replaced
//! object's chunks and record are removed. Chunks whose upload record no live manifest
//! references are orphans; [`Client::reclaim_uploads`] finds and removes them.

mod manifest;
mod read;
mod reader;
mod reclaim;
mod small;
mod sniff;

use tokio::io::{AsyncRead, AsyncReadExt};

pub use manifest::{
    chunk_name, upload_name, Manifest, ManifestHead, ObjectFormatError, UploadRecord,
    MANIFEST_MAGIC, MAX_CHUNKS, MAX_CHUNK_SIZE, MAX_MANIFEST_LEN, MIN_CHUNK_SIZE, UPLOAD_COLUMN,
};
pub use reader::ObjectReader;
pub use reclaim::ReclaimReport;

use super::target::Target;
use super::{read_up_to, Client, ClientError, PutOptions, Result};
use crate::wire::{Durability, Status, ValueMeta};

/// The default chunk size: a value larger than this is stored as an object.
pub const DEFAULT_CHUNK_SIZE: u64 = 64 << 20;

/// The target chunk `index` of upload `upload_id` of object `of` is stored under.
pub fn chunk_target(of: &Target, upload_id: &[u8; 16], index: u32) -> Target {
    Target::named(namespace_of(of), chunk_name(upload_id, index))
}

/// The target upload `upload_id`'s record is stored under (column [`UPLOAD_COLUMN`]).
pub fn upload_target(of: &Target, upload_id: &[u8; 16]) -> Target {
    Target::named(namespace_of(of), upload_name(upload_id))
}

fn namespace_of(t: &Target) -> &str {
    match t {
        Target::Name { name, .. } => &name.namespace,
        Target::Id(_) => "",
    }
}

pub(crate) use crate::clock::now_ns;

/// A source whose bytes are counted into CRC-32s (the chunk's and the object's).
struct Summed<'a, R> {
    inner: &'a mut R,
    chunk: crc32fast::Hasher,
    whole: crc32fast::Hasher,
}

impl<R: AsyncRead + Unpin> AsyncRead for Summed<'_, R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let r = std::pin::Pin::new(&mut *this.inner).poll_read(cx, buf);
        let new = &buf.filled()[before..];
        this.chunk.update(new);
        this.whole.update(new);
        r
    }
}

impl Client {
    /// The chunk size objects are written with.
    pub fn chunk_size(&self) -> u64 {
        self.config
            .chunk_size
            .clamp(manifest::MIN_CHUNK_SIZE, manifest::MAX_CHUNK_SIZE)
    }

    /// Stores what `source` yields (to its end) under `key`, replacing what was there: a
    /// plain value when it fits one chunk (its size known, or it ends within one part),
    /// else a chunked object. Memory stays at one part. `size_hint` is the size if known;
    /// `sent` hears the bytes acknowledged so far. Returns the size stored.
    pub async fn put_object<R: AsyncRead + Unpin>(
        &self,
        key: impl Into<Target>,
        source: &mut R,
        (size_hint, o): (Option<u64>, PutOptions),
        mut sent: impl FnMut(u64),
    ) -> Result<u64> {
        let key = key.into();
        let old = self.manifest_to_replace(&key).await?;
        let part = self
            .config
            .part_size
            .clamp(1, crate::wire::MAX_VALUE_IN_FRAME);
        let first = read_up_to(source, part).await?;
        let fits = match size_hint {
            Some(n) => n <= self.chunk_size(),
            // The source ended within the first part: its size is known now.
            None => first.len() < part && first.len() as u64 <= self.chunk_size(),
        };
        // A plain value that begins like a manifest is stored as an object, so that column
        // 0 starting with the magic always means an object.
        let size = if fits && !Manifest::sniff(&first) {
            let mut rest = first.chain(source);
            self.put_stream(key.clone(), 0, &mut rest, (size_hint, o), &mut sent)
                .await?
        } else {
            let mut rest = first.chain(source);
            self.write_object(&key, &mut rest, o, &mut sent).await?
        };
        if let Some(old) = old {
            self.drop_upload(&key, &old, o.durability).await;
        }
        Ok(size)
    }

    /// Writes the upload record, the chunks and then the manifest.
    async fn write_object<R: AsyncRead + Unpin>(
        &self,
        key: &Target,
        source: &mut R,
        o: PutOptions,
        sent: &mut impl FnMut(u64),
    ) -> Result<u64> {
        let chunk_size = self.chunk_size();
        let upload_id: [u8; 16] = rand::random();
        let record = UploadRecord {
            upload_id,
            chunk_size,
            started_ns: now_ns(),
            object: key.id(),
            name: match key {
                Target::Name { name, .. } => Some(name.clone()),
                Target::Id(_) => None,
            },
        };
        let at = upload_target(key, &upload_id);
        self.put_column(at, UPLOAD_COLUMN, record.encode(), o)
            .await?;
        let mut summed = Summed {
            inner: source,
            chunk: crc32fast::Hasher::new(),
            whole: crc32fast::Hasher::new(),
        };
        let (mut size, mut chunk_crcs) = (0u64, Vec::new());
        loop {
            let index = chunk_crcs.len() as u32;
            if index >= MAX_CHUNKS {
                return Err(ClientError::Input(format!(
                    "an object has at most {MAX_CHUNKS} chunks of {chunk_size} bytes"
                )));
            }
            summed.chunk = crc32fast::Hasher::new();
            let mut limited = (&mut summed).take(chunk_size);
            let part = self
                .config
                .part_size
                .clamp(1, crate::wire::MAX_VALUE_IN_FRAME);
            let head = read_up_to(&mut limited, part).await?;
            if head.is_empty() {
                break;
            }
            let mut chunk = head.chain(limited);
            let target = chunk_target(key, &upload_id, index);
            let done = size;
            let n = self
                .put_stream(target, 0, &mut chunk, (Some(chunk_size), o), |n| {
                    sent(done + n)
                })
                .await?;
            size += n;
            chunk_crcs
                .push(std::mem::replace(&mut summed.chunk, crc32fast::Hasher::new()).finalize());
            if n < chunk_size {
                break;
            }
        }
        let manifest = Manifest {
            size,
            chunk_size,
            upload_id,
            crc32: summed.whole.clone().finalize(),
            chunk_crcs,
        };
        self.put_column(key.clone(), 0, manifest.encode(), o)
            .await?;
        Ok(size)
    }

    /// The manifest stored under `key`, if its value is an object (`None` for a plain
    /// value or none).
    pub async fn object_manifest(&self, key: &Target) -> Result<Option<Manifest>> {
        match self.lookup_column(key.clone(), 0).await {
            Ok(meta) => self.manifest_of(key, meta.size, meta.timestamp_ns).await,
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The manifest of the object a put or remove of `key` replaces, so its chunks can be
    /// dropped after. A change to the key between the lookup and the manifest's read (a
    /// concurrent put or remove: `CHANGED`, or gone) is looked at again a few times; if it
    /// keeps changing, `None` — the chunks left behind are an orphan upload for `reclaim`,
    /// and an unconditional put or remove never fails because another ran beside it.
    async fn manifest_to_replace(&self, key: &Target) -> Result<Option<Manifest>> {
        const LOOKS: usize = 3;
        for _ in 0..LOOKS {
            match self.object_manifest(key).await {
                Err(e) if e.is_not_found() || e.status() == Some(Status::Changed) => continue,
                other => return other,
            }
        }
        tracing::debug!(
            "the object kept changing while its manifest was read; its chunks are left to reclaim"
        );
        Ok(None)
    }

    /// Column 0's metadata under `key` and, if its value is an object, the manifest (one
    /// LOOKUP, plus reads only for a value that may be a manifest).
    pub async fn object_meta(&self, key: &Target) -> Result<(ValueMeta, Option<Manifest>)> {
        let meta = self.lookup_column(key.clone(), 0).await?;
        let manifest = self.manifest_of(key, meta.size, meta.timestamp_ns).await?;
        Ok((meta, manifest))
    }

    /// The manifest in the value of `size` bytes written at `version`, if it is one.
    async fn manifest_of(&self, key: &Target, size: u64, version: u64) -> Result<Option<Manifest>> {
        let min = (manifest::MANIFEST_FIXED_LEN + 4) as u64;
        if size < min || size > MAX_MANIFEST_LEN as u64 {
            return Ok(None);
        }
        let head = self.read_pinned(key, (0, 8), version).await?;
        if !Manifest::sniff(&head) {
            return Ok(None);
        }
        let all = self.read_pinned(key, (0, size), version).await?;
        Ok(Manifest::decode(&all).ok())
    }

    /// Removes `key` with every column; an object's chunks and upload record too (the
    /// manifest first, so it is gone for readers at once; chunks a failure leaves behind
    /// are reclaimed later).
    pub async fn remove_object(
        &self,
        key: impl Into<Target>,
        durability: Durability,
    ) -> Result<()> {
        self.remove_object_versioned(key.into(), durability, None)
            .await
    }

    /// [`remove_object`](Self::remove_object) at `version`, chosen by the caller (one
    /// remove sent to several groups carries one version; `Client::remove_at`).
    pub async fn remove_object_at(
        &self,
        key: impl Into<Target>,
        durability: Durability,
        version: u64,
    ) -> Result<()> {
        self.remove_object_versioned(key.into(), durability, Some(version))
            .await
    }

    async fn remove_object_versioned(
        &self,
        key: Target,
        durability: Durability,
        version: Option<u64>,
    ) -> Result<()> {
        let old = self.manifest_to_replace(&key).await?;
        match version {
            Some(v) => self.remove_at(key.clone(), durability, v).await?,
            None => self.remove(key.clone(), durability).await?,
        }
        if let Some(old) = old {
            self.drop_upload(&key, &old, durability).await;
        }
        Ok(())
    }

    /// Removes a replaced object's chunks, then its upload record. Best effort: what a
    /// failure leaves is an orphan upload, found by `reclaim_uploads`.
    async fn drop_upload(&self, key: &Target, old: &Manifest, durability: Durability) {
        let chunks = old.chunk_crcs.len() as u32;
        self.drop_chunks_of(key, (&old.upload_id, chunks), durability)
            .await
    }

    /// Removes upload `upload_id`'s `count` chunks, then its record (best effort, as
    /// [`drop_upload`](Self::drop_upload)).
    async fn drop_chunks_of(
        &self,
        key: &Target,
        (upload_id, count): (&[u8; 16], u32),
        durability: Durability,
    ) {
        if let Err(e) = self.remove_chunks(key, upload_id, count, durability).await {
            tracing::warn!(error = %e, "removing a replaced object's chunks failed; `ringblob reclaim` removes them later");
            return;
        }
        let record = upload_target(key, upload_id);
        if let Err(e) = self.remove(record, durability).await {
            if !e.is_not_found() {
                tracing::warn!(error = %e, "removing a replaced object's upload record failed");
            }
        }
    }

    /// Removes chunks `0..count` of an upload (absent ones are fine).
    async fn remove_chunks(
        &self,
        key: &Target,
        upload_id: &[u8; 16],
        count: u32,
        durability: Durability,
    ) -> Result<()> {
        for index in 0..count {
            match self
                .remove(chunk_target(key, upload_id, index), durability)
                .await
            {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A chunk that is gone while its object was being read: the object was replaced or
/// removed meanwhile.
fn replaced(e: ClientError) -> ClientError {
    if e.is_not_found() || e.status() == Some(Status::Changed) {
        return ClientError::Status {
            status: Status::Changed,
            message: "the object was replaced or removed while it was being read; read it again"
                .into(),
        };
    }
    e
}
