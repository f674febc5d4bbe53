//! The append path: every record — a new value or tombstone, a patch, a streamed value, or
//! defragmentation's copy of a record — is decided and appended by [`Inner::append`]
//! under the writer lock, which then points the index at it, lists it in the key journal
//! and counts it. Deciding and appending under one lock keeps the index's order the log's.

use crate::commit::LogPos;
use crate::engine::Inner;
use crate::error::{Error, Result};
use crate::format::index_file::IndexEntry;
use crate::format::record::{RecordHeader, FLAG_TOMBSTONE, RECORD_HEADER_LEN};
use crate::index::{Entry, Loc};
use crate::key::Key;
use crate::keys::Tag;
use crate::log::{Active, Log};

/// What a record is written for, and when it may be.
#[derive(Clone, Copy)]
pub(crate) enum Purpose {
    /// A new record of the (key, column).
    New {
        tombstone: bool,
        /// Write only if the newest record is older than this timestamp (the record's own).
        if_newer: Option<u64>,
        /// Write only if the live record of (key, column) is at this place (`Some(None)`:
        /// has none); otherwise `Contended`.
        expected: Option<Option<Loc>>,
    },
    /// Defragmentation's copy of this sealed record, verbatim: a value only while it is
    /// still the newest record of its (key, column), a tombstone only while the key has no
    /// live value. Otherwise nothing is appended.
    CopyOf(Entry),
}

/// A record to append.
pub(crate) struct Target<'a> {
    pub key: &'a Key,
    pub column: u16,
    pub purpose: Purpose,
    /// Sealed blobs asked before the writer lock was taken.
    pub probe: Option<SealedProbe>,
    /// In-memory candidates whose key was read without the writer lock: whether each is
    /// (key's) record. A record's key never changes at its place; the decision under the
    /// lock reads a candidate's key itself only if it is in the write buffer (`append`).
    pub known: Vec<(Loc, bool)>,
}

impl Target<'_> {
    fn tombstone(&self) -> bool {
        match self.purpose {
            Purpose::New { tombstone, .. } => tombstone,
            Purpose::CopyOf(from) => from.tombstone,
        }
    }
}

/// A sealed-blob lookup made before taking the writer lock.
#[derive(Clone, Copy)]
pub(crate) struct SealedProbe {
    generation: u64,
    found: Option<Entry>,
}

/// What the decision found: the in-memory entry replaced, and whether (key, column) had a
/// live value.
struct Decided {
    tag: Tag,
    old: Option<Entry>,
    had_value: bool,
}

impl Inner {
    /// Appends one encoded record of (key, column). Returns the log position a durable
    /// write must wait for. A tombstone of a (key, column) with no live value is refused
    /// with `NotFound`.
    pub fn append_record(
        &self,
        key: &Key,
        column: u16,
        record: &[u8],
        tombstone: bool,
        if_newer: Option<u64>,
    ) -> Result<LogPos> {
        let purpose = Purpose::New {
            tombstone,
            if_newer,
            expected: None,
        };
        self.append_bytes(self.target(key, column, purpose)?, record, None)?
            .ok_or_else(|| Error::Internal("a whole record was refused a blob".into()))
    }

    /// Appends `record`, built by a write into the value of (key, column) from its live
    /// record at `expected`, if that is still its live record; a patch (`patch_of`: the blob
    /// its kept frames are in) only into that blob, without rotating it. `None` when the
    /// record must be built again (the value changed, or the blob is sealed or full: then it
    /// is rotated here, and the write rebuilt as a whole value).
    pub(crate) fn append_planned(
        &self,
        key: &Key,
        column: u16,
        record: &[u8],
        (expected, patch_of): (Option<Loc>, Option<u32>),
    ) -> Result<Option<LogPos>> {
        let purpose = Purpose::New {
            tombstone: false,
            if_newer: None,
            expected: Some(expected),
        };
        match self.append_bytes(self.target(key, column, purpose)?, record, patch_of) {
            Err(Error::Contended) => Ok(None),
            other => other,
        }
    }

    /// Defragmentation's append of a record copied verbatim from a sealed blob, if it is
    /// still current (see [`Purpose::CopyOf`]). Returns whether it was appended.
    pub fn append_copy(&self, key: &Key, column: u16, record: &[u8], from: Entry) -> Result<bool> {
        let target = self.target(key, column, Purpose::CopyOf(from))?;
        Ok(self.append_bytes(target, record, None)?.is_some())
    }

    /// A target, with the sealed blobs asked now (before the writer lock).
    pub(crate) fn target<'a>(
        &self,
        key: &'a Key,
        column: u16,
        purpose: Purpose,
    ) -> Result<Target<'a>> {
        Ok(Target {
            key,
            column,
            purpose,
            probe: self.probe_sealed(key, column)?,
            known: Vec::new(),
        })
    }

    fn append_bytes(
        &self,
        t: Target<'_>,
        record: &[u8],
        patch_of: Option<u32>,
    ) -> Result<Option<LogPos>> {
        self.append(t, record.len() as u64, patch_of, |log, a| {
            log.put(a, record)
        })
    }

    /// The append path. Under the writer lock: decides whether `t` may be written (`None`
    /// for a copy no longer current), rotates the active blob first if it has no room for
    /// `len` bytes, lets `write` put the record at its end (returning its offset), then
    /// points the index at it and counts it. A patch (`patch_of`: the blob its kept frames
    /// are in) goes only into that blob, unrotated: `None` when it cannot (the blob is
    /// sealed, or full: then it is rotated here).
    pub(crate) fn append(
        &self,
        mut t: Target<'_>,
        len: u64,
        patch_of: Option<u32>,
        write: impl FnOnce(&Log, &mut Active) -> Result<u64>,
    ) -> Result<Option<LogPos>> {
        let mut unlocked_reads = 0;
        let (mut a, decided) = loop {
            let a = self.log.writer();
            self.log.check_writable()?;
            if patch_of.is_some_and(|blob| blob != a.id()) {
                return Ok(None);
            }
            let use_reserve = matches!(t.purpose, Purpose::CopyOf(_)) || t.tombstone();
            self.space.admit(self.device.as_ref(), len, use_reserve)?;
            let mut needs = None;
            let may_defer = unlocked_reads < UNLOCKED_KEY_READS;
            match self.decide_locked(&a, &t, may_defer.then_some(&mut needs)) {
                Ok(Some(decided)) => break (a, decided),
                Ok(None) => return Ok(None),
                Err(e) => {
                    let Some(loc) = needs else { return Err(e) };
                    // A candidate's key is on disk: read it without holding every writer.
                    drop(a);
                    unlocked_reads += 1;
                    match self.key_for_write(loc) {
                        Ok(k) => t.known.push((loc, k == *t.key)),
                        // Moved meanwhile (defragmentation): decide again.
                        Err(Error::BlobRetired(_)) => {}
                        // Anything else (a damaged blob, say) is judged under the lock, as
                        // it always was.
                        Err(_) => unlocked_reads = UNLOCKED_KEY_READS,
                    }
                }
            }
        };
        if crate::io::nowait::active() {
            refuse_waiting(self.log.needs_rotation(&a, len))?;
        }
        let rotated = if self.log.needs_rotation(&a, len) {
            Some(self.log.rotate(&mut a)?)
        } else {
            None
        };
        let result = if patch_of.is_some() && rotated.is_some() {
            Ok(None)
        } else {
            write(&self.log, &mut a).and_then(|offset| {
                let at = Loc {
                    blob: a.id(),
                    offset: offset as u32,
                    len: len as u32,
                };
                self.note_appended(&mut a, &t, at, decided).map(Some)
            })
        };
        drop(a);
        self.finish_seal(rotated);
        if matches!(result, Err(Error::DiskFull { .. })) {
            // The file system said so before our estimate did: ask it again next time.
            self.space.forget();
        }
        result
    }

    /// Whether `t` may be appended now, checked against the newest record of its
    /// (key, column). Writer lock held.
    /// With `needs`, a candidate whose key is neither known (`t.known`) nor in the write
    /// buffer stops the decision: it is named in `needs` (and an error returned) for the
    /// caller to read without the lock and decide again. Without, keys are read here.
    fn decide_locked(
        &self,
        a: &Active,
        t: &Target<'_>,
        mut needs: Option<&mut Option<Loc>>,
    ) -> Result<Option<Decided>> {
        let (key, column) = (t.key, t.column);
        let is_key = |loc: Loc| {
            if let Some((_, known)) = t.known.iter().find(|(at, _)| *at == loc) {
                return Ok(*known);
            }
            let buffered = a
                .buffered_bytes(loc.blob, u64::from(loc.offset), RECORD_HEADER_LEN)
                .is_some();
            if let (false, Some(needs)) = (buffered, needs.as_deref_mut()) {
                *needs = Some(loc);
                return Err(Error::Contended);
            }
            Ok(self.key_at_locked(a, loc)? == *key)
        };
        let (tag, old) = self.keys.find_unsealed(key, column, is_key)?;
        let newest = self.newest_locked(key, column, old, t.probe)?;
        let had_value = newest.is_some_and(|e| !e.tombstone);
        let decided = Decided {
            tag,
            old,
            had_value,
        };
        let (tombstone, if_newer, expected) = match t.purpose {
            Purpose::CopyOf(from) if from.tombstone => {
                return Ok(newest.is_none_or(|e| e.tombstone).then_some(decided))
            }
            Purpose::CopyOf(from) => return Ok((newest == Some(from)).then_some(decided)),
            Purpose::New {
                tombstone,
                if_newer,
                expected,
            } => (tombstone, if_newer, expected),
        };
        if tombstone && !had_value {
            return Err(Error::NotFound(*key));
        }
        if expected.is_some_and(|x| x != newest.filter(|e| !e.tombstone).map(|e| e.loc)) {
            return Err(Error::Contended);
        }
        if let (Some(write_ns), Some(e)) = (if_newer, newest) {
            self.check_newer_locked(a, e, write_ns)?;
        }
        Ok(Some(decided))
    }

    /// A conditional write at `write_ns` must be newer than the newest record `e`.
    fn check_newer_locked(&self, a: &Active, e: Entry, write_ns: u64) -> Result<()> {
        // A sealed tombstone's blob may be retired meanwhile: defragmentation drops a
        // tombstone (without the writer lock) only when no older record of the key is
        // left, so there is then no record to be newer than.
        let stored_ns = match self.timestamp_at_locked(a, e.loc) {
            Err(Error::BlobRetired(_)) if e.tombstone => 0,
            // A damaged newest record cannot be read: any copy replaces it.
            Err(err) if err.is_corruption() => 0,
            other => other?,
        };
        // A record known to be damaged cannot be read: any copy replaces it (repair from
        // another group), even one older than the version it held — the best the cluster
        // still has. A newer version may still land over the copy.
        let heals = self.known_damage.contains(e.loc);
        if stored_ns >= write_ns && !heals {
            return Err(Error::NotNewer {
                stored_ns,
                write_ns,
            });
        }
        Ok(())
    }

    /// Points the index at the record just appended at `at`, lists it in the key journal
    /// and counts it. Writer lock held.
    fn note_appended(
        &self,
        a: &mut Active,
        t: &Target<'_>,
        at: Loc,
        decided: Decided,
    ) -> Result<LogPos> {
        let tombstone = t.tombstone();
        let e = Entry {
            loc: at,
            column: t.column,
            tombstone,
        };
        self.keys
            .point(decided.tag, e, decided.old.map(|o| o.loc))?;
        a.note_record(
            at.blob,
            &IndexEntry {
                key: *t.key,
                offset: u64::from(at.offset),
                record_len: at.len,
                flags: if tombstone { FLAG_TOMBSTONE } else { 0 },
                column: t.column,
            },
        );
        self.keys.count(e, decided.had_value, decided.old);
        self.log.count_record();
        Ok(a.pos())
    }

    /// Sealed blobs' newest entry of (key, column), looked up before the writer lock.
    /// Not looked up for a key with an in-memory candidate that sealed blobs may also hold:
    /// its newest record is then almost always the in-memory one, which makes theirs
    /// irrelevant (a sorted-index page read for every overwrite of a key that also has an
    /// older, sealed record). Should the candidate hold another key, the writer asks the
    /// sealed blobs under its lock instead (`newest_locked`).
    fn probe_sealed(&self, key: &Key, column: u16) -> Result<Option<SealedProbe>> {
        if !self.sorted() {
            return Ok(None);
        }
        let generation = self.keys.generation();
        let found = self.keys.find_sealed_unless_in_memory(key, column)?;
        Ok(found.map(|found| SealedProbe { generation, found }))
    }

    /// The newest entry of (key, column) given the in-memory one (`unsealed`) and a probe of
    /// the sealed blobs, asked again if the sealed set changed since. Writer lock held.
    fn newest_locked(
        &self,
        key: &Key,
        column: u16,
        unsealed: Option<Entry>,
        probe: Option<SealedProbe>,
    ) -> Result<Option<Entry>> {
        if unsealed.is_some() || !self.sorted() {
            return Ok(unsealed);
        }
        match probe {
            Some(p) if p.generation == self.keys.generation() => Ok(p.found),
            _ => self.keys.find_sealed(key, column),
        }
    }

    /// The key of the record at `loc`, read without the writer lock, as
    /// [`key_at_locked`](Self::key_at_locked) reads it.
    fn key_for_write(&self, loc: Loc) -> Result<Key> {
        let mut raw = Vec::with_capacity(RECORD_HEADER_LEN);
        let offset = u64::from(loc.offset);
        self.log
            .read_bytes(loc.blob, offset, RECORD_HEADER_LEN, &mut raw)?;
        key_in_header(&raw, loc)
    }

    /// The key of the record at `loc`, read while holding the writer lock (its header's
    /// checksum checked: a damaged header is an error, never "another key").
    ///
    /// A header one flipped bit from intact names its key (see
    /// [`RecordHeader::repaired_one_bit`]): a write of that key then replaces the damaged
    /// record instead of failing on it, and a write of another key passes it by.
    fn key_at_locked(&self, a: &Active, loc: Loc) -> Result<Key> {
        let mut raw = [0u8; RECORD_HEADER_LEN];
        self.header_bytes_locked(a, loc, 0, &mut raw)?;
        key_in_header(&raw, loc)
    }

    /// The timestamp of the record at `loc`, read while holding the writer lock (checked
    /// as [`key_at_locked`](Self::key_at_locked)).
    fn timestamp_at_locked(&self, a: &Active, loc: Loc) -> Result<u64> {
        Ok(self.header_at_locked(a, loc)?.timestamp_ns)
    }

    /// The header of the record at `loc`, checksum checked.
    fn header_at_locked(&self, a: &Active, loc: Loc) -> Result<RecordHeader> {
        let mut raw = [0u8; RECORD_HEADER_LEN];
        self.header_bytes_locked(a, loc, 0, &mut raw)?;
        RecordHeader::decode(&raw, loc.blob, u64::from(loc.offset))
    }

    /// Bytes of the header of the record at `loc`, from the buffer or the file.
    fn header_bytes_locked(&self, a: &Active, loc: Loc, at: usize, out: &mut [u8]) -> Result<()> {
        debug_assert!(at + out.len() <= RECORD_HEADER_LEN);
        let at = u64::from(loc.offset) + at as u64;
        self.log.read_locked(a, loc.blob, at, out)
    }
}

/// How many candidates' keys one append reads without the writer lock before it reads them
/// under it (each read means taking the lock again).
const UNLOCKED_KEY_READS: usize = 4;

/// The key a record header at `loc` names: checksum checked, one flipped bit repaired
/// (see [`Inner::key_at_locked`]).
fn key_in_header(raw: &[u8], loc: Loc) -> Result<Key> {
    let offset = u64::from(loc.offset);
    match RecordHeader::decode(raw, loc.blob, offset) {
        Ok(h) => Ok(h.key),
        Err(e) if e.is_corruption() => RecordHeader::repaired_one_bit(raw, loc.blob, offset)
            .map(|h| h.key)
            .ok_or(e),
        Err(e) => Err(e),
    }
}

/// In no-wait mode (`io::nowait`), before anything is appended: refuses if a read the
/// decision needed was refused (an error it swallowed must not decide a write), or if the
/// append would start a new blob (`rotating`: file creation and syncs).
fn refuse_waiting(rotating: bool) -> Result<()> {
    if crate::io::nowait::refused() || rotating {
        let e = crate::io::nowait::refuse("an append needing the disk");
        return Err(Error::io("append", "log".to_string(), e));
    }
    Ok(())
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
