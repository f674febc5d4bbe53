//! Removes during a hand-over. A client's `REMOVE` reaches the key's new owner, which may
//! not have received the key yet from the range's previous owner. The remove is applied
//! here all the same — remembered for the whole key (`docs/FORMAT.md` §16), so the copy on
//! its way is refused when it arrives and the previous owner then drops its own — but a
//! `NOT_FOUND` from this node alone would tell the client the key never existed while it
//! did. So a remove of a key this node holds nothing of, in a range whose previous owner is
//! alive, first asks that owner (a `LOOKUP` with `LOCAL`, as a read through does) whether it
//! holds the key, and answers OK instead of `NOT_FOUND` when it did (`docs/PROTOCOL.md`
//! §15.10).

use bytes::BytesMut;
use ringblob_backends::Backend;
use ringblob_engine::Key;

use super::handover::{PreviousOwner, ReadThrough};
use super::{dispatch, Node};
use crate::ring::Routing;
use crate::wire::{
    decode_frame, encode_frame, Command, Frame, Header, LookupRequest, Request, Status, FLAG_LOCAL,
    MAX_FORWARD_HOPS,
};

/// A client's remove (plain or versioned, not a copy) of a key in a range this node took
/// over recently whose previous owner is alive: that owner, and the column the remove names
/// (`None`: the whole key). `None` for anything else.
pub struct RemoveThrough {
    pub owner: PreviousOwner,
    pub column: Option<u16>,
}

/// The [`RemoveThrough`] of `frame`, if it is one (the request decoded once, here).
pub fn removes_through(
    node: &Node,
    routing: Option<&Routing>,
    frame: &Frame,
) -> Option<RemoveThrough> {
    let h = &frame.header;
    if h.command != Command::Remove || h.is_hinted() || h.hops >= MAX_FORWARD_HOPS {
        return None;
    }
    if !node.handovers.any() {
        return None;
    }
    let column = match dispatch::decode_request(frame) {
        Ok(Request::Remove(r)) if r.if_newer.is_none() => r.column,
        _ => return None,
    };
    match node.handovers.previous_owner(&h.key, routing?)? {
        ReadThrough::Ask(owner) => Some(RemoveThrough { owner, column }),
        ReadThrough::Down(_) => None,
    }
}

/// Whether this node holds nothing of `column` (`None`: of any column) of `key`, so its
/// own answer to the remove would be `NOT_FOUND`.
pub fn holds_nothing(b: &dyn Backend, key: &Key, column: Option<u16>) -> bool {
    match column {
        None => b.columns(key).is_ok_and(|c| c.is_empty()),
        Some(column) => matches!(
            b.lookup_column(key, column),
            Err(ringblob_backends::Error::NotFound(_))
        ),
    }
}

/// Whether the previous owner holds a value of the column the remove `frame` removes
/// (column 0 for a whole key) in its own storage. Any failure to tell counts as no: the
/// answer is then this node's own.
pub async fn held_by(node: &Node, through: &RemoveThrough, frame: &Frame) -> bool {
    let Some(ask) = lookup_frame(&frame.header, through.column.unwrap_or(0)) else {
        return false;
    };
    let owner = &through.owner;
    let mut answer = Vec::new();
    let asked = node
        .peers
        .read_through(&owner.addr, owner.group, &ask, &mut answer)
        .await;
    if !matches!(asked, Ok(super::forward::Asked::Relayed)) {
        return false;
    }
    let mut buf = BytesMut::from(&answer[..]);
    matches!(decode_frame(&mut buf), Ok(Some(reply)) if reply.header.status == Status::Ok)
}

/// A `LOOKUP` of `column` of the key `remove` names, with `LOCAL` (served from the asked
/// node's own storage, never read through further) and the remove's transaction.
fn lookup_frame(remove: &Header, column: u16) -> Option<Frame> {
    let mut header = Header::request(Command::Lookup, remove.trans, remove.key, remove.group);
    header.flags |= FLAG_LOCAL;
    header.hops = MAX_FORWARD_HOPS - 1;
    header.trace = remove.trace;
    let mut out = BytesMut::new();
    Request::Lookup(LookupRequest { column })
        .encode_with(&header, &mut out)
        .ok()?;
    decode_frame(&mut out).ok().flatten()
}

/// The reply to a remove that found nothing here but removed what the previous owner held
/// (on its way here, refused when it arrives): OK, empty.
pub fn removed_reply(request: &Header) -> BytesMut {
    let mut out = BytesMut::new();
    let _ = encode_frame(&request.reply_to(Status::Ok, false), &mut out, |_| Ok(()));
    out
}
