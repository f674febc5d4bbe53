//! Attributes and queries on them, across a cluster (`docs/ATTRIBUTES.md` §5–§6).
//!
//! Writing: an object's attributes live in its name record; each overlay of the namespace's
//! space that indexes the object holds an **index entry** (column [`ENTRY_COLUMN`] of a key
//! whose leading bits are the object's region). The order makes a crash harmless: new
//! entries first, then the name record (the moment the new attributes count), then the old
//! entries are removed. An entry is **live** only while the record holds the same
//! attributes under the same space, and a query returns live entries only, so a crash
//! between the steps leaves dead entries (never returned, removed by later queries once
//! older than [`DEAD_ENTRY_GRACE`]) and never an object without its entry.
//!
//! Querying: the planner's runs of regions become key ranges; in one group, each range is
//! cut where ownership changes and each piece is asked of its owner alone (`ITERATE` for
//! the entry column's keys, `BULK_READ` for the entries); entries are filtered by the query
//! and checked live against their name records. Pages come in key order, resumed after the
//! last entry key returned.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use parking_lot::Mutex;
use ringblob_backends::names::{Attrs, NameRecord, NAME_COLUMN};

use super::{Client, ClientError, PutOptions, Target};
use crate::attrs::{placements, plan, Entry, Query, Sha256Hasher, Space, ENTRY_COLUMN, SPACE_NAME};
use crate::ring::{next_key, prev_key};
use crate::ring::{GroupRing, NodeIx, RouteTable};
use crate::wire::{Durability, IterPosition, IterateEnd, IterateRequest, KeyId, Status};

type Result<T> = std::result::Result<T, ClientError>;

/// A dead entry (its record gone or changed) younger than this may belong to a write still
/// under way, and is left alone; older ones are removed by the query that finds them.
pub const DEAD_ENTRY_GRACE: Duration = Duration::from_secs(600);
/// Most answers in one page.
pub const MAX_FIND_LIMIT: usize = 10_000;
/// Entries fetched per `BULK_READ`.
const BULK: usize = 256;
/// Range pieces asked at once.
const PIECES_AT_ONCE: usize = 32;

/// One page of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindAsk {
    pub namespace: String,
    pub query: Query,
    /// The continuation token: the entry key of the previous page's last answer.
    pub after: Option<KeyId>,
    /// Most answers (1 ..= [`MAX_FIND_LIMIT`]).
    pub limit: usize,
    /// Groups to try, in order (empty: the client's own first, then the others).
    pub groups: Vec<u32>,
    /// Ask every node for every entry of the chosen overlay instead of the planned regions
    /// (a scatter-gather scan: what benchmarks compare the plan with).
    pub scan: bool,
}

/// An object a query found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindHit {
    /// Where its entry sits (the continuation token after it).
    pub entry_key: KeyId,
    pub name: Vec<u8>,
    pub attrs: Attrs,
    /// Its name record, as read to check the entry live.
    pub record: NameRecord,
}

/// What a page cost: where it was asked and how much was read.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct FindCost {
    pub group: u32,
    /// The overlay asked (0: the fallback).
    pub overlay: u16,
    /// Regions planned, of how many.
    pub regions: u64,
    pub total_regions: u64,
    /// Key ranges planned, and pieces after cutting them by owner.
    pub ranges: usize,
    pub pieces: usize,
    /// Distinct nodes the plan names, nodes actually asked, and nodes in the group.
    pub planned_nodes: usize,
    pub asked_nodes: usize,
    pub group_nodes: usize,
    /// Index entries read, and dead ones found (removed once past the grace).
    pub entries_read: u64,
    pub dead_entries: u64,
    /// Pieces whose owner said keys may still be arriving (`MOVING`), and the asks of the
    /// nodes that held them before that this caused.
    pub moving_pieces: u64,
    pub earlier_asks: u64,
}

/// A page of answers, in entry-key order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FindPage {
    pub hits: Vec<FindHit>,
    /// Set when more may follow: ask again with `after` = this.
    pub next: Option<KeyId>,
    pub cost: FindCost,
}

/// A piece of a planned range, owned by one node.
#[derive(Debug, Clone)]
struct Piece {
    node: NodeIx,
    addr: String,
    from: KeyId,
    to: KeyId,
}

/// What a piece gave: its answers (at most the page's limit) and whether it was read to
/// its end.
struct PieceScan {
    hits: Vec<FindHit>,
    complete: bool,
    /// The node said keys of the piece may still be arriving (`MOVING`).
    moving: bool,
}

/// Shared by the pieces of one page.
struct Scan<'a> {
    client: &'a Client,
    ask: &'a FindAsk,
    fingerprint: u64,
    overlay: u16,
    group: u32,
    /// The route table the page was planned on: where a piece whose owner says its keys
    /// may still be arriving (`MOVING`) was held before.
    table: &'a RouteTable,
    /// Nodes asked beyond the plan (earlier holders of moving pieces).
    also_asked: Mutex<BTreeSet<NodeIx>>,
    /// `FindCost::moving_pieces` and `earlier_asks`.
    moving: std::sync::atomic::AtomicU64,
    earlier: std::sync::atomic::AtomicU64,
    conns: Mutex<HashMap<String, Arc<Client>>>,
    read: std::sync::atomic::AtomicU64,
    dead: std::sync::atomic::AtomicU64,
}

impl Client {
    /// The attribute space of `namespace` (the default, the paper's, if none is stored).
    pub async fn attribute_space(&self, namespace: &str) -> Result<Space> {
        match self.get_column(space_target(namespace), 0, 0, None).await {
            Ok(bytes) => {
                let text = std::str::from_utf8(&bytes)
                    .map_err(|_| ClientError::Input("the attribute space is not UTF-8".into()))?;
                Space::from_json(text).map_err(|e| ClientError::Input(e.to_string()))
            }
            Err(e) if e.is_not_found() => Ok(Space::default()),
            Err(e) => Err(e),
        }
    }

    /// Stores `space` as `namespace`'s attribute space. Entries placed under the previous
    /// space are found again only once re-placed ([`Client::reindex_namespace`]).
    pub async fn set_attribute_space(
        &self,
        namespace: &str,
        space: &Space,
        o: PutOptions,
    ) -> Result<u64> {
        space
            .check()
            .map_err(|e| ClientError::Input(e.to_string()))?;
        let json = Bytes::from(space.to_json());
        self.put_column(space_target(namespace), 0, json, o).await
    }

    /// `namespace`/`name`'s name record and its timestamp, if it has one.
    pub async fn name_record(&self, namespace: &str, name: &[u8]) -> Result<Option<NameRecord>> {
        let target = Target::named(namespace, name.to_vec());
        match self.get_column(target, NAME_COLUMN, 0, None).await {
            Ok(bytes) => NameRecord::decode(&bytes)
                .map(Some)
                .map_err(|e| ClientError::Input(format!("name record: {e}"))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes `record` (with its attributes) after the object's value, keeping the index in
    /// step: the entries of the new attributes first, then the record, then the removal
    /// of the entries `previous` (the record being replaced, if the caller read it) had and
    /// the new one has not.
    pub async fn put_record_indexed(
        &self,
        record: &NameRecord,
        previous: Option<&NameRecord>,
        space: &Space,
        o: PutOptions,
    ) -> Result<u64> {
        let new = self.put_entries(record, space, o).await?;
        let version = self.put_name_record(record, o).await?;
        if let Some(old) = previous {
            let stale = placed(old, space);
            for (_, key) in stale.into_iter().filter(|p| !new.contains(p)) {
                self.remove_entry(key, o.durability).await?;
            }
        }
        Ok(version)
    }

    /// `record`'s index entries under `space`: (entry key, encoded entry) for every overlay
    /// that indexes it (none without attributes). Write them before the record.
    pub fn index_entries(record: &NameRecord, space: &Space) -> Vec<(KeyId, Bytes)> {
        placed(record, space)
            .into_iter()
            .map(|(overlay, key)| {
                let entry = Entry {
                    overlay,
                    space: space.fingerprint(),
                    namespace: record.namespace.clone(),
                    name: record.name.clone(),
                    attrs: record.attrs.clone(),
                };
                (key, Bytes::from(entry.encode()))
            })
            .collect()
    }

    /// Writes `record`'s index entries; returns where (overlay, key).
    async fn put_entries(
        &self,
        record: &NameRecord,
        space: &Space,
        o: PutOptions,
    ) -> Result<Vec<(u16, KeyId)>> {
        for (key, bytes) in Client::index_entries(record, space) {
            self.put_column(key, ENTRY_COLUMN, bytes, o).await?;
        }
        Ok(placed(record, space))
    }

    /// Removes the index entries of `record` (after its object was removed).
    pub async fn remove_entries(
        &self,
        record: &NameRecord,
        space: &Space,
        d: Durability,
    ) -> Result<()> {
        for (_, key) in placed(record, space) {
            self.remove_entry(key, d).await?;
        }
        Ok(())
    }

    async fn remove_entry(&self, key: KeyId, d: Durability) -> Result<()> {
        match self.remove_column(key, ENTRY_COLUMN, d).await {
            Err(e) if !e.is_not_found() => Err(e),
            _ => Ok(()),
        }
    }

    /// Re-places the entries of every name of `namespace` under `space` (after the space
    /// changed), removing those of `old` that moved. Returns how many names carry attributes.
    pub async fn reindex_namespace(
        &self,
        namespace: &str,
        old: &Space,
        space: &Space,
        o: PutOptions,
    ) -> Result<u64> {
        let mut req = crate::wire::ListRequest {
            namespace: namespace.to_string(),
            limit: 1000,
            ..Default::default()
        };
        let mut indexed = 0;
        loop {
            let page = self.list(&req, &[]).await?;
            for e in &page.entries {
                let Ok(record) = NameRecord::decode(&e.record) else {
                    continue;
                };
                if record.attrs.is_empty() {
                    continue;
                }
                let new = self.put_entries(&record, space, o).await?;
                let stale = placed(&record, old);
                for (_, key) in stale.into_iter().filter(|p| !new.contains(p)) {
                    self.remove_entry(key, o.durability).await?;
                }
                indexed += 1;
            }
            match page.next {
                Some(next) => req.after = Some(next),
                None => return Ok(indexed),
            }
        }
    }

    /// One page of the objects of `ask.namespace` matching `ask.query`.
    pub async fn find(&self, ask: &FindAsk) -> Result<FindPage> {
        if !(1..=MAX_FIND_LIMIT).contains(&ask.limit) {
            return Err(ClientError::Input(format!(
                "a find page holds 1 to {MAX_FIND_LIMIT} answers"
            )));
        }
        let space = self.attribute_space(&ask.namespace).await?;
        let mut plan = plan(&space, &Sha256Hasher, &ask.query)
            .map_err(|e| ClientError::Input(e.to_string()))?;
        if ask.scan {
            plan.runs = vec![(0, plan.total - 1)];
        }
        let table = self.route_table().await?;
        let mut last_error = None;
        for group in super::listing::groups_to_try(&table, &ask.groups, self.config.group) {
            let scan = Scan {
                client: self,
                ask,
                fingerprint: space.fingerprint(),
                overlay: plan.layout.overlay,
                group,
                table: &table,
                also_asked: Mutex::new(BTreeSet::new()),
                moving: 0.into(),
                earlier: 0.into(),
                conns: Mutex::new(HashMap::new()),
                read: 0.into(),
                dead: 0.into(),
            };
            let mut cost = FindCost {
                group,
                overlay: plan.layout.overlay,
                regions: plan.regions(),
                total_regions: plan.total,
                ..FindCost::default()
            };
            match scan.page(&table, &plan.key_ranges(), &mut cost).await {
                Ok(mut page) => {
                    cost.entries_read = scan.read.load(std::sync::atomic::Ordering::Relaxed);
                    cost.dead_entries = scan.dead.load(std::sync::atomic::Ordering::Relaxed);
                    cost.moving_pieces = scan.moving.load(std::sync::atomic::Ordering::Relaxed);
                    cost.earlier_asks = scan.earlier.load(std::sync::atomic::Ordering::Relaxed);
                    page.cost = cost;
                    return Ok(page);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| ClientError::Unexpected("no group to ask".into())))
    }
}

/// Where `record`'s index entries go under `space`: (overlay, entry key) for each overlay
/// indexing it.
fn placed(record: &NameRecord, space: &Space) -> Vec<(u16, KeyId)> {
    let (ns, name) = (&record.namespace, &record.name);
    placements(space, &Sha256Hasher, ns, name, &record.attrs)
}

/// Where a namespace's space is stored.
pub fn space_target(namespace: &str) -> Target {
    Target::named(namespace, SPACE_NAME.to_vec())
}

impl Scan<'_> {
    /// The page: pieces in key order, a few asked at once, until `limit` answers.
    async fn page(
        &self,
        table: &RouteTable,
        ranges: &[(KeyId, KeyId)],
        cost: &mut FindCost,
    ) -> Result<FindPage> {
        let rings = table.rings();
        let ring = rings.get(&self.group).cloned().unwrap_or_default();
        let mut pieces = pieces(table, &ring, ranges, self.ask.after);
        // A draining node still holds what it has not handed over: its old ranges are asked
        // of it too (only while one drains), and what both hold is listed once.
        if let Some(with_leaving) = leaving_ring(table, self.group) {
            let extra = pieces_where(table, &with_leaving, ranges, self.ask.after, |ix| {
                table
                    .nodes
                    .get(ix.0 as usize)
                    .is_some_and(|n| !n.alive && n.leaving)
            });
            pieces.extend(extra);
            pieces.sort_by_key(|p| (p.from, p.node));
        }
        cost.ranges = ranges.len();
        cost.pieces = pieces.len();
        cost.planned_nodes = pieces.iter().map(|p| p.node).collect::<BTreeSet<_>>().len();
        cost.group_nodes = ring.nodes().len();
        let mut asked = BTreeSet::new();
        let mut hits = Vec::new();
        // Collected first: a stream holding the closure is not `Send` for every lifetime.
        let scans: Vec<_> = pieces.iter().map(|p| self.scan_piece(p)).collect();
        let mut scans = futures_util::stream::iter(scans).buffered(PIECES_AT_ONCE);
        let mut index = 0;
        // Everything up to `bound` was read from every piece that covers it.
        let mut bound: Option<KeyId> = None;
        while let Some(scan) = scans.next().await {
            asked.insert(pieces[index].node);
            index += 1;
            let scan = scan?;
            if !scan.complete {
                let last = scan.hits.last().map(|h| h.entry_key);
                bound = min_key(bound, last);
            }
            hits.extend(scan.hits);
            if hits.len() >= self.ask.limit || bound.is_some() {
                break;
            }
        }
        if let Some(next) = pieces.get(index) {
            // Stopped early: a piece not read yet may cover keys from its start on.
            bound = min_key(bound, prev_key(&next.from).or(Some([0; 32])));
        }
        hits.sort_by_key(|h| h.entry_key);
        hits.dedup_by(|a, b| a.entry_key == b.entry_key);
        if let Some(b) = bound {
            hits.retain(|h| h.entry_key <= b);
        }
        // Pieces started ahead were asked too.
        asked.extend(
            pieces
                .iter()
                .skip(index)
                .take(PIECES_AT_ONCE - 1)
                .map(|p| p.node),
        );
        asked.extend(self.also_asked.lock().iter().copied());
        cost.asked_nodes = asked.len();
        let next = match (hits.len() >= self.ask.limit, bound) {
            (true, _) => {
                hits.truncate(self.ask.limit);
                hits.last().map(|h| h.entry_key)
            }
            // Fewer than a page up to the bound: go on after it.
            (false, Some(b)) => Some(b),
            (false, None) => None,
        };
        Ok(FindPage {
            hits,
            next,
            cost: FindCost::default(),
        })
    }

    async fn conn(&self, addr: &str) -> Result<Arc<Client>> {
        if let Some(c) = self.conns.lock().get(addr) {
            return Ok(c.clone());
        }
        let c = Arc::new(Client::connect(addr, self.client.config.clone()).await?);
        self.conns.lock().insert(addr.to_string(), c.clone());
        Ok(c)
    }

    /// Reads one piece from its owner. If the owner says keys of it may still be arriving
    /// (`MOVING`: it took the range over recently), the nodes that held the piece before
    /// are asked too — the owners in the group's ring without the nodes asked so far, a
    /// step further back for each that says `MOVING` in turn — and then the owner again:
    /// a record on its way was held by the sender until the receiver held it, so it is in
    /// the sender's answer or in the receiver's second one (as for `LIST`, PROTOCOL.md
    /// §7.14). Answers are merged, each once.
    async fn scan_piece(&self, piece: &Piece) -> Result<PieceScan> {
        let first = self.scan_at(&piece.addr, piece).await?;
        if !first.moving {
            return Ok(first);
        }
        self.moving
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut scans = vec![first];
        // Each moving piece with the nodes its chain has asked (a step back skips them).
        let mut moving = vec![(piece.clone(), BTreeSet::from([piece.node]))];
        for _ in 0..MAX_MOVE_CHAIN {
            let mut next = Vec::new();
            for (p, excluded) in moving {
                for earlier in earlier_holders(self.table, self.group, &p, &excluded) {
                    self.also_asked.lock().insert(earlier.node);
                    self.earlier
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let scan = self.scan_at(&earlier.addr, &earlier).await?;
                    if scan.moving {
                        let mut chain = excluded.clone();
                        chain.insert(earlier.node);
                        next.push((earlier, chain));
                    }
                    scans.push(scan);
                }
            }
            moving = next;
            if moving.is_empty() {
                break;
            }
        }
        scans.push(self.scan_at(&piece.addr, piece).await?);
        Ok(merge_scans(scans))
    }

    async fn scan_at(&self, addr: &str, piece: &Piece) -> Result<PieceScan> {
        let node = self.conn(addr).await?;
        let mut moving = false;
        let mut after: Option<IterPosition> = None;
        let mut hits = Vec::new();
        loop {
            let req = IterateRequest {
                from: piece.from,
                to: piece.to,
                after,
                limit: crate::wire::MAX_ITERATE_LIMIT,
            };
            let (entries, end, arriving) = node.iterate_page(req).await?;
            moving |= arriving;
            let keys: Vec<(KeyId, u64)> = entries
                .iter()
                .filter(|e| e.meta.column == ENTRY_COLUMN)
                .map(|e| (e.key, e.meta.timestamp_ns))
                .collect();
            for chunk in keys.chunks(BULK) {
                self.check_entries(&node, chunk, &mut hits).await?;
                if hits.len() >= self.ask.limit {
                    return Ok(PieceScan {
                        hits,
                        complete: false,
                        moving,
                    });
                }
            }
            match end {
                IterateEnd::Done => {
                    return Ok(PieceScan {
                        hits,
                        complete: true,
                        moving,
                    })
                }
                IterateEnd::ResumeAfter(at) => after = Some(at),
            }
        }
    }

    /// Reads `keys`' entries from `node`, keeps those of the query's namespace, overlay and
    /// space whose attributes match, and of those the live ones (their record agrees).
    async fn check_entries(
        &self,
        node: &Client,
        keys: &[(KeyId, u64)],
        hits: &mut Vec<FindHit>,
    ) -> Result<()> {
        let items = node
            .bulk_read_column(keys.iter().map(|k| k.0).collect(), ENTRY_COLUMN)
            .await?;
        self.read
            .fetch_add(items.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let stamps: HashMap<KeyId, u64> = keys.iter().copied().collect();
        let mut candidates = Vec::new();
        // An entry the node could not vouch for (it is quarantined, or failed to read it)
        // fails the piece, so the page is asked of another group: never a silent miss.
        if let Some(bad) = items
            .iter()
            .find(|i| !matches!(i.status, Status::Ok | Status::NotFound | Status::Removed))
        {
            return Err(ClientError::Status {
                status: bad.status,
                message: String::from_utf8_lossy(&bad.data).into_owned(),
            });
        }
        for item in items.into_iter().filter(|i| i.status == Status::Ok) {
            let Ok(entry) = Entry::decode(&item.data) else {
                continue;
            };
            if entry.namespace != self.ask.namespace || entry.overlay != self.overlay {
                continue;
            }
            let stamp = stamps.get(&item.key).copied().unwrap_or(0);
            if entry.space != self.fingerprint {
                self.dead_entry(item.key, stamp).await;
                continue;
            }
            if self.ask.query.matches(&entry.attrs) {
                candidates.push((item.key, stamp, entry));
            }
        }
        let group_client = self.client.in_group(self.group);
        let names: Vec<(&str, &[u8])> = candidates
            .iter()
            .map(|(_, _, e)| (e.namespace.as_str(), e.name.as_slice()))
            .collect();
        let records = super::find_records::records_of(
            &names,
            (self.table, self.group),
            |addr| async move { self.conn(&addr).await },
            &group_client,
        )
        .await?;
        for ((key, stamp, entry), record) in candidates.into_iter().zip(records) {
            match record {
                Some(record) if record.attrs == entry.attrs => hits.push(FindHit {
                    entry_key: key,
                    name: entry.name,
                    attrs: entry.attrs,
                    record,
                }),
                _ => self.dead_entry(key, stamp).await,
            }
        }
        Ok(())
    }

    /// Counts a dead entry, and removes it if it is past the grace (only as it was read:
    /// an entry written again since stays).
    async fn dead_entry(&self, key: KeyId, stamp: u64) {
        self.dead.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let age = super::object::now_ns().saturating_sub(stamp);
        if age > DEAD_ENTRY_GRACE.as_nanos() as u64 {
            let _ = self
                .client
                .remove_column_if_newer(key, ENTRY_COLUMN, stamp)
                .await;
        }
    }
}

/// The planned ranges after `after`, cut by owner in `ring`, in key order.
fn pieces(
    table: &RouteTable,
    ring: &GroupRing,
    ranges: &[(KeyId, KeyId)],
    after: Option<KeyId>,
) -> Vec<Piece> {
    pieces_where(table, ring, ranges, after, |_| true)
}

/// The ring of `group` with its leaving nodes' IDs too, if one of its nodes is leaving.
fn leaving_ring(table: &RouteTable, group: u32) -> Option<GroupRing> {
    let of_group = |n: &&crate::ring::RouteNode| n.group == group;
    if !table
        .nodes
        .iter()
        .filter(of_group)
        .any(|n| !n.alive && n.leaving)
    {
        return None;
    }
    let held = table
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.group == group && n.reachable());
    Some(GroupRing::new(
        held.map(|(i, n)| (NodeIx(i as u32), n.ids.clone())),
    ))
}

/// How many steps back a moving piece is followed (a range that moved again before its
/// records arrived: A to B to C).
const MAX_MOVE_CHAIN: usize = 3;

/// Who held `piece` before its owner and the `excluded` nodes took it over: its owners in
/// `group`'s ring without them (a join's or a restart's previous owners).
fn earlier_holders(
    table: &RouteTable,
    group: u32,
    piece: &Piece,
    excluded: &BTreeSet<NodeIx>,
) -> Vec<Piece> {
    let held = table.nodes.iter().enumerate().filter(|(i, n)| {
        n.group == group && n.reachable() && !excluded.contains(&NodeIx(*i as u32))
    });
    let ring = GroupRing::new(held.map(|(i, n)| (NodeIx(i as u32), n.ids.clone())));
    pieces(table, &ring, &[(piece.from, piece.to)], None)
}

/// Several nodes' scans of one piece as one: answers in key order, each once, up to where
/// every scan that stopped early stopped.
fn merge_scans(scans: Vec<PieceScan>) -> PieceScan {
    let bound = scans
        .iter()
        .filter(|s| !s.complete)
        .filter_map(|s| s.hits.last().map(|h| h.entry_key))
        .min();
    let complete = scans.iter().all(|s| s.complete);
    let mut hits: Vec<FindHit> = scans.into_iter().flat_map(|s| s.hits).collect();
    hits.sort_by_key(|h| h.entry_key);
    hits.dedup_by(|a, b| a.entry_key == b.entry_key);
    if let Some(b) = bound {
        hits.retain(|h| h.entry_key <= b);
    }
    PieceScan {
        hits,
        complete,
        moving: true,
    }
}

/// The smaller of two optional keys (`None` is no bound).
fn min_key(a: Option<KeyId>, b: Option<KeyId>) -> Option<KeyId> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// [`pieces`] of the nodes for which `keep` is true.
fn pieces_where(
    table: &RouteTable,
    ring: &GroupRing,
    ranges: &[(KeyId, KeyId)],
    after: Option<KeyId>,
    keep: impl Fn(NodeIx) -> bool,
) -> Vec<Piece> {
    let start = after.and_then(|a| next_key(&a));
    if after.is_some() && start.is_none() {
        return Vec::new();
    }
    let mut out: Vec<Piece> = Vec::new();
    for (from, to) in ranges {
        let from = match start {
            Some(s) if s > *to => continue,
            Some(s) if s > *from => s,
            _ => *from,
        };
        for (node, a, b) in ring.split(from, *to).into_iter().filter(|p| keep(p.0)) {
            match out.last_mut() {
                // One node's neighbouring pieces are asked as one.
                Some(last) if last.node == node && next_key(&last.to) == Some(a) => last.to = b,
                _ => {
                    let Some(n) = table.nodes.get(node.0 as usize) else {
                        continue;
                    };
                    out.push(Piece {
                        node,
                        addr: n.addr.clone(),
                        from: a,
                        to: b,
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    fn id(first: u8) -> String {
        format!("{first:02x}{}", "00".repeat(31))
    }

    #[test]
    fn keys_step_back_and_forth() {
        let k = [0, 0, 1, 0]
            .iter()
            .chain([0u8; 28].iter())
            .copied()
            .collect::<Vec<u8>>();
        let mut key = [0u8; 32];
        key.copy_from_slice(&k);
        let prev = prev_key(&key).unwrap_or_default();
        assert_eq!(&prev[..4], &[0, 0, 0, 0xff]);
        assert_eq!(next_key(&prev), Some(key));
        assert_eq!(prev_key(&[0; 32]), None);
        assert_eq!(min_key(None, Some(key)), Some(key));
        assert_eq!(min_key(Some(prev), Some(key)), Some(prev));
    }

    #[test]
    fn a_moving_piece_is_asked_of_the_nodes_that_held_it_before() {
        use crate::ring::fixtures::{at, node};
        // c (0x40) joined a (0x80) and b (0xff): it took (0xff…, 0x40…] from a; and d
        // (0x20) joined since, taking (0xff…, 0x20…] from c.
        let table = RouteTable::new(
            4,
            vec![
                node("a", &[0x80]),
                node("b", &[0xff]),
                node("c", &[0x40]),
                node("d", &[0x20]),
            ],
        );
        let d_piece = Piece {
            node: NodeIx(3),
            addr: "d:1".into(),
            from: [0; 32],
            to: at(0x20).0,
        };
        let one_back = earlier_holders(&table, 1, &d_piece, &BTreeSet::from([NodeIx(3)]));
        let names: Vec<&str> = one_back.iter().map(|p| p.addr.as_str()).collect();
        assert_eq!(names, ["c:1"]);
        let two_back = earlier_holders(
            &table,
            1,
            &one_back[0],
            &BTreeSet::from([NodeIx(3), NodeIx(2)]),
        );
        let names: Vec<&str> = two_back.iter().map(|p| p.addr.as_str()).collect();
        assert_eq!(names, ["a:1"]);
        assert_eq!(
            (two_back[0].from, two_back[0].to),
            (d_piece.from, d_piece.to)
        );
    }

    #[test]
    fn a_leaving_node_is_asked_for_the_ranges_it_held() -> TestResult {
        let json = format!(
            r#"{{"version":3,"nodes":[
            {{"name":"a","addr":"a:1","group":1,"ids":["{}"],"alive":true,"incarnation":0}},
            {{"name":"b","addr":"b:1","group":1,"ids":["{}"],"alive":true,"incarnation":0}},
            {{"name":"c","addr":"c:1","group":1,"ids":["{}"],"alive":false,"leaving":true,"incarnation":1}}]}}"#,
            id(0x40),
            id(0xc0),
            id(0x80)
        );
        let table = RouteTable::from_json(&json)?;
        let ring = table.rings().get(&1).cloned().unwrap_or_default();
        let whole = [([0u8; 32], [0xffu8; 32])];
        let owners: Vec<String> = pieces(&table, &ring, &whole, None)
            .iter()
            .map(|p| p.addr.clone())
            .collect();
        assert_eq!(owners, ["a:1", "b:1", "a:1"]);
        let with = leaving_ring(&table, 1).ok_or("no leaving ring")?;
        let extra = pieces_where(&table, &with, &whole, None, |ix| ix.0 == 2);
        assert_eq!(extra.len(), 1);
        assert_eq!((extra[0].addr.as_str(), extra[0].to[0]), ("c:1", 0x80));
        assert!(leaving_ring(&table, 2).is_none());
        Ok(())
    }
}
