//! What a request is about: a raw key ID, or a namespace and name (from which the ID is
//! derived, FORMAT.md §4). A name travels in the request envelope so that a node can check
//! a namespace-limited key's request itself (`docs/SECURITY.md`).

use bytes::BytesMut;

use super::error::ClientError;
use crate::wire::{encode_frame, Envelope, Header, KeyId, ObjectName, Request, FLAG_ENVELOPE};

/// A key ID, or the namespace and name it is derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Id(KeyId),
    Name { id: KeyId, name: ObjectName },
}

impl Target {
    /// No key (commands that have none).
    pub const NONE: Target = Target::Id([0; 32]);

    /// The target named `name` in `namespace`.
    pub fn named(namespace: &str, name: impl Into<bytes::Bytes>) -> Target {
        ObjectName::new(namespace, name).into()
    }

    /// The key ID.
    pub fn id(&self) -> KeyId {
        match self {
            Target::Id(id) | Target::Name { id, .. } => *id,
        }
    }

    /// Appends `req`'s frame to `dst` under `header`; a named target's frame carries the
    /// name in an envelope (protocol version 2; by ID alone on a version-1 connection), and
    /// so does the key a node client acts for (`acting`, which needs version 2: refused on
    /// a version-1 connection rather than sent without it).
    pub(crate) fn encode_request(
        &self,
        req: &Request,
        header: &mut Header,
        dst: &mut BytesMut,
        acting: Option<&str>,
    ) -> Result<(), ClientError> {
        let name = match self {
            Target::Name { name, .. } if header.version >= 2 && header.key != [0; 32] => {
                Some(name.clone())
            }
            _ => None,
        };
        // The greeting is the connection's, not a request made for a key.
        let acting = acting.filter(|_| !matches!(req, Request::Handshake(_) | Request::Auth(_)));
        if acting.is_some() && header.version < 2 {
            return Err(ClientError::Unexpected(
                "acting for a key needs protocol version 2".into(),
            ));
        }
        if name.is_none() && acting.is_none() {
            return Ok(req.encode_with(header, dst)?);
        }
        header.command = req.command();
        header.flags |= FLAG_ENVELOPE;
        let envelope = Envelope {
            acting: acting.map(str::to_string),
            name,
        };
        encode_frame(header, dst, |buf| {
            envelope.encode(buf)?;
            req.encode_payload(buf)
        })?;
        Ok(())
    }
}

impl From<KeyId> for Target {
    fn from(id: KeyId) -> Target {
        Target::Id(id)
    }
}

impl From<ObjectName> for Target {
    fn from(name: ObjectName) -> Target {
        Target::Name {
            id: name.key_id(),
            name,
        }
    }
}
