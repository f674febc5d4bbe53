//! Reads served in process, for the node's own HTTP gateway: a small whole value and its
//! name record, read straight from this node's storage under the rules a connection
//! applies to the same two `READ`s — routing (only keys this node owns), admission of the
//! request's key, no answer while a hand-over may make a previous owner hold the key or
//! while quarantined, inline serving with the blocking pool behind it, the reply budget,
//! metrics — without framing, a socket or a client. Two record reads (no lookups: the
//! record header read with the value describes it); the value is sent from the buffer its
//! record was read into (`Backend::read_column_whole_in`: no copy), one of the node's kept
//! value buffers ([`VALUES`]) that comes back once the reply is written. Anything else (a
//! key another node owns, a value that is not plain or small, an error) is left to the
//! caller, who asks through a client, so the answer never differs from the one a
//! connection would give.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use ringblob_backends::names::{NameRecord, NAME_COLUMN};
use ringblob_backends::Backend;
use ringblob_engine::io::nowait::without_waiting;
use ringblob_engine::{Key, Range};

use super::access::{admit, Identity};
use super::connection::{metrics_kind, observe_batch, reads_through, route_of};
use super::forward::Route;
use super::piece_pool::VALUES;
use super::{reply_budget, Node};
use crate::wire::{Command, Frame, Header, KeyId, ReadRequest, Status, READ_TO_END};

/// A whole value of column 0 read here, with what describes it.
#[derive(Debug, Clone)]
pub struct ValueHere {
    pub data: Bytes,
    /// The version read (its write's timestamp).
    pub timestamp_ns: u64,
    /// CRC-32 of the value, from its record's header.
    pub crc: u32,
    /// The key's name record, if it has a valid one.
    pub record: Option<NameRecord>,
}

impl Node {
    /// The whole value of `key`'s column 0 and its name record, read as a connection of
    /// `who` (`None`: a node without keys) would read them, if this node answers both from
    /// its own storage and the value is plain and at most `max` bytes. `None` otherwise:
    /// nothing was answered, and the caller asks through a client.
    pub async fn value_here(
        self: &Arc<Self>,
        who: Option<&Identity>,
        key: KeyId,
        max: u64,
    ) -> Option<ValueHere> {
        let frames = [read_frame(key, 0)?, read_frame(key, NAME_COLUMN)?];
        if !self.serves_here(who, &frames) || self.info.quarantine.before().is_some() {
            return None;
        }
        let arrived = Instant::now();
        let charged = reply_budget::bound(&frames);
        let mut share = self.reply_budget.take(&frames).await;
        let (read, inline) = self.read_small_value(Key(key), max).await;
        let value = read?;
        share.grow(&self.reply_budget, value.data.len(), charged);
        let record_status = match value.record {
            Some(_) => Status::Ok,
            None => Status::NotFound,
        };
        let kinds = frames.map(|f| metrics_kind(&f));
        let secs = arrived.elapsed().as_secs_f64();
        observe_batch(self, &kinds, &[Status::Ok, record_status], secs);
        let c = &self.info.counters;
        c.requests.fetch_add(2, Ordering::Relaxed);
        if inline {
            c.served_inline.fetch_add(2, Ordering::Relaxed);
        }
        Some(value)
    }

    /// [`whole_small`] inline in no-wait mode, or on the blocking pool where that would
    /// block (or the backend cannot tell); and whether it ran inline.
    async fn read_small_value(&self, key: Key, max: u64) -> (Option<ValueHere>, bool) {
        if self.backend.serves_inline() {
            let b = self.backend.backend().as_ref();
            match without_waiting(|| whole_small(b, &key, max)) {
                (got, false) => return (got, true),
                (_, true) => {
                    let c = &self.info.counters;
                    c.inline_refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let read = self.backend.run(move |b| Ok(whole_small(b, &key, max)));
        (read.await.ok().flatten(), false)
    }

    /// Whether every frame is a read this node owns (by the route table it routes by), that
    /// no previous owner may have to answer, and that `who` may make.
    fn serves_here(&self, who: Option<&Identity>, frames: &[Frame]) -> bool {
        let routing = self.info.routing();
        frames.iter().all(|f| {
            matches!(f.header.command, Command::Lookup | Command::Read)
                && f.header.hops == 0
                && route_of(self, routing.as_ref(), f) == Route::Local
                && reads_through(self, routing.as_ref(), f).is_none()
                && who.is_none_or(|id| admit(&self.config.access, id, f).is_ok())
        })
    }
}

/// The name record and the whole value of `key`, if the value exists, is at most `max`
/// bytes (by the record's size first, so a larger one is not read) and every read
/// succeeded; a record that does not decode counts as none, as a client reads it.
fn whole_small(b: &dyn Backend, key: &Key, max: u64) -> Option<ValueHere> {
    let record = match b.read_column_stamped(key, NAME_COLUMN, Range::all()) {
        Ok(s) => NameRecord::decode(&s.data).ok(),
        Err(ringblob_backends::Error::NotFound(_)) => None,
        Err(_) => return None,
    };
    if record.as_ref().is_some_and(|r| r.size > max) {
        return None;
    }
    let value = match b.read_column_whole_in(key, 0, VALUES.take(), max).ok()? {
        Some(whole) => whole,
        // A record over one `pread`: read as a range of at most `max` bytes.
        None => {
            let s = b.read_column_stamped(key, 0, Range::new(0, max)).ok()?;
            ringblob_backends::whole_within(s, max)?
        }
    };
    Some(ValueHere {
        data: VALUES.bytes(value.buffer).slice(value.at),
        timestamp_ns: value.timestamp_ns,
        crc: value.value_crc,
        record,
    })
}

/// A whole `READ` of `column` of `key` as a client sends it to its own group (what the
/// routing and admission checks look at): the request's header, and its payload made once
/// per column.
fn read_frame(key: KeyId, column: u16) -> Option<Frame> {
    static PAYLOADS: OnceLock<[Bytes; 2]> = OnceLock::new();
    let [value, name] = PAYLOADS.get_or_init(|| [read_payload(0), read_payload(NAME_COLUMN)]);
    let payload = match column {
        0 => value.clone(),
        NAME_COLUMN => name.clone(),
        other => read_payload(other),
    };
    let mut header = Header::request(Command::Read, 0, key, 0);
    header.payload_len = u32::try_from(payload.len()).ok()?;
    Some(Frame { header, payload })
}

/// The payload of a whole `READ` of `column`.
fn read_payload(column: u16) -> Bytes {
    let mut buf = BytesMut::new();
    ReadRequest::range(column, 0, READ_TO_END).encode(&mut buf);
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_frame, Request};

    /// The frame the checks look at is the one a client's `READ` decodes to.
    #[test]
    fn read_frames_are_what_a_client_sends() -> Result<(), crate::wire::WireError> {
        let key = [7u8; 32];
        for column in [0, NAME_COLUMN, 5] {
            let mut buf = BytesMut::new();
            let read = Request::Read(ReadRequest::range(column, 0, READ_TO_END));
            read.encode(0, key, 0, &mut buf)?;
            let sent = decode_frame(&mut buf)?;
            let made = read_frame(key, column);
            assert_eq!(
                made.as_ref().map(|f| f.header),
                sent.as_ref().map(|f| f.header)
            );
            assert_eq!(made.map(|f| f.payload), sent.map(|f| f.payload));
        }
        Ok(())
    }
}
