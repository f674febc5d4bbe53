//! Command numbers (header offset 6). Stable; never reused.

use std::fmt;

/// What a frame asks for (requests) or answers (replies echo the request's command).
/// Unknown numbers are kept as [`Command::Unknown`] so a header always decodes; a request
/// with one is answered `UNKNOWN_COMMAND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// 1: liveness check; empty payloads.
    Ping,
    /// 2: version negotiation; the first frame on every connection.
    Handshake,
    /// 3: metadata of the key in the header.
    Lookup,
    /// 4: read a byte range of a value.
    Read,
    /// 5: write (whole, append, at offset, or streamed prepare/part/commit).
    Write,
    /// 6: remove a key (all its columns).
    Remove,
    /// 7: list keys in a key range, streamed.
    Iterate,
    /// 8: read many whole values, one reply part per key.
    BulkRead,
    /// 9: node statistics as JSON.
    Stat,
    /// 10: the node's route table as JSON.
    RouteList,
    /// 12: the node leaves the cluster on purpose: it hands every range it owns to the rest
    /// of its group (a drain), optionally stopping once done; or reports how far it is.
    /// JSON reply.
    Leave,
    /// 13: defragment the node's storage now (optionally waiting for it); JSON reply.
    Defrag,
    /// 14: a Merkle-style summary (leaf digests) of the values in a key range, for repair.
    RangeDigest,
    /// 15 (version 2): the proof of an access key's secret, the second frame of an
    /// authenticating connection.
    Auth,
    /// 16 (version 2): one page of the names (or namespaces) the node holds.
    List,
    /// 17 (version 3): a subscription to the changes of a key or a namespace, answered by
    /// notification frames until cancelled.
    Watch,
    /// Any other number (including the reserved 11 JOIN).
    Unknown(u16),
}

/// Numbers reserved for later versions: JOIN.
pub const RESERVED_COMMANDS: [u16; 1] = [11];

/// Every command this version defines, in numeric order.
pub const ALL_COMMANDS: [Command; 16] = [
    Command::Ping,
    Command::Handshake,
    Command::Lookup,
    Command::Read,
    Command::Write,
    Command::Remove,
    Command::Iterate,
    Command::BulkRead,
    Command::Stat,
    Command::RouteList,
    Command::Leave,
    Command::Defrag,
    Command::RangeDigest,
    Command::Auth,
    Command::List,
    Command::Watch,
];

impl Command {
    /// The command for a wire number; unknown numbers are kept.
    pub fn from_u16(code: u16) -> Command {
        ALL_COMMANDS
            .iter()
            .copied()
            .find(|c| c.as_u16() == code)
            .unwrap_or(Command::Unknown(code))
    }

    /// The wire number.
    pub fn as_u16(self) -> u16 {
        match self {
            Command::Ping => 1,
            Command::Handshake => 2,
            Command::Lookup => 3,
            Command::Read => 4,
            Command::Write => 5,
            Command::Remove => 6,
            Command::Iterate => 7,
            Command::BulkRead => 8,
            Command::Stat => 9,
            Command::RouteList => 10,
            Command::Leave => 12,
            Command::Defrag => 13,
            Command::RangeDigest => 14,
            Command::Auth => 15,
            Command::List => 16,
            Command::Watch => 17,
            Command::Unknown(code) => code,
        }
    }

    /// The upper-case name used in `docs/PROTOCOL.md`.
    pub fn name(self) -> &'static str {
        match self {
            Command::Ping => "PING",
            Command::Handshake => "HANDSHAKE",
            Command::Lookup => "LOOKUP",
            Command::Read => "READ",
            Command::Write => "WRITE",
            Command::Remove => "REMOVE",
            Command::Iterate => "ITERATE",
            Command::BulkRead => "BULK_READ",
            Command::Stat => "STAT",
            Command::RouteList => "ROUTE_LIST",
            Command::Leave => "LEAVE",
            Command::Defrag => "DEFRAG",
            Command::RangeDigest => "RANGE_DIGEST",
            Command::Auth => "AUTH",
            Command::List => "LIST",
            Command::Watch => "WATCH",
            Command::Unknown(_) => "UNKNOWN",
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.as_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        let numbers: Vec<u16> = ALL_COMMANDS.iter().map(|c| c.as_u16()).collect();
        assert_eq!(
            numbers,
            vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17]
        );
        for c in ALL_COMMANDS {
            assert_eq!(Command::from_u16(c.as_u16()), c, "{c}");
        }
    }

    #[test]
    fn zero_reserved_and_large_numbers_are_unknown() {
        for code in [0, 11, 18, u16::MAX] {
            assert_eq!(Command::from_u16(code), Command::Unknown(code));
            assert_eq!(Command::from_u16(code).as_u16(), code);
        }
        assert_eq!(Command::BulkRead.to_string(), "BULK_READ (8)");
    }
}
