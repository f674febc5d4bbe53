//! Reads served in process. A gateway running in its node reads a whole GET's value and
//! name record through the node's own serving rules ([`Node::value_here`]) instead of
//! through a client of its listener: the same routing, admission, hand-over and quarantine
//! rules, without a loopback round trip, framing, or a lookup (the value's record describes
//! it). Only what this node owns and answers at once is served so (a value of at most
//! [`LOCAL_MAX`] bytes that is not a chunked object's manifest, found in the node's own
//! group); everything else — and any answer but a plain one — takes the client path, which
//! falls over to other groups, reads through hand-overs and streams long values.

use std::sync::Arc;

use axum::body::Body;

use super::object::{whole_or_found, Found};
use super::replicas::read_in_groups;
use super::{Gateway, Who};
use crate::client::object::Manifest;
use crate::client::{Client, ClientError, Target};
use crate::node::Node;
use crate::wire::{KeyId, ValueMeta};

/// The largest value served in process: a larger one streams through the client path,
/// a piece at a time.
pub const LOCAL_MAX: u64 = 1 << 20;

impl Gateway {
    /// What a GET or HEAD of `target`'s `column` serves (`whole`: the whole value of column
    /// 0, opened with its body), and the client of the group that answered: in process when
    /// this node can answer it alone, else from the groups in turn (own group first).
    pub(crate) async fn read_object(
        &self,
        who: &Who,
        client: &Arc<Client>,
        target: &Target,
        (column, whole): (u16, bool),
    ) -> Result<((Found, Option<Body>), Arc<Client>), ClientError> {
        if let (Some(node), true, 0) = (self.local(), whole, column) {
            if let Some((found, body)) = whole_here(node, who, target.id()).await {
                return Ok(((found, Some(body)), client.clone()));
            }
        }
        let (groups, _) = self.replicas().await;
        // Boxed: the client path's future stays out of an in-process GET's.
        let read = read_in_groups(client, &groups, |c| {
            let t = target.clone();
            async move { whole_or_found(&c, &t, column, whole).await }
        });
        Box::pin(read).await
    }
}

/// The whole value of `key`'s column 0 with what describes it, if `node` serves it alone.
async fn whole_here(node: &Arc<Node>, who: &Who, key: KeyId) -> Option<(Found, Body)> {
    let id = match who {
        Who::Open => None,
        Who::Key(id) => Some(id),
    };
    let value = node.value_here(id, key, LOCAL_MAX).await?;
    if Manifest::sniff(&value.data) {
        return None;
    }
    let size = value.data.len() as u64;
    let meta = ValueMeta {
        size,
        timestamp_ns: value.timestamp_ns,
        checksum: value.crc,
        ..ValueMeta::default()
    };
    let found = Found {
        meta,
        size,
        record: value.record,
        object_crc: None,
    };
    Some((found, Body::from(value.data)))
}
