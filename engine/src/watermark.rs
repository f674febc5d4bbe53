//! The synced watermark: `synced.pos` in the data directory names the furthest log position
//! (blob id, offset) known to have been made durable by an `fdatasync`.
//!
//! It is what lets opening tell a torn append from damage. Bytes of the log before the
//! watermark were synced (and possibly acknowledged as durable): damage there is reported
//! and its key reads as damaged; a blob shorter than the watermark lost synced bytes. Bytes
//! after it were never synced, so a record cut off there is a torn append, safely cut.
//!
//! The file is written in place after every successful sync, with no sync of its own:
//! after a process crash (`kill -9`) the page cache still holds it, so it is exact; after a
//! power cut it may be older than the truth, never newer (it is written only after the sync
//! it describes returned), and bytes between it and the real sync point are then treated
//! as torn. It is synced at a clean close. Format (24 bytes, little-endian):
//! `RBSYNCD\0`, blob id u32, offset u64, CRC-32 of the first 20 bytes.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::commit::LogPos;
use crate::format::crc32;
use crate::io::{Device, DeviceFile, OpenMode};

/// The watermark's file name.
pub const WATERMARK_FILE: &str = "synced.pos";
const MAGIC: &[u8; 8] = b"RBSYNCD\0";
const LEN: usize = 24;

/// Encodes a watermark.
pub fn encode(pos: LogPos) -> [u8; LEN] {
    let mut b = [0u8; LEN];
    b[0..8].copy_from_slice(MAGIC);
    b[8..12].copy_from_slice(&pos.0.to_le_bytes());
    b[12..20].copy_from_slice(&pos.1.to_le_bytes());
    let crc = crc32(&b[0..20]);
    b[20..24].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Decodes a watermark; `None` if the bytes are not one.
pub fn decode(b: &[u8]) -> Option<LogPos> {
    let b = b.get(..LEN)?;
    let le32 = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    if &b[0..8] != MAGIC || le32(20) != crc32(&b[0..20]) {
        return None;
    }
    let offset = u64::from_le_bytes(b[12..20].try_into().ok()?);
    Some((le32(8), offset))
}

/// Reads the watermark of a data directory; `None` when there is none or it is damaged
/// (then nothing is known to be synced past the index files).
pub fn load(device: &dyn Device) -> Option<LogPos> {
    let f = device.open(WATERMARK_FILE, OpenMode::ReadOnly).ok()?;
    let mut b = [0u8; LEN];
    f.read_exact_at(&mut b, 0).ok()?;
    let pos = decode(&b);
    if pos.is_none() {
        tracing::warn!(
            file = WATERMARK_FILE,
            "synced watermark is damaged; ignoring it"
        );
    }
    pos
}

/// The watermark of an open engine: advanced after every sync.
pub struct Watermark {
    state: Mutex<State>,
}

struct State {
    file: Option<Arc<dyn DeviceFile>>,
    written: LogPos,
}

impl Watermark {
    /// Starts from `pos` (what opening found), opening (or creating) the file.
    pub fn open(device: &dyn Device, pos: LogPos) -> Self {
        // A new file is written and synced whole before it is used, so a watermark that
        // exists was valid once; later writes replace 24 bytes in place.
        let file = device
            .open(WATERMARK_FILE, OpenMode::ReadWrite)
            .or_else(|_| {
                let f = device.open(WATERMARK_FILE, OpenMode::CreateNew)?;
                f.write_all_at(&encode(pos), 0)?;
                f.sync_data()?;
                device.sync_dir()?;
                Ok::<_, std::io::Error>(f)
            });
        let file = match file {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::warn!(file = WATERMARK_FILE, error = %e, "cannot open the synced watermark; damage after a crash will be reported more often");
                None
            }
        };
        let w = Watermark {
            state: Mutex::new(State {
                file,
                written: (0, 0),
            }),
        };
        w.advance(pos);
        w
    }

    /// Records that everything up to `pos` is durable (no-op if it is not past what is
    /// recorded). A failed write is logged: the watermark is advice to recovery, and an
    /// older one only makes it cut more of an unsynced tail.
    pub fn advance(&self, pos: LogPos) {
        let mut s = self.state.lock();
        if pos <= s.written {
            return;
        }
        let Some(f) = &s.file else { return };
        if let Err(e) = f.write_all_at(&encode(pos), 0) {
            tracing::warn!(file = WATERMARK_FILE, error = %e, "cannot write the synced watermark");
            return;
        }
        s.written = pos;
    }

    /// Makes the watermark itself durable (at a clean close).
    pub fn sync(&self) {
        let s = self.state.lock();
        if let Some(f) = &s.file {
            if let Err(e) = f.sync_data() {
                tracing::warn!(file = WATERMARK_FILE, error = %e, "cannot sync the synced watermark");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watermark_round_trips_and_any_flipped_bit_is_refused() {
        let b = encode((7, 123_456_789));
        assert_eq!(decode(&b), Some((7, 123_456_789)));
        for bit in 0..LEN * 8 {
            let mut d = b;
            d[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(decode(&d), None, "bit {bit}");
        }
        assert_eq!(decode(&b[..LEN - 1]), None);
    }

    #[test]
    fn golden_vector() {
        let b = encode((1, 4096));
        assert_eq!(&b[0..8], b"RBSYNCD\0");
        assert_eq!(&b[8..20], &[1, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            u32::from_le_bytes(b[20..24].try_into().unwrap()),
            crc32(&b[0..20])
        );
    }
}
