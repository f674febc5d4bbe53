//! The backend half of the hand-over and repair effects, as plain synchronous calls on a
//! [`Backend`]: the node runs them on its blocking pool, the simulator inline, so both run
//! the same code. Also the receiving side of a copy ([`accept_copy`], [`accept_remove`]):
//! how a node stores a record sent to it by hand-over or repair.

use bytes::Bytes;
use ringblob_backends::{Backend, Error, IterPage, IterRequest, Meta, Position, Removal};
use ringblob_engine::{Key, Range, WriteOptions};

use super::range_walk::{linear_parts, RangeWalk};
use super::{DigestEntry, DigestTree};
use crate::ring::{KeyRange, RingId};
use crate::wire::{
    IterEntry, IterPosition, IterateEnd, IterateRequest, RangeDigestReply, RangeDigestRequest,
    ValueMeta, DEFAULT_ITERATE_LIMIT, MAX_ITERATE_LIMIT,
};

/// Reads of a value that keeps changing between its lookup and its read before giving up.
const READ_TRIES: usize = 4;

/// A value and the timestamp it was written at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub value: Bytes,
    pub timestamp_ns: u64,
}

/// What went wrong on the local backend.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{what}: {source}")]
    Backend {
        what: &'static str,
        #[source]
        source: Error,
    },
    /// The value changed between its lookup and its read, [`READ_TRIES`] times in a row.
    #[error("{key} column {column} kept changing while it was read")]
    KeptChanging { key: Key, column: u16 },
}

fn backend(what: &'static str) -> impl FnOnce(Error) -> LocalError {
    move |source| LocalError::Backend { what, source }
}

/// The current value of (key, column) with its timestamp, or `None` if it is gone. The
/// value's checksum must match the looked-up one, so the pair belongs to one write.
pub fn read_record(b: &dyn Backend, key: Key, column: u16) -> Result<Option<Record>, LocalError> {
    for _ in 0..READ_TRIES {
        let read = b
            .lookup_column(&key, column)
            .and_then(|meta| Ok((meta, b.read_column(&key, column, Range::all())?)));
        let (meta, value) = match read {
            Ok(found) => found,
            Err(Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(backend("reading a record to copy")(e)),
        };
        if crc32fast::hash(&value) == meta.checksum {
            return Ok(Some(Record {
                value: Bytes::from(value),
                timestamp_ns: meta.timestamp_ns,
            }));
        }
    }
    Err(LocalError::KeptChanging { key, column })
}

/// The removes `b` remembers in `range`, in key order.
pub fn removes_in(b: &dyn Backend, range: &KeyRange) -> Result<Vec<Removal>, LocalError> {
    let mut out = Vec::new();
    for (from, to) in linear_parts(range) {
        let found = b
            .removes_in(&from, &to)
            .map_err(backend("listing removes"))?;
        out.extend(found.into_iter().filter(|r| range.contains(&r.key.0)));
    }
    Ok(out)
}

/// The removes to hand over with `range`: those `b` remembers, less those a newer live
/// value of the same (key, column) supersedes — that value follows in the stream, and the
/// older remove, sent first, would make the new owner answer `REMOVED` for the key until it
/// arrived (instead of reading it through from here).
pub fn removes_to_hand_over(b: &dyn Backend, range: &KeyRange) -> Result<Vec<Removal>, LocalError> {
    let mut kept = Vec::new();
    for r in removes_in(b, range)? {
        let superseded = match r.whole_key {
            // A key written again after its whole-key remove: its newer columns follow.
            true => b
                .columns(&r.key)
                .map_err(backend("looking up a removed key"))?
                .iter()
                .any(|m| m.timestamp_ns > r.timestamp_ns),
            false => match b.lookup_column(&r.key, r.column) {
                Ok(m) => m.timestamp_ns > r.timestamp_ns,
                Err(Error::NotFound(_)) => false,
                Err(e) => return Err(backend("looking up a removed key")(e)),
            },
        };
        if !superseded {
            kept.push(r);
        }
    }
    Ok(kept)
}

/// One page of live values.
pub fn list(b: &dyn Backend, req: &IterRequest) -> Result<IterPage, LocalError> {
    b.iterate(req).map_err(backend("listing values"))
}

/// Drops this node's copy of (key, column) if it is the record stamped `timestamp_ns`
/// (`Backend::drop_copy`: not a remove). True if something was dropped.
pub fn drop_copy(
    b: &dyn Backend,
    key: Key,
    column: u16,
    timestamp_ns: u64,
) -> Result<bool, LocalError> {
    b.drop_copy(&key, column, timestamp_ns)
        .map_err(backend("dropping a copy"))
}

/// Calls `f` with every live value in `range`.
pub fn for_each_in(
    b: &dyn Backend,
    range: &KeyRange,
    mut f: impl FnMut(&Meta),
) -> ringblob_backends::Result<()> {
    let mut walk = RangeWalk::new(*range, ringblob_backends::MAX_ITER_LIMIT);
    while let Some(req) = walk.request() {
        walk.take(b.iterate(&req)?).entries.iter().for_each(&mut f);
    }
    Ok(())
}

/// The summary entries of every live value in `range`.
pub fn digest_entries(
    b: &dyn Backend,
    range: &KeyRange,
) -> ringblob_backends::Result<Vec<DigestEntry>> {
    let mut out = Vec::new();
    for_each_in(b, range, |m| out.push(digest_entry(m)))?;
    Ok(out)
}

/// What the summary hashes of a value: its key, column and checksum. The timestamp is left
/// out (0): replicas of one client write carry each node's own clock, and equal bytes are in
/// sync — repair copies only values whose checksums differ.
pub fn digest_entry(m: &Meta) -> DigestEntry {
    DigestEntry {
        key: m.key.0,
        column: m.column,
        timestamp_ns: 0,
        checksum: m.checksum,
    }
}

/// The newest remove of (key, column) this node remembers, if any: a read that finds no
/// value answers `REMOVED` at this version, so replicated reads weigh it against values.
/// Remembered in the remove log, or shown by the stored data itself (a tombstone): a remove
/// stays known when the log was damaged and lost entries.
pub fn removed_at(b: &dyn Backend, key: &Key, column: u16) -> Option<u64> {
    let logged = b.removes_in(key, key).ok().and_then(|removes| {
        removes
            .iter()
            .filter(|r| r.covers(column))
            .map(|r| r.timestamp_ns)
            .max()
    });
    logged.max(b.tombstone_at(key, column))
}

/// Stores a copy sent by hand-over or repair (a conditional write, `IF_NEWER`): true if it
/// was stored, false if this node holds a record at least as new.
pub fn accept_copy(
    b: &dyn Backend,
    key: Key,
    column: u16,
    record: &Record,
) -> ringblob_backends::Result<bool> {
    let opts = WriteOptions::copy_if_newer(record.timestamp_ns);
    match b.write_column(&key, column, &record.value, opts) {
        Ok(_) => Ok(true),
        Err(Error::NotNewer { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Applies a copied remove (`REMOVE` with `IF_NEWER`, of one column or the whole key): true
/// if an older value was dropped; the remove is remembered either way.
pub fn accept_remove(b: &dyn Backend, r: &Removal) -> ringblob_backends::Result<bool> {
    let opts = WriteOptions::copy_if_newer(r.timestamp_ns);
    let removed = match r.whole_key {
        true => b.remove(&r.key, opts),
        false => b.remove_column(&r.key, r.column, opts),
    };
    match removed {
        Ok(()) => Ok(true),
        Err(Error::NotNewer { .. } | Error::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Answers `RANGE_DIGEST`: the digest tree of the local values of the request's range.
pub fn range_digest(
    b: &dyn Backend,
    req: &RangeDigestRequest,
) -> ringblob_backends::Result<RangeDigestReply> {
    let range = KeyRange::new(RingId(req.start_excl), RingId(req.end_incl));
    let entries = digest_entries(b, &range)?;
    let tree = DigestTree::build(range, req.depth, &entries);
    Ok(RangeDigestReply {
        records: entries.len() as u64,
        depth: req.depth,
        leaves: tree.leaves().to_vec(),
    })
}

/// Answers `ITERATE`: one page of local metas as the wire carries them. A `limit` of 0 is
/// [`DEFAULT_ITERATE_LIMIT`] (`docs/PROTOCOL.md`).
pub fn iterate(
    b: &dyn Backend,
    r: &IterateRequest,
) -> ringblob_backends::Result<(Vec<IterEntry>, IterateEnd)> {
    let limit = match r.limit {
        0 => DEFAULT_ITERATE_LIMIT,
        n => n.min(MAX_ITERATE_LIMIT),
    };
    let req = IterRequest {
        from: Key(r.from),
        to: Key(r.to),
        after: r.after.map(|a| Position {
            key: Key(a.key),
            column: a.column,
        }),
        limit: limit as usize,
    };
    let page = b.iterate(&req)?;
    let entries = page
        .entries
        .iter()
        .map(|m| IterEntry {
            key: m.key.0,
            meta: value_meta(m),
        })
        .collect();
    let end = page.next_after.map_or(IterateEnd::Done, |p| {
        IterateEnd::ResumeAfter(IterPosition {
            key: p.key.0,
            column: p.column,
        })
    });
    Ok((entries, end))
}

/// A backend's metadata as the wire carries it.
pub fn value_meta(m: &Meta) -> ValueMeta {
    let (blob, offset) = match m.location {
        ringblob_backends::Location::Blob { blob, offset } => (blob, offset),
        _ => (0, 0),
    };
    ValueMeta {
        size: m.size,
        stored_size: m.stored_size,
        timestamp_ns: m.timestamp_ns,
        offset,
        checksum: m.checksum,
        blob,
        flags: 0,
        column: m.column,
    }
}
