//! The key journal: `data-<id>.journal` lists, for a blob with no index file yet, which key
//! each record appended to it belongs to — so damage that destroys records' headers (a
//! zeroed page, a truncated file) still names the keys it hit, and those keys read as
//! damaged instead of answering an older version.
//!
//! Entries are appended when the write buffer goes to the blob (after the records), with
//! no sync of their own: a process crash leaves them in the page cache; a power cut may
//! lose the newest, which then only makes damage in those records unknown again. Each
//! entry has its own CRC, so a torn or damaged entry is skipped. A journal is dropped once
//! its blob has an index file (sealed, or checkpointed when the engine opens): the index
//! file names every record from then on.
//!
//! Format (`docs/FORMAT.md` §18; little-endian): a 16-byte header (`RBJRNL\0\0`, blob id
//! u32, CRC-32 of those 12 bytes), then 52-byte entries: key[32], offset u64, record_len
//! u32, flags u16 (the record's flags), column u16, CRC-32 of the entry's first 48 bytes.

use std::sync::Arc;

use crate::format::crc32;
use crate::format::index_file::IndexEntry;
use crate::io::{Device, DeviceFile, OpenMode};
use crate::key::{Key, KEY_LEN};

const MAGIC: &[u8; 8] = b"RBJRNL\0\0";
/// Length of the journal header.
pub const HEADER_LEN: usize = 16;
/// Length of one journal entry.
pub const ENTRY_LEN: usize = 52;
/// The largest journal read back (an entry per 88-byte record of a 4 GiB blob).
const MAX_JOURNAL: u64 = (4 << 30) / 88 * ENTRY_LEN as u64 + HEADER_LEN as u64;

/// Blob `id`'s journal file name.
pub fn journal_name(id: u32) -> String {
    format!("data-{id:08}.journal")
}

fn header(id: u32) -> [u8; HEADER_LEN] {
    let mut b = [0u8; HEADER_LEN];
    b[0..8].copy_from_slice(MAGIC);
    b[8..12].copy_from_slice(&id.to_le_bytes());
    let crc = crc32(&b[0..12]);
    b[12..16].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Encodes one entry.
pub fn encode_entry(e: &IndexEntry) -> [u8; ENTRY_LEN] {
    let mut b = [0u8; ENTRY_LEN];
    b[0..32].copy_from_slice(&e.key.0);
    b[32..40].copy_from_slice(&e.offset.to_le_bytes());
    b[40..44].copy_from_slice(&e.record_len.to_le_bytes());
    b[44..46].copy_from_slice(&e.flags.to_le_bytes());
    b[46..48].copy_from_slice(&e.column.to_le_bytes());
    let crc = crc32(&b[0..48]);
    b[48..52].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Decodes one entry; `None` if it fails its CRC.
pub fn decode_entry(b: &[u8]) -> Option<IndexEntry> {
    let b = b.get(..ENTRY_LEN)?;
    let crc = u32::from_le_bytes(b[48..52].try_into().ok()?);
    if crc != crc32(&b[0..48]) {
        return None;
    }
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(&b[0..32]);
    Some(IndexEntry {
        key: Key(key),
        offset: u64::from_le_bytes(b[32..40].try_into().ok()?),
        record_len: u32::from_le_bytes(b[40..44].try_into().ok()?),
        flags: u16::from_le_bytes(b[44..46].try_into().ok()?),
        column: u16::from_le_bytes(b[46..48].try_into().ok()?),
    })
}

/// Blob `id`'s journal entries that pass their checks, in file order; empty if there is no
/// journal or its header is not this blob's.
pub fn load(device: &dyn Device, id: u32) -> Vec<IndexEntry> {
    let Ok(f) = device.open(&journal_name(id), OpenMode::ReadOnly) else {
        return Vec::new();
    };
    let len = f.len().unwrap_or(0).min(MAX_JOURNAL) as usize;
    let mut b = vec![0u8; len];
    if len < HEADER_LEN || f.read_exact_at(&mut b, 0).is_err() || b[..HEADER_LEN] != header(id) {
        return Vec::new();
    }
    b[HEADER_LEN..]
        .chunks_exact(ENTRY_LEN)
        .filter_map(decode_entry)
        .collect()
}

/// Removes blob `id`'s journal, if any (its blob has an index file now).
pub fn remove(device: &dyn Device, id: u32) {
    match device.remove(&journal_name(id)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(blob = id, error = %e, "could not remove a key journal"),
    }
}

/// The active blob's journal, appended to as records reach the blob. A failure to write
/// it is logged and the journal given up for this blob: it is advice to recovery.
pub struct JournalWriter {
    blob: u32,
    file: Option<Arc<dyn DeviceFile>>,
    len: u64,
    /// Entries noted since the last write, encoded only when written (the note is on the
    /// writer's critical path; the write happens once per buffer flush).
    pending: Vec<IndexEntry>,
    encoded: Vec<u8>,
}

impl JournalWriter {
    /// A new, empty journal for blob `id` (any earlier one is replaced).
    pub fn create(device: &dyn Device, id: u32) -> Self {
        let name = journal_name(id);
        let _ = device.remove(&name);
        let file = device.open(&name, OpenMode::CreateNew).and_then(|f| {
            f.write_all_at(&header(id), 0)?;
            Ok(f)
        });
        let file = match file {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::warn!(blob = id, error = %e, "cannot create a key journal; damage in this blob's newest records will name no key");
                None
            }
        };
        JournalWriter {
            blob: id,
            file,
            len: HEADER_LEN as u64,
            pending: Vec::new(),
            encoded: Vec::new(),
        }
    }

    /// Continues blob `id`'s journal, keeping `entries` (those still valid) and nothing
    /// after them.
    pub fn resume(device: &dyn Device, id: u32, entries: &[IndexEntry]) -> Self {
        let mut w = Self::create(device, id);
        for e in entries {
            w.note(e);
        }
        w.write_pending();
        w
    }

    pub fn blob(&self) -> u32 {
        self.blob
    }

    /// Adds an entry, written with the next [`write_pending`](Self::write_pending).
    pub fn note(&mut self, e: &IndexEntry) {
        if self.file.is_some() {
            self.pending.push(*e);
        }
    }

    /// Writes the entries noted since the last call.
    pub fn write_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let Some(f) = &self.file else {
            self.pending.clear();
            return;
        };
        self.encoded.clear();
        for e in &self.pending {
            self.encoded.extend_from_slice(&encode_entry(e));
        }
        match f.write_all_at(&self.encoded, self.len) {
            Ok(()) => self.len += self.encoded.len() as u64,
            Err(e) => {
                tracing::warn!(blob = self.blob, error = %e, "cannot write the key journal; giving it up for this blob");
                self.file = None;
            }
        }
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemDevice;

    fn entry(i: u8) -> IndexEntry {
        IndexEntry {
            key: Key([i; 32]),
            offset: 32 + 100 * u64::from(i),
            record_len: 100,
            flags: u16::from(i % 2),
            column: u16::from(i),
        }
    }

    #[test]
    fn entries_round_trip_and_damaged_ones_are_skipped() {
        let dev = MemDevice::new();
        let mut w = JournalWriter::create(&dev, 3);
        for i in 0..5 {
            w.note(&entry(i));
        }
        w.write_pending();
        let all: Vec<IndexEntry> = (0..5).map(entry).collect();
        assert_eq!(load(&dev, 3), all);
        let name = journal_name(3);
        let mut b = dev.file_bytes(&name).unwrap_or_default();
        b[HEADER_LEN + ENTRY_LEN + 7] ^= 1;
        b.extend_from_slice(&[1, 2, 3]);
        dev.put_file(&name, b.clone());
        let kept: Vec<IndexEntry> = [0, 2, 3, 4].into_iter().map(entry).collect();
        assert_eq!(load(&dev, 3), kept);
        assert!(load(&dev, 4).is_empty(), "another blob's journal");
        b[9] ^= 1;
        dev.put_file(&name, b);
        assert!(load(&dev, 3).is_empty(), "a damaged header");
    }

    #[test]
    fn golden_entry() {
        let b = encode_entry(&entry(1));
        assert_eq!(&b[0..32], &[1; 32]);
        assert_eq!(
            &b[32..48],
            &[132, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 1, 0, 1, 0]
        );
        assert_eq!(&b[48..52], &crc32(&b[0..48]).to_le_bytes());
        assert_eq!(&header(1)[..12], b"RBJRNL\0\0\x01\0\0\0");
    }
}
