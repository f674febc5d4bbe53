//! A client that knows the route table: each keyed request goes straight to the key's owner
//! in the target group (no forwarding hop), over one connection per node. The table is
//! fetched from the node the client was given and fetched again when a reply says the
//! routing was wrong (`NOT_OWNER`, `TOO_MANY_HOPS`) or an owner cannot be reached; the
//! request is then sent once more through the entry node, which forwards it.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;

use super::{Client, ClientConfig, ClientError, PutOptions};
use crate::ring::RouteTable;
use crate::wire::{Durability, KeyId, Status, ValueMeta};

type Result<T> = std::result::Result<T, ClientError>;

/// A route-aware client of a cluster.
pub struct RoutedClient {
    entry: Arc<Client>,
    config: ClientConfig,
    table: RwLock<Option<Arc<RouteTable>>>,
    nodes: tokio::sync::Mutex<HashMap<String, Arc<Client>>>,
}

/// Whether a failed request certainly did nothing: refused for its routing, or never sent.
/// Only then may a write or remove be sent again (after a timeout it may have been applied,
/// and a resent write could overwrite a newer one made meanwhile).
fn not_applied(e: &ClientError) -> bool {
    matches!(e.status(), Some(Status::NotOwner | Status::TooManyHops))
        || matches!(e, ClientError::Connect { .. })
}

/// Whether an error means the client's view of the ring is stale.
fn misrouted(e: &ClientError) -> bool {
    matches!(
        e.status(),
        Some(Status::NotOwner | Status::TooManyHops | Status::Timeout)
    ) || matches!(
        e,
        ClientError::Connect { .. } | ClientError::Disconnected(_)
    )
}

impl RoutedClient {
    /// Connects to `addr` and fetches the route table.
    pub async fn connect(addr: &str, config: ClientConfig) -> Result<RoutedClient> {
        let entry = Arc::new(Client::connect(addr, config.clone()).await?);
        let c = RoutedClient {
            entry,
            config,
            table: RwLock::new(None),
            nodes: tokio::sync::Mutex::new(HashMap::new()),
        };
        c.refresh().await?;
        Ok(c)
    }

    /// Fetches the route table again.
    pub async fn refresh(&self) -> Result<()> {
        let text = self.entry.routes().await?;
        let table = RouteTable::from_json(&text)
            .map_err(|e| ClientError::Unexpected(format!("route table: {e}")))?;
        *self.table.write() = Some(Arc::new(table));
        Ok(())
    }

    /// The owner's address of `key` in `group` (0: the entry node's group), if known.
    pub fn owner_addr(&self, group: u32, key: &KeyId) -> Option<String> {
        let table = self.table.read().clone()?;
        let group = if group == 0 {
            let entry = self.entry.addr();
            table.nodes.iter().find(|n| n.addr == entry)?.group
        } else {
            group
        };
        table.owner(group, key).map(|n| n.addr.clone())
    }

    /// A client for the owner of `key` in `group`, or the entry node when unknown.
    async fn client_for(&self, group: u32, key: &KeyId) -> Arc<Client> {
        let Some(addr) = self.owner_addr(group, key) else {
            return self.entry.clone();
        };
        if let Some(c) = self.nodes.lock().await.get(&addr) {
            return c.clone();
        }
        // Connect outside the lock: an owner that is down delays only its own requests.
        match Client::connect(&addr, self.config.clone()).await {
            Ok(c) => {
                let mut nodes = self.nodes.lock().await;
                nodes.entry(addr).or_insert(Arc::new(c)).clone()
            }
            Err(_) => self.entry.clone(),
        }
    }

    /// Runs `op` against the owner; on a routing error refreshes the table and, if
    /// `resend` allows it for that error, runs it once more through the entry node (which
    /// forwards).
    async fn routed<T, F, Fut>(
        &self,
        group: u32,
        key: KeyId,
        resend: fn(&ClientError) -> bool,
        op: F,
    ) -> Result<T>
    where
        F: Fn(Arc<Client>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let owner = self.client_for(group, &key).await;
        match op(owner.in_group_arc(group)).await {
            Err(e) if misrouted(&e) => {
                let _ = self.refresh().await;
                self.nodes.lock().await.clear();
                if !resend(&e) {
                    return Err(e);
                }
                op(self.entry.in_group_arc(group)).await
            }
            other => other,
        }
    }

    pub async fn get_column(&self, group: u32, key: KeyId, column: u16) -> Result<Bytes> {
        self.routed(group, key, misrouted, |c| async move {
            c.get_column(key, column, 0, None).await
        })
        .await
    }

    pub async fn lookup_column(&self, group: u32, key: KeyId, column: u16) -> Result<ValueMeta> {
        self.routed(group, key, misrouted, |c| async move {
            c.lookup_column(key, column).await
        })
        .await
    }

    pub async fn put_column(
        &self,
        group: u32,
        key: KeyId,
        column: u16,
        data: Bytes,
        o: PutOptions,
    ) -> Result<u64> {
        self.routed(group, key, not_applied, |c| {
            let data = data.clone();
            async move { c.put_column(key, column, data, o).await }
        })
        .await
    }

    pub async fn remove(&self, group: u32, key: KeyId, durability: Durability) -> Result<()> {
        self.routed(group, key, not_applied, |c| async move {
            c.remove(key, durability).await
        })
        .await
    }
}

impl Client {
    /// [`in_group`](Client::in_group) behind an `Arc` (the same client when `group` is 0).
    fn in_group_arc(self: &Arc<Self>, group: u32) -> Arc<Client> {
        if group == 0 || group == self.config.group {
            self.clone()
        } else {
            Arc::new(self.in_group(group))
        }
    }
}
