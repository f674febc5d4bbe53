//! Serving one request against the backend: decode, call, encode the reply. Synchronous; the
//! connection runs a batch of these inline on its runtime thread in no-wait mode as far as
//! they go without waiting ([`Serving::Inline`]), and the rest on the blocking pool (see
//! `connection.rs`).

use bytes::{Bytes, BytesMut};
use ringblob_backends::{Backend, Meta};
use ringblob_engine::io::nowait::without_waiting;
use ringblob_engine::{Key, Range, WriteOptions};

use super::output::Output;
use super::piece_pool::{PIECES, VALUES};
use super::read_stream::{encode_piece, ReadStream, STREAM_PIECE};
use super::status_map::status_of;
use super::versions::{check_deadline, now_ns};
use super::NodeInfo;
use crate::cluster::local::value_meta;
use crate::wire::{
    encode_error, BulkItem, BulkReadRequest, Command, Durability, Frame, Header, IterateRequest,
    ReadRequest, RemoveRequest, Reply, Request, Status, WireError, WriteAck, WriteMode,
    WriteRequest, MAX_VALUE_IN_FRAME, READ_TO_END,
};

/// A batch stops taking requests once its replies reach this size (or the smaller share of
/// the node's reply memory it was given, `reply_budget.rs`); the rest wait for the next
/// round, so one connection's pipeline cannot hold unbounded reply memory.
pub const MAX_BATCH_REPLY_BYTES: usize = 16 << 20;

/// Most value bytes one BULK_READ reply carries.
pub const MAX_BULK_REPLY_BYTES: usize = 64 << 20;

/// A failed request: the status and message of its error reply.
type Failure = (Status, String);

fn fail(e: ringblob_backends::Error) -> Failure {
    (status_of(&e), e.to_string())
}

fn wire_fail(e: WireError) -> Failure {
    (e.status(), e.to_string())
}

/// Where a batch is served: on the blocking pool (anything may wait), or inline on the
/// runtime thread (`Inline`: only requests that can run from memory, in no-wait mode —
/// `ringblob_engine::io::nowait`; the batch stops at the first request that is of another
/// kind or was refused, and the caller sends the rest to the pool).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serving {
    Pool,
    Inline,
}

/// What a batch served: the replies in order, and the frames it did not get to. With
/// `ask_first`, the first of those is a read this node cannot answer that is to be asked of
/// the key's previous owner (see `handover.rs`). Durable writes served inline are applied
/// without durability: [`needs_sync`](Self::needs_sync) says so, and the caller settles
/// the batch with a sync's outcome before any reply is sent.
pub struct Served {
    pub chunks: Vec<Bytes>,
    pub rest: Vec<Frame>,
    pub ask_first: bool,
    /// The rest of a long READ reply the chunks begin: sent by the connection piece by
    /// piece before `rest` is served.
    pub stream: Option<ReadStream>,
    /// The status each served frame was answered with, in order (for metrics).
    pub outcomes: Vec<Status>,
    /// Inline, whether the batch stopped at a request refused for waiting.
    pub refused: bool,
    /// Changes for the subscriptions: published once the replies are out.
    pub changes: Vec<super::subscriptions::Change>,
    /// Replies waiting for a sync (`chunks` is empty meanwhile).
    unsynced: Option<Unsynced>,
}

/// A batch's replies before the sync its durable writes wait for: each served frame's
/// header and reply span, and whether it was a durable write applied without durability.
struct Unsynced {
    out: Output,
    spans: Vec<(Header, usize, usize, bool)>,
}

impl Served {
    /// Whether durable writes in the batch wait for a sync: call [`settle`](Self::settle)
    /// with its outcome before sending the replies.
    pub fn needs_sync(&self) -> bool {
        self.unsynced.is_some()
    }

    /// How many durable writes wait for the sync.
    pub fn unsynced_writes(&self) -> u32 {
        self.unsynced.as_ref().map_or(0, |u| {
            u32::try_from(u.spans.iter().filter(|s| s.3).count()).unwrap_or(u32::MAX)
        })
    }

    /// Releases the replies once the sync ended: as served, or — if it failed — each durable
    /// write answered with the sync's error instead.
    pub fn settle(&mut self, synced: Result<(), ringblob_backends::Error>) {
        let Some(u) = self.unsynced.take() else {
            return;
        };
        let Err(e) = synced else {
            self.chunks = u.out.into_chunks();
            return;
        };
        tracing::error!(error = %e, "sync after a batch of durable writes failed");
        // None of them may be announced: some may not be durable.
        self.changes.clear();
        let mut out = u.out;
        let mut fixed = Output::default();
        for ((h, start, end, deferred), outcome) in u.spans.into_iter().zip(&mut self.outcomes) {
            if deferred {
                *outcome = status_of(&e);
                encode_error(&h, status_of(&e), &e.to_string(), fixed.buf());
            } else {
                for chunk in out.range(start, end) {
                    fixed.push_shared(chunk);
                }
            }
        }
        self.chunks = fixed.into_chunks();
    }
}

/// Tells the backend which keys the batch is about to touch, so that their index probes'
/// cache misses overlap rather than stall the requests one after another.
fn prefetch(b: &dyn Backend, frames: &[Frame]) {
    if frames.len() < 2 {
        return;
    }
    let keys: Vec<Key> = frames
        .iter()
        .filter(|f| super::forward::keyed(f.header.command))
        .map(|f| Key(f.header.key))
        .collect();
    if keys.len() > 1 {
        b.prefetch(&keys);
    }
}

/// Serves a batch of frames (one connection's pipelined requests) and returns the replies,
/// in order. Durable writes and removes in the batch are applied without durability and
/// then made durable by one group-committed sync before any reply is released, so a
/// pipeline of N durable writes costs one fdatasync, not N: on the pool the sync runs here;
/// inline the caller awaits a shared one ([`Served::settle`]). If that sync fails, each of
/// those requests is answered with the error instead. The batch stops before a frame for
/// which `ask_elsewhere` is true (a read, once it failed here, its error reply then dropped;
/// anything else, before it is applied), and once its replies reach `reply_cap` bytes.
pub fn serve_batch(
    b: &dyn Backend,
    info: &NodeInfo,
    mut frames: Vec<Frame>,
    ask_elsewhere: &dyn Fn(&dyn Backend, &Frame) -> bool,
    (reply_cap, how): (usize, Serving),
) -> Served {
    let default_durable = b.default_durability() != ringblob_engine::Durability::None;
    let mut out = Output::for_frames(frames.len(), reply_cap);
    let mut spans = Vec::with_capacity(frames.len());
    let mut outcomes = Vec::with_capacity(frames.len());
    let mut ask_first = false;
    let mut refused = false;
    prefetch(b, &frames);
    for f in &frames {
        let start = out.len();
        let one = |out: &mut Output| {
            // A read is asked about only once it failed here — `NOT_FOUND`, or `CHANGED`
            // when pinned to a version — so reads that find their key pay no second
            // lookup (`ask_elsewhere` itself checks that nothing of the key is here).
            // Anything else (a remove) is asked about before it is applied.
            let reads = matches!(f.header.command, Command::Lookup | Command::Read);
            if !reads && ask_elsewhere(b, f) {
                return Step::AskElsewhere;
            }
            let step = serve(b, info, f, out, (default_durable, how));
            let failed = matches!(step, Step::Served(_, status) if status != Status::Ok);
            if reads && failed && ask_elsewhere(b, f) {
                out.truncate(start);
                return Step::AskElsewhere;
            }
            step
        };
        let step = match how {
            Serving::Pool => one(&mut out),
            Serving::Inline => match without_waiting(|| one(&mut out)) {
                (step, false) => step,
                (_, true) => {
                    refused = true;
                    Step::NotInline
                }
            },
        };
        let (deferred, status) = match step {
            Step::Served(deferred, status) => (deferred, status),
            Step::AskElsewhere => {
                ask_first = true;
                break;
            }
            Step::NotInline => {
                out.truncate(start);
                break;
            }
        };
        spans.push((f.header, start, out.len(), deferred));
        outcomes.push(status);
        if out.len() >= reply_cap || out.streaming() {
            break;
        }
    }
    let rest = frames.split_off(spans.len());
    let stream = out.take_stream();
    let changes = out.take_changes();
    let mut served = Served {
        chunks: Vec::new(),
        rest,
        ask_first,
        stream,
        outcomes,
        refused,
        changes,
        unsynced: None,
    };
    if !spans.iter().any(|s| s.3) {
        served.chunks = out.into_chunks();
        return served;
    }
    served.unsynced = Some(Unsynced { out, spans });
    if how == Serving::Pool {
        served.settle(b.sync());
    }
    served
}

/// What became of one frame of a batch.
enum Step {
    /// Answered: whether it was a durable write applied without durability, and its status.
    Served(bool, Status),
    /// A read this node cannot answer, for the key's previous owner.
    AskElsewhere,
    /// Inline, a request that does not run inline or was refused: for the pool.
    NotInline,
}

/// Whether a request runs inline: from memory, changing nothing unless it completes
/// (reads, and whole writes, which only append to the write buffer).
fn runs_inline(req: &Request) -> bool {
    match req {
        Request::Ping | Request::Lookup(_) | Request::Read(_) => true,
        Request::Write(w) => matches!(w.mode, WriteMode::Whole),
        _ => false,
    }
}

/// Whether `frame` (a `LOOKUP` or `READ`) finds nothing here: no value of its
/// (key, column), and no remembered remove of it. An error counts as "something here", so a
/// removed value is never read from elsewhere by mistake.
pub fn nothing_here(b: &dyn Backend, frame: &Frame) -> bool {
    let column = match decode_request(frame) {
        Ok(Request::Lookup(l)) => l.column,
        Ok(Request::Read(r)) => r.column,
        _ => return false,
    };
    let key = Key(frame.header.key);
    if !matches!(
        b.lookup_column(&key, column),
        Err(ringblob_backends::Error::NotFound(_))
    ) {
        return false;
    }
    b.removes_in(&key, &key)
        .is_ok_and(|rs| rs.iter().all(|r| !r.covers(column)))
}

/// Serves `frame`, appending its reply (or error reply) to `out`. Returns true when it was
/// a durable write applied without durability: the caller must sync before replying.
/// Inline, a request that does not run inline is declined (nothing written).
fn serve(
    b: &dyn Backend,
    info: &NodeInfo,
    frame: &Frame,
    out: &mut Output,
    (default_durable, how): (bool, Serving),
) -> Step {
    let h = &frame.header;
    let mut deferred = false;
    let request = decode_request(frame);
    if how == Serving::Inline && !request.as_ref().is_ok_and(runs_inline) {
        return Step::NotInline;
    }
    let result = request
        .map_err(wire_fail)
        .and_then(|req| answer(b, info, h, req, out, (default_durable, &mut deferred)));
    if let Err((status, message)) = result {
        encode_error(h, status, &message, out.buf());
        return Step::Served(false, status);
    }
    Step::Served(deferred, Status::Ok)
}

/// The request a frame carries, its envelope (checked by the connection, `access::admit`)
/// set aside.
pub(super) fn decode_request(frame: &Frame) -> Result<Request, WireError> {
    if frame.header.flags & crate::wire::FLAG_ENVELOPE == 0 {
        return Request::decode(frame);
    }
    Request::decode(&super::access::strip_envelope(frame.clone())?)
}

/// Whether the backend's default is durable, and where to record that durability was deferred.
type Defer<'a> = (bool, &'a mut bool);

fn answer(
    b: &dyn Backend,
    info: &NodeInfo,
    h: &Header,
    req: Request,
    out: &mut Output,
    defer: Defer,
) -> Result<(), Failure> {
    let key = Key(h.key);
    let reply = match req {
        Request::Ping => Reply::Pong,
        // The greeting is answered by the connection; the version is fixed for its life.
        Request::Handshake(_) => {
            return Err((
                Status::BadRequest,
                "HANDSHAKE comes once, as a connection's first frame; open a new connection \
                 to negotiate again"
                    .into(),
            ))
        }
        Request::Auth(_) => {
            return Err((
                Status::BadRequest,
                "AUTH comes once, right after a HANDSHAKE that offered a key".into(),
            ))
        }
        Request::Lookup(l) => Reply::Meta(value_meta(&trusted_meta(b, info, &key, l.column)?)),
        Request::Read(r) => {
            if info.quarantine.before().is_some() {
                trusted_meta(b, info, &key, r.column)?;
            }
            return read(b, h, &key, &r, out);
        }
        Request::Write(w) => {
            let size = write(b, &key, &w, defer)?;
            super::watch_changes::written(info, out, &key, &w, size);
            Reply::Write(WriteAck { size })
        }
        Request::Remove(r) => {
            let named = super::watch_changes::before_remove(b, info, &key, &r);
            match remove(b, &key, &r, defer) {
                // A hinted remove of a key the owner has and this node does not: remembered
                // here and handed to the owner (`hints.rs`), so it is done, not absent.
                Err((Status::NotFound, _)) if h.is_hinted() => {}
                other => other?,
            }
            super::watch_changes::removed(info, out, &key, &r, named);
            Reply::Removed
        }
        Request::Iterate(r) => return iterate(b, info, h, &r, out.buf()),
        Request::BulkRead(r) => return bulk_read(b, info, h, &r, out.buf()),
        Request::Stat => Reply::Stat(info.stat_json(b)),
        Request::Leave(ask) => {
            let text = info
                .leave_json(ask)
                .map_err(|why| (Status::BadRequest, why))?;
            Reply::Leave(text)
        }
        Request::RouteList => Reply::RouteList(info.routes_json()),
        Request::List(r) => {
            refuse_if_quarantined(info)?;
            Reply::List(super::list::list(b, info, &r).map_err(fail)?)
        }
        // The connection serves subscriptions (`subscriptions.rs`); none reaches a batch.
        Request::Watch(_) => {
            return Err((
                Status::BadRequest,
                "WATCH is served by the connection".into(),
            ))
        }
        Request::RangeDigest(r) => {
            Reply::RangeDigest(crate::cluster::local::range_digest(b, &r).map_err(fail)?)
        }
        Request::Defrag { wait: true } => {
            let report = b.defrag().map_err(fail)?;
            Reply::Defrag(serde_json::to_string(&report).unwrap_or_default())
        }
        Request::Defrag { wait: false } => {
            if b.kind() != "blob" {
                let why = format!("the {} backend has nothing to defragment", b.kind());
                return Err(fail(ringblob_backends::Error::Unsupported(why)));
            }
            let started = info.start_defrag.as_ref().map(|start| start()).is_some();
            Reply::Defrag(serde_json::json!({ "started": started }).to_string())
        }
    };
    reply.encode(h, out.buf()).map_err(wire_fail)
}

/// Turns a durable write into a non-durable one whose durability the batch provides.
/// Only called once the operation is about to run; a failed operation defers nothing
/// because its error reply is final either way.
fn deferrable(mut o: WriteOptions, (default_durable, deferred): Defer) -> WriteOptions {
    let durable = match o.durability {
        None => default_durable,
        Some(d) => d != ringblob_engine::Durability::None,
    };
    if durable {
        o.durability = Some(ringblob_engine::Durability::None);
        *deferred = true;
    }
    o
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
        ..WriteOptions::default()
    }
}

/// A READ: answered whole when the range is at most [`STREAM_PIECE`] bytes, else its first
/// piece here and the rest streamed by the connection (`read_stream.rs`).
fn read(
    b: &dyn Backend,
    h: &Header,
    key: &Key,
    r: &ReadRequest,
    out: &mut Output,
) -> Result<(), Failure> {
    let wanted = if r.size == READ_TO_END {
        u64::MAX
    } else {
        r.size
    };
    if r.offset == 0 && r.size == READ_TO_END && read_whole(b, h, key, r, out)? {
        return Ok(());
    }
    let len = wanted.min(STREAM_PIECE as u64);
    let range = Range::new(r.offset, len);
    let read = PIECES.read(b, (key, r.column), range, r.size != READ_TO_END);
    let first = read.map_err(|e| read_failure(b, h, key, r, e))?;
    if r.if_version.is_some_and(|v| v != first.timestamp_ns) {
        return Err(changed());
    }
    let end = r.offset.saturating_add(wanted).min(first.value_len);
    let next = r.offset + first.data.len() as u64;
    let last = next >= end;
    encode_piece(h, PIECES.bytes(first.data), last, out);
    if !last {
        out.set_stream(ReadStream::new(
            *h,
            r.column,
            first.timestamp_ns,
            (next, end),
        ));
    }
    Ok(())
}

/// A READ of a whole value answered from the buffer its record was read into, where the
/// backend reads it so (`Backend::reads_whole_in_place`): the value is neither copied out of
/// the record nor, when large, into the reply (`encode_piece`). The buffer is one of the
/// node's kept value buffers (`piece_pool::VALUES`, as the gateway's GETs use), back once the
/// reply is written: a new one was zeroed before every read (2 % of a 64 KiB GET). `false`:
/// not read here (a record over one `pread`), to be read as a range.
fn read_whole(
    b: &dyn Backend,
    h: &Header,
    key: &Key,
    r: &ReadRequest,
    out: &mut Output,
) -> Result<bool, Failure> {
    if !b.reads_whole_in_place() {
        return Ok(false);
    }
    let whole = b.read_column_whole_in(key, r.column, VALUES.take(), STREAM_PIECE as u64);
    let Some(w) = whole.map_err(|e| read_failure(b, h, key, r, e))? else {
        return Ok(false);
    };
    if r.if_version.is_some_and(|v| v != w.timestamp_ns) {
        return Err(changed());
    }
    encode_piece(h, VALUES.bytes(w.buffer).slice(w.at), true, out);
    Ok(true)
}

/// What a failed read of (key, column) answers.
fn read_failure(
    b: &dyn Backend,
    h: &Header,
    key: &Key,
    r: &ReadRequest,
    e: ringblob_backends::Error,
) -> Failure {
    match e {
        // Asked by another node during a hand-over (`LOCAL`): "nothing here" is NOT_FOUND,
        // so the asking node looks in its own storage; CHANGED would end the client's read
        // although the version it pinned is there (`docs/PROTOCOL.md` §7.3, §15.10).
        ringblob_backends::Error::NotFound(_) if r.if_version.is_some() && !h.is_local() => {
            changed()
        }
        other => fail_read(b, key, r.column, other),
    }
}

/// A `READ` with `IF_VERSION` that found another version, or none.
fn changed() -> Failure {
    (
        Status::Changed,
        "the value is not the version asked for (replaced or removed)".into(),
    )
}

/// The meta of (key, column) for a read. While this node is quarantined (`quarantine.rs`)
/// only a record written since the quarantine began is served: anything else, found or
/// not, is `UNAVAILABLE`.
fn trusted_meta(b: &dyn Backend, info: &NodeInfo, key: &Key, column: u16) -> Result<Meta, Failure> {
    let found = b.lookup_column(key, column);
    // A record known to be damaged is described as a read of it would end: a replicated
    // read then repairs this group from another, even when another holds a newer version.
    if found.is_ok() && b.known_damaged(key, column) {
        let why = "stored data is damaged: the record is known to fail its checks and is \
                   never served; a copy from another group replaces it";
        return Err((Status::ChecksumMismatch, why.into()));
    }
    let Some(since) = info.quarantine.before() else {
        return found.map_err(|e| fail_read(b, key, column, e));
    };
    match found {
        Ok(m) if m.timestamp_ns >= since => Ok(m),
        Ok(_) | Err(ringblob_backends::Error::NotFound(_)) => Err(quarantined("ask")),
        Err(e) => Err(fail(e)),
    }
}

/// A quarantined node's name index may hold names removed elsewhere while it was away: its
/// LIST answers `UNAVAILABLE`, so a listing client takes another group's (as it does for a
/// group whose node does not answer), until repair ends the quarantine.
fn refuse_if_quarantined(info: &NodeInfo) -> Result<(), Failure> {
    match info.quarantine.before() {
        None => Ok(()),
        Some(_) => Err(quarantined("list")),
    }
}

/// `UNAVAILABLE` from a quarantined node, telling the client to `ask` (or list) another
/// group.
fn quarantined(ask: &str) -> Failure {
    let why = format!(
        "this node was away longer than the remove retention and is quarantined until repair \
         has compared its data with the other groups; {ask} another group"
    );
    (Status::Unavailable, why)
}

/// A read's failure; a (key, column) with no value that this node remembers as removed is
/// `REMOVED` with the remove's version, so replicated reads weigh it against values.
fn fail_read(b: &dyn Backend, key: &Key, column: u16, e: ringblob_backends::Error) -> Failure {
    if !matches!(e, ringblob_backends::Error::NotFound(_)) {
        return fail(e);
    }
    match crate::cluster::local::removed_at(b, key, column) {
        Some(ts) => (Status::Removed, crate::wire::removed_message(ts)),
        None => fail(e),
    }
}

fn write(b: &dyn Backend, key: &Key, w: &WriteRequest, defer: Defer) -> Result<u64, Failure> {
    check_deadline(w.deadline_ns, now_ns())?;
    check_name_record(key, w)?;
    let mut o = options(w.compress, w.durability);
    if let Some(ts) = w.if_newer.or(w.version) {
        o.timestamp_ns = Some(ts);
        o.only_if_newer = true;
    }
    if !matches!(w.mode, WriteMode::Prepare { .. } | WriteMode::Part { .. }) {
        o = deferrable(o, defer);
    }
    let c = w.column;
    let size = match w.mode {
        WriteMode::Whole => b.write_column(key, c, &w.data, o),
        WriteMode::Append => b.append_column(key, c, &w.data, o),
        WriteMode::AtOffset { offset } => b.write_at_column(key, c, offset, &w.data, o),
        WriteMode::Prepare { reserve } => b.prepare_column(key, c, reserve).map(|()| 0),
        WriteMode::Part { offset } => b
            .write_part_column(key, c, offset, &w.data)
            .map(|()| offset + w.data.len() as u64),
        WriteMode::Commit { size } => b.commit_column(key, c, size, o),
    };
    match size {
        // Superseded by a newer record: the write is answered as landed and overwritten.
        Err(ringblob_backends::Error::NotNewer { .. }) if w.version.is_some() => {
            Ok(superseded_size(b, key, w))
        }
        other => other.map_err(fail),
    }
}

/// The reserved name column (`docs/OBJECTS.md` §10) takes only whole, valid name records of
/// the key from clients, versioned or not; a copy from another node (`IF_NEWER`) lands as
/// its sender has it (the backend then indexes it only if valid).
fn check_name_record(key: &Key, w: &WriteRequest) -> Result<(), Failure> {
    use ringblob_backends::names::{NameRecord, NAME_COLUMN};
    if w.column != NAME_COLUMN || w.if_newer.is_some() {
        return Ok(());
    }
    let bad = |why: String| Err((Status::BadRequest, why));
    match w.mode {
        WriteMode::Whole => match NameRecord::decode(&w.data) {
            Ok(rec) if rec.key() == *key => Ok(()),
            Ok(_) => bad("the name record's namespace and name do not derive its key".into()),
            Err(e) => bad(format!("column {NAME_COLUMN} holds name records: {e}")),
        },
        _ => bad(format!(
            "column {NAME_COLUMN} holds name records: write them whole"
        )),
    }
}

/// The size a superseded versioned write reports: the size it would have written (for a
/// write into a value, the stored value's size).
fn superseded_size(b: &dyn Backend, key: &Key, w: &WriteRequest) -> u64 {
    match w.mode {
        WriteMode::Whole => w.data.len() as u64,
        WriteMode::Commit { size } => size,
        _ => b.lookup_column(key, w.column).map_or(0, |m| m.size),
    }
}

/// REMOVE: one column, or the key with every column.
fn remove(b: &dyn Backend, key: &Key, r: &RemoveRequest, defer: Defer) -> Result<(), Failure> {
    check_deadline(r.deadline_ns, now_ns())?;
    let mut o = deferrable(options(false, r.durability), defer);
    if let Some(ts) = r.if_newer.or(r.version) {
        o.timestamp_ns = Some(ts);
        o.only_if_newer = true;
    }
    let removed = match r.column {
        Some(column) => b.remove_column(key, column, o),
        None => b.remove(key, o),
    };
    match removed {
        // Superseded by a newer record: answered as removed and written over since.
        Err(ringblob_backends::Error::NotNewer { .. }) if r.version.is_some() => Ok(()),
        other => other.map_err(fail),
    }
}

fn iterate(
    b: &dyn Backend,
    info: &NodeInfo,
    h: &Header,
    r: &IterateRequest,
    out: &mut BytesMut,
) -> Result<(), Failure> {
    let (entries, end) = crate::cluster::local::iterate(b, r).map_err(fail)?;
    // Version 3 readers are told when keys of the range may still be arriving (§7.6).
    let moving = h.version >= 3
        && info
            .route_table()
            .is_some_and(|t| info.handovers.moving_in(&r.from, &r.to, &t));
    crate::wire::encode_iterate_reply_moving(h, &entries, (end, moving), out).map_err(wire_fail)
}

/// Each key's size is looked up before its value is read, so a value that would not fit the
/// reply (over `MAX_VALUE_IN_FRAME`, or past `MAX_BULK_REPLY_BYTES` in all) is answered
/// `TOO_LARGE` without being read; a key named more than once is read once. The work a
/// BULK_READ causes is bounded by its reply, not by how many times it names a big value.
fn bulk_read(
    b: &dyn Backend,
    info: &NodeInfo,
    h: &Header,
    r: &BulkReadRequest,
    out: &mut BytesMut,
) -> Result<(), Failure> {
    if r.keys.is_empty() {
        return Err((Status::BadRequest, "BULK_READ of no keys".into()));
    }
    let start = out.len();
    let mut total = 0usize;
    let mut read: std::collections::HashMap<[u8; 32], (Status, Bytes)> =
        std::collections::HashMap::new();
    for (i, k) in r.keys.iter().enumerate() {
        let (status, data) = match read.get(k) {
            Some(done) => done.clone(),
            None => {
                let done = bulk_item(b, info, &Key(*k), r.column, total);
                read.insert(*k, done.clone());
                done
            }
        };
        // A repeated key's value counts again: it is in the reply again.
        let (status, data) = if total + data.len() > MAX_BULK_REPLY_BYTES {
            (Status::TooLarge, Bytes::new())
        } else {
            (status, data)
        };
        total += data.len();
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

/// One BULK_READ item: its value if it fits beside the `so_far` bytes already in the reply.
/// A quarantined node answers as a `READ` would (`trusted_meta`): `UNAVAILABLE` for anything
/// older than the quarantine.
fn bulk_item(
    b: &dyn Backend,
    info: &NodeInfo,
    key: &Key,
    column: u16,
    so_far: usize,
) -> (Status, Bytes) {
    let meta = match info.quarantine.before() {
        Some(_) => trusted_meta(b, info, key, column).map_err(|(status, _)| status),
        None => b.lookup_column(key, column).map_err(|e| status_of(&e)),
    };
    let size = match meta {
        Ok(m) => m.size,
        Err(status) => return (status, Bytes::new()),
    };
    // One reply is built in memory: past the budget, items say TOO_LARGE and the client
    // reads those keys one by one.
    if size > MAX_VALUE_IN_FRAME as u64 || so_far as u64 + size > MAX_BULK_REPLY_BYTES as u64 {
        return (Status::TooLarge, Bytes::new());
    }
    match b.read_column(key, column, Range::all()) {
        Ok(v) if v.len() > MAX_VALUE_IN_FRAME => (Status::TooLarge, Bytes::new()),
        Ok(v) => (Status::Ok, Bytes::from(v)),
        Err(e) => (status_of(&e), Bytes::new()),
    }
}
