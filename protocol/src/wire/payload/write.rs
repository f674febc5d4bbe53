//! WRITE request payload and its acknowledgement.

use bytes::{BufMut, Bytes, BytesMut};

use crate::wire::cursor::{check_limit, Reader};
use crate::wire::error::WireError;
use crate::wire::limits::MAX_VALUE_IN_FRAME;

/// Bytes before the data in a WRITE request.
pub const WRITE_FIXED_LEN: usize = 28;
/// Bytes of an encoded [`WriteAck`].
pub const WRITE_ACK_LEN: usize = 8;
/// WRITE flag bit 0: compress the value (the backend may store it raw if incompressible).
pub const WRITE_FLAG_COMPRESS: u8 = 1;
/// WRITE flag bit 1: a copy of a record made elsewhere. An 8-byte `timestamp_ns` follows
/// `data_len`; the value is stored with that timestamp, and only if the stored record of
/// the (key, column) is older (`NOT_NEWER` otherwise). `WHOLE` and `COMMIT` only.
pub const WRITE_FLAG_IF_NEWER: u8 = 2;
/// WRITE flag bit 2: the write's version, chosen once by the node that accepted it from the
/// client (its coordinator) and never re-stamped. An 8-byte `timestamp_ns` follows
/// `data_len` (not with `IF_NEWER`). The value is stored with that timestamp if the stored
/// record of the (key, column) is older; otherwise the write is superseded by a newer one,
/// stores nothing, and is answered OK (last writer wins). `WHOLE`, `APPEND`, `AT_OFFSET`
/// and `COMMIT`.
pub const WRITE_FLAG_VERSION: u8 = 4;
/// WRITE flag bit 3: an 8-byte `deadline_ns` (Unix time, nanoseconds) follows the
/// timestamp (or `data_len`). A node whose clock is past it answers `TIMEOUT` and applies
/// nothing: a request its sender has given up on is never applied late.
pub const WRITE_FLAG_DEADLINE: u8 = 8;
const WRITE_FLAGS: u8 =
    WRITE_FLAG_COMPRESS | WRITE_FLAG_IF_NEWER | WRITE_FLAG_VERSION | WRITE_FLAG_DEADLINE;

/// How durable a write (or remove) must be before the node replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Durability {
    /// 0: the node's configured default.
    #[default]
    Default,
    /// 1: acknowledged once buffered; a crash may lose it.
    None,
    /// 2: after a group-commit fdatasync covering it.
    Batch,
    /// 3: after an fdatasync started at once.
    Sync,
}

impl Durability {
    pub fn as_u8(self) -> u8 {
        match self {
            Durability::Default => 0,
            Durability::None => 1,
            Durability::Batch => 2,
            Durability::Sync => 3,
        }
    }

    pub fn from_u8(v: u8) -> Result<Self, WireError> {
        match v {
            0 => Ok(Durability::Default),
            1 => Ok(Durability::None),
            2 => Ok(Durability::Batch),
            3 => Ok(Durability::Sync),
            _ => Err(WireError::InvalidValue {
                what: "durability",
                value: u64::from(v),
            }),
        }
    }
}

/// What a WRITE does; the wire `mode` byte plus the fields that mode uses. Fields a mode
/// does not use must be zero on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteMode {
    /// 0: replace the value with `data`.
    Whole,
    /// 1: append `data` to the value (creating it if absent).
    Append,
    /// 2: overwrite bytes at `offset` (extending the value if needed).
    AtOffset { offset: u64 },
    /// 3: start a streamed write of a value that will be at most `reserve` bytes; no data.
    Prepare { reserve: u64 },
    /// 4: one part of a streamed write, at `offset`.
    Part { offset: u64 },
    /// 5: finish a streamed write; the value becomes its first `size` bytes; no data.
    Commit { size: u64 },
}

impl WriteMode {
    /// Wire (mode, offset, size).
    fn fields(self) -> (u8, u64, u64) {
        match self {
            WriteMode::Whole => (0, 0, 0),
            WriteMode::Append => (1, 0, 0),
            WriteMode::AtOffset { offset } => (2, offset, 0),
            WriteMode::Prepare { reserve } => (3, 0, reserve),
            WriteMode::Part { offset } => (4, offset, 0),
            WriteMode::Commit { size } => (5, 0, size),
        }
    }

    fn from_fields(mode: u8, offset: u64, size: u64) -> Result<Self, WireError> {
        let parsed = match mode {
            0 => WriteMode::Whole,
            1 => WriteMode::Append,
            2 => WriteMode::AtOffset { offset },
            3 => WriteMode::Prepare { reserve: size },
            4 => WriteMode::Part { offset },
            5 => WriteMode::Commit { size },
            _ => {
                return Err(WireError::InvalidValue {
                    what: "write mode",
                    value: mode.into(),
                })
            }
        };
        // Reject non-zero fields the mode ignores, so every request has one encoding.
        let (_, want_offset, want_size) = parsed.fields();
        if want_offset != offset {
            return Err(WireError::InvalidValue {
                what: "write offset for mode",
                value: offset,
            });
        }
        if want_size != size {
            return Err(WireError::InvalidValue {
                what: "write size for mode",
                value: size,
            });
        }
        Ok(parsed)
    }

    /// PREPARE and COMMIT carry no data.
    pub fn carries_data(self) -> bool {
        !matches!(self, WriteMode::Prepare { .. } | WriteMode::Commit { .. })
    }
}

/// Write to one column of the header's key. Layout: mode u8, flags u8, durability u8,
/// reserved u8, column u16, reserved u16, offset u64, size u64, data_len u32,
/// [timestamp_ns u64 with `IF_NEWER` or `VERSION`], [deadline_ns u64 with `DEADLINE`], data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WriteRequest {
    pub mode: WriteMode,
    /// Ask the backend to compress the value.
    pub compress: bool,
    pub durability: Durability,
    pub column: u16,
    /// `IF_NEWER`: a copy stamped with this timestamp, stored only over an older record.
    /// `WHOLE` and `COMMIT` only.
    pub if_newer: Option<u64>,
    /// `VERSION`: the coordinator's timestamp for this write (not with `if_newer`).
    pub version: Option<u64>,
    /// `DEADLINE`: not to be applied once the receiving node's clock is past this.
    pub deadline_ns: Option<u64>,
    /// At most [`MAX_VALUE_IN_FRAME`] bytes; empty for PREPARE and COMMIT.
    pub data: Bytes,
}

impl WriteRequest {
    /// Replace the whole value of column 0 with `data`, default durability.
    pub fn whole(data: impl Into<Bytes>) -> Self {
        WriteRequest {
            mode: WriteMode::Whole,
            compress: false,
            durability: Durability::Default,
            column: 0,
            if_newer: None,
            version: None,
            deadline_ns: None,
            data: data.into(),
        }
    }

    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        let data_len = self.check_data(self.data.len())?;
        let (mode, offset, size) = self.mode.fields();
        let mut flags = 0;
        if self.compress {
            flags |= WRITE_FLAG_COMPRESS;
        }
        if self.if_newer.is_some() {
            flags |= WRITE_FLAG_IF_NEWER;
        }
        if self.version.is_some() {
            flags |= WRITE_FLAG_VERSION;
        }
        if self.deadline_ns.is_some() {
            flags |= WRITE_FLAG_DEADLINE;
        }
        dst.put_u8(mode);
        dst.put_u8(flags);
        dst.put_u8(self.durability.as_u8());
        dst.put_u8(0);
        dst.put_u16_le(self.column);
        dst.put_u16_le(0);
        dst.put_u64_le(offset);
        dst.put_u64_le(size);
        dst.put_u32_le(data_len);
        if let Some(ts) = self.if_newer.or(self.version) {
            dst.put_u64_le(ts);
        }
        if let Some(deadline) = self.deadline_ns {
            dst.put_u64_le(deadline);
        }
        dst.put_slice(&self.data);
        Ok(())
    }

    /// Decodes a payload; `data` is a zero-copy slice of it.
    pub fn decode(payload: &Bytes) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "WRITE request");
        let mode = r.u8()?;
        let flags = r.u8()?;
        let durability = Durability::from_u8(r.u8()?)?;
        r.reserved(1, "WRITE reserved byte 3")?;
        let column = r.u16()?;
        r.reserved(2, "WRITE reserved bytes 6..8")?;
        let offset = r.u64()?;
        let size = r.u64()?;
        let mode = WriteMode::from_fields(mode, offset, size)?;
        if flags & !WRITE_FLAGS != 0 {
            return Err(WireError::InvalidValue {
                what: "write flags",
                value: flags.into(),
            });
        }
        let len = r.len_u32(MAX_VALUE_IN_FRAME)?;
        let stamped = flags & (WRITE_FLAG_IF_NEWER | WRITE_FLAG_VERSION) != 0;
        let timestamp = if stamped { Some(r.u64()?) } else { None };
        let deadline_ns = if flags & WRITE_FLAG_DEADLINE != 0 {
            Some(r.u64()?)
        } else {
            None
        };
        let (if_newer, version) = match flags & (WRITE_FLAG_IF_NEWER | WRITE_FLAG_VERSION) {
            WRITE_FLAG_IF_NEWER => (timestamp, None),
            WRITE_FLAG_VERSION => (None, timestamp),
            0 => (None, None),
            both => {
                return Err(WireError::InvalidValue {
                    what: "write flags (IF_NEWER with VERSION)",
                    value: both.into(),
                })
            }
        };
        let data = payload.slice_ref(r.slice(len)?);
        r.finish()?;
        let request = WriteRequest {
            mode,
            compress: flags & WRITE_FLAG_COMPRESS != 0,
            durability,
            column,
            if_newer,
            version,
            deadline_ns,
            data,
        };
        request.check_data(len)?;
        Ok(request)
    }

    /// Modes that change the stored value, and so can carry a coordinator's version.
    pub fn takes_version(&self) -> bool {
        !matches!(
            self.mode,
            WriteMode::Prepare { .. } | WriteMode::Part { .. }
        )
    }

    fn check_data(&self, len: usize) -> Result<u32, WireError> {
        check_limit("write data", len, MAX_VALUE_IN_FRAME)?;
        let copies = matches!(self.mode, WriteMode::Whole | WriteMode::Commit { .. });
        if self.if_newer.is_some() && !copies {
            return Err(WireError::InvalidValue {
                what: "IF_NEWER with a mode other than WHOLE or COMMIT: mode",
                value: u64::from(self.mode.fields().0),
            });
        }
        if self.version.is_some() && (self.if_newer.is_some() || !self.takes_version()) {
            return Err(WireError::InvalidValue {
                what: "VERSION with IF_NEWER, PREPARE or PART: mode",
                value: u64::from(self.mode.fields().0),
            });
        }
        if len != 0 && !self.mode.carries_data() {
            return Err(WireError::InvalidValue {
                what: "data in PREPARE/COMMIT",
                value: len as u64,
            });
        }
        u32::try_from(len).map_err(|_| WireError::InvalidValue {
            what: "write data length",
            value: len as u64,
        })
    }
}

/// The WRITE reply: the value's logical size after the write (for PREPARE, the current
/// size; for COMMIT, the final size). Layout: size u64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WriteAck {
    pub size: u64,
}

impl WriteAck {
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u64_le(self.size);
    }

    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "WRITE reply");
        let size = r.u64()?;
        r.finish()?;
        Ok(WriteAck { size })
    }
}
