//! What opening a data directory found damaged, and the rules for each kind of damage.
//!
//! The rule everywhere: a key whose newest record is damaged reads as damaged
//! (`CHECKSUM_MISMATCH` on the wire) until it is written again — never as an older
//! version, never as not found. That holds whenever the damaged record's key can be known:
//! its header is intact (only the body is damaged or cut off), or one flipped bit away
//! from intact, or an index file lists it. Those records stay in the index, pointing at
//! the damaged bytes, so every read of the key finds the damage itself.
//!
//! When the key cannot be known (a header destroyed beyond one bit, with no index file
//! covering it), the damage is logged, counted here (`unknown_regions`) and shown by
//! `blob-inspect verify`; the key then answers its previous record, if any.

use crate::blob::blob_name;
use crate::error::{Error, Result};
use crate::format::index_file::INDEX_HEADER_LEN;
use crate::format::sorted_index::{SortedHeader, SORTED_HEADER_LEN};
use crate::io::{Device, DeviceFile, OpenMode};

/// Damage found when the engine opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DamageReport {
    /// Damaged records whose key is known: those keys read as damaged until rewritten.
    pub records: u64,
    /// Damaged regions whose key cannot be known.
    pub unknown_regions: u64,
    /// Bytes cut from blob tails that were not records (an append torn by a crash, or
    /// garbage); saved beside the blob as `<blob>.cut-<offset>` unless they were all zeros.
    pub tail_bytes_cut: u64,
    /// Bytes an index file proves were written but the blob no longer held: the blob is
    /// extended back to that length with zeros, so the records there read as damaged.
    pub bytes_lost: u64,
    /// Blobs whose own header is damaged: every record in them reads as damaged.
    pub blobs: Vec<u32>,
    /// Where the damaged records with known keys are (handed to [`KnownDamage`] at open).
    pub(crate) found: Vec<crate::index::Loc>,
}

impl DamageReport {
    /// Whether anything was found.
    pub fn is_empty(&self) -> bool {
        *self == DamageReport::default()
    }
}

/// The length a blob is proven to have had: the larger covered length of its index file
/// and its sorted index, read from their checksummed headers (0 when neither is usable).
/// Those files are written only after the blob bytes they cover were synced, so a blob
/// shorter than this lost synced bytes: damage to report, never a torn tail to trim.
pub fn proven_len(device: &dyn Device, id: u32) -> u64 {
    index_covered(device, id)
        .unwrap_or(0)
        .max(sorted_covered(device, id).unwrap_or(0))
}

fn index_covered(device: &dyn Device, id: u32) -> Option<u64> {
    let f = device
        .open(&crate::blob::index_name(id), OpenMode::ReadOnly)
        .ok()?;
    let mut b = [0u8; INDEX_HEADER_LEN];
    f.read_exact_at(&mut b, 0).ok()?;
    let le32 = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let header_ok = b[0..8] == crate::format::index_file::INDEX_MAGIC
        && le32(36) == crate::format::crc32(&b[0..36])
        && le32(12) == id;
    header_ok.then(|| u64::from_le_bytes(b[24..32].try_into().unwrap_or([0; 8])))
}

fn sorted_covered(device: &dyn Device, id: u32) -> Option<u64> {
    let name = crate::blob::sorted_name(id);
    let f = device.open(&name, OpenMode::ReadOnly).ok()?;
    let len = f.len().ok()?;
    let mut b = vec![0u8; SORTED_HEADER_LEN];
    f.read_exact_at(&mut b, 0).ok()?;
    let h = SortedHeader::decode(&b, len, &name).ok()?;
    (h.blob_id == id).then_some(h.covered_len)
}

/// Extends blob `id` from `len` to `proven` bytes with zeros (a hole), synced, so every
/// record its index lists is where the index says: the lost ones then fail their checks
/// and their keys read as damaged. Returns the new length.
pub fn restore_len(file: &dyn DeviceFile, id: u32, len: u64, proven: u64) -> Result<u64> {
    if proven <= len || proven > crate::config::MAX_BLOB_SIZE {
        return Ok(len);
    }
    tracing::error!(
        blob = id,
        len,
        indexed = proven,
        lost = proven - len,
        "blob is shorter than its index proves it was: synced bytes were lost; the records there read as damaged"
    );
    let name = blob_name(id);
    file.set_len(proven)
        .map_err(|e| Error::io("extend", name.clone(), e))?;
    file.sync_data()
        .map_err(|e| Error::io("fdatasync", name, e))?;
    Ok(proven)
}

/// Saves `[from, len)` of blob `id` as `<blob>.cut-<from>` before it is cut off, unless
/// it is all zeros: the bytes of a torn append, or of damage, stay for an operator (and
/// `blob-inspect`) to look at. Failing to save is logged, not fatal.
pub fn save_cut(device: &dyn Device, file: &dyn DeviceFile, id: u32, from: u64, len: u64) {
    let name = format!("{}.cut-{from}", blob_name(id));
    if let Err(e) = copy_out(device, file, &name, from, len) {
        tracing::warn!(file = %name, error = %e, "could not save the bytes cut from a blob tail");
    }
}

fn copy_out(
    device: &dyn Device,
    file: &dyn DeviceFile,
    name: &str,
    from: u64,
    len: u64,
) -> std::io::Result<()> {
    const CHUNK: u64 = 1 << 20;
    let mut buf = Vec::new();
    let mut out: Option<std::sync::Arc<dyn DeviceFile>> = None;
    let mut at = from;
    let mut zeros_so_far = true;
    while at < len {
        let n = (len - at).min(CHUNK) as usize;
        buf.resize(n, 0);
        file.read_exact_at(&mut buf, at)?;
        zeros_so_far &= buf.iter().all(|&b| b == 0);
        if !zeros_so_far && out.is_none() {
            out = Some(device.open(name, OpenMode::CreateNew)?);
            // Zeros skipped so far are written as a hole by the later offset.
        }
        if let Some(f) = &out {
            f.write_all_at(&buf, at - from)?;
        }
        at += n as u64;
    }
    if let Some(f) = out {
        f.set_len(len - from)?;
        f.sync_data()?;
        device.sync_dir()?;
        tracing::warn!(file = %name, bytes = len - from, "bytes cut from a blob tail saved");
    }
    Ok(())
}

/// Records known to be damaged (found when opening, or by a read that failed its checks),
/// so a copy of the same version from another group may replace one: "not newer than the
/// stored version" must not keep a version that cannot be read. Bounded: past
/// [`MAX_KNOWN`] records only a scan finds more, and copies of those versions need a newer
/// timestamp to replace them.
#[derive(Default)]
pub struct KnownDamage {
    locs: parking_lot::Mutex<std::collections::HashSet<crate::index::Loc>>,
    any: std::sync::atomic::AtomicBool,
    /// Reads that failed a checksum, in all (a damaged record read twice counts twice).
    failures: std::sync::atomic::AtomicU64,
}

/// Most damaged records remembered.
pub const MAX_KNOWN: usize = 1 << 16;

impl KnownDamage {
    /// Notes a damaged record; true the first time it is noted (log it then).
    pub fn note(&self, loc: crate::index::Loc) -> bool {
        let mut locs = self.locs.lock();
        if locs.len() >= MAX_KNOWN {
            return false;
        }
        let new = locs.insert(loc);
        self.any.store(true, std::sync::atomic::Ordering::Release);
        new
    }

    /// Counts a read that failed a checksum.
    pub fn count_failure(&self) {
        self.failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Reads that failed a checksum since open.
    pub fn failures(&self) -> u64 {
        self.failures.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Known damaged records per blob.
    pub fn by_blob(&self) -> std::collections::BTreeMap<u32, u64> {
        let mut out = std::collections::BTreeMap::new();
        for l in self.locs.lock().iter() {
            *out.entry(l.blob).or_insert(0) += 1;
        }
        out
    }

    /// Forgets the records of a blob that no longer exists.
    pub fn forget_blob(&self, blob: u32) {
        self.locs.lock().retain(|l| l.blob != blob);
    }

    pub fn contains(&self, loc: crate::index::Loc) -> bool {
        self.any.load(std::sync::atomic::Ordering::Acquire) && self.locs.lock().contains(&loc)
    }

    /// How many are known.
    pub fn len(&self) -> usize {
        self.locs.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        !self.any.load(std::sync::atomic::Ordering::Acquire)
    }
}
