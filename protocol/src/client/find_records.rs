//! The name records a query checks its answers against (`find.rs`): read in bulk, one
//! `BULK_READ` per owner, instead of one routed read per answer. A record the owner does
//! not hold (it may still be on its way there in a hand-over) or could not read is read the
//! routed way after all, which reads through; a remove the owner remembers is an answer.

use std::collections::HashMap;

use futures_util::future::join_all;
use ringblob_backends::names::{NameRecord, NAME_COLUMN};

use super::{Client, ClientError, Target};
use crate::ring::RouteTable;
use crate::wire::{KeyId, Status, MAX_BULK_KEYS};

type Result<T> = std::result::Result<T, ClientError>;

/// What the owner's `BULK_READ` said of one record.
enum Held {
    Record(NameRecord),
    Gone,
    /// Not held there (yet), or not readable: ask the routed way.
    Unknown,
}

/// The name record of each (namespace, name) in `group`, in order (`None`: no record).
pub(super) async fn records_of<F, Fut>(
    names: &[(&str, &[u8])],
    (table, group): (&RouteTable, u32),
    conn: F,
    routed: &Client,
) -> Result<Vec<Option<NameRecord>>>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<std::sync::Arc<Client>>>,
{
    let keys: Vec<KeyId> = names
        .iter()
        .map(|(ns, n)| Target::named(ns, n.to_vec()).id())
        .collect();
    let mut by_owner: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, key) in keys.iter().enumerate() {
        if let Some(owner) = table.owner(group, key) {
            by_owner.entry(owner.addr.clone()).or_default().push(i);
        }
    }
    let mut held: Vec<Held> = names.iter().map(|_| Held::Unknown).collect();
    let asks = by_owner.into_iter().flat_map(|(addr, ixs)| {
        ixs.chunks(MAX_BULK_KEYS)
            .map(|c| (addr.clone(), c.to_vec()))
            .collect::<Vec<_>>()
    });
    let answers = join_all(asks.map(|(addr, ixs)| {
        let keys: Vec<KeyId> = ixs.iter().map(|i| keys[*i]).collect();
        let node = conn(addr);
        async move {
            let items = node.await?.bulk_read_column(keys, NAME_COLUMN).await;
            Ok::<_, ClientError>((ixs, items))
        }
    }))
    .await;
    for answer in answers {
        // A node that failed leaves its records to the routed reads below.
        let Ok((ixs, Ok(items))) = answer else {
            continue;
        };
        for (i, item) in ixs.into_iter().zip(items) {
            held[i] = match item.status {
                Status::Ok => match NameRecord::decode(&item.data) {
                    Ok(r) => Held::Record(r),
                    Err(_) => Held::Unknown,
                },
                Status::Removed => Held::Gone,
                _ => Held::Unknown,
            };
        }
    }
    let unknown: Vec<usize> = (0..held.len())
        .filter(|i| matches!(held[*i], Held::Unknown))
        .collect();
    let mut out: Vec<Option<NameRecord>> = held
        .into_iter()
        .map(|h| match h {
            Held::Record(r) => Some(r),
            Held::Gone | Held::Unknown => None,
        })
        .collect();
    let routed_reads = unknown.into_iter().map(|i| {
        let (ns, name) = names[i];
        async move { (i, routed.name_record(ns, name).await) }
    });
    for (i, record) in join_all(routed_reads).await {
        out[i] = record?;
    }
    Ok(out)
}
