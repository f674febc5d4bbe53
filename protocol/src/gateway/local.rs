//! Reads served in process. A gateway running in its node sends the reads of a whole GET —
//! the lookup and the name record, then the value at the version looked up — to the node's
//! own serving code ([`Node::read_here`]) instead of through a client of its listener: the
//! same routing, admission, hand-over and quarantine rules, without a loopback round trip
//! per read. Only what this node owns and answers at once is served so (a value of at most
//! [`LOCAL_MAX`] bytes that is not a chunked object's manifest, found in the node's own
//! group); everything else — and any answer but a plain one — takes the client path, which
//! falls over to other groups, reads through hand-overs and streams long values.

use std::sync::Arc;

use axum::body::Body;
use bytes::BytesMut;
use ringblob_backends::names::{NameRecord, NAME_COLUMN};

use super::object::{whole_or_found, Found};
use super::replicas::read_in_groups;
use super::{Gateway, Who};
use crate::client::object::Manifest;
use crate::client::{Client, ClientError, Target};
use crate::node::Node;
use crate::wire::{
    decode_frame, Frame, KeyId, LookupRequest, ReadRequest, Reply, Request, Status, ValueMeta,
    READ_TO_END,
};

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
        read_in_groups(client, &groups, |c| {
            let t = target.clone();
            async move { whole_or_found(&c, &t, column, whole).await }
        })
        .await
    }
}

/// The whole value of `key`'s column 0 with what describes it, if `node` serves it alone.
async fn whole_here(node: &Arc<Node>, who: &Who, key: KeyId) -> Option<(Found, Body)> {
    let id = match who {
        Who::Open => None,
        Who::Key(id) => Some(id),
    };
    let asks = vec![
        frame(&Request::Lookup(LookupRequest { column: 0 }), key)?,
        frame(
            &Request::Read(ReadRequest::range(NAME_COLUMN, 0, READ_TO_END)),
            key,
        )?,
    ];
    let mut replies = node.read_here(id, asks).await?.into_iter();
    let meta: ValueMeta = match replies.next()? {
        Reply::Meta(m) if m.size <= LOCAL_MAX => m,
        _ => return None,
    };
    let record = match replies.next()? {
        Reply::ReadPart { data, more: false } => NameRecord::decode(&data).ok(),
        Reply::Error {
            status: Status::NotFound,
            ..
        } => None,
        _ => return None,
    };
    let mut read = ReadRequest::range(0, 0, READ_TO_END);
    read.if_version = Some(meta.timestamp_ns);
    let ask = vec![frame(&Request::Read(read), key)?];
    let data = match node.read_here(id, ask).await?.pop()? {
        Reply::ReadPart { data, more: false } => data,
        _ => return None,
    };
    if data.len() as u64 != meta.size || Manifest::sniff(&data) {
        return None;
    }
    let size = meta.size;
    let found = Found {
        meta,
        size,
        record,
        object_crc: None,
    };
    Some((found, Body::from(data)))
}

/// `request` about `key` as a client would send it to this node's own group.
fn frame(request: &Request, key: KeyId) -> Option<Frame> {
    let mut buf = BytesMut::new();
    request.encode(0, key, 0, &mut buf).ok()?;
    decode_frame(&mut buf).ok().flatten()
}
