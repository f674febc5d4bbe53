//! Hard limits of protocol versions 1 and 2. Every one is documented in `docs/PROTOCOL.md`
//! ("Limits"); the codec enforces the size limits on both encode and decode, the node
//! enforces the counts and timeouts.

use std::time::Duration;

/// The protocol version this crate speaks (and writes in request headers after the
/// handshake). Version 2 adds authentication (`AUTH`, the `AUTH` handshake feature) and the
/// request envelope; version 3 adds `WATCH`. Every frame layout of version 1 is unchanged.
pub const PROTOCOL_VERSION: u8 = 3;
/// Oldest protocol version this crate can speak.
pub const MIN_PROTOCOL_VERSION: u8 = 1;
/// Newest protocol version this crate can speak.
pub const MAX_PROTOCOL_VERSION: u8 = 3;

/// Bytes in a frame header.
pub const HEADER_LEN: usize = 80;
const _: () = assert!(HEADER_LEN == 80);

/// Bytes in a key ID.
pub const KEY_LEN: usize = 32;

/// Largest value (WRITE data) one frame may carry: 32 MiB. Larger values are written with
/// PREPARE / PART / COMMIT.
pub const MAX_VALUE_IN_FRAME: usize = 32 << 20;
/// Largest payload of any frame: 33 MiB (a full value plus room for fixed fields).
/// Checked from the header before any payload byte is buffered.
pub const MAX_PAYLOAD_LEN: usize = 33 << 20;
/// Largest frame, header included.
pub const MAX_FRAME_LEN: usize = HEADER_LEN + MAX_PAYLOAD_LEN;
const _: () = assert!(MAX_PAYLOAD_LEN <= u32::MAX as usize);
const _: () = assert!(MAX_VALUE_IN_FRAME + 64 <= MAX_PAYLOAD_LEN);

/// Largest payload of one READ or ITERATE reply part: 1 MiB.
pub const MAX_REPLY_PART: usize = 1 << 20;
/// Largest UTF-8 message in an error reply (or a failed BULK_READ item): 4 KiB.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Largest client or node name in a HANDSHAKE, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// A node refuses to forward a request whose hop count has reached this; a frame with a
/// larger hop count is rejected with `TOO_MANY_HOPS`.
pub const MAX_FORWARD_HOPS: u8 = 4;
/// Requests one connection may have outstanding; the node stops reading the socket until
/// replies drain below it.
pub const MAX_IN_FLIGHT_PER_CONNECTION: usize = 256;
/// Connections one node serves at once; the next one gets `CONNECTION_LIMIT` and is closed.
pub const MAX_CONNECTIONS: usize = 1024;
/// A connection with no complete frame for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Once a frame's first byte arrives, the whole frame must arrive within this.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Most keys in one BULK_READ request.
pub const MAX_BULK_KEYS: usize = 1024;
/// Most entries one ITERATE request may ask for.
pub const MAX_ITERATE_LIMIT: u32 = 10_000;
/// Entries an ITERATE request with `limit == 0` gets.
pub const DEFAULT_ITERATE_LIMIT: u32 = 1000;
