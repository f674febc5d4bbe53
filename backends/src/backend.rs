//! The `Backend` trait the node calls. Every value lives in one column of a key; column 0 is
//! "the value", and the methods without `_column` act on it.

use ringblob_engine::{Durability, Key, Range, Stamped, WholeRead, WriteOptions};

use crate::error::Result;
use crate::meta::{BackendStats, DefragSummary, IterPage, IterRequest, Meta};

/// Everything a node can ask of its storage. Calls are synchronous and may block on disk:
/// call them from async code through [`crate::AsyncBackend`].
pub trait Backend: Send + Sync {
    /// "blob", "fs" or "mem".
    fn kind(&self) -> &'static str;
    /// Stores a whole value in `column` of `key`; returns its size.
    fn write_column(&self, key: &Key, column: u16, value: &[u8], opts: WriteOptions)
        -> Result<u64>;
    /// Appends to a column's value (creating it); returns the new size.
    fn append_column(
        &self,
        key: &Key,
        column: u16,
        bytes: &[u8],
        opts: WriteOptions,
    ) -> Result<u64>;
    /// Writes `bytes` at `offset` inside a column's value, growing it (zero-filled) if
    /// needed; returns the new size.
    fn write_at_column(
        &self,
        key: &Key,
        column: u16,
        offset: u64,
        bytes: &[u8],
        opts: WriteOptions,
    ) -> Result<u64>;
    /// Starts (or resumes) a streaming upload into `column` of up to `reserved` bytes.
    /// Uploads are invisible to reads until committed.
    fn prepare_column(&self, key: &Key, column: u16, reserved: u64) -> Result<()>;
    /// Writes one part of an upload.
    fn write_part_column(&self, key: &Key, column: u16, offset: u64, bytes: &[u8]) -> Result<()>;
    /// Makes the first `final_size` bytes of the upload the column's value.
    fn commit_column(
        &self,
        key: &Key,
        column: u16,
        final_size: u64,
        opts: WriteOptions,
    ) -> Result<u64>;
    /// Reads `range` of one column; a column with no value is `NotFound`.
    fn read_column(&self, key: &Key, column: u16, range: Range) -> Result<Vec<u8>>;
    /// Reads `range` of one column with the version read (see [`Stamped`]): the pieces of a
    /// long reply are checked to come from one record.
    fn read_column_stamped(&self, key: &Key, column: u16, range: Range) -> Result<Stamped> {
        crate::store::stamped_by_lookups(
            key,
            column,
            range,
            |r| self.read_column(key, column, r),
            || self.lookup_column(key, column),
        )
    }
    /// [`read_column_stamped`](Self::read_column_stamped) with the bytes built in `out`
    /// where the backend can (its memory reused: a caller reading large pieces over and
    /// over keeps them warm); by default `out` is let go.
    fn read_column_stamped_into(
        &self,
        key: &Key,
        column: u16,
        range: Range,
        out: Vec<u8>,
    ) -> Result<Stamped> {
        drop(out);
        self.read_column_stamped(key, column, range)
    }
    /// The whole value of (key, column) if at most `max` bytes: `read.buffer[read.at]`,
    /// left in `buffer` (its memory reused) where the backend reads it there without a
    /// copy. `None`: not read here (longer than `max`, or a record the backend does not read
    /// whole; read it as a range). By default read as a stamped range, `buffer` let go.
    fn read_column_whole_in(
        &self,
        key: &Key,
        column: u16,
        buffer: Vec<u8>,
        max: u64,
    ) -> Result<Option<WholeRead>> {
        drop(buffer);
        let s = self.read_column_stamped(key, column, Range::new(0, max))?;
        Ok(crate::store::whole_within(s, max))
    }
    /// Whether [`read_column_whole_in`](Self::read_column_whole_in) reads a value in place
    /// (its record read whole into the buffer given: no copy of the value) rather than as a
    /// range; a caller that would read the range itself otherwise does, not both.
    fn reads_whole_in_place(&self) -> bool {
        false
    }
    /// A hint that `keys` are read or written next (a batch of requests gives it before
    /// serving them): the backend may start loading what their lookups touch, so their
    /// cache misses overlap. Changes nothing and waits for nothing; by default ignored.
    fn prefetch(&self, _keys: &[Key]) {}
    /// Describes one column; a column with no value is `NotFound`.
    fn lookup_column(&self, key: &Key, column: u16) -> Result<Meta>;
    /// Whether the stored record of (key, column) is known to be damaged: it fails its
    /// checks when read, and a copy from another group replaces it (never served). A
    /// backend that keeps no such knowledge: never.
    fn known_damaged(&self, _key: &Key, _column: u16) -> bool {
        false
    }
    /// The version of a remove of (key, column) the stored data itself still shows (the
    /// blob backend's tombstone, until defragmentation drops it), beside the remove log:
    /// a remove stays known if the log is damaged. Backends without tombstones: none.
    fn tombstone_at(&self, _key: &Key, _column: u16) -> Option<u64> {
        None
    }
    /// Removes one column of a key; a column with no value is `NotFound`. With
    /// `opts.only_if_newer` it is a copy of a remove made elsewhere at `opts.timestamp_ns`:
    /// applied only over an older record (`NotNewer` otherwise) and remembered even if the
    /// column had no value.
    fn remove_column(&self, key: &Key, column: u16, opts: WriteOptions) -> Result<()>;
    /// Removes a key: every column of it. A key with no column is `NotFound`.
    fn remove(&self, key: &Key, opts: WriteOptions) -> Result<()>;
    /// Forgets this node's copy of (key, column) if its newest record is still the one
    /// written at `timestamp_ns` (a hand-over moved it to its new owner). Not a remove:
    /// nothing is remembered, and a copy of that same record can land here again later
    /// (the blob backend hides the value with a tombstone one nanosecond older than it).
    /// True if it was dropped; false if the record changed meanwhile or is gone.
    fn drop_copy(&self, key: &Key, column: u16, timestamp_ns: u64) -> Result<bool>;
    /// Removes of keys in `from..=to` that the backend remembers (its remove log), in
    /// (key, column) order.
    fn removes_in(&self, from: &Key, to: &Key) -> Result<Vec<crate::Removal>>;
    /// Every live column of `key`, ascending (empty if it has none).
    fn columns(&self, key: &Key) -> Result<Vec<Meta>>;
    /// One page of live values in `from..=to`, in (key, column) order.
    fn iterate(&self, req: &IterRequest) -> Result<IterPage>;
    fn stats(&self) -> Result<BackendStats>;
    /// Makes every acknowledged write durable.
    fn sync(&self) -> Result<()>;
    /// Removes uploads untouched for longer than `max_age`; returns how many.
    fn reclaim_uploads(&self, max_age: std::time::Duration) -> Result<u64>;
    /// Removes the uploads in progress of the keys `of` selects; returns how many.
    fn drop_uploads(&self, of: &dyn Fn(&Key) -> bool) -> Result<u64>;
    /// False when calls never block (in-memory): async callers may run them inline.
    fn blocking(&self) -> bool {
        true
    }
    /// True when calls made in no-wait mode (`ringblob_engine::io::nowait`) refuse what
    /// would block instead of blocking: an async caller may try them inline first and run
    /// only what was refused on the blocking pool.
    fn serves_without_waiting(&self) -> bool {
        false
    }
    /// The durability of writes and removes that do not name one.
    fn default_durability(&self) -> Durability;
    /// Reclaims the space of superseded and removed values now.
    fn defrag(&self) -> Result<DefragSummary>;

    /// One page of a name listing (`docs/PROTOCOL.md` §7.14). Only a backend that keeps a
    /// name index ([`crate::names::NamedBackend`]) lists names.
    fn list_names(&self, listing: &crate::names::NameListing) -> Result<crate::names::NamePage> {
        let _ = listing;
        Err(crate::Error::Unsupported(
            "this node keeps no name index".into(),
        ))
    }

    /// Stores a whole value (column 0); returns its size.
    fn write(&self, key: &Key, value: &[u8], opts: WriteOptions) -> Result<u64> {
        self.write_column(key, 0, value, opts)
    }
    /// Appends to the value (column 0), creating it; returns the new size.
    fn append(&self, key: &Key, bytes: &[u8], opts: WriteOptions) -> Result<u64> {
        self.append_column(key, 0, bytes, opts)
    }
    /// Writes `bytes` at `offset` inside the value (column 0).
    fn write_at(&self, key: &Key, offset: u64, bytes: &[u8], opts: WriteOptions) -> Result<u64> {
        self.write_at_column(key, 0, offset, bytes, opts)
    }
    /// Starts (or resumes) a streaming upload of the value (column 0).
    fn prepare(&self, key: &Key, reserved: u64) -> Result<()> {
        self.prepare_column(key, 0, reserved)
    }
    /// Writes one part of an upload of the value (column 0).
    fn write_part(&self, key: &Key, offset: u64, bytes: &[u8]) -> Result<()> {
        self.write_part_column(key, 0, offset, bytes)
    }
    /// Commits an upload of the value (column 0).
    fn commit(&self, key: &Key, final_size: u64, opts: WriteOptions) -> Result<u64> {
        self.commit_column(key, 0, final_size, opts)
    }
    /// Reads `range` of the value (column 0).
    fn read(&self, key: &Key, range: Range) -> Result<Vec<u8>> {
        self.read_column(key, 0, range)
    }
    /// Describes the value (column 0).
    fn lookup(&self, key: &Key) -> Result<Meta> {
        self.lookup_column(key, 0)
    }
}
