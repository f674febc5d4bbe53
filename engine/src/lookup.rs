//! Finding the newest record of a (key, column): the in-memory index first (the active blob
//! and blobs not sealed yet), then sealed blobs newest first through their sorted indexes.
//! A lookup that raced a change of the sealed set (a seal moving keys out of memory, a
//! defragmentation retiring a blob) is retried.

use crate::engine::Inner;
use crate::error::Result;
use crate::format::record::{RecordHeader, RECORD_HEADER_LEN};
use crate::index::{Entry, Loc};
use crate::key::Key;

impl Inner {
    /// The key of the record at `loc` (read path: no writer lock held). The whole header
    /// is read and its checksum checked: a damaged header is damage (an error), never taken
    /// for "a record of another key" — that would let a lookup fall through to an older
    /// value, or to one a damaged tombstone removed.
    pub fn key_at(&self, loc: Loc) -> Result<Key> {
        let mut buf = Vec::with_capacity(RECORD_HEADER_LEN);
        let offset = u64::from(loc.offset);
        self.log
            .read_bytes(loc.blob, offset, RECORD_HEADER_LEN, &mut buf)?;
        Ok(RecordHeader::decode(&buf, loc.blob, offset)?.key)
    }

    /// The newest record of (key, column), value or tombstone.
    pub fn find_newest(&self, key: &Key, column: u16) -> Result<Option<Entry>> {
        self.keys.stable(|| {
            for e in self.keys.candidates(key, column) {
                if self.key_at(e.loc)? == *key {
                    return Ok(Some(e));
                }
            }
            self.keys.find_sealed(key, column)
        })
    }

    /// Where the live value of (key, column) is now (`None` if removed or absent).
    pub fn current_loc(&self, key: &Key, column: u16) -> Result<Option<Loc>> {
        let newest = self.find_newest(key, column)?;
        Ok(newest.filter(|e| !e.tombstone).map(|e| e.loc))
    }

    /// The newest record of every column of `key`, values and tombstones.
    pub fn find_key(&self, key: &Key) -> Result<Vec<Entry>> {
        self.keys.stable(|| self.find_key_once(key))
    }

    fn find_key_once(&self, key: &Key) -> Result<Vec<Entry>> {
        let mut out: Vec<Entry> = Vec::new();
        for e in self.keys.key_candidates(key) {
            if self.key_at(e.loc)? == *key {
                out.push(e);
            }
        }
        for e in self.keys.sealed_key_entries(key)? {
            if !out.iter().any(|o| o.column == e.column) {
                out.push(e);
            }
        }
        out.sort_by_key(|e| e.column);
        Ok(out)
    }
}
