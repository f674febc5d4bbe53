//! Listing names across a cluster (`docs/PROTOCOL.md` §7.14). Every node answers LIST from
//! its own name index, so a page of the cluster's listing is the merge of the pages of
//! every node of one group (each group holds every key): names are deduplicated, and a
//! page ends where the shortest full node page ends, so nothing is skipped. A node whose
//! route table is newer than the client's means ownership moved: the client fetches the
//! table again and asks again. A group with a node that does not answer is given up for
//! the next group.

use std::collections::BTreeMap;

use bytes::Bytes;

use ringblob_backends::names::{NameRecord, NAME_COLUMN};

use super::{Client, ClientError, PutOptions, Target};
use crate::ring::RouteTable;
use crate::wire::{ListEntry, ListReply, ListRequest, ObjectName, Reply, Request};

type Result<T> = std::result::Result<T, ClientError>;

/// How long a page is asked again while nodes show newer route tables (a ring changing
/// fast, as during a join and a drain at once).
const TABLE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);
/// The pause before asking again after a node showed a newer route table.
const TABLE_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// A page of a cluster listing: entries in name order, and the token to continue after
/// them (the last name) if more may follow.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPage {
    pub entries: Vec<ListEntry>,
    pub next: Option<Bytes>,
}

/// Merges node pages of one group into one page of at most `limit` entries: the union
/// of names up to the smallest last name of any page that has more, newest record per
/// name. Returns the entries and whether more may follow.
pub fn merge_pages(pages: Vec<ListReply>, limit: usize) -> (Vec<ListEntry>, bool) {
    let bound = pages
        .iter()
        .filter(|p| p.more)
        .filter_map(|p| p.entries.last().map(|e| e.name.clone()))
        .min();
    let mut cut = bound.is_some();
    let mut names: BTreeMap<Bytes, ListEntry> = BTreeMap::new();
    for e in pages.into_iter().flat_map(|p| p.entries) {
        if bound.as_ref().is_some_and(|b| e.name > *b) {
            continue;
        }
        match names.get(&e.name) {
            Some(have) if have.timestamp_ns >= e.timestamp_ns => {}
            _ => {
                names.insert(e.name.clone(), e);
            }
        }
    }
    if names.len() > limit {
        cut = true;
    }
    (names.into_values().take(limit).collect(), cut)
}

impl Client {
    /// Stores `record` in the name column of the key its namespace and name derive, so the
    /// name is listed (write it after the value: a listed name is then always readable).
    pub async fn put_name_record(&self, record: &NameRecord, o: PutOptions) -> Result<u64> {
        let bytes = record
            .encode()
            .map_err(|e| ClientError::Input(format!("name record: {e}")))?;
        let target = Target::from(ObjectName::new(
            record.namespace.clone(),
            record.name.clone(),
        ));
        self.put_column(target, NAME_COLUMN, Bytes::from(bytes), o)
            .await
    }

    /// LIST on this node alone: a page of its own name index.
    pub async fn list_local(&self, req: ListRequest) -> Result<ListReply> {
        match self.call(&Request::List(req), [0; 32]).await?.pop() {
            Some(Reply::List(r)) => Ok(r),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// One page of the cluster's listing of `req` (its `after` is the continuation token),
    /// from the first group (`groups`, or every group in the route table) whose nodes all
    /// answer.
    pub async fn list(&self, req: &ListRequest, groups: &[u32]) -> Result<ListPage> {
        let started = std::time::Instant::now();
        let mut table = self.route_table().await?;
        let mut last_error = None;
        loop {
            let mut newer = false;
            for group in groups_to_try(&table, groups, self.config.group) {
                match self.list_group(&table, group, req).await {
                    Ok(Some(page)) => return Ok(page),
                    Ok(None) => {
                        newer = true;
                        break;
                    }
                    Err(e) => last_error = Some(e),
                }
            }
            if !newer || started.elapsed() > TABLE_PATIENCE {
                break;
            }
            tokio::time::sleep(TABLE_PAUSE).await;
            table = self.route_table().await?;
        }
        Err(last_error.unwrap_or_else(|| {
            ClientError::Unexpected(
                "no group could be listed: the route table kept changing".into(),
            )
        }))
    }

    /// Every entry of the listing `req` asks for (page after page, from its `after` on),
    /// in memory: for listings known to be small (buckets, the parts of an upload).
    pub async fn list_all(&self, req: &ListRequest) -> Result<Vec<ListEntry>> {
        let mut req = req.clone();
        let mut out = Vec::new();
        loop {
            let page = self.list(&req, &[]).await?;
            out.extend(page.entries);
            match page.next {
                Some(next) => req.after = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// The merged page of `group`'s nodes, or `None` if one of them has a newer route
    /// table than `table`. Every node is asked twice, the second round after the first has
    /// answered: a record being handed over between two nodes of the group is on its way
    /// while the first round asks, so it can be missing from both the sender's answer (sent
    /// after it dropped its copy) and the receiver's (sent before it arrived); but the sender
    /// drops its copy only once the receiver holds it, so the receiver's second answer has it.
    async fn list_group(
        &self,
        table: &RouteTable,
        group: u32,
        req: &ListRequest,
    ) -> Result<Option<ListPage>> {
        let addrs: Vec<&str> = table
            .nodes
            .iter()
            .filter(|n| n.group == group && n.reachable())
            .map(|n| n.addr.as_str())
            .collect();
        let mut pages = Vec::with_capacity(2 * addrs.len());
        for _round in 0..2 {
            let asks = addrs.iter().map(|addr| self.list_at(addr, req.clone()));
            for reply in futures_util::future::join_all(asks).await {
                pages.push(reply?);
            }
        }
        if pages.iter().any(|p| p.route_version > table.version) {
            return Ok(None);
        }
        let (entries, more) = merge_pages(pages, req.limit as usize);
        let next = more
            .then(|| entries.last().map(|e| e.name.clone()))
            .flatten();
        Ok(Some(ListPage { entries, next }))
    }

    async fn list_at(&self, addr: &str, req: ListRequest) -> Result<ListReply> {
        if addr == self.addr() {
            return self.list_local(req).await;
        }
        Client::connect(addr, self.config.clone())
            .await?
            .list_local(req)
            .await
    }
}

/// The groups to try in order: those asked for, else the client's own group first (0:
/// the lowest) and then the others.
pub(crate) fn groups_to_try(table: &RouteTable, asked: &[u32], own: u32) -> Vec<u32> {
    if !asked.is_empty() {
        return asked.to_vec();
    }
    let mut all: Vec<u32> = table.nodes.iter().map(|n| n.group).collect();
    all.sort_unstable();
    all.dedup();
    if let Some(i) = all.iter().position(|g| *g == own) {
        all[..=i].rotate_right(1);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    fn page(names: &[&str], more: bool) -> ListReply {
        ListReply {
            route_version: 1,
            more,
            entries: names
                .iter()
                .map(|n| ListEntry {
                    name: Bytes::copy_from_slice(n.as_bytes()),
                    ..ListEntry::default()
                })
                .collect(),
        }
    }

    fn names(entries: &[ListEntry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.name).into_owned())
            .collect()
    }

    #[test]
    fn a_page_ends_where_the_shortest_full_node_page_ends() -> TestResult {
        let pages = vec![
            page(&["a", "c", "e"], true),
            page(&["b", "d", "f", "g"], false),
        ];
        let (entries, more) = merge_pages(pages, 10);
        assert_eq!(names(&entries), ["a", "b", "c", "d", "e"]);
        assert!(more);
        Ok(())
    }

    #[test]
    fn duplicates_merge_and_the_limit_holds() -> TestResult {
        let pages = vec![page(&["a", "b"], false), page(&["b", "c"], false)];
        let (entries, more) = merge_pages(pages.clone(), 10);
        assert_eq!(names(&entries), ["a", "b", "c"]);
        assert!(!more);
        let (entries, more) = merge_pages(pages, 2);
        assert_eq!(names(&entries), ["a", "b"]);
        assert!(more);
        Ok(())
    }

    #[test]
    fn the_newest_record_of_a_name_wins() -> TestResult {
        let mut old = page(&["x"], false);
        old.entries[0].timestamp_ns = 1;
        let mut new = page(&["x"], false);
        new.entries[0].timestamp_ns = 2;
        let (entries, _) = merge_pages(vec![new, old], 5);
        assert_eq!(entries[0].timestamp_ns, 2);
        Ok(())
    }

    #[test]
    fn own_group_first() -> TestResult {
        let json = r#"{"version":1,"nodes":[
            {"name":"a","addr":"a:1","group":1,"ids":[],"alive":true,"incarnation":0},
            {"name":"b","addr":"b:1","group":2,"ids":[],"alive":true,"incarnation":0},
            {"name":"c","addr":"c:1","group":3,"ids":[],"alive":true,"incarnation":0}]}"#;
        let table = RouteTable::from_json(json)?;
        assert_eq!(groups_to_try(&table, &[], 3), [3, 1, 2]);
        assert_eq!(groups_to_try(&table, &[], 0), [1, 2, 3]);
        assert_eq!(groups_to_try(&table, &[2], 3), [2]);
        Ok(())
    }
}
