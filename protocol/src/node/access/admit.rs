//! The check every request passes before it is served or forwarded: the role allows the
//! command, and a namespace-limited key names a namespace it may touch.

use bytes::BytesMut;

use super::{Access, Identity};
use crate::auth::Role;
use crate::wire::{Command, Envelope, Frame, Status, WireError, FLAG_ENVELOPE};

/// A refused request: the status and the message its error reply carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub status: Status,
    pub message: String,
}

fn unauthorized(message: String) -> Denied {
    Denied {
        status: Status::Unauthorized,
        message,
    }
}

fn bad(e: WireError) -> Denied {
    Denied {
        status: e.status(),
        message: e.to_string(),
    }
}

/// Whether `conn` may have `frame` served (here or by its owner). A node forwarding for a
/// client names the client's key in the envelope: that key's role and namespaces, as this
/// node's keys file says, apply (a node never widens them).
pub fn admit(access: &Access, conn: &Identity, frame: &Frame) -> Result<(), Denied> {
    let h = &frame.header;
    if Role::needed_for(h.command).is_none() {
        return Ok(());
    }
    let envelope = match h.flags & FLAG_ENVELOPE != 0 {
        true => Some(Envelope::split(&frame.payload).map_err(bad)?.0),
        false => None,
    };
    let acting = envelope.as_ref().and_then(|e| e.acting.as_deref());
    let effective = match acting {
        None => conn.clone(),
        Some(id) if conn.role == Role::Node => access.lookup(id).ok_or_else(|| {
            unauthorized(format!(
                "key {id} is not known on this node: every node needs the same keys file"
            ))
        })?,
        Some(_) => {
            return Err(unauthorized(format!(
                "only a node may act for another key (this connection is key {})",
                conn.name()
            )))
        }
    };
    if !effective.role.allows(h.command) {
        let needed = Role::needed_for(h.command).unwrap_or(Role::Admin);
        return Err(unauthorized(format!(
            "key {} has role {}; {} needs role {needed}",
            effective.name(),
            effective.role,
            h.command.name()
        )));
    }
    if let Some(name) = envelope.as_ref().and_then(|e| e.name.as_ref()) {
        if name.key_id() != h.key {
            return Err(Denied {
                status: Status::BadRequest,
                message: "the envelope's namespace and name do not derive the header's key".into(),
            });
        }
    }
    match &effective.namespaces {
        None => Ok(()),
        Some(allowed) => check_namespace(&effective, allowed, frame, envelope.as_ref()),
    }
}

fn check_namespace(
    who: &Identity,
    allowed: &[String],
    frame: &Frame,
    envelope: Option<&Envelope>,
) -> Result<(), Denied> {
    let h = &frame.header;
    let limited = || format!("key {} is limited to namespaces {allowed:?}", who.name());
    match h.command {
        Command::Lookup | Command::Read | Command::Write | Command::Remove => {}
        Command::List => return check_list_namespace(who, allowed, frame),
        Command::Watch => match watched_namespace(frame)? {
            // A key watch is judged as a read of the key (its envelope's namespace).
            None => {}
            Some(ns) if allowed.contains(&ns) => return Ok(()),
            Some(ns) => {
                return Err(unauthorized(format!(
                    "{}; namespace {ns:?} is not one of them",
                    limited()
                )))
            }
        },
        Command::Iterate | Command::BulkRead | Command::RangeDigest => {
            return Err(unauthorized(format!(
                "{}; {} reaches keys of every namespace and is refused to it",
                limited(),
                h.command.name()
            )))
        }
        _ => return Ok(()),
    }
    let Some(name) = envelope.and_then(|e| e.name.as_ref()) else {
        return Err(unauthorized(format!(
            "{}: a request must carry its namespace and name (the envelope), not only a key ID",
            limited()
        )));
    };
    if !allowed.contains(&name.namespace) {
        return Err(unauthorized(format!(
            "{}; namespace {:?} is not one of them",
            limited(),
            name.namespace
        )));
    }
    Ok(())
}

/// A namespace-limited key lists only names of its namespaces, and no namespace listing
/// (which would show the names of the others).
fn check_list_namespace(who: &Identity, allowed: &[String], frame: &Frame) -> Result<(), Denied> {
    let limited = format!("key {} is limited to namespaces {allowed:?}", who.name());
    let req = strip_envelope(frame.clone())
        .and_then(|f| crate::wire::ListRequest::decode(&f.payload))
        .map_err(|e| Denied {
            status: e.status(),
            message: e.to_string(),
        })?;
    if req.namespaces {
        return Err(unauthorized(format!(
            "{limited}; a LIST of namespaces is refused to it"
        )));
    }
    if !allowed.contains(&req.namespace) {
        return Err(unauthorized(format!(
            "{limited}; namespace {:?} is not one of them",
            req.namespace
        )));
    }
    Ok(())
}

/// The namespace a WATCH subscribes to (`None`: a key, or a cancel).
fn watched_namespace(frame: &Frame) -> Result<Option<String>, Denied> {
    let req = strip_envelope(frame.clone())
        .and_then(|f| crate::wire::WatchRequest::decode(&f.payload))
        .map_err(|e| Denied {
            status: e.status(),
            message: e.to_string(),
        })?;
    Ok(req.namespace.filter(|_| req.cancel.is_none()))
}

/// The frame without its envelope (what the dispatcher decodes).
pub fn strip_envelope(mut frame: Frame) -> Result<Frame, WireError> {
    if frame.header.flags & FLAG_ENVELOPE == 0 {
        return Ok(frame);
    }
    let (_, rest) = Envelope::split(&frame.payload)?;
    frame.header.flags &= !FLAG_ENVELOPE;
    frame.payload = rest;
    Ok(frame)
}

/// `frame` with an envelope naming `acting` as the key this node forwards it for (keeping
/// a name the client sent).
pub fn seal_for_forward(frame: &Frame, acting: &str) -> Result<Frame, WireError> {
    let (mut envelope, rest) = if frame.header.flags & FLAG_ENVELOPE != 0 {
        Envelope::split(&frame.payload)?
    } else {
        (Envelope::default(), frame.payload.clone())
    };
    envelope.acting = Some(acting.to_string());
    let mut payload = BytesMut::with_capacity(rest.len() + 128);
    envelope.encode(&mut payload)?;
    payload.extend_from_slice(&rest);
    let mut header = frame.header;
    header.flags |= FLAG_ENVELOPE;
    header.version = header.version.max(2);
    Ok(Frame {
        header,
        payload: payload.freeze(),
    })
}
