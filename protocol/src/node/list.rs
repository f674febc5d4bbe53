//! LIST (`docs/PROTOCOL.md` §7.14): a page of the names this node's name index holds, with
//! the node's route table version so a client merging the pages of a group can tell that
//! its table is older than the ownership the node answered by.

use bytes::Bytes;
use ringblob_backends::names::{NameListing, NameQuery};
use ringblob_backends::Backend;

use super::info::NodeInfo;
use crate::wire::{ListEntry, ListReply, ListRequest};

/// A LIST reply is cut (MORE set) before it grows past this many bytes.
pub const MAX_LIST_REPLY_BYTES: usize = 4 << 20;

/// The page `req` asks for, from `b`'s name index.
pub fn list(
    b: &dyn Backend,
    info: &NodeInfo,
    req: &ListRequest,
) -> ringblob_backends::Result<ListReply> {
    // Read the version first: a hand-over that finishes while the page is built shows a
    // version at least as new as the ownership the page reflects.
    let route_version = info.route_table().map_or(0, |t| t.version);
    let limit = req.limit as usize;
    let listing = if req.namespaces {
        let after = req
            .after
            .as_ref()
            .map(|a| String::from_utf8_lossy(a).into_owned());
        NameListing::Namespaces { after, limit }
    } else {
        NameListing::Names(NameQuery {
            namespace: req.namespace.clone(),
            prefix: req.prefix.to_vec(),
            after: req.after.as_ref().map(|a| a.to_vec()),
            limit,
        })
    };
    let page = b.list_names(&listing)?;
    let mut reply = ListReply {
        route_version,
        more: page.more,
        entries: Vec::with_capacity(page.entries.len()),
    };
    let mut bytes = crate::wire::payload::list::LIST_REPLY_FIXED_LEN;
    for e in page.entries {
        bytes += 2 + e.name.len() + 32 + 8 + 4 + e.record.len();
        if bytes > MAX_LIST_REPLY_BYTES && !reply.entries.is_empty() {
            reply.more = true;
            break;
        }
        reply.entries.push(ListEntry {
            name: Bytes::from(e.name),
            key: e.key.0,
            timestamp_ns: e.timestamp_ns,
            record: Bytes::from(e.record),
        });
    }
    Ok(reply)
}
