//! The operations, once, as async functions over the Rust client: the sync `Client` blocks on
//! them with the interpreter released, the `AsyncClient` awaits them. Each does what the
//! `ringblob` CLI does for the same command, so Python and the CLI see the same objects:
//! without groups a value streams through the connected node's group; with groups a write
//! goes to each (W of N) and a read takes the newest replica, falling over and repairing.

use std::path::PathBuf;

use bytes::Bytes;
use ringblob_backends::names::{Attrs, NameRecord, NAME_COLUMN};
use ringblob_protocol::client::{
    restarting, restarting_when, Client, ClientError, PutOptions, Target,
};
use ringblob_protocol::wire::{
    Durability, ListRequest, ReadRequest, Status, MAX_LIST_LIMIT, READ_TO_END,
};
use tokio::io::AsyncRead;

use crate::failure::Failure;
use crate::settings::Settings;
use crate::target::NameArg;
use crate::values::{Entry, Found, Meta};

/// A client's settings and, once connected, its connection.
pub struct Inner {
    pub settings: Settings,
    client: tokio::sync::OnceCell<Client>,
}

/// How a write is made.
#[derive(Debug, Clone, Default)]
pub struct WriteAsk {
    pub column: Option<u16>,
    pub compress: bool,
    pub durability: Durability,
    /// The object's attributes (written with its name record, `docs/ATTRIBUTES.md`).
    pub attrs: Attrs,
}

impl WriteAsk {
    fn options(&self) -> PutOptions {
        PutOptions {
            compress: self.compress,
            durability: self.durability,
            ..PutOptions::default()
        }
    }
}

/// `none`, `batch`, `sync`, or the node's default.
pub fn durability(text: Option<&str>) -> Result<Durability, Failure> {
    match text {
        None => Ok(Durability::Default),
        Some("none") => Ok(Durability::None),
        Some("batch") => Ok(Durability::Batch),
        Some("sync") => Ok(Durability::Sync),
        Some(other) => Err(Failure::Usage(format!(
            "durability={other:?}: one of none, batch, sync"
        ))),
    }
}

impl Inner {
    pub fn new(settings: Settings) -> Inner {
        Inner {
            settings,
            client: tokio::sync::OnceCell::new(),
        }
    }

    /// The connection: the first address that answers (connected on first use).
    pub async fn client(&self) -> Result<&Client, Failure> {
        self.client
            .get_or_try_init(|| async {
                let mut last = None;
                for addr in &self.settings.addrs {
                    match Client::connect(addr, self.settings.config.clone()).await {
                        Ok(c) => return Ok(c),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.map_or_else(|| Failure::Usage("no address".into()), Failure::from))
            })
            .await
    }

    pub fn target(&self, name: &NameArg) -> Result<Target, Failure> {
        name.target(&self.settings.namespace)
    }

    fn groups(&self) -> &[u32] {
        &self.settings.groups
    }

    /// A whole value from memory: written whole (or appended, or at an offset), then its
    /// name record.
    pub async fn put(
        &self,
        name: &NameArg,
        data: Bytes,
        ask: WriteAsk,
        (append, offset): (bool, Option<u64>),
    ) -> Result<u64, Failure> {
        let (target, column) = (self.target(name)?, ask.column.unwrap_or(0));
        let c = self.client().await?;
        let o = ask.options();
        if !self.groups().is_empty() {
            if append || offset.is_some() {
                return Err(Failure::Usage("append and offset take no groups".into()));
            }
            let len = data.len() as u64;
            let (groups, w) = (self.groups(), self.settings.quorum);
            c.put_groups(target.clone(), column, data, o, groups, w)
                .await
                .map_err(Failure::quorum)?;
            self.record_name(name, column, len, (o, &ask.attrs)).await?;
            return Ok(len);
        }
        let plain = !append && offset.is_none() && column == 0 && ask.attrs.is_empty();
        if plain && c.fits_small_put(&data) {
            // One round trip: the value and its name record together.
            let record = self.name_record_bytes(name, data.len() as u64)?;
            return Ok(c.put_small(target, data, record, o).await?);
        }
        let size = match (append, offset) {
            (true, _) => c.append_column(target, column, data, o).await?,
            (false, Some(at)) => c.write_at_column(target, column, at, data, o).await?,
            (false, None) if column == 0 => {
                let hint = Some(data.len() as u64);
                // Bytes can be read again: a write whose key moved mid-way starts over.
                restarting(|| async {
                    let mut source: &[u8] = &data;
                    c.put_object(target.clone(), &mut source, (hint, o), |_| {})
                        .await
                })
                .await?
            }
            (false, None) => c.put_column(target, column, data, o).await?,
        };
        self.record_name(name, column, size, (o, &ask.attrs))
            .await?;
        Ok(size)
    }

    /// A value streamed from `source` (bounded memory: one part at a time), to every group
    /// with groups; then its name record.
    pub async fn put_streamed(
        &self,
        name: &NameArg,
        source: &mut (dyn AsyncRead + Unpin + Send),
        size_hint: Option<u64>,
        ask: WriteAsk,
    ) -> Result<u64, Failure> {
        let (target, column) = (self.target(name)?, ask.column.unwrap_or(0));
        let c = self.client().await?;
        let o = ask.options();
        let size = if self.groups().is_empty() {
            let mut source = source;
            match column {
                0 => {
                    c.put_object(target, &mut source, (size_hint, o), |_| {})
                        .await?
                }
                col => {
                    c.put_stream(target, col, &mut source, (size_hint, o), |_| {})
                        .await?
                }
            }
        } else {
            // Plain values in every group, as `ringblob --groups` writes them: replicated
            // reads, read repair and removes across groups handle plain values only.
            use ringblob_protocol::gateway::{stream_to_groups, GroupsFailure, Layout};
            let (groups, w) = (self.groups(), self.settings.quorum);
            let at = (&target, column, Layout::Plain);
            match stream_to_groups(c, at, source, (size_hint, o), (groups, w)).await {
                Ok((size, _)) => size,
                Err(GroupsFailure::Source(e)) => return Err(e.into()),
                Err(GroupsFailure::Quorum(outcome)) => return Err(Failure::quorum(outcome)),
            }
        };
        self.record_name(name, column, size, (o, &ask.attrs))
            .await?;
        Ok(size)
    }

    /// A file, streamed.
    pub async fn put_path(
        &self,
        name: &NameArg,
        path: PathBuf,
        ask: WriteAsk,
    ) -> Result<u64, Failure> {
        // A file can be read again: a write whose key moved mid-way starts over.
        let lost = |e: &Failure| matches!(e, Failure::Client(c) if c.is_upload_lost());
        restarting_when(lost, || async {
            let mut file = tokio::fs::File::open(&path).await?;
            let size = file.metadata().await?.len();
            self.put_streamed(name, &mut file, Some(size), ask.clone())
                .await
        })
        .await
    }

    /// The encoded name record of a value of `size` bytes written through `name` (none for a
    /// raw key), without attributes.
    fn name_record_bytes(&self, name: &NameArg, size: u64) -> Result<Option<Bytes>, Failure> {
        let Some(text) = name.name() else {
            return Ok(None);
        };
        let record = NameRecord::new(self.settings.namespace.clone(), text.as_bytes(), size);
        let bytes = record
            .encode()
            .map_err(|e| Failure::Usage(format!("name record: {e}")))?;
        Ok(Some(Bytes::from(bytes)))
    }

    /// The name record of a value of column 0 written through a name (`ls` lists it), with
    /// the object's attributes: as the CLI writes it, their index entries first and those of
    /// the attributes it replaces removed after (with groups, left to die with the old record).
    async fn record_name(
        &self,
        name: &NameArg,
        column: u16,
        size: u64,
        (o, attrs): (PutOptions, &Attrs),
    ) -> Result<(), Failure> {
        let (Some(text), 0) = (name.name(), column) else {
            if !attrs.is_empty() {
                return Err(Failure::Usage(
                    "attrs describe an object written through a name, in column 0".into(),
                ));
            }
            return Ok(());
        };
        let record = NameRecord {
            attrs: attrs.clone(),
            ..NameRecord::new(self.settings.namespace.clone(), text.as_bytes(), size)
        };
        let c = self.client().await?;
        let ns = &self.settings.namespace;
        if self.groups().is_empty() {
            if attrs.is_empty() {
                c.put_name_record(&record, o).await?;
                return Ok(());
            }
            let old = c.name_record(ns, text.as_bytes()).await?;
            let space = c.attribute_space(ns).await?;
            c.put_record_indexed(&record, old.as_ref(), &space, o)
                .await?;
            return Ok(());
        }
        if !attrs.is_empty() {
            let space = c.attribute_space(ns).await?;
            let (groups, w) = (self.groups(), self.settings.quorum);
            for (key, entry) in Client::index_entries(&record, &space) {
                let column = ringblob_protocol::attrs::ENTRY_COLUMN;
                c.put_groups(Target::Id(key), column, entry, o, groups, w)
                    .await
                    .map_err(Failure::quorum)?;
            }
        }
        let bytes = record
            .encode()
            .map_err(|e| Failure::Usage(format!("name {text:?}: {e}")))?;
        let target = self.target(name)?;
        let (groups, w) = (self.groups(), self.settings.quorum);
        c.put_groups(target, NAME_COLUMN, Bytes::from(bytes), o, groups, w)
            .await
            .map_err(Failure::quorum)?;
        Ok(())
    }

    /// `size` bytes (`None`: to the end) from `offset`: of an object or plain value in
    /// column 0, or of another column; with groups, of the newest replica (read whole,
    /// stale groups repaired).
    pub async fn get(
        &self,
        name: &NameArg,
        column: Option<u16>,
        (offset, size): (u64, Option<u64>),
    ) -> Result<Bytes, Failure> {
        let (target, column) = (self.target(name)?, column.unwrap_or(0));
        let c = self.client().await?;
        if !self.groups().is_empty() {
            let read = c.get_groups(target, column, self.groups()).await?;
            let v = read.value;
            let from = (offset as usize).min(v.len());
            let to = size.map_or(v.len(), |s| from.saturating_add(s as usize).min(v.len()));
            return Ok(v.slice(from..to));
        }
        self.read_range(name, Some(column), (offset, size), (None, None, false))
            .await
    }

    /// A range read from one group (`None`: the connected node's), as `open()` streams. With
    /// `version` (the value's `timestamp_ns` when it was opened) every read is of that
    /// version or fails `Changed`: a plain value's read is pinned on the node (`READ`
    /// `IF_VERSION`, one round trip); a chunked object's manifest is checked first.
    pub async fn read_range(
        &self,
        name: &NameArg,
        column: Option<u16>,
        (offset, size): (u64, Option<u64>),
        (group, version, object): (Option<u32>, Option<u64>, bool),
    ) -> Result<Bytes, Failure> {
        let (target, column) = (self.target(name)?, column.unwrap_or(0));
        let base = self.client().await?;
        let grouped;
        let c = match group {
            Some(g) => {
                grouped = base.in_group(g);
                &grouped
            }
            None => base,
        };
        if let (Some(v), false) = (version, object) {
            let mut req = ReadRequest::range(column, offset, size.unwrap_or(READ_TO_END));
            req.if_version = Some(v);
            let mut out = Vec::with_capacity(size.map_or(0, |s| s.min(64 << 20) as usize));
            c.read_request_to(target, req, &mut out).await?;
            return Ok(Bytes::from(out));
        }
        // A chunked object: its version looked up before and after the range is read (the
        // read pins itself to a lookup in between, so equal versions mean that one).
        same_version(c, &target, column, version).await?;
        let data = match column {
            0 => c.get_object(target.clone(), offset, size).await?,
            col => {
                let mut out = Vec::new();
                c.get_column_to(target.clone(), col, (offset, size), &mut out)
                    .await?;
                Bytes::from(out)
            }
        };
        same_version(c, &target, column, version).await?;
        Ok(data)
    }

    /// The meta of a value (of a chunked object, with the object's size, read consistently
    /// with it), and with groups the group holding the newest version (as a replicated
    /// read chooses it).
    pub async fn lookup(&self, name: &NameArg, column: Option<u16>) -> Result<Meta, Failure> {
        self.meta(name, column, true).await
    }

    /// [`Inner::lookup`]; the object's attributes (one more read, of its name record) only
    /// when `attrs`.
    async fn meta(
        &self,
        name: &NameArg,
        column: Option<u16>,
        attrs: bool,
    ) -> Result<Meta, Failure> {
        let (target, column) = (self.target(name)?, column.unwrap_or(0));
        let base = self.client().await?;
        let grouped;
        let (c, group) = match self.groups() {
            [] => (base, None),
            groups => {
                let (g, _) = base.newest_group(target.clone(), column, groups).await?;
                grouped = base.in_group(g);
                (&grouped, Some(g))
            }
        };
        let (meta, object) = match column {
            0 => c.object_meta(&target).await?,
            col => (c.lookup_column(target.clone(), col).await?, None),
        };
        let mut m = Meta::new(&target, &meta, object.as_ref(), group);
        if let (true, 0, Some(text)) = (attrs, column, name.name()) {
            // Attributes live in the name record (a damaged one shows none).
            let ns = &self.settings.namespace;
            if let Ok(Some(record)) = c.name_record(ns, text.as_bytes()).await {
                m.attrs = crate::values::attr_pairs(&record.attrs);
            }
        }
        Ok(m)
    }

    /// Whether the value exists (its meta alone: no read of its name record).
    pub async fn exists(&self, name: &NameArg, column: Option<u16>) -> Result<bool, Failure> {
        match self.meta(name, column, false).await {
            Ok(_) => Ok(true),
            Err(f) if f.is_not_found() => Ok(false),
            Err(f) => Err(f),
        }
    }

    /// Removes the key with every column (a chunked object with its chunks), or one column.
    pub async fn remove(
        &self,
        name: &NameArg,
        column: Option<u16>,
        d: Durability,
    ) -> Result<(), Failure> {
        let target = self.target(name)?;
        let c = self.client().await?;
        if !self.groups().is_empty() {
            if column.is_some() {
                return Err(Failure::Usage("a column remove takes no groups".into()));
            }
            let (groups, w) = (self.groups(), self.settings.quorum);
            c.remove_groups(target, d, groups, w)
                .await
                .map_err(Failure::quorum)?;
            return Ok(());
        }
        match column {
            Some(col) => {
                c.remove_column(target.clone(), col, d).await?;
                if col == 0 {
                    // The name describes the value (as `ringblob rm --column data` does).
                    match c.remove_column(target, NAME_COLUMN, d).await {
                        Err(e) if !e.is_not_found() => return Err(e.into()),
                        _ => {}
                    }
                }
            }
            None => c.remove_object(target, d).await?,
        }
        Ok(())
    }

    /// One page of the objects of `namespace` (default: the client's) whose attributes
    /// match `words` (`docs/ATTRIBUTES.md` §4), after the token `after`; the next token.
    pub async fn find(
        &self,
        namespace: Option<String>,
        (words, exact): (Vec<String>, bool),
        after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<Found>, Option<String>), Failure> {
        let query = ringblob_protocol::attrs::Query::parse(&words, exact)
            .map_err(|e| Failure::Usage(e.to_string()))?;
        let after = match after {
            Some(hex) => Some(
                ringblob_protocol::ring::RingId::from_hex(&hex)
                    .map_err(|e| Failure::Usage(format!("after: {e}")))?
                    .0,
            ),
            None => None,
        };
        let ask = ringblob_protocol::client::FindAsk {
            namespace: namespace.unwrap_or_else(|| self.settings.namespace.clone()),
            query,
            after,
            limit: limit.clamp(1, ringblob_protocol::client::MAX_FIND_LIMIT),
            groups: self.groups().to_vec(),
            scan: false,
        };
        let page = self.client().await?.find(&ask).await?;
        let found = page.hits.iter().map(Found::new).collect();
        let next = page
            .next
            .map(|k| ringblob_protocol::ring::RingId(k).to_hex());
        Ok((found, next))
    }

    /// One page of names (or of namespaces, `namespace` `None`) after `after`.
    pub async fn ls(
        &self,
        namespace: Option<String>,
        prefix: String,
        after: Option<Vec<u8>>,
        limit: u32,
    ) -> Result<(Vec<Entry>, Option<Bytes>), Failure> {
        let c = self.client().await?;
        let req = ListRequest {
            namespaces: namespace.is_none(),
            namespace: namespace.clone().unwrap_or_default(),
            prefix: Bytes::from(prefix),
            after: after.map(Bytes::from),
            limit: limit.clamp(1, MAX_LIST_LIMIT),
        };
        let page = c.list(&req, self.groups()).await?;
        let entries = page
            .entries
            .iter()
            .map(|e| Entry::new(e, namespace.is_none()))
            .collect();
        Ok((entries, page.next))
    }

    /// Many values at once (one `BULK_READ` per node); `None` for those that do not exist.
    /// Chunked objects are read one by one; so is everything with groups (each from its
    /// newest replica) or for a key limited to namespaces (a bulk read names no namespace).
    pub async fn bulk_get(
        &self,
        names: &[NameArg],
        column: Option<u16>,
    ) -> Result<Vec<Option<Bytes>>, Failure> {
        let col = column.unwrap_or(0);
        let c = self.client().await?;
        let targets = names
            .iter()
            .map(|n| self.target(n))
            .collect::<Result<Vec<_>, _>>()?;
        let items = match self.groups() {
            [] => {
                let keys = targets.iter().map(Target::id).collect();
                match c.bulk_read_column(keys, col).await {
                    Ok(items) => Some(items),
                    Err(e) if e.status() == Some(Status::Unauthorized) => None,
                    Err(e) => return Err(e.into()),
                }
            }
            _ => None,
        };
        let plain = |item: &&ringblob_protocol::wire::BulkItem| {
            item.status == Status::Ok
                && !(col == 0 && ringblob_protocol::client::object::Manifest::sniff(&item.data))
        };
        let mut out = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            if let Some(item) = items.as_ref().and_then(|v| v.get(i)).filter(plain) {
                out.push(Some(item.data.clone()));
                continue;
            }
            match self.get(name, column, (0, None)).await {
                Ok(v) => out.push(Some(v)),
                Err(f) if f.is_not_found() => out.push(None),
                Err(f) => return Err(f),
            }
        }
        Ok(out)
    }

    /// The connected node's statistics (JSON text).
    pub async fn stat(&self) -> Result<String, Failure> {
        Ok(self.client().await?.stat().await?)
    }

    /// The route table (JSON text).
    pub async fn routes(&self) -> Result<String, Failure> {
        let table = self.client().await?.route_table().await?;
        serde_json::to_string(&table).map_err(|e| Failure::Usage(e.to_string()))
    }

    /// One page of the connected node's own (key, column) entries after `after`.
    pub async fn iterate(
        &self,
        after: Option<(Vec<u8>, u16)>,
        limit: u32,
    ) -> Result<(Vec<Meta>, Option<(Bytes, u16)>), Failure> {
        use ringblob_protocol::wire::{IterPosition, IterateEnd, IterateRequest};
        let after = match after {
            None => None,
            Some((key, column)) => {
                let key: [u8; 32] = key
                    .as_slice()
                    .try_into()
                    .map_err(|_| Failure::Usage("a resume key is 32 bytes".into()))?;
                Some(IterPosition { key, column })
            }
        };
        let req = IterateRequest {
            from: [0; 32],
            to: [0xff; 32],
            after,
            limit,
        };
        let (entries, end) = self.client().await?.iterate(req).await?;
        let metas = entries
            .iter()
            .map(|e| Meta::new(&Target::Id(e.key), &e.meta, None, None))
            .collect();
        let next = match end {
            IterateEnd::Done => None,
            IterateEnd::ResumeAfter(p) => Some((Bytes::copy_from_slice(&p.key), p.column)),
        };
        Ok((metas, next))
    }
}

/// `Changed` unless (`target`, `column`) is still at `version` (when one is given).
async fn same_version(
    c: &Client,
    target: &Target,
    column: u16,
    version: Option<u64>,
) -> Result<(), Failure> {
    let Some(v) = version else {
        return Ok(());
    };
    let now = c.lookup_column(target.clone(), column).await?;
    if now.timestamp_ns == v {
        return Ok(());
    }
    Err(Failure::Client(ClientError::Status {
        status: Status::Changed,
        message: "the object was replaced while it was being read".into(),
    }))
}
