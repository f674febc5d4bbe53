//! Reply status codes: stable numbers, never reused. The table in `docs/PROTOCOL.md`
//! ("Status codes") is the contract; this enum mirrors it.

use std::fmt;

/// The outcome a reply reports. Numbers are stable across versions; a code this version
/// does not know decodes as [`Status::Unknown`] so a newer peer's reply is still readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// 0: the request succeeded.
    Ok,
    /// 1: the key (or column) does not exist.
    NotFound,
    /// 2: stored data failed its checksum; the value is damaged on this node.
    ChecksumMismatch,
    /// 3: the requested range starts past the end of the value.
    RangeOutOfBounds,
    /// 4: a value, frame or count is over a protocol or node limit.
    TooLarge,
    /// 5: the request is malformed (bad field, reserved bits set, truncated payload).
    BadRequest,
    /// 6: the node is overloaded; retry later, possibly elsewhere.
    Busy,
    /// 7: the node (or a node it forwarded to) did not answer in time.
    Timeout,
    /// 8: a bug or an unexpected failure inside the node; see the message.
    Internal,
    /// 9: the peer is not allowed to do this.
    Unauthorized,
    /// 10: no protocol version in common, or a frame in a version the node does not speak.
    UnsupportedVersion,
    /// 11: the command number is unknown (or reserved) in this version.
    UnknownCommand,
    /// 12: the backend refuses writes (e.g. poisoned after a failed sync, or read-only mode).
    ReadOnly,
    /// 13: the request was forwarded more than `MAX_FORWARD_HOPS` times.
    TooManyHops,
    /// 14: this node does not own the key and will not forward (route table out of date).
    NotOwner,
    /// 15: the node serves `MAX_CONNECTIONS` connections already; it closes this one.
    ConnectionLimit,
    /// 16: a `WRITE` with `IF_NEWER` found a record at least as new; nothing was written.
    NotNewer,
    /// 17: a `LOOKUP` or `READ` of a (key, column) this node remembers as removed: the
    /// message is exactly `removed at T` (T the remove's version, decimal nanoseconds), so a
    /// replicated read can weigh the remove against other groups' values by version.
    Removed,
    /// 18: this node cannot tell whether the key exists (e.g. its range is being handed
    /// over and the node that has it does not answer): not `NOT_FOUND`; ask another group.
    Unavailable,
    /// 19: the node's disk is full: nothing was written. Reads and removes still work;
    /// writes succeed again once space is free (no restart). Try another replica or later.
    NoSpace,
    /// 20: the value was replaced or removed while a multi-part `READ` reply was being sent:
    /// the parts already sent are of the old version and must be discarded; read again.
    Changed,
    /// Any other number, from a newer peer. Treat as a failure.
    Unknown(u32),
}

/// Every named status, in numeric order (for tests and docs).
pub const ALL_STATUSES: [Status; 21] = [
    Status::Ok,
    Status::NotFound,
    Status::ChecksumMismatch,
    Status::RangeOutOfBounds,
    Status::TooLarge,
    Status::BadRequest,
    Status::Busy,
    Status::Timeout,
    Status::Internal,
    Status::Unauthorized,
    Status::UnsupportedVersion,
    Status::UnknownCommand,
    Status::ReadOnly,
    Status::TooManyHops,
    Status::NotOwner,
    Status::ConnectionLimit,
    Status::NotNewer,
    Status::Removed,
    Status::Unavailable,
    Status::NoSpace,
    Status::Changed,
];

impl Status {
    /// The status for a wire number; unknown numbers are kept as [`Status::Unknown`].
    pub fn from_u32(code: u32) -> Status {
        usize::try_from(code)
            .ok()
            .and_then(|i| ALL_STATUSES.get(i).copied())
            .unwrap_or(Status::Unknown(code))
    }

    /// The wire number.
    pub fn as_u32(self) -> u32 {
        match self {
            Status::Ok => 0,
            Status::NotFound => 1,
            Status::ChecksumMismatch => 2,
            Status::RangeOutOfBounds => 3,
            Status::TooLarge => 4,
            Status::BadRequest => 5,
            Status::Busy => 6,
            Status::Timeout => 7,
            Status::Internal => 8,
            Status::Unauthorized => 9,
            Status::UnsupportedVersion => 10,
            Status::UnknownCommand => 11,
            Status::ReadOnly => 12,
            Status::TooManyHops => 13,
            Status::NotOwner => 14,
            Status::ConnectionLimit => 15,
            Status::NotNewer => 16,
            Status::Removed => 17,
            Status::Unavailable => 18,
            Status::NoSpace => 19,
            Status::Changed => 20,
            Status::Unknown(code) => code,
        }
    }

    /// `true` for [`Status::Ok`].
    pub fn is_ok(self) -> bool {
        self == Status::Ok
    }

    /// The upper-case name used in `docs/PROTOCOL.md` (`"UNKNOWN"` for unknown codes).
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::NotFound => "NOT_FOUND",
            Status::ChecksumMismatch => "CHECKSUM_MISMATCH",
            Status::RangeOutOfBounds => "RANGE_OUT_OF_BOUNDS",
            Status::TooLarge => "TOO_LARGE",
            Status::BadRequest => "BAD_REQUEST",
            Status::Busy => "BUSY",
            Status::Timeout => "TIMEOUT",
            Status::Internal => "INTERNAL",
            Status::Unauthorized => "UNAUTHORIZED",
            Status::UnsupportedVersion => "UNSUPPORTED_VERSION",
            Status::UnknownCommand => "UNKNOWN_COMMAND",
            Status::ReadOnly => "READ_ONLY",
            Status::TooManyHops => "TOO_MANY_HOPS",
            Status::NotOwner => "NOT_OWNER",
            Status::ConnectionLimit => "CONNECTION_LIMIT",
            Status::NotNewer => "NOT_NEWER",
            Status::Removed => "REMOVED",
            Status::Unavailable => "UNAVAILABLE",
            Status::NoSpace => "NO_SPACE",
            Status::Changed => "CHANGED",
            Status::Unknown(_) => "UNKNOWN",
        }
    }
}

/// The message of a [`Status::Removed`] reply to a remove at `timestamp_ns`.
pub fn removed_message(timestamp_ns: u64) -> String {
    format!("removed at {timestamp_ns}")
}

/// The remove's version in a [`Status::Removed`] reply's message (`None` if it is not
/// exactly `removed at T`).
pub fn parse_removed_message(message: &str) -> Option<u64> {
    let digits = message.strip_prefix("removed at ")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.as_u32())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_match_the_table_order() {
        for (i, s) in ALL_STATUSES.iter().enumerate() {
            assert_eq!(s.as_u32() as usize, i, "{s}");
            assert_eq!(Status::from_u32(s.as_u32()), *s);
        }
    }

    #[test]
    fn removed_messages_round_trip_and_nothing_else_parses() {
        assert_eq!(parse_removed_message(&removed_message(0)), Some(0));
        assert_eq!(
            parse_removed_message(&removed_message(u64::MAX)),
            Some(u64::MAX)
        );
        for bad in [
            "",
            "removed at ",
            "removed at -1",
            "removed at 1 ",
            "Removed at 1",
        ] {
            assert_eq!(parse_removed_message(bad), None, "{bad:?}");
        }
        assert_eq!(
            parse_removed_message("removed at 18446744073709551616"),
            None
        );
    }

    #[test]
    fn unknown_codes_are_kept() {
        assert_eq!(Status::from_u32(21), Status::Unknown(21));
        assert_eq!(Status::from_u32(u32::MAX).as_u32(), u32::MAX);
        assert_eq!(Status::Unknown(99).to_string(), "UNKNOWN (99)");
        assert_eq!(Status::NotFound.to_string(), "NOT_FOUND (1)");
    }
}
