//! Sealed blobs' sorted indexes in memory: each blob's header, bloom filter and page fences,
//! lookups that read at most one 4 KiB page, and the engine-wide filter over every sealed key
//! that lets a miss skip the per-blob filters altogether.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::blob::sorted_name;
use crate::error::{Error, Result};
use crate::format::bloom::{Bloom, KeyHash};
use crate::format::index_file::IndexEntry;
use crate::format::sorted_index::{
    decode_page, find_in_page, SortKey, SortedHeader, SortedTail, Superseded, PAGE_LEN,
    SORTED_HEADER_LEN,
};
use crate::io::{Device, DeviceFile, OpenMode};
use crate::key::Key;

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
    header: SortedHeader,
    tail: SortedTail,
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
        let tail = SortedTail::decode(&header, &tail, &name)?;
        let map = match file.map_immutable() {
            Ok(Some(m)) if m.len() as u64 == len => Some(m),
            _ => None,
        };
        Ok(Some(SealedBlob {
            id,
            name,
            file,
            map,
            header,
            tail,
        }))
    }

    pub fn header(&self) -> &SortedHeader {
        &self.header
    }

    pub fn superseded(&self) -> &[Superseded] {
        &self.tail.superseded
    }

    /// Heap bytes kept in memory for this blob (filter and fences).
    pub fn heap_bytes(&self) -> usize {
        self.tail.bloom.heap_bytes()
            + self.tail.fences.capacity() * std::mem::size_of::<SortKey>()
            + self.tail.superseded.capacity() * std::mem::size_of::<Superseded>()
    }

    /// Reads and checks page `i`.
    fn page(&self, i: u32) -> Result<Vec<IndexEntry>> {
        self.with_page(i, |page| {
            decode_page(&self.header, &self.tail.fences, i, page, &self.name)
        })
    }

    /// Runs `f` on page `i`'s bytes: from the map, or read into this thread's page buffer.
    fn with_page<T>(&self, i: u32, f: impl FnOnce(&[u8]) -> Result<T>) -> Result<T> {
        let at = SORTED_HEADER_LEN + i as usize * PAGE_LEN;
        let mapped = self.map.as_ref().filter(|_| !crate::io::nowait::active());
        if let Some(page) = mapped.and_then(|m| m.get(at..at + PAGE_LEN)) {
            return f(page);
        }
        PAGE_BUF.with(|cell| {
            let mut buf = cell.borrow_mut();
            buf.resize(PAGE_LEN, 0);
            read_at(self.file.as_ref(), &self.name, &mut buf, at as u64)?;
            f(&buf)
        })
    }

    fn may_hold(&self, key: &Key) -> bool {
        let bloom = &self.tail.bloom;
        bloom.may_contain(KeyHash::of(key, bloom.seed()))
    }

    /// This blob's entry for (key, column): bloom filter, then one page.
    pub fn get(&self, key: &Key, column: u16) -> Result<Option<IndexEntry>> {
        if !self.may_hold(key) {
            return Ok(None);
        }
        let want = (*key, column);
        let p = self.tail.fences.partition_point(|f| *f <= want);
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
        if !self.may_hold(key) {
            return Ok(out);
        }
        let fences = &self.tail.fences;
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
        let fences = &self.tail.fences;
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

/// The filter over every sealed key, and how far it has drifted from the keys it was sized for.
struct GlobalFilter {
    bloom: Bloom,
    capacity: u64,
    inserted: u64,
    /// Keys inserted for blobs that are gone.
    stale: u64,
}

/// Every sealed blob with a sorted index, newest last.
#[derive(Default)]
pub struct SealedSet {
    blobs: BTreeMap<u32, Arc<SealedBlob>>,
    /// `None` until built: lookups then ask every blob's own filter.
    global: Option<GlobalFilter>,
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

    fn filter_says_absent(&self, key: &Key) -> bool {
        self.global
            .as_ref()
            .is_some_and(|g| !g.bloom.may_contain(KeyHash::of(key, g.bloom.seed())))
    }

    /// Whether some sealed blob may hold `key` (false: none does; true: look).
    pub fn may_hold(&self, key: &Key) -> bool {
        !self.blobs.is_empty() && !self.filter_says_absent(key)
    }

    /// The newest entry of (key, column) among blobs older than `below`.
    pub fn find(&self, key: &Key, column: u16, below: u32) -> Result<Option<SealedHit>> {
        if self.filter_says_absent(key) {
            return Ok(None);
        }
        for b in self.blobs.range(..below).rev().map(|(_, b)| b) {
            if let Some(e) = b.get(key, column)? {
                return Ok(Some((b.id, e)));
            }
        }
        Ok(None)
    }

    /// The newest entry of every column of `key` among blobs older than `below`.
    pub fn key_entries(&self, key: &Key, below: u32) -> Result<Vec<SealedHit>> {
        let mut newest: BTreeMap<u16, SealedHit> = BTreeMap::new();
        if self.filter_says_absent(key) {
            return Ok(Vec::new());
        }
        for b in self.blobs.range(..below).rev().map(|(_, b)| b) {
            for e in b.key_entries(key)? {
                newest.entry(e.column).or_insert((b.id, e));
            }
        }
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

    /// Adds a blob whose keys are `keys` (they go into the global filter, if there is one).
    pub fn add<'a>(&mut self, blob: SealedBlob, keys: impl Iterator<Item = &'a Key>) {
        if let Some(g) = &mut self.global {
            for k in keys {
                g.bloom.insert(KeyHash::of(k, g.bloom.seed()));
                g.inserted += 1;
            }
        }
        self.blobs.insert(blob.id, Arc::new(blob));
        self.bump();
    }

    /// Drops a retired blob.
    pub fn remove(&mut self, id: u32) {
        if let Some(b) = self.blobs.remove(&id) {
            if let Some(g) = &mut self.global {
                g.stale += b.header.entry_count;
            }
        }
        self.bump();
    }

    /// Whether the global filter is missing, overfull or mostly stale.
    pub fn filter_needs_rebuild(&self) -> bool {
        match &self.global {
            None => !self.blobs.is_empty(),
            Some(g) => g.inserted > g.capacity || g.stale * 2 > g.inserted.max(1),
        }
    }

    /// Installs a filter built by [`build_filter`] over exactly the blobs still in the set.
    pub fn install_filter(&mut self, built: BuiltFilter) {
        let gone: u64 = built
            .blobs
            .iter()
            .filter(|(id, _)| !self.blobs.contains_key(id))
            .map(|(_, n)| n)
            .sum();
        let missing = self
            .blobs
            .keys()
            .any(|id| !built.blobs.iter().any(|(b, _)| b == id));
        if missing {
            // A blob joined meanwhile (callers hold the seal lock, so this is a bug): the
            // filter would miss its keys. Keep asking every blob instead.
            tracing::error!("global filter built over a stale set of blobs; not installed");
            return;
        }
        let inserted: u64 = built.blobs.iter().map(|(_, n)| n).sum();
        self.global = Some(GlobalFilter {
            bloom: built.bloom,
            capacity: built.capacity,
            inserted,
            stale: gone,
        });
    }

    /// Heap bytes of every sealed blob's filter and fences and of the global filter.
    pub fn heap_bytes(&self) -> usize {
        let own: usize = self.blobs.values().map(|b| b.heap_bytes()).sum();
        own + self.global.as_ref().map_or(0, |g| g.bloom.heap_bytes())
    }
}

/// A global filter and the blobs (with their entry counts) it covers.
pub struct BuiltFilter {
    bloom: Bloom,
    capacity: u64,
    blobs: Vec<(u32, u64)>,
}

/// Builds a global filter blob by blob, reading (and so checking) every page.
pub struct FilterBuilder {
    built: BuiltFilter,
}

impl FilterBuilder {
    /// A builder for about `keys` keys, sized with room for half as many again.
    pub fn new(keys: u64) -> Self {
        let capacity = (keys + keys / 2).max(1 << 16);
        FilterBuilder {
            built: BuiltFilter {
                bloom: Bloom::for_keys(capacity),
                capacity,
                blobs: Vec::new(),
            },
        }
    }

    /// Reads every page of `b` and adds its keys. On error nothing of `b` counts as added,
    /// but some of its keys may be in the filter (harmless: a filter may say "maybe").
    pub fn add(&mut self, b: &SealedBlob) -> Result<()> {
        let bloom = &mut self.built.bloom;
        for i in 0..b.header.page_count {
            for e in b.page(i)? {
                bloom.insert(KeyHash::of(&e.key, bloom.seed()));
            }
        }
        self.built.blobs.push((b.id, b.header.entry_count));
        Ok(())
    }

    pub fn finish(self) -> BuiltFilter {
        self.built
    }
}

/// Builds a global filter over `blobs`.
pub fn build_filter(blobs: &[Arc<SealedBlob>]) -> Result<BuiltFilter> {
    let total: u64 = blobs.iter().map(|b| b.header.entry_count).sum();
    let mut builder = FilterBuilder::new(total);
    for b in blobs {
        builder.add(b)?;
    }
    Ok(builder.finish())
}
