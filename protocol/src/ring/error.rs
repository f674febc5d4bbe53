//! The one error type of the ring module: bad ring IDs, limits, a full ring, a damaged IDs
//! file, a malformed route table.

/// Why ring IDs, an IDs file or a route table could not be decoded, or IDs not chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// A ring ID in text form is not exactly 64 lowercase hex digits.
    #[error("ring id {text:?} is not 64 lowercase hex digits")]
    BadHex {
        /// The offending text, cut to its first 80 characters.
        text: String,
    },

    /// More ring IDs for one node than [`MAX_IDS_PER_NODE`](super::MAX_IDS_PER_NODE).
    #[error("{count} ring ids for one node is over the limit of {max}")]
    TooManyIds { count: u64, max: u32 },

    /// More nodes in a route table than [`MAX_ROUTE_NODES`](super::MAX_ROUTE_NODES).
    #[error("route table lists {count} nodes, the limit is {max}")]
    TooManyNodes { count: u64, max: u32 },

    /// No range of the ring is wide enough to place another ID strictly inside it.
    /// Only reachable with rings far denser than any real cluster.
    #[error("the ring is full: the widest range ({width} positions) cannot be split")]
    RingFull { width: u64 },

    /// The IDs file is shorter than its header or than its declared count needs.
    #[error("ids file truncated: needs {need} bytes, has {have}")]
    Truncated { need: u64, have: u64 },

    /// Bytes follow the checksum of the IDs file.
    #[error("ids file has {extra} bytes after its checksum")]
    TrailingBytes { extra: u64 },

    /// The IDs file does not start with `RBIDS\0\0\0`.
    #[error(
        "bad ids file magic {got:02x?} (expected \"RBIDS\\0\\0\\0\"): not a ringblob ids file"
    )]
    BadMagic { got: [u8; 8] },

    /// The IDs file is in a format version this build cannot read.
    #[error(
        "ids file format version {got} is not supported (this build reads version {supported})"
    )]
    UnsupportedVersion { got: u32, supported: u32 },

    /// The IDs in an IDs file are not strictly ascending (at position `index`).
    #[error("ids file: id {index} is not greater than the one before it")]
    NotAscending { index: u32 },

    /// The CRC-32 stored at the end of the IDs file does not match its bytes.
    #[error("ids file CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch { stored: u32, computed: u32 },

    /// A route table is not valid JSON of the expected shape.
    #[error("route table is not valid JSON of the expected shape: {message}")]
    BadRouteTable { message: String },
}
