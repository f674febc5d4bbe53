//! Serving one request against the backend: decode, call, encode the reply. Synchronous; the
//! connection runs a batch of these on the blocking pool (see `connection.rs`).

use bytes::{Bytes, BytesMut};
use ringblob_backends::{Backend, IterRequest, Meta};
use ringblob_engine::{Key, Range, WriteOptions};

use super::status_map::status_of;
use super::NodeInfo;
use crate::wire::{
    encode_error, encode_iterate_reply, encode_read_reply, BulkItem, BulkReadRequest, Durability,
    Frame, Header, IterEntry, IterateEnd, IterateRequest, ReadRequest, Reply, Request, Status,
    ValueMeta, WireError, WriteAck, WriteMode, WriteRequest, READ_TO_END,
};

/// A failed request: the status and message of its error reply.
type Failure = (Status, String);

fn fail(e: ringblob_backends::Error) -> Failure {
    (status_of(&e), e.to_string())
}

fn wire_fail(e: WireError) -> Failure {
    (e.status(), e.to_string())
}

/// Serves `frame`, appending its reply (or error reply) to `out`.
pub fn serve(b: &dyn Backend, info: &NodeInfo, frame: &Frame, out: &mut BytesMut) {
    let h = &frame.header;
    let result = h
        .validate_request()
        .and_then(|()| Request::decode(frame))
        .map_err(wire_fail)
        .and_then(|req| answer(b, info, h, req, out));
    if let Err((status, message)) = result {
        encode_error(h, status, &message, out);
    }
}

fn answer(
    b: &dyn Backend,
    info: &NodeInfo,
    h: &Header,
    req: Request,
    out: &mut BytesMut,
) -> Result<(), Failure> {
    let key = Key(h.key);
    let reply = match req {
        Request::Ping => Reply::Pong,
        Request::Handshake(hs) => Reply::Handshake(info.handshake_reply(&hs)?),
        Request::Lookup => Reply::Meta(value_meta(&b.lookup(&key).map_err(fail)?)),
        Request::Read(r) => return read(b, h, &key, &r, out),
        Request::Write(w) => Reply::Write(WriteAck {
            size: write(b, &key, &w)?,
        }),
        Request::Remove(r) => {
            b.remove(&key, options(false, r.durability)).map_err(fail)?;
            Reply::Removed
        }
        Request::Iterate(r) => return iterate(b, h, &r, out),
        Request::BulkRead(r) => return bulk_read(b, h, &r, out),
        Request::Stat => Reply::Stat(info.stat_json(b)),
        Request::RouteList => Reply::RouteList(info.routes_json()),
    };
    reply.encode(h, out).map_err(wire_fail)
}

fn no_columns(column: u16) -> Result<(), Failure> {
    if column != 0 {
        return Err((
            Status::BadRequest,
            format!("column {column}: only column 0 exists in this version"),
        ));
    }
    Ok(())
}

fn options(compress: bool, d: Durability) -> WriteOptions {
    let durability = match d {
        Durability::Default => None,
        Durability::None => Some(ringblob_engine::Durability::None),
        Durability::Batch => Some(ringblob_engine::Durability::Batch),
        Durability::Sync => Some(ringblob_engine::Durability::Sync),
    };
    WriteOptions {
        compress: compress.then_some(true),
        durability,
    }
}

fn read(
    b: &dyn Backend,
    h: &Header,
    key: &Key,
    r: &ReadRequest,
    out: &mut BytesMut,
) -> Result<(), Failure> {
    no_columns(r.column)?;
    let range = Range {
        offset: r.offset,
        size: (r.size != READ_TO_END).then_some(r.size),
    };
    let value = Bytes::from(b.read(key, range).map_err(fail)?);
    encode_read_reply(h, &value, out).map_err(wire_fail)
}

fn write(b: &dyn Backend, key: &Key, w: &WriteRequest) -> Result<u64, Failure> {
    no_columns(w.column)?;
    let o = options(w.compress, w.durability);
    let size = match w.mode {
        WriteMode::Whole => b.write(key, &w.data, o),
        WriteMode::Append => b.append(key, &w.data, o),
        WriteMode::AtOffset { offset } => b.write_at(key, offset, &w.data, o),
        WriteMode::Prepare { reserve } => b.prepare(key, reserve).map(|()| 0),
        WriteMode::Part { offset } => b
            .write_part(key, offset, &w.data)
            .map(|()| offset + w.data.len() as u64),
        WriteMode::Commit { size } => b.commit(key, size, o),
    };
    size.map_err(fail)
}

fn iterate(
    b: &dyn Backend,
    h: &Header,
    r: &IterateRequest,
    out: &mut BytesMut,
) -> Result<(), Failure> {
    let req = IterRequest {
        from: Key(r.from),
        to: Key(r.to),
        after: r.after.map(Key),
        limit: r.limit as usize,
    };
    let page = b.iterate(&req).map_err(fail)?;
    let entries: Vec<IterEntry> = page
        .entries
        .iter()
        .map(|m| IterEntry {
            key: m.key.0,
            meta: value_meta(m),
        })
        .collect();
    let end = page
        .next_after
        .map_or(IterateEnd::Done, |k| IterateEnd::ResumeAfter(k.0));
    encode_iterate_reply(h, &entries, end, out).map_err(wire_fail)
}

fn bulk_read(
    b: &dyn Backend,
    h: &Header,
    r: &BulkReadRequest,
    out: &mut BytesMut,
) -> Result<(), Failure> {
    no_columns(r.column)?;
    if r.keys.is_empty() {
        return Err((Status::BadRequest, "BULK_READ of no keys".into()));
    }
    let start = out.len();
    for (i, k) in r.keys.iter().enumerate() {
        let (status, data) = match b.read(&Key(*k), Range::all()) {
            Ok(v) => (Status::Ok, Bytes::from(v)),
            Err(e) => (status_of(&e), Bytes::new()),
        };
        let more = i + 1 < r.keys.len();
        let item = BulkItem {
            key: *k,
            status,
            data,
        };
        if let Err(e) = (Reply::BulkItem { item, more }).encode(h, out) {
            out.truncate(start);
            return Err(wire_fail(e));
        }
    }
    Ok(())
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
        column: 0,
    }
}
