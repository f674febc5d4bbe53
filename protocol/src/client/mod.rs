//! The async Rust client: one pipelined connection per `Client` (clone-free sharing via
//! `Arc<Client>`), reconnect on demand, per-request timeouts, retries only for idempotent
//! commands, and streaming writes of values larger than one frame.

mod conn;
mod error;
mod find;
mod find_records;
mod groups;
mod listing;
pub mod object;
mod relay;
mod routed;
mod run_replies;
mod security;
mod target;
mod together;
mod upload;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub use error::ClientError;
pub use find::{
    space_target, FindAsk, FindCost, FindHit, FindPage, DEAD_ENTRY_GRACE, MAX_FIND_LIMIT,
};
pub use groups::{GroupOutcome, GroupRead, Quorum};
pub use listing::{merge_pages, ListPage};
pub use routed::RoutedClient;
pub use run_replies::RunReplies;
pub use security::{check_node_proof, Attempt, ClientSecurity, Credentials};
pub use target::Target;
pub use upload::{restarting, restarting_when, UPLOAD_ATTEMPTS};
pub use watch::{Subscription, Watch, WatchEvent, WatchTarget, TABLE_EVERY, WATCH_BUFFER};

use crate::wire::{
    BulkItem, BulkReadRequest, Command, Durability, HandshakeRequest, Header, IterEntry,
    IterateEnd, IterateRequest, KeyId, LookupRequest, RangeDigestReply, RangeDigestRequest,
    ReadRequest, RemoveRequest, Reply, Request, Status, ValueMeta, WriteMode, WriteRequest,
    READ_TO_END,
};
use conn::Conn;

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Per-request deadline (all reply parts).
    pub timeout: Duration,
    /// How long opening a TCP connection may take (a host that is down may never answer).
    pub connect_timeout: Duration,
    /// Extra attempts for idempotent requests after a connection failure or timeout.
    pub retries: u32,
    /// Sent in the handshake.
    pub name: String,
    /// Replica group requests target (0 = the node's own).
    pub group: u32,
    /// Part size of streaming writes.
    pub part_size: usize,
    /// Values larger than this are stored as chunked objects of chunks this size
    /// ([`object`]); 4 KiB to 1 GiB.
    pub chunk_size: u64,
    /// The access key to authenticate with (and TLS settings).
    pub security: ClientSecurity,
    /// A node's client acting for this access key (the request envelope): the node
    /// applies that key's role and namespaces. Only a node key may act for another.
    pub acting: Option<String>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            retries: 2,
            name: format!("ringblob-client/{}", env!("CARGO_PKG_VERSION")),
            group: 0,
            part_size: 8 << 20,
            chunk_size: object::DEFAULT_CHUNK_SIZE,
            security: ClientSecurity::default(),
            acting: None,
        }
    }
}

/// How to write.
#[derive(Debug, Clone, Copy, Default)]
pub struct PutOptions {
    pub compress: bool,
    pub durability: Durability,
    /// A copy of a record stamped with this timestamp: stored only over an older record
    /// (`NOT_NEWER` otherwise). Hand-over and repair between nodes write this way.
    pub if_newer: Option<u64>,
    /// The write's version (`WRITE` `VERSION`), chosen by the writer: the same write sent to
    /// several groups then carries one version everywhere (last writer wins against any
    /// other). `None`: the node that accepts it chooses.
    pub version: Option<u64>,
}

impl PutOptions {
    /// A copy of a record stamped `timestamp_ns`, stored only if newer than the receiver's.
    pub fn copy_if_newer(timestamp_ns: u64) -> Self {
        PutOptions {
            if_newer: Some(timestamp_ns),
            ..PutOptions::default()
        }
    }
}

type Result<T> = std::result::Result<T, ClientError>;

/// A connection to one node.
pub struct Client {
    addr: String,
    config: ClientConfig,
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
}

fn idempotent(cmd: Command) -> bool {
    !matches!(cmd, Command::Write | Command::Remove)
}

impl Client {
    /// Connects and handshakes.
    pub async fn connect(addr: &str, config: ClientConfig) -> Result<Client> {
        let client = Client {
            addr: addr.to_string(),
            config,
            conn: tokio::sync::Mutex::new(None),
        };
        client.connection().await?;
        Ok(client)
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The live connection, reconnecting (with a handshake) if it died.
    async fn connection(&self) -> Result<Arc<Conn>> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_dead()) {
            return Ok(c.clone());
        }
        let tls = self.config.security.tls.as_ref();
        let c = Arc::new(Conn::open(&self.addr, self.config.connect_timeout, tls).await?);
        self.greet(&c).await?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// HANDSHAKE (in header version 1, which every node reads), then — with an access key —
    /// AUTH, checking the node's proof. Requests then use the negotiated version.
    async fn greet(&self, c: &Conn) -> Result<()> {
        let attempt = self
            .config
            .security
            .credentials
            .get()
            .map(security::Attempt::new);
        let mut hs = HandshakeRequest::new(self.config.name.clone());
        if let Some(a) = &attempt {
            hs = a.offer(hs);
        }
        c.set_version(crate::wire::MIN_PROTOCOL_VERSION);
        let reply = match self
            .exchange_on(c, &Request::Handshake(hs), &Target::NONE)
            .await?
            .pop()
        {
            Some(Reply::Handshake(r)) => r,
            other => {
                return Err(ClientError::Unexpected(format!(
                    "handshake answered with {other:?}"
                )))
            }
        };
        c.set_version(reply.version);
        let Some(a) = attempt else {
            return Ok(());
        };
        let (proof, expected) = a.prove(&self.config.name, &reply)?;
        let req = Request::Auth(crate::wire::AuthRequest { proof });
        match self.exchange_on(c, &req, &Target::NONE).await {
            Ok(mut r) => match r.pop() {
                Some(Reply::Auth(r)) => security::check_node_proof(&r, &expected),
                other => Err(ClientError::Unexpected(format!(
                    "AUTH answered with {other:?}"
                ))),
            },
            Err(ClientError::Status { status, message }) => {
                Err(ClientError::Auth(format!("{status}: {message}")))
            }
            Err(e) => Err(e),
        }
    }

    /// Sends `req` for `key` on `conn`; returns its transaction id and reply channel.
    async fn send(
        &self,
        conn: &Conn,
        req: &Request,
        key: &Target,
    ) -> Result<(
        u64,
        tokio::sync::mpsc::UnboundedReceiver<crate::wire::Frame>,
    )> {
        let group = self.config.group;
        let version = conn.version();
        conn.send(|trans, buf| {
            let mut h = Header::request(req.command(), trans, key.id(), group);
            h.version = version;
            key.encode_request(req, &mut h, buf, self.config.acting.as_deref())?;
            Ok(h)
        })
        .await
    }

    async fn exchange_on(&self, conn: &Conn, req: &Request, key: &Target) -> Result<Vec<Reply>> {
        let (trans, rx) = self.send(conn, req, key).await?;
        self.collect(conn, trans, rx).await
    }

    /// Every reply frame of transaction `trans` (an error reply as the error), within the
    /// configured timeout.
    async fn collect(
        &self,
        conn: &Conn,
        trans: u64,
        mut rx: tokio::sync::mpsc::UnboundedReceiver<crate::wire::Frame>,
    ) -> Result<Vec<Reply>> {
        let collect = async {
            let mut replies = Vec::new();
            loop {
                let Some(frame) = rx.recv().await else {
                    let why = conn.closed_reason("connection closed before the reply");
                    return Err(ClientError::Disconnected(why));
                };
                let more = frame.header.has_more();
                match Reply::decode(&frame)? {
                    Reply::Error { status, message } => {
                        return Err(ClientError::Status { status, message })
                    }
                    r => replies.push(r),
                }
                if !more {
                    return Ok(replies);
                }
            }
        };
        match tokio::time::timeout(self.config.timeout, collect).await {
            Ok(r) => r,
            Err(_) => {
                conn.forget(trans);
                Err(ClientError::Timeout(self.config.timeout))
            }
        }
    }

    /// Sends `req` and collects every reply frame; retries idempotent requests.
    pub async fn call(&self, req: &Request, key: impl Into<Target>) -> Result<Vec<Reply>> {
        let key = key.into();
        let mut attempt = 0;
        loop {
            let result = match self.connection().await {
                Ok(conn) => self.exchange_on(&conn, req, &key).await,
                Err(e) => Err(e),
            };
            match result {
                Err(e)
                    if e.is_retryable()
                        && idempotent(req.command())
                        && attempt < self.config.retries =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                }
                other => return other,
            }
        }
    }

    pub async fn ping(&self) -> Result<()> {
        self.call(&Request::Ping, [0; 32]).await.map(|_| ())
    }

    /// Describes the value (column 0).
    pub async fn lookup(&self, key: impl Into<Target>) -> Result<ValueMeta> {
        self.lookup_column(key, 0).await
    }

    /// Describes one column of a key.
    pub async fn lookup_column(&self, key: impl Into<Target>, column: u16) -> Result<ValueMeta> {
        let req = Request::Lookup(LookupRequest { column });
        match self.call(&req, key).await?.pop() {
            Some(Reply::Meta(m)) => Ok(m),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Reads `size` bytes (`None`: to the end) from `offset` of the value (column 0).
    pub async fn get(
        &self,
        key: impl Into<Target>,
        offset: u64,
        size: Option<u64>,
    ) -> Result<Bytes> {
        self.get_column(key, 0, offset, size).await
    }

    /// Reads `size` bytes (`None`: to the end) from `offset` of one column; parts are joined.
    pub async fn get_column(
        &self,
        key: impl Into<Target>,
        column: u16,
        offset: u64,
        size: Option<u64>,
    ) -> Result<Bytes> {
        let req = Request::Read(ReadRequest::range(
            column,
            offset,
            size.unwrap_or(READ_TO_END),
        ));
        let key = key.into();
        let mut replies = self.call(&req, key.clone()).await;
        // A long reply whose value was replaced while it was sent: nothing was handed out
        // yet, so read the new version.
        for _ in 0..3 {
            match &replies {
                Err(e) if e.status() == Some(Status::Changed) => {
                    replies = self.call(&req, key.clone()).await
                }
                _ => break,
            }
        }
        let replies = replies?;
        if let [Reply::ReadPart { data, .. }] = replies.as_slice() {
            return Ok(data.clone());
        }
        let mut out = BytesMut::new();
        for r in replies {
            match r {
                Reply::ReadPart { data, .. } => out.extend_from_slice(&data),
                other => return Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        }
        Ok(out.freeze())
    }

    /// Streams `size` bytes (`None`: to the end) from `offset` into `out` as the node's reply
    /// parts arrive, without holding the value in memory; returns the bytes written. Each
    /// part must arrive within the timeout. Retried (idempotent) only before any byte was
    /// written.
    pub async fn get_to<W: AsyncWrite + Unpin>(
        &self,
        key: impl Into<Target>,
        offset: u64,
        size: Option<u64>,
        out: &mut W,
    ) -> Result<u64> {
        self.get_column_to(key, 0, (offset, size), out).await
    }

    /// [`get_to`](Self::get_to) for one column; `range` is (offset, size or `None` for to
    /// the end).
    pub async fn get_column_to<W: AsyncWrite + Unpin>(
        &self,
        key: impl Into<Target>,
        column: u16,
        (offset, size): (u64, Option<u64>),
        out: &mut W,
    ) -> Result<u64> {
        let req = ReadRequest::range(column, offset, size.unwrap_or(READ_TO_END));
        self.read_request_to(key, req, out).await
    }

    /// Streams the reply to `req` into `out`; returns the bytes written. Retried
    /// (idempotent) only before any byte was written.
    pub async fn read_request_to<W: AsyncWrite + Unpin>(
        &self,
        key: impl Into<Target>,
        req: ReadRequest,
        out: &mut W,
    ) -> Result<u64> {
        let req = Request::Read(req);
        let key = key.into();
        let mut attempt = 0;
        loop {
            let mut written = 0u64;
            let result = match self.connection().await {
                Ok(conn) => {
                    self.stream_parts(&conn, &req, &key, out, &mut written)
                        .await
                }
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.is_retryable() && written == 0 && attempt < self.config.retries => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                }
                Err(e) => return Err(e),
                Ok(()) => return Ok(written),
            }
        }
    }

    async fn stream_parts<W: AsyncWrite + Unpin>(
        &self,
        conn: &Conn,
        req: &Request,
        key: &Target,
        out: &mut W,
        written: &mut u64,
    ) -> Result<()> {
        let group = self.config.group;
        let version = conn.version();
        let (trans, mut rx) = conn
            .send_streamed(|trans, buf| {
                let mut h = Header::request(req.command(), trans, key.id(), group);
                h.version = version;
                key.encode_request(req, &mut h, buf, self.config.acting.as_deref())?;
                Ok(h)
            })
            .await?;
        loop {
            let frame = match tokio::time::timeout(self.config.timeout, rx.recv()).await {
                Ok(Some(f)) => f,
                Ok(None) => {
                    return Err(ClientError::Disconnected(
                        conn.closed_reason("connection closed mid-reply"),
                    ))
                }
                Err(_) => {
                    conn.forget(trans);
                    return Err(ClientError::Timeout(self.config.timeout));
                }
            };
            match Reply::decode(&frame)? {
                Reply::ReadPart { data, more } => {
                    out.write_all(&data)
                        .await
                        .map_err(|e| ClientError::Output(e.to_string()))?;
                    *written += data.len() as u64;
                    if !more {
                        return out
                            .flush()
                            .await
                            .map_err(|e| ClientError::Output(e.to_string()));
                    }
                }
                Reply::Error { status, message } => {
                    return Err(ClientError::Status { status, message })
                }
                other => return Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        }
    }

    pub(crate) async fn write(
        &self,
        at: (Target, u16),
        mode: WriteMode,
        data: Bytes,
        o: PutOptions,
    ) -> Result<u64> {
        let (key, column) = at;
        let req = write_request((mode, column), data, o);
        written(self.call(&req, key).await?)
    }

    /// Appends to the value (column 0); returns its new size.
    pub async fn append(&self, key: impl Into<Target>, data: Bytes, o: PutOptions) -> Result<u64> {
        self.append_column(key, 0, data, o).await
    }

    /// Appends to one column of a key; returns its new size.
    pub async fn append_column(
        &self,
        key: impl Into<Target>,
        column: u16,
        data: Bytes,
        o: PutOptions,
    ) -> Result<u64> {
        self.write((key.into(), column), WriteMode::Append, data, o)
            .await
    }

    /// Writes at an offset inside the value (column 0); returns its new size.
    pub async fn write_at(
        &self,
        key: impl Into<Target>,
        offset: u64,
        data: Bytes,
        o: PutOptions,
    ) -> Result<u64> {
        self.write_at_column(key, 0, offset, data, o).await
    }

    /// Writes at an offset inside one column of a key; returns its new size.
    pub async fn write_at_column(
        &self,
        key: impl Into<Target>,
        column: u16,
        offset: u64,
        data: Bytes,
        o: PutOptions,
    ) -> Result<u64> {
        self.write(
            (key.into(), column),
            WriteMode::AtOffset { offset },
            data,
            o,
        )
        .await
    }

    /// Removes a key: every column of it.
    pub async fn remove(&self, key: impl Into<Target>, durability: Durability) -> Result<()> {
        self.remove_request(key, client_remove(durability, None, None))
            .await
    }

    /// Removes the key with every column at `version`, chosen by the caller (`REMOVE`
    /// `VERSION`): a column written later than `version` keeps its value (the remove is
    /// superseded there). The same remove sent to several groups carries one version.
    pub async fn remove_at(
        &self,
        key: impl Into<Target>,
        durability: Durability,
        version: u64,
    ) -> Result<()> {
        self.remove_request(key, client_remove(durability, None, Some(version)))
            .await
    }

    /// Removes one column of a key, leaving the others.
    pub async fn remove_column(
        &self,
        key: impl Into<Target>,
        column: u16,
        durability: Durability,
    ) -> Result<()> {
        let req = client_remove(durability, Some(column), None);
        self.remove_request(key, req).await
    }

    /// Removes one column at `version`, chosen by the caller (as
    /// [`remove_at`](Self::remove_at)).
    pub async fn remove_column_at(
        &self,
        key: impl Into<Target>,
        column: u16,
        durability: Durability,
        version: u64,
    ) -> Result<()> {
        let req = client_remove(durability, Some(column), Some(version));
        self.remove_request(key, req).await
    }

    /// Copies a remove of one column made elsewhere at `timestamp_ns` (repair): applied
    /// only over an older record (`NOT_NEWER` otherwise) and remembered by the node.
    pub async fn remove_column_if_newer(
        &self,
        key: impl Into<Target>,
        column: u16,
        timestamp_ns: u64,
    ) -> Result<()> {
        let req = RemoveRequest {
            durability: Durability::Default,
            column: Some(column),
            if_newer: Some(timestamp_ns),
            version: None,
            deadline_ns: None,
        };
        self.remove_request(key, req).await
    }

    /// Copies a remove of the whole key made elsewhere at `timestamp_ns` (hand-over, repair,
    /// hint replay): every column older than it is removed, and the node remembers the key
    /// as removed whole, so no older copy of any of its columns lands later (`NOT_NEWER`
    /// when every column was newer). A node from before this request answers
    /// `BAD_REQUEST`.
    pub async fn remove_if_newer(&self, key: impl Into<Target>, timestamp_ns: u64) -> Result<()> {
        let req = RemoveRequest {
            durability: Durability::Default,
            column: None,
            if_newer: Some(timestamp_ns),
            version: None,
            deadline_ns: None,
        };
        self.remove_request(key, req).await
    }

    async fn remove_request(&self, key: impl Into<Target>, req: RemoveRequest) -> Result<()> {
        self.call(&Request::Remove(req), key).await.map(|_| ())
    }

    /// One page of entries (one per live column of each key) in `from..=to` after `after`.
    pub async fn iterate(&self, req: IterateRequest) -> Result<(Vec<IterEntry>, IterateEnd)> {
        let (entries, end, _) = self.iterate_page(req).await?;
        Ok((entries, end))
    }

    /// [`Client::iterate`], and whether the node said keys of the range may still be
    /// arriving from a range's previous owner (`MOVING`, version 3).
    pub async fn iterate_page(
        &self,
        req: IterateRequest,
    ) -> Result<(Vec<IterEntry>, IterateEnd, bool)> {
        let mut entries = Vec::new();
        let mut end = IterateEnd::Done;
        let mut moving = false;
        for r in self.call(&Request::Iterate(req), [0; 32]).await? {
            match r {
                Reply::IteratePart(p) => {
                    entries.extend(p.entries);
                    end = p.end.unwrap_or(end);
                    moving |= p.moving;
                }
                other => return Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        }
        Ok((entries, end, moving))
    }

    /// The whole value (column 0) of each key.
    pub async fn bulk_read(&self, keys: Vec<KeyId>) -> Result<Vec<BulkItem>> {
        self.bulk_read_column(keys, 0).await
    }

    /// The whole `column` of each key.
    pub async fn bulk_read_column(&self, keys: Vec<KeyId>, column: u16) -> Result<Vec<BulkItem>> {
        let req = Request::BulkRead(BulkReadRequest { column, keys });
        let replies = self.call(&req, [0; 32]).await?;
        replies
            .into_iter()
            .map(|r| match r {
                Reply::BulkItem { item, .. } => Ok(item),
                other => Err(ClientError::Unexpected(format!("{other:?}"))),
            })
            .collect()
    }

    /// STAT: the node's JSON object.
    pub async fn stat(&self) -> Result<String> {
        match self.call(&Request::Stat, [0; 32]).await?.pop() {
            Some(Reply::Stat(s)) => Ok(s),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// DEFRAG: with `wait`, the report once it is done (JSON); otherwise whether it started.
    pub async fn defrag(&self, wait: bool) -> Result<String> {
        match self.call(&Request::Defrag { wait }, [0; 32]).await?.pop() {
            Some(Reply::Defrag(s)) => Ok(s),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// ROUTE_LIST: the node's JSON array.
    /// LEAVE: asks the node to hand its ranges to the rest of its group (and to stop once
    /// done), to cancel that, or only where its leave stands ([`LeaveAsk`]).
    ///
    /// [`LeaveAsk`]: crate::wire::LeaveAsk
    pub async fn leave(&self, ask: crate::wire::LeaveAsk) -> Result<serde_json::Value> {
        let req = Request::Leave(ask);
        match self.call(&req, [0; 32]).await?.pop() {
            Some(Reply::Leave(text)) => serde_json::from_str(&text)
                .map_err(|e| ClientError::Unexpected(format!("LEAVE reply: {e}"))),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    pub async fn routes(&self) -> Result<String> {
        match self.call(&Request::RouteList, [0; 32]).await?.pop() {
            Some(Reply::RouteList(s)) => Ok(s),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// STAT as a JSON value (its fields are the node's, `docs/PROTOCOL.md` §7.8).
    pub async fn stat_value(&self) -> Result<serde_json::Value> {
        let text = self.stat().await?;
        serde_json::from_str(&text).map_err(|e| ClientError::BadReply {
            what: "STAT",
            why: e.to_string(),
        })
    }

    /// DEFRAG's report (with `wait`) or its start acknowledgement, as a JSON value.
    pub async fn defrag_report(&self, wait: bool) -> Result<serde_json::Value> {
        let text = self.defrag(wait).await?;
        serde_json::from_str(&text).map_err(|e| ClientError::BadReply {
            what: "DEFRAG",
            why: e.to_string(),
        })
    }

    /// ROUTE_LIST as a route table (§15.5).
    pub async fn route_table(&self) -> Result<crate::ring::RouteTable> {
        let text = self.routes().await?;
        crate::ring::RouteTable::from_json(&text).map_err(|e| ClientError::BadReply {
            what: "ROUTE_LIST",
            why: e.to_string(),
        })
    }

    /// RANGE_DIGEST: the node's summary of the values it holds in a key range.
    pub async fn range_digest(&self, req: RangeDigestRequest) -> Result<RangeDigestReply> {
        match self.call(&Request::RangeDigest(req), [0; 32]).await?.pop() {
            Some(Reply::RangeDigest(d)) => Ok(d),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }
}

/// A client's `REMOVE` of the whole key (`column` `None`) or one column, at `version` or
/// at the node's clock.
fn client_remove(
    durability: Durability,
    column: Option<u16>,
    version: Option<u64>,
) -> RemoveRequest {
    RemoveRequest {
        durability,
        column,
        if_newer: None,
        version,
        deadline_ns: None,
    }
}

/// The `WRITE` of `data` in `mode` into `column`, with the options' conditions.
pub(crate) fn write_request(
    (mode, column): (WriteMode, u16),
    data: Bytes,
    o: PutOptions,
) -> Request {
    // Of a streamed write, the COMMIT carries the condition.
    let settles = matches!(mode, WriteMode::Whole | WriteMode::Commit { .. });
    Request::Write(WriteRequest {
        mode,
        compress: o.compress,
        durability: o.durability,
        column,
        if_newer: o.if_newer.filter(|_| settles),
        version: o.version.filter(|_| {
            o.if_newer.is_none()
                && !matches!(mode, WriteMode::Prepare { .. } | WriteMode::Part { .. })
        }),
        deadline_ns: None,
        data,
    })
}

/// The size a `WRITE`'s replies report.
pub(crate) fn written(mut replies: Vec<Reply>) -> Result<u64> {
    match replies.pop() {
        Some(Reply::Write(ack)) => Ok(ack.size),
        other => Err(ClientError::Unexpected(format!("{other:?}"))),
    }
}

/// Up to `n` bytes from `source` (fewer only at its end).
pub(crate) async fn read_up_to<R: AsyncRead + Unpin>(source: &mut R, n: usize) -> Result<BytesMut> {
    // Grown as bytes arrive (doubling from `FIRST_READ`), not reserved whole: a part is 8 MiB
    // by default, and a small value's upload must not map and unmap that much each time.
    const FIRST_READ: usize = 128 << 10;
    let mut buf = BytesMut::with_capacity(n.min(FIRST_READ));
    while buf.len() < n {
        if buf.len() == buf.capacity() {
            buf.reserve(buf.len().max(FIRST_READ).min(n - buf.len()));
        }
        let mut limited = (&mut *source).take((n - buf.len()) as u64);
        match limited.read_buf(&mut buf).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(ClientError::Input(e.to_string())),
        }
    }
    Ok(buf)
}
