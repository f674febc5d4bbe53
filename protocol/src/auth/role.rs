//! Roles: what an access key may do, command by command.

use crate::wire::Command;

/// What a key may do. Each role can do everything the one before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// `PING`, `LOOKUP`, `READ`, `ITERATE`, `BULK_READ`, `ROUTE_LIST`.
    Read,
    /// Read, and `WRITE` (whole values, appends, writes at an offset, uploads), `REMOVE`.
    Write,
    /// Everything: also `STAT`, `DEFRAG`, `RANGE_DIGEST` and cluster commands.
    Admin,
    /// Another node of the cluster (proved with the cluster secret): everything, and may act
    /// for the client whose request it forwards (never with a wider role than the client's).
    Node,
}

/// A role name that is none of `read`, `write`, `admin`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (read, write or admin)")]
pub struct UnknownRole(pub String);

impl std::str::FromStr for Role {
    type Err = UnknownRole;

    /// `read`, `write` or `admin`; the node role is never given to an access key.
    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        match s {
            "read" => Ok(Role::Read),
            "write" => Ok(Role::Write),
            "admin" => Ok(Role::Admin),
            other => Err(UnknownRole(other.to_string())),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
            Role::Node => "node",
        })
    }
}

impl Role {
    /// The least role that may send `command`. `HANDSHAKE`, `AUTH` and `PING` need none (an
    /// unauthenticated connection may send them; a repeated `HANDSHAKE` or `AUTH` is
    /// answered `BAD_REQUEST`), nor do unknown numbers (answered `UNKNOWN_COMMAND`).
    pub fn needed_for(command: Command) -> Option<Role> {
        match command {
            Command::Handshake | Command::Auth | Command::Ping => None,
            Command::Lookup
            | Command::Read
            | Command::Iterate
            | Command::BulkRead
            | Command::List
            | Command::Watch
            | Command::RouteList => Some(Role::Read),
            Command::Write | Command::Remove => Some(Role::Write),
            Command::Stat | Command::Defrag | Command::RangeDigest | Command::Leave => {
                Some(Role::Admin)
            }
            // Unknown and reserved numbers are answered UNKNOWN_COMMAND whoever sends them
            // (never served, so no role is at stake; a newer client learns what is missing).
            Command::Unknown(_) => None,
        }
    }

    /// Whether this role may send `command`.
    pub fn allows(self, command: Command) -> bool {
        Role::needed_for(command).is_none_or(|needed| self >= needed)
    }
}
