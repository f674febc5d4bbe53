//! [`NamedBackend`]: a backend that keeps a [`NameIndex`] of the name records stored in it,
//! so a node can list names (`LIST`, `docs/PROTOCOL.md` §7.14). Every call is passed to the
//! wrapped backend; writes and removes that touch [`NAME_COLUMN`] also update the index.

use std::sync::Arc;
use std::time::Duration;

use ringblob_engine::{Durability, Key, Range, Stamped, WholeRead, WriteOptions};

use super::index::{NameIndex, NameIndexStats};
use super::record::{NameRecord, MAX_NAME_RECORD_LEN, NAME_COLUMN};
use super::{NameEntry, NameListing, NamePage, NameQuery, MAX_LIST_LIMIT};
use crate::error::{Error, Result};
use crate::meta::{BackendStats, DefragSummary, IterPage, IterRequest, Meta};
use crate::Backend;

/// Unreadable name records logged one by one at load (the rest are counted).
const UNREADABLE_LOGGED: u64 = 10;

/// How long a listing waits for the index of a node that has just started.
const LOAD_WAIT: Duration = Duration::from_secs(20);

/// A backend with a name index.
pub struct NamedBackend {
    inner: Arc<dyn Backend>,
    pub(super) index: Arc<NameIndex>,
}

impl NamedBackend {
    /// Wraps `inner` and starts loading the index from its name records on a thread of
    /// its own (listings wait for it; everything else is served at once).
    pub fn open(inner: Arc<dyn Backend>) -> Arc<NamedBackend> {
        let named = Arc::new(NamedBackend {
            inner,
            index: Arc::default(),
        });
        let loader = named.clone();
        let spawned = std::thread::Builder::new()
            .name("name-index".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                let result = loader.load();
                let stats = loader.index.stats();
                match &result {
                    Ok(unreadable) => tracing::info!(
                        names = stats.names,
                        namespaces = stats.namespaces,
                        unreadable,
                        ms = started.elapsed().as_millis() as u64,
                        "name index loaded"
                    ),
                    Err(e) => tracing::error!(error = %e, "loading the name index failed"),
                }
                loader
                    .index
                    .finish_loading(result.err().map(|e| e.to_string()));
            });
        if let Err(e) = spawned {
            named
                .index
                .finish_loading(Some(format!("no thread to load it: {e}")));
        }
        named
    }

    /// The index's size.
    pub fn index_stats(&self) -> NameIndexStats {
        self.index.stats()
    }

    /// Reads every name record of the backend into the index; how many could not be read.
    /// A record that cannot be read (damaged: the backend reports and counts it, and the
    /// group's repair can bring a good copy back, which indexes it) is left out of the
    /// listing rather than leaving the node with no listing at all.
    fn load(&self) -> Result<u64> {
        let mut req = IterRequest::all(crate::MAX_ITER_LIMIT);
        let mut unreadable = 0u64;
        loop {
            let page = self.inner.iterate(&req)?;
            for meta in page.entries.iter().filter(|m| m.column == NAME_COLUMN) {
                match self.record_of(&meta.key) {
                    Ok(Some(rec)) => self.index.insert(&rec.namespace, &rec.name),
                    Ok(None) => {}
                    Err(e) => {
                        unreadable += 1;
                        if unreadable <= UNREADABLE_LOGGED {
                            tracing::warn!(key = %meta.key.to_hex(), error = %e,
                                "a name record cannot be read; its name is not listed");
                        }
                    }
                }
            }
            match page.next_after {
                Some(after) => req.after = Some(after),
                None => return Ok(unreadable),
            }
        }
    }

    /// The name record of `key` with its timestamp, if it has a valid one: a record that
    /// does not decode, or names another key, is not listed (and logged once here).
    fn stamped_record_of(&self, key: &Key) -> Result<Option<(NameRecord, Stamped)>> {
        let range = Range::new(0, MAX_NAME_RECORD_LEN as u64 + 1);
        let stamped = match self.inner.read_column_stamped(key, NAME_COLUMN, range) {
            Ok(s) => s,
            Err(Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        match NameRecord::decode(&stamped.data) {
            Ok(rec) if rec.key() == *key => Ok(Some((rec, stamped))),
            Ok(_) => {
                tracing::warn!(key = %key.to_hex(), "a name record names another key; not listed");
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(key = %key.to_hex(), error = %e, "a name record is invalid; not listed");
                Ok(None)
            }
        }
    }

    fn record_of(&self, key: &Key) -> Result<Option<NameRecord>> {
        Ok(self.stamped_record_of(key)?.map(|(rec, _)| rec))
    }

    /// After a remove or drop that may have taken `key`'s name record: unindex its name
    /// (`before`, read before the call) unless the record is live again.
    fn unindex(&self, key: &Key, before: Option<NameRecord>) {
        if let Some(rec) = before {
            let live = || self.inner.lookup_column(key, NAME_COLUMN).is_ok();
            self.index.forget_unless(&rec.namespace, &rec.name, live);
        }
    }

    /// The name record a remove of `key` may take, if it has one.
    fn before_remove(&self, key: &Key) -> Option<NameRecord> {
        self.record_of(key).ok().flatten()
    }

    fn list(&self, q: &NameQuery) -> Result<NamePage> {
        let limit = q.limit.clamp(1, MAX_LIST_LIMIT);
        let mut page = NamePage::default();
        let mut after = q.after.clone();
        loop {
            let want = limit - page.entries.len() + 1;
            let found = self
                .index
                .candidates(&q.namespace, &q.prefix, after.as_deref(), want);
            let exhausted = found.len() < want;
            for (name, key) in found {
                if page.entries.len() == limit {
                    page.more = true;
                    return Ok(page);
                }
                match self.stamped_record_of(&key)? {
                    Some((rec, stamped)) if rec.namespace == q.namespace && rec.name == name => {
                        page.entries.push(NameEntry {
                            name: name.clone(),
                            key,
                            timestamp_ns: stamped.timestamp_ns,
                            record: stamped.data,
                        })
                    }
                    _ => {
                        let live = || self.inner.lookup_column(&key, NAME_COLUMN).is_ok();
                        self.index.forget_unless(&q.namespace, &name, live);
                    }
                }
                after = Some(name);
            }
            if exhausted {
                return Ok(page);
            }
        }
    }

    fn list_namespaces(&self, after: Option<&str>, limit: usize) -> Result<NamePage> {
        let limit = limit.clamp(1, MAX_LIST_LIMIT);
        let mut page = NamePage::default();
        let mut after = after.map(str::to_string);
        loop {
            let found = self
                .index
                .namespaces(after.as_deref(), limit - page.entries.len() + 1);
            let exhausted = found.len() <= limit - page.entries.len();
            for ns in found {
                if page.entries.len() == limit {
                    page.more = true;
                    return Ok(page);
                }
                // A namespace is listed if it holds at least one live name.
                let probe = NameQuery {
                    namespace: ns.clone(),
                    prefix: Vec::new(),
                    after: None,
                    limit: 1,
                };
                if !self.list(&probe)?.entries.is_empty() {
                    page.entries.push(NameEntry {
                        name: ns.clone().into_bytes(),
                        ..NameEntry::default()
                    });
                }
                after = Some(ns);
            }
            if exhausted {
                return Ok(page);
            }
        }
    }

    /// A whole write to the name column must be a valid record of its key (a copy from
    /// another node is stored whatever it holds, and indexed only if valid).
    fn check_name_write(
        key: &Key,
        value: &[u8],
        opts: &WriteOptions,
    ) -> Result<Option<NameRecord>> {
        match NameRecord::decode(value) {
            Ok(rec) if rec.key() == *key => Ok(Some(rec)),
            _ if opts.only_if_newer => Ok(None),
            Ok(_) => Err(Error::InvalidInput(
                "the name record's namespace and name do not derive its key".into(),
            )),
            Err(e) => Err(Error::InvalidInput(format!(
                "column {NAME_COLUMN} holds name records: {e}"
            ))),
        }
    }

    fn whole_writes_only(column: u16) -> Result<()> {
        if column == NAME_COLUMN {
            return Err(Error::InvalidInput(format!(
                "column {NAME_COLUMN} holds name records: write them whole"
            )));
        }
        Ok(())
    }
}

impl Backend for NamedBackend {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn write_column(
        &self,
        key: &Key,
        column: u16,
        value: &[u8],
        opts: WriteOptions,
    ) -> Result<u64> {
        if column != NAME_COLUMN {
            return self.inner.write_column(key, column, value, opts);
        }
        let rec = Self::check_name_write(key, value, &opts)?;
        let size = self.inner.write_column(key, column, value, opts)?;
        if let Some(rec) = rec {
            self.index.insert(&rec.namespace, &rec.name);
        }
        Ok(size)
    }

    fn append_column(
        &self,
        key: &Key,
        column: u16,
        bytes: &[u8],
        opts: WriteOptions,
    ) -> Result<u64> {
        Self::whole_writes_only(column)?;
        self.inner.append_column(key, column, bytes, opts)
    }

    fn write_at_column(
        &self,
        key: &Key,
        column: u16,
        offset: u64,
        bytes: &[u8],
        opts: WriteOptions,
    ) -> Result<u64> {
        Self::whole_writes_only(column)?;
        self.inner.write_at_column(key, column, offset, bytes, opts)
    }

    fn prepare_column(&self, key: &Key, column: u16, reserved: u64) -> Result<()> {
        Self::whole_writes_only(column)?;
        self.inner.prepare_column(key, column, reserved)
    }

    fn write_part_column(&self, key: &Key, column: u16, offset: u64, bytes: &[u8]) -> Result<()> {
        self.inner.write_part_column(key, column, offset, bytes)
    }

    fn commit_column(
        &self,
        key: &Key,
        column: u16,
        final_size: u64,
        opts: WriteOptions,
    ) -> Result<u64> {
        Self::whole_writes_only(column)?;
        self.inner.commit_column(key, column, final_size, opts)
    }

    fn read_column(&self, key: &Key, column: u16, range: Range) -> Result<Vec<u8>> {
        self.inner.read_column(key, column, range)
    }

    fn read_column_stamped(&self, key: &Key, column: u16, range: Range) -> Result<Stamped> {
        self.inner.read_column_stamped(key, column, range)
    }

    fn read_column_stamped_into(
        &self,
        key: &Key,
        column: u16,
        range: Range,
        out: Vec<u8>,
    ) -> Result<Stamped> {
        self.inner.read_column_stamped_into(key, column, range, out)
    }

    fn read_column_whole_in(
        &self,
        key: &Key,
        column: u16,
        buffer: Vec<u8>,
        max: u64,
    ) -> Result<Option<WholeRead>> {
        self.inner.read_column_whole_in(key, column, buffer, max)
    }

    fn reads_whole_in_place(&self) -> bool {
        self.inner.reads_whole_in_place()
    }

    fn prefetch(&self, keys: &[Key]) {
        self.inner.prefetch(keys);
    }

    fn lookup_column(&self, key: &Key, column: u16) -> Result<Meta> {
        self.inner.lookup_column(key, column)
    }

    fn known_damaged(&self, key: &Key, column: u16) -> bool {
        self.inner.known_damaged(key, column)
    }

    fn tombstone_at(&self, key: &Key, column: u16) -> Option<u64> {
        self.inner.tombstone_at(key, column)
    }

    fn remove_column(&self, key: &Key, column: u16, opts: WriteOptions) -> Result<()> {
        if column != NAME_COLUMN {
            return self.inner.remove_column(key, column, opts);
        }
        let before = self.before_remove(key);
        let done = self.inner.remove_column(key, column, opts);
        self.unindex(key, before);
        done
    }

    fn remove(&self, key: &Key, opts: WriteOptions) -> Result<()> {
        let before = self.before_remove(key);
        let done = self.inner.remove(key, opts);
        self.unindex(key, before);
        done
    }

    fn drop_copy(&self, key: &Key, column: u16, timestamp_ns: u64) -> Result<bool> {
        if column != NAME_COLUMN {
            return self.inner.drop_copy(key, column, timestamp_ns);
        }
        let before = self.before_remove(key);
        let done = self.inner.drop_copy(key, column, timestamp_ns);
        self.unindex(key, before);
        done
    }

    fn removes_in(&self, from: &Key, to: &Key) -> Result<Vec<crate::Removal>> {
        self.inner.removes_in(from, to)
    }

    fn columns(&self, key: &Key) -> Result<Vec<Meta>> {
        self.inner.columns(key)
    }

    fn iterate(&self, req: &IterRequest) -> Result<IterPage> {
        self.inner.iterate(req)
    }

    fn stats(&self) -> Result<BackendStats> {
        let mut stats = self.inner.stats()?;
        stats.name_index = Some(self.index.stats());
        Ok(stats)
    }

    fn sync(&self) -> Result<()> {
        self.inner.sync()
    }

    fn reclaim_uploads(&self, max_age: Duration) -> Result<u64> {
        self.inner.reclaim_uploads(max_age)
    }

    fn drop_uploads(&self, of: &dyn Fn(&Key) -> bool) -> Result<u64> {
        self.inner.drop_uploads(of)
    }

    fn blocking(&self) -> bool {
        self.inner.blocking()
    }

    fn serves_without_waiting(&self) -> bool {
        self.inner.serves_without_waiting()
    }

    fn default_durability(&self) -> Durability {
        self.inner.default_durability()
    }

    fn defrag(&self) -> Result<DefragSummary> {
        self.inner.defrag()
    }

    fn list_names(&self, listing: &NameListing) -> Result<NamePage> {
        self.index.wait_loaded(LOAD_WAIT)?;
        match listing {
            NameListing::Names(q) => self.list(q),
            NameListing::Namespaces { after, limit } => {
                self.list_namespaces(after.as_deref(), *limit)
            }
        }
    }
}
