//! `BlobBackend`: the ringblob engine. Blob files live directly in the data directory;
//! streaming uploads are staged in `<data dir>/uploads/`.

use std::path::Path;

use ringblob_engine::{
    Config, Durability, Engine, Key, Range, Stamped, WholeRead, WriteAt, WriteOptions,
};

use crate::error::Result;
use crate::meta::{
    BackendStats, DamageState, DefragState, DefragSummary, Location, Meta, RecordCacheState,
    ScrubState,
};
use crate::remove_log::{RemoveLog, DEFAULT_REMOVE_RETENTION, REMOVE_LOG_FILE};
use crate::staging::Staging;
use crate::store::{Store, StoreBackend};
use std::time::Duration;

/// The engine as a store.
pub struct BlobStore {
    engine: Engine,
}

/// The blob-engine backend.
pub type BlobBackend = StoreBackend<BlobStore>;

impl BlobBackend {
    /// Opens the engine in `dir` (uploads staged in `dir/uploads`), remembering removes
    /// for the default retention.
    pub fn open(dir: &Path, config: Config) -> Result<Self> {
        Self::open_with_retention(dir, config, DEFAULT_REMOVE_RETENTION)
    }

    /// Opens the engine in `dir`, remembering removes for `remove_retention`.
    pub fn open_with_retention(
        dir: &Path,
        config: Config,
        remove_retention: Duration,
    ) -> Result<Self> {
        let engine = Engine::open(dir, config)?;
        Self::on_engine(engine, dir, remove_retention)
    }

    /// The backend over an engine already open (on any device: a test's fault-injecting
    /// one, say), with uploads staged and removes remembered in `dir`.
    pub fn on_engine(engine: Engine, dir: &Path, remove_retention: Duration) -> Result<Self> {
        let staging = Staging::dir(dir.join("uploads"))?;
        let removes = RemoveLog::open(&dir.join(REMOVE_LOG_FILE), remove_retention)?;
        Ok(StoreBackend::new(BlobStore { engine }, staging, removes))
    }
}

impl BlobStore {
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

fn meta(m: ringblob_engine::Meta) -> Meta {
    Meta {
        key: m.key,
        column: m.column,
        size: m.size,
        stored_size: m.stored_size,
        timestamp_ns: m.timestamp_ns,
        checksum: m.checksum,
        location: Location::Blob {
            blob: m.blob,
            offset: m.offset,
        },
    }
}

impl Store for BlobStore {
    fn kind(&self) -> &'static str {
        "blob"
    }

    fn put(&self, key: &Key, column: u16, value: &[u8], opts: WriteOptions) -> Result<()> {
        Ok(self.engine.write_column(key, column, value, opts)?)
    }

    /// Streams into the engine one frame at a time (a committed upload is never held
    /// whole). Compression, if asked for, needs the whole value: read it, then `put`.
    fn put_from(
        &self,
        key: &Key,
        column: u16,
        len: u64,
        source: &mut dyn std::io::Read,
        opts: WriteOptions,
    ) -> Result<()> {
        let compress = opts.compress.unwrap_or(self.engine.default_compress());
        if compress {
            let value = crate::store::read_exactly(source, len)?;
            return self.put(key, column, &value, opts);
        }
        Ok(self.engine.write_stream(key, column, len, source, opts)?)
    }

    /// The engine writes only the frames that change when it can (a patch record).
    fn write_into(
        &self,
        key: &Key,
        column: u16,
        at: WriteAt,
        bytes: &[u8],
        opts: WriteOptions,
    ) -> Result<u64> {
        Ok(self.engine.write_into(key, column, at, bytes, opts)?)
    }

    fn get(&self, key: &Key, column: u16, range: Range) -> Result<Vec<u8>> {
        Ok(self.engine.read_column(key, column, range)?)
    }

    fn get_stamped(&self, key: &Key, column: u16, range: Range) -> Result<Stamped> {
        Ok(self.engine.read_stamped(key, column, range)?)
    }

    fn get_stamped_into(
        &self,
        key: &Key,
        column: u16,
        range: Range,
        out: Vec<u8>,
    ) -> Result<Stamped> {
        Ok(self.engine.read_stamped_into(key, column, range, out)?)
    }

    fn get_whole_in(
        &self,
        key: &Key,
        column: u16,
        buffer: Vec<u8>,
        max: u64,
    ) -> Result<Option<WholeRead>> {
        Ok(self.engine.read_whole_in(key, column, buffer, max)?)
    }

    fn whole_in_place(&self) -> bool {
        true
    }

    fn prefetch(&self, keys: &[Key]) {
        self.engine.prefetch(keys.iter());
    }

    fn meta(&self, key: &Key, column: u16) -> Result<Meta> {
        Ok(meta(self.engine.lookup_column(key, column)?))
    }

    fn known_damaged(&self, key: &Key, column: u16) -> bool {
        self.engine.known_damaged(key, column)
    }

    fn tombstone_at(&self, key: &Key, column: u16) -> Option<u64> {
        self.engine.tombstone_at(key, column).ok().flatten()
    }

    fn delete(&self, key: &Key, column: u16, opts: WriteOptions) -> Result<()> {
        let durability = opts
            .durability
            .unwrap_or_else(|| self.engine.default_durability());
        let removed = match opts.timestamp_ns {
            Some(ts) => self.engine.remove_column_at(key, column, ts, durability),
            None => self.engine.remove_column(key, column, durability),
        };
        Ok(removed?)
    }

    fn delete_all(&self, key: &Key, opts: WriteOptions) -> Result<()> {
        match opts.durability {
            Some(d) => Ok(self.engine.remove_with(key, d)?),
            None => Ok(self.engine.remove(key)?),
        }
    }

    fn columns(&self, key: &Key) -> Result<Vec<Meta>> {
        Ok(self.engine.columns(key)?.into_iter().map(meta).collect())
    }

    fn scan(&self, from: &Key, to: &Key) -> Result<Vec<Meta>> {
        let mut out = Vec::new();
        for m in self.engine.iterate_range(*from, *to) {
            out.push(meta(m?));
        }
        Ok(out)
    }

    fn stats(&self) -> Result<BackendStats> {
        let s = self.engine.stats();
        Ok(BackendStats {
            kind: "blob".into(),
            keys: s.keys,
            bytes_on_disk: s.bytes_on_disk,
            live_bytes: s.live_bytes,
            garbage_bytes: s.garbage_bytes,
            index_bytes: Some(s.index_bytes),
            blobs: Some(s.blobs),
            syncs: Some(s.syncs),
            read_only: s.poisoned,
            reclaimable_bytes: Some(s.reclaimable_bytes),
            disk_free_bytes: s.disk_free_bytes,
            defrag: Some(DefragState {
                running: s.defrag.running,
                runs: s.defrag.runs,
                blobs_rewritten: s.defrag.blobs_rewritten,
                bytes_reclaimed: s.defrag.bytes_reclaimed,
                last_error: s.defrag.last_error,
            }),
            damage: Some(DamageState {
                records: s.damage.records,
                unknown_regions: s.damage.unknown_regions,
                tail_bytes_cut: s.damage.tail_bytes_cut,
                bytes_lost: s.damage.bytes_lost,
                blobs: s.damage.blobs.clone(),
                records_known: s.damaged_records_known,
                records_known_by_blob: s.damaged_by_blob.clone(),
                checksum_failures: s.checksum_failures,
                scrub: ScrubState {
                    running: s.scrub.running,
                    passes: s.scrub.passes,
                    blob: s.scrub.blob,
                    blobs_checked: s.scrub.blobs_checked,
                    records_checked: s.scrub.records_checked,
                    bytes_checked: s.scrub.bytes_checked,
                    damaged_found: s.scrub.damaged_found,
                    last_pass_secs: s.scrub.last_pass_secs,
                },
            }),
            writes_refused_no_space: Some(s.writes_refused_disk_full),
            record_cache: Some(RecordCacheState {
                hits: s.record_cache.hits,
                misses: s.record_cache.misses,
                passing_shards: s.record_cache.passing_shards,
                entries: s.record_cache.entries,
                bytes: s.record_cache.bytes,
                capacity_bytes: s.record_cache.capacity,
            }),
            ..BackendStats::default()
        })
    }

    fn sync(&self) -> Result<()> {
        Ok(self.engine.sync()?)
    }

    fn default_durability(&self) -> Durability {
        self.engine.default_durability()
    }

    fn serves_without_waiting(&self) -> bool {
        self.engine.serves_without_waiting()
    }

    fn defrag(&self) -> Result<DefragSummary> {
        let r = self.engine.defrag()?;
        Ok(DefragSummary {
            blobs_rewritten: r.blobs_rewritten,
            blobs_skipped_damaged: r.blobs_skipped_damaged,
            records_copied: r.records_copied,
            bytes_copied: r.bytes_copied,
            tombstones_kept: r.tombstones_kept,
            tombstones_dropped: r.tombstones_dropped,
            bytes_reclaimed: r.bytes_reclaimed,
            seconds: r.seconds,
            note: r.note,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Backend, Error};

    /// A remove stays known through the blob's own tombstone when the remove log lost it
    /// (damaged, or gone): the node still answers `REMOVED` at its version.
    #[test]
    fn a_remove_is_known_from_its_tombstone_without_the_remove_log() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::Internal(e.to_string()))?;
        let key = Key([3; 32]);
        let removed_at = {
            let b = BlobBackend::open(dir.path(), Config::default())?;
            b.write(&key, b"value", WriteOptions::default())?;
            assert_eq!(b.tombstone_at(&key, 0), None, "a value, not a tombstone");
            b.remove(&key, WriteOptions::default())?;
            let at = b.tombstone_at(&key, 0);
            assert!(at.is_some());
            assert!(!b.removes_in(&key, &key)?.is_empty());
            b.sync()?;
            at
        };
        std::fs::remove_file(dir.path().join(REMOVE_LOG_FILE))
            .map_err(|e| Error::Internal(e.to_string()))?;
        let b = BlobBackend::open(dir.path(), Config::default())?;
        assert!(b.removes_in(&key, &key)?.is_empty(), "the log is gone");
        assert_eq!(b.tombstone_at(&key, 0), removed_at);
        assert_eq!(b.tombstone_at(&Key([4; 32]), 0), None, "never written");
        Ok(())
    }
}
