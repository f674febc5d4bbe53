//! Sealed blobs' sorted indexes in memory: each blob's header and page fences, lookups that
//! read one 4 KiB page per blob asked, and the locator over every sealed key that says which
//! blobs to ask (`locator.rs`). The per-blob bloom filters stay on disk (FORMAT.md §15) and
//! are not loaded: the locator answers for every blob at once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::blob::sorted_name;
use crate::error::{Error, Result};
use crate::format::index_file::IndexEntry;
use crate::format::sorted_index::{
    decode_page, find_in_page, SortKey, SortedHeader, SortedTail, Superseded, PAGE_LEN,
    SORTED_HEADER_LEN,
};
use crate::io::{Device, DeviceFile, OpenMode};
use crate::key::Key;
use crate::locator::{BlobIds, Locator};

/// Largest sorted index file accepted: an entry per 88-byte record of a 4 GiB blob, and more.
const MAX_SORTED_FILE: u64 = 4 << 30;

thread_local! {
    static PAGE_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One sealed blob's sorted index, opened.
pub struct SealedBlob {
    pub id: u32,
    name: String,
    file: Arc<dyn DeviceFile>,
    /// The file mapped, where the device maps files: a page is then read from memory, not
    /// with a `pread` (except in no-wait mode, where a page fault could wait for the disk).
    map: Option<memmap2::Mmap>,
    /// Set once a page of the map could not be read (`io::sigbus`): the map holds a zero
    /// page there, so pages are read with `pread` from then on.
    map_failed: AtomicBool,
    header: SortedHeader,
    /// The first (key, column) of every page.
    fences: Vec<SortKey>,
    superseded: Vec<Superseded>,
}

impl SealedBlob {
    /// Opens `data-<id>.sorted` and checks its header and tail against a blob of `blob_len`
    /// bytes. `Ok(None)` when there is no such file; `Err` when it is damaged or stale.
    pub fn open(device: &dyn Device, id: u32, blob_len: u64) -> Result<Option<SealedBlob>> {
        let name = sorted_name(id);
        let file = match device.open(&name, OpenMode::ReadOnly) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("open", name, e)),
        };
        let len = file.len().map_err(|e| Error::io("stat", name.clone(), e))?;
        if len > MAX_SORTED_FILE || len < SORTED_HEADER_LEN as u64 {
            return Err(stale(
                &name,
                format!("{len} bytes is not a sorted index size"),
            ));
        }
        let mut head = vec![0u8; SORTED_HEADER_LEN];
        read_at(file.as_ref(), &name, &mut head, 0)?;
        let header = SortedHeader::decode(&head, len, &name)?;
        if header.blob_id != id || header.covered_len != blob_len {
            let why = format!(
                "describes blob {} of {} bytes, not blob {id} of {blob_len}",
                header.blob_id, header.covered_len
            );
            return Err(stale(&name, why));
        }
        let mut tail = vec![0u8; header.tail_len() as usize];
        read_at(file.as_ref(), &name, &mut tail, header.tail_offset())?;
        // The tail's bloom filter is checked and dropped: the locator replaces it.
        let SortedTail {
            fences, superseded, ..
        } = SortedTail::decode(&header, &tail, &name)?;
        let map = match file.map_immutable() {
            Ok(Some(m)) if m.len() as u64 == len => Some(m),
            _ => None,
        };
        Ok(Some(SealedBlob {
            id,
            name,
            file,
            map,
            map_failed: AtomicBool::new(false),
            header,
            fences,
            superseded,
        }))
    }

    pub fn header(&self) -> &SortedHeader {
        &self.header
    }

    pub fn superseded(&self) -> &[Superseded] {
        &self.superseded
    }

    /// Heap bytes kept in memory for this blob (fences and superseded counts).
    pub fn heap_bytes(&self) -> usize {
        self.fences.capacity() * std::mem::size_of::<SortKey>()
            + self.superseded.capacity() * std::mem::size_of::<Superseded>()
    }

    /// Reads and checks page `i`.
    fn page(&self, i: u32) -> Result<Vec<IndexEntry>> {
        self.with_page(i, |page| {
            decode_page(&self.header, &self.fences, i, page, &self.name)
        })
    }

    /// Runs `f` on page `i`'s bytes: from the map, or read into this thread's page buffer.
    /// A mapped page the kernel cannot fill (a read error on the disk, the file cut short) is
    /// the `EIO` a `pread` of it would have been.
    fn with_page<T>(&self, i: u32, f: impl FnOnce(&[u8]) -> Result<T>) -> Result<T> {
        let at = SORTED_HEADER_LEN + i as usize * PAGE_LEN;
        let usable = !crate::io::nowait::active() && !self.map_failed.load(Ordering::Relaxed);
        let mapped = self.map.as_ref().filter(|_| usable);
        if let Some(page) = mapped.and_then(|m| m.get(at..at + PAGE_LEN)) {
            return crate::io::sigbus::guarded(page, || f(page)).unwrap_or_else(|e| {
                self.map_failed.store(true, Ordering::Relaxed);
                Err(Error::io("read", self.name.clone(), e))
            });
        }
        PAGE_BUF.with(|cell| {
            let mut buf = cell.borrow_mut();
            buf.resize(PAGE_LEN, 0);
            read_at(self.file.as_ref(), &self.name, &mut buf, at as u64)?;
            f(&buf)
        })
    }

    /// This blob's entry for (key, column): the page its fences point at.
    pub fn get(&self, key: &Key, column: u16) -> Result<Option<IndexEntry>> {
        let want = (*key, column);
        let p = self.fences.partition_point(|f| *f <= want);
        if p == 0 {
            return Ok(None);
        }
        let i = p as u32 - 1;
        self.with_page(i, |page| {
            find_in_page(&self.header, i, page, &want, &self.name)
        })
    }

    /// This blob's entries of every column of `key`.
    pub fn key_entries(&self, key: &Key) -> Result<Vec<IndexEntry>> {
        let mut out = Vec::new();
        let fences = &self.fences;
        let first = fences.partition_point(|f| f.0 < *key).saturating_sub(1);
        for (i, fence) in fences.iter().enumerate().skip(first) {
            if fence.0 > *key {
                break;
            }
            let page = self.page(i as u32)?;
            out.extend(page.iter().filter(|e| e.key == *key));
            if page.last().is_some_and(|e| e.key > *key) {
                break;
            }
        }
        Ok(out)
    }

    /// The entries of keys in `from..=to`, in key order, reading only the pages whose keys
    /// can fall in the range (by the fences).
    pub fn entries_in(&self, from: &Key, to: &Key) -> Result<Vec<IndexEntry>> {
        let fences = &self.fences;
        let first = fences.partition_point(|f| f.0 < *from).saturating_sub(1);
        let mut out = Vec::new();
        for (i, fence) in fences.iter().enumerate().skip(first) {
            if fence.0 > *to {
                break;
            }
            let page = self.page(i as u32)?;
            out.extend(page.into_iter().filter(|e| e.key >= *from && e.key <= *to));
        }
        Ok(out)
    }

    /// Every entry, in key order.
    pub fn entries(&self) -> Result<Vec<IndexEntry>> {
        let mut out = Vec::with_capacity(self.header.entry_count as usize);
        for i in 0..self.header.page_count {
            out.extend(self.page(i)?);
        }
        Ok(out)
    }
}

fn read_at(file: &dyn DeviceFile, name: &str, buf: &mut [u8], at: u64) -> Result<()> {
    file.read_exact_at(buf, at)
        .map_err(|e| Error::io("read", name.to_string(), e))
}

fn stale(name: &str, reason: String) -> Error {
    Error::Corrupt {
        what: "sorted index",
        file: name.to_string(),
        offset: 0,
        reason,
    }
}

/// Blob ids that may hold `key` and are older than `below`, newest first.
fn candidates(locator: &Locator, key: &Key, below: u32) -> BlobIds {
    let mut ids = locator.candidates(key);
    ids.retain(|id| *id < below);
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.dedup();
    ids
}

/// Records `keys` (in any order, repeats allowed) as blob `id`'s.
fn add_keys<'a>(locator: &mut Locator, id: u32, keys: impl Iterator<Item = &'a Key>) {
    locator.add_blob(id);
    let mut keys: Vec<&Key> = keys.collect();
    keys.sort_unstable();
    keys.dedup();
    locator.reserve(keys.len() as u64);
    locator.insert_keys(id, keys.into_iter());
}

/// Every sealed blob with a sorted index, newest last.
#[derive(Default)]
pub struct SealedSet {
    blobs: BTreeMap<u32, Arc<SealedBlob>>,
    /// `None` until built: lookups then read a page of every blob.
    located: Option<Locator>,
    /// Bumped whenever the set changes, so a lookup that raced a change can tell.
    generation: Arc<AtomicU64>,
}

/// A sealed blob's entry, with the blob it belongs to.
pub type SealedHit = (u32, IndexEntry);

impl SealedSet {
    pub fn generation_counter(&self) -> Arc<AtomicU64> {
        self.generation.clone()
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Runs `ask` on the blobs that may hold `key` among those older than `below`, newest
    /// first, until it returns `Some`: the locator's candidates, or every blob when there is
    /// no locator.
    fn ask<T>(
        &self,
        key: &Key,
        below: u32,
        mut ask: impl FnMut(&SealedBlob) -> Result<Option<T>>,
    ) -> Result<Option<T>> {
        if let Some(l) = &self.located {
            for id in candidates(l, key, below) {
                let Some(b) = self.blobs.get(&id) else {
                    continue;
                };
                if let Some(found) = ask(b)? {
                    return Ok(Some(found));
                }
            }
            return Ok(None);
        }
        for b in self.blobs.range(..below).rev().map(|(_, b)| b) {
            if let Some(found) = ask(b)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Whether some sealed blob may hold `key` (false: none does; true: look).
    pub fn may_hold(&self, key: &Key) -> bool {
        !self.blobs.is_empty() && self.located.as_ref().is_none_or(|l| l.may_hold(key))
    }

    /// The newest entry of (key, column) among blobs older than `below`.
    pub fn find(&self, key: &Key, column: u16, below: u32) -> Result<Option<SealedHit>> {
        self.ask(key, below, |b| Ok(b.get(key, column)?.map(|e| (b.id, e))))
    }

    /// The newest entry of every column of `key` among blobs older than `below`.
    pub fn key_entries(&self, key: &Key, below: u32) -> Result<Vec<SealedHit>> {
        let mut newest: BTreeMap<u16, SealedHit> = BTreeMap::new();
        self.ask(key, below, |b| {
            for e in b.key_entries(key)? {
                newest.entry(e.column).or_insert((b.id, e));
            }
            Ok(None::<()>)
        })?;
        Ok(newest.into_values().collect())
    }

    /// Keys whose newest sealed record is a value: every blob's value entries less the values
    /// newer blobs superseded (in blobs still present).
    pub fn live_values(&self) -> u64 {
        let values: u64 = self.blobs.values().map(|b| b.header.value_entries).sum();
        let superseded: u64 = self
            .blobs
            .values()
            .flat_map(|b| b.superseded())
            .filter(|s| self.blobs.contains_key(&s.blob))
            .map(|s| s.values)
            .sum();
        values.saturating_sub(superseded)
    }

    pub fn blob(&self, id: u32) -> Option<Arc<SealedBlob>> {
        self.blobs.get(&id).cloned()
    }

    pub fn blobs(&self) -> Vec<Arc<SealedBlob>> {
        self.blobs.values().cloned().collect()
    }

    /// Whether there is no sealed blob.
    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// Adds a blob whose keys are `keys` (they go into the locator, if there is one).
    pub fn add<'a>(&mut self, blob: SealedBlob, keys: impl Iterator<Item = &'a Key>) {
        let (id, entries) = (blob.id, blob.header.entry_count);
        if let Some(l) = &mut self.located {
            let mut keys = keys.peekable();
            if entries > 0 && keys.peek().is_none() {
                // A locator without this blob's keys would miss them: ask every blob until
                // one is built over all of them.
                tracing::error!(
                    blob = id,
                    "sealed blob added without its keys; dropping the locator"
                );
                self.located = None;
            } else {
                add_keys(l, id, keys);
            }
        }
        self.blobs.insert(id, Arc::new(blob));
        self.bump();
    }

    /// Drops a retired blob.
    pub fn remove(&mut self, id: u32) {
        if self.blobs.remove(&id).is_some() {
            if let Some(l) = &mut self.located {
                l.retire(id);
            }
        }
        self.bump();
    }

    /// Whether the locator is missing or should be rebuilt (`Locator::needs_rebuild`).
    pub fn locator_needs_rebuild(&self) -> bool {
        match &self.located {
            None => !self.blobs.is_empty(),
            Some(l) => l.needs_rebuild(),
        }
    }

    /// Installs a locator built by [`build_locator`] over exactly the blobs still in the set.
    pub fn install_locator(&mut self, built: BuiltLocator) {
        let mut located = built.located;
        let missing = self.blobs.keys().any(|id| !located.covers(*id));
        if missing {
            // A blob joined meanwhile (callers hold the seal lock, so this is a bug): the
            // locator would miss its keys. Keep the one there is.
            tracing::error!("key locator built over a stale set of blobs; not installed");
            return;
        }
        let gone: Vec<u32> = located
            .blob_ids()
            .filter(|id| !self.blobs.contains_key(id))
            .collect();
        for id in gone {
            located.retire(id);
        }
        self.located = Some(located);
    }

    /// Heap bytes of every sealed blob's fences and of the locator.
    pub fn heap_bytes(&self) -> usize {
        let own: usize = self.blobs.values().map(|b| b.heap_bytes()).sum();
        own + self.located.as_ref().map_or(0, Locator::heap_bytes)
    }
}

/// A locator and the blobs it covers.
pub struct BuiltLocator {
    located: Locator,
}

/// Builds a locator blob by blob, reading (and so checking) every page.
pub struct LocatorBuilder {
    built: BuiltLocator,
}

impl LocatorBuilder {
    /// A builder for about `entries` index entries.
    pub fn new(entries: u64) -> Self {
        LocatorBuilder {
            built: BuiltLocator {
                located: Locator::for_entries(entries),
            },
        }
    }

    /// Reads every page of `b` and adds its keys. On error nothing of `b` counts as added
    /// (the keys added so far are retired with it).
    pub fn add(&mut self, b: &SealedBlob) -> Result<()> {
        let located = &mut self.built.located;
        located.add_blob(b.id);
        located.reserve(b.header.entry_count);
        let mut last = None;
        for i in 0..b.header.page_count {
            let page = match b.page(i) {
                Ok(page) => page,
                Err(e) => {
                    located.retire(b.id);
                    return Err(e);
                }
            };
            // Pages are in (key, column) order: a key's columns are adjacent.
            let mut keys: Vec<&Key> = page.iter().map(|e| &e.key).collect();
            keys.dedup();
            let from = usize::from(keys.first().copied() == last.as_ref());
            located.insert_keys(b.id, keys[from.min(keys.len())..].iter().copied());
            if let Some(k) = keys.last() {
                last = Some(**k);
            }
        }
        Ok(())
    }

    pub fn finish(self) -> BuiltLocator {
        self.built
    }
}

/// Builds a locator over `blobs`, with room for an eighth as many keys again.
pub fn build_locator(blobs: &[Arc<SealedBlob>]) -> Result<BuiltLocator> {
    let total: u64 = blobs.iter().map(|b| b.header.entry_count).sum();
    let mut builder = LocatorBuilder::new(total + total / 8);
    for b in blobs {
        builder.add(b)?;
    }
    Ok(builder.finish())
}
