//! The synced watermark: `synced.pos` in the data directory names the furthest log position
//! (blob id, offset) known to have been made durable by an `fdatasync`, and the final
//! lengths of blobs rotated out whose index files are not written yet.
//!
//! It is what lets opening tell a torn append from damage. Bytes of the log before the
//! watermark were synced (and possibly acknowledged as durable): damage there is reported
//! and its key reads as damaged; a blob shorter than the watermark (or than its listed
//! final length) lost synced bytes. Bytes after it were never synced, so a record cut off
//! there is a torn append, safely cut.
//!
//! The file is written in place after every successful sync, with no sync of its own:
//! after a process crash (`kill -9`) the page cache still holds it, so it is exact; after a
//! power cut it may be older than the truth, never newer (it is written only after the sync
//! it describes returned), and bytes between it and the real sync point are then treated
//! as torn. It is created synced and synced again at a clean close.
//!
//! Format (`docs/FORMAT.md` §17; little-endian): `RBSYNCD\0`, blob id u32, offset u64,
//! count u32 (0..=256), `count` × (blob id u32, length u64), CRC-32 of everything before
//! it, and nothing after (the file is cut when a version is shorter than the last).

use std::sync::Arc;

use parking_lot::Mutex;

use crate::commit::LogPos;
use crate::format::crc32;
use crate::io::{Device, DeviceFile, OpenMode};

/// The watermark's file name.
pub const WATERMARK_FILE: &str = "synced.pos";
const MAGIC: &[u8; 8] = b"RBSYNCD\0";
/// Blobs rotated out and not indexed yet that the file can list (the newest ones).
pub const MAX_UNINDEXED: usize = 256;
const FIXED: usize = 24;
const SLOT: usize = 12;
/// The longest watermark file.
pub const MAX_LEN: usize = FIXED + MAX_UNINDEXED * SLOT + 4;

/// A decoded watermark.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Synced {
    /// Everything before this log position was synced.
    pub pos: LogPos,
    /// Final lengths of blobs rotated out (so wholly synced) and not indexed yet.
    pub unindexed: Vec<(u32, u64)>,
}

impl Synced {
    /// Whether byte `offset` of blob `blob` is known to have been synced: it lies before
    /// the position, or in a blob before the position's (rotated out, so synced whole).
    pub fn covers(&self, blob: u32, offset: u64) -> bool {
        blob < self.pos.0 || (blob == self.pos.0 && offset < self.pos.1)
    }

    /// The length blob `blob` is known to have had (0 if unknown).
    pub fn proven_len(&self, blob: u32) -> u64 {
        let listed = self
            .unindexed
            .iter()
            .find(|(b, _)| *b == blob)
            .map_or(0, |(_, l)| *l);
        let active = if blob == self.pos.0 { self.pos.1 } else { 0 };
        listed.max(active)
    }
}

/// Encodes a watermark (only the newest [`MAX_UNINDEXED`] unindexed blobs are kept).
pub fn encode(pos: LogPos, unindexed: &[(u32, u64)]) -> Vec<u8> {
    let listed = &unindexed[unindexed.len().saturating_sub(MAX_UNINDEXED)..];
    let mut b = Vec::with_capacity(FIXED + listed.len() * SLOT + 4);
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&pos.0.to_le_bytes());
    b.extend_from_slice(&pos.1.to_le_bytes());
    b.extend_from_slice(&(listed.len() as u32).to_le_bytes());
    for (blob, len) in listed {
        b.extend_from_slice(&blob.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
    }
    let crc = crc32(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// Decodes a watermark; `None` if the bytes are not one.
pub fn decode(b: &[u8]) -> Option<Synced> {
    let le32 = |at: usize| Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?));
    let le64 = |at: usize| Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?));
    if b.get(0..8)? != MAGIC {
        return None;
    }
    let count = le32(20)? as usize;
    if count > MAX_UNINDEXED {
        return None;
    }
    let end = FIXED + count * SLOT;
    if b.len() != end + 4 || le32(end)? != crc32(b.get(..end)?) {
        return None;
    }
    let mut unindexed = Vec::with_capacity(count);
    for i in 0..count {
        let at = FIXED + i * SLOT;
        unindexed.push((le32(at)?, le64(at + 4)?));
    }
    Some(Synced {
        pos: (le32(8)?, le64(12)?),
        unindexed,
    })
}

/// Reads the watermark of a data directory; `None` when there is none or it is damaged
/// (then nothing is known to be synced past the index files).
pub fn load(device: &dyn Device) -> Option<Synced> {
    let f = device.open(WATERMARK_FILE, OpenMode::ReadOnly).ok()?;
    let len = f.len().ok()?.min(MAX_LEN as u64) as usize;
    let mut b = vec![0u8; len];
    f.read_exact_at(&mut b, 0).ok()?;
    let synced = decode(&b);
    if synced.is_none() {
        tracing::warn!(
            file = WATERMARK_FILE,
            "synced watermark is damaged; ignoring it"
        );
    }
    synced
}

/// The watermark of an open engine: advanced after every sync.
pub struct Watermark {
    state: Mutex<State>,
}

struct State {
    file: Option<Arc<dyn DeviceFile>>,
    written: Vec<u8>,
    /// The file's length (cut when a shorter version is written).
    file_len: u64,
    pos: LogPos,
}

impl Watermark {
    /// Starts from `pos` (what opening found, all of it synced), opening (or creating) the
    /// file.
    pub fn open(device: &dyn Device, pos: LogPos) -> Self {
        // A new file is written and synced whole before it is used, so a watermark that
        // exists was valid once; later writes replace its bytes in place.
        let file = device
            .open(WATERMARK_FILE, OpenMode::ReadWrite)
            .or_else(|_| {
                let f = device.open(WATERMARK_FILE, OpenMode::CreateNew)?;
                f.write_all_at(&encode(pos, &[]), 0)?;
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
        let file_len = file.as_ref().and_then(|f| f.len().ok()).unwrap_or(0);
        let w = Watermark {
            state: Mutex::new(State {
                file,
                written: Vec::new(),
                file_len,
                pos: (0, 0),
            }),
        };
        w.advance(pos, &[]);
        w
    }

    /// Records that everything up to `pos` is durable, and which rotated-out blobs (all
    /// synced, with their final lengths) have no index file yet. A position behind the one
    /// recorded is ignored. A failed write is logged: the watermark is advice to recovery,
    /// and an older one only makes it cut more of an unsynced tail.
    pub fn advance(&self, pos: LogPos, unindexed: &[(u32, u64)]) {
        let mut s = self.state.lock();
        if pos < s.pos {
            return;
        }
        let bytes = encode(pos, unindexed);
        if bytes == s.written {
            return;
        }
        let Some(f) = &s.file else { return };
        let shorter = (bytes.len() as u64) < s.file_len;
        let written = f.write_all_at(&bytes, 0).and_then(|()| match shorter {
            true => f.set_len(bytes.len() as u64),
            false => Ok(()),
        });
        if let Err(e) = written {
            tracing::warn!(file = WATERMARK_FILE, error = %e, "cannot write the synced watermark");
            return;
        }
        s.file_len = s.file_len.max(bytes.len() as u64);
        if shorter {
            s.file_len = bytes.len() as u64;
        }
        s.written = bytes;
        s.pos = pos;
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
        let b = encode((7, 123_456_789), &[(5, 999), (6, 1 << 33)]);
        let want = Synced {
            pos: (7, 123_456_789),
            unindexed: vec![(5, 999), (6, 1 << 33)],
        };
        assert_eq!(decode(&b), Some(want));
        for bit in 0..b.len() * 8 {
            let mut d = b.clone();
            d[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(decode(&d), None, "bit {bit}");
        }
        assert_eq!(decode(&b[..b.len() - 1]), None);
        let mut longer = b.clone();
        longer.extend_from_slice(&[9; 30]);
        assert!(decode(&longer).is_none(), "bytes after the CRC");
    }

    #[test]
    fn golden_vector() {
        let b = encode((2, 4096), &[(1, 300)]);
        assert_eq!(&b[0..8], b"RBSYNCD\0");
        assert_eq!(
            &b[8..24],
            &[2, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]
        );
        assert_eq!(&b[24..36], &[1, 0, 0, 0, 44, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&b[36..40], &crc32(&b[0..36]).to_le_bytes());
        assert_eq!(b.len(), 40);
    }

    #[test]
    fn only_the_newest_unindexed_blobs_are_kept_and_coverage_follows_blob_order() {
        let all: Vec<(u32, u64)> = (1..=258).map(|b| (b, 100 * u64::from(b))).collect();
        let Some(w) = decode(&encode((259, 50), &all)) else {
            panic!("decode")
        };
        assert_eq!(w.unindexed, all[2..]);
        let Some(w) = decode(&encode((7, 50), &all[..6])) else {
            panic!("decode")
        };
        assert!(w.covers(1, 1 << 40) && w.covers(7, 49));
        assert!(!w.covers(7, 50) && !w.covers(8, 0));
        let proven = (w.proven_len(6), w.proven_len(7), w.proven_len(9));
        assert_eq!(proven, (600, 50, 0));
    }
}
