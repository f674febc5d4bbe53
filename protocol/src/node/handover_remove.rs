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
use crate::ring::RouteTable;
use crate::wire::{
    decode_frame, encode_frame, Command, Frame, Header, LookupRequest, Request, Status, FLAG_LOCAL,
    MAX_FORWARD_HOPS,
};

/// The previous owner to ask about `frame` if it is a client's remove (plain or versioned,
/// not a copy) of a key in a range this node took over recently whose previous owner is
/// alive: `None` for anything else.
pub fn removes_through(
    node: &Node,
    table: Option<&RouteTable>,
    frame: &Frame,
) -> Option<PreviousOwner> {
    let h = &frame.header;
    if h.command != Command::Remove || h.is_hinted() || h.hops >= MAX_FORWARD_HOPS {
        return None;
    }
    if !node.handovers.any() {
        return None;
    }
    let copy = match dispatch::decode_request(frame) {
        Ok(Request::Remove(r)) => r.if_newer.is_some(),
        _ => return None,
    };
    if copy {
        return None;
    }
    match node.handovers.previous_owner(&h.key, table?)? {
        ReadThrough::Ask(owner) => Some(owner),
        ReadThrough::Down(_) => None,
    }
}

/// The column a remove names (`None`: the whole key), if `frame` is a remove.
fn removed_column(frame: &Frame) -> Option<Option<u16>> {
    match dispatch::decode_request(frame) {
        Ok(Request::Remove(r)) => Some(r.column),
        _ => None,
    }
}

/// Whether this node holds nothing the remove `frame` would remove (so its own answer
/// would be `NOT_FOUND`).
pub fn holds_nothing(b: &dyn Backend, frame: &Frame) -> bool {
    let key = Key(frame.header.key);
    match removed_column(frame) {
        Some(None) => b.columns(&key).is_ok_and(|c| c.is_empty()),
        Some(Some(column)) => matches!(
            b.lookup_column(&key, column),
            Err(ringblob_backends::Error::NotFound(_))
        ),
        None => false,
    }
}

/// Whether `owner` holds a value of the column the remove `frame` removes (column 0 for a
/// whole key) in its own storage. Any failure to tell counts as no: the answer is then
/// this node's own.
pub async fn held_by(node: &Node, owner: &PreviousOwner, frame: &Frame) -> bool {
    let Some(column) = removed_column(frame) else {
        return false;
    };
    let Some(ask) = lookup_frame(&frame.header, column.unwrap_or(0)) else {
        return false;
    };
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
