//! Index files on disk: loading one, and writing one for a sealed blob or as a checkpoint
//! of the active blob, so `open` scans only what was appended after it.

use crate::blob::{blob_name, index_name};
use crate::engine::Inner;
use crate::error::{Error, Result};
use crate::format::blob_header::BLOB_HEADER_LEN;
use crate::format::index_file::{IndexEntry, IndexFile};
use crate::io::{Device, DeviceFile, OpenMode};
use crate::scan::{Check, ScanItem, Scanner};

/// Largest index file accepted (an entry per 88-byte record of a 4 GiB blob, and then some).
const MAX_INDEX_FILE: u64 = 4 << 30;

/// Loads blob `id`'s index file if it exists, decodes, names this blob and covers no more
/// than `blob_len` bytes. Anything else is `Err` with the reason (the caller rebuilds).
pub fn load_index(device: &dyn Device, id: u32, blob_len: u64) -> Result<Option<IndexFile>> {
    let name = index_name(id);
    let file = match device.open(&name, OpenMode::ReadOnly) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", name, e)),
    };
    let len = file.len().map_err(|e| Error::io("stat", name.clone(), e))?;
    if len > MAX_INDEX_FILE {
        return Err(Error::TooLarge {
            what: "index file",
            got: len,
            limit: MAX_INDEX_FILE,
        });
    }
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, 0)
        .map_err(|e| Error::io("read", name.clone(), e))?;
    let ix = IndexFile::decode(&bytes, &name)?;
    if ix.blob_id != id || ix.covered_len > blob_len {
        return Err(Error::Corrupt {
            what: "index file",
            file: name,
            offset: 0,
            reason: format!(
                "describes blob {} up to {} but blob {id} has {blob_len} bytes",
                ix.blob_id, ix.covered_len
            ),
        });
    }
    Ok(Some(ix))
}

/// Writes `ix` durably: temp file, fdatasync, rename over the old one, directory sync.
pub fn store_index(device: &dyn Device, ix: &IndexFile) -> Result<()> {
    store_file(device, &index_name(ix.blob_id), &ix.encode())
}

/// Writes `bytes` as file `name` durably: `name.tmp` written and fdatasynced, renamed over
/// `name`, directory synced.
pub fn store_file(device: &dyn Device, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = format!("{name}.tmp");
    let io = |op: &'static str| {
        let tmp = tmp.clone();
        move |e| Error::io(op, tmp, e)
    };
    if device.list().map_err(io("list"))?.contains(&tmp) {
        device.remove(&tmp).map_err(io("remove"))?;
    }
    let f = device
        .open(&tmp, OpenMode::CreateNew)
        .map_err(io("create"))?;
    f.write_all_at(bytes, 0).map_err(io("write"))?;
    f.sync_data().map_err(io("fdatasync"))?;
    device.rename(&tmp, name).map_err(io("rename"))?;
    device.sync_dir().map_err(io("sync dir for"))
}

/// Lists the records of `[start, end)` of a blob. A damaged record whose header is known
/// (intact, or one flipped bit away) is listed like any other: it stays the newest record
/// of its key, so reads of that key report the damage instead of an older value. Damage
/// whose key cannot be known is an error: an index file never papers over it.
pub fn scan_entries(
    file: &dyn DeviceFile,
    id: u32,
    start: u64,
    end: u64,
    check: Check,
) -> Result<Vec<IndexEntry>> {
    let mut entries = Vec::new();
    for item in Scanner::new(file, id, start, end, check) {
        match item? {
            ScanItem::Record { offset, header } => entries.push(IndexEntry::of(offset, &header)),
            ScanItem::Damaged {
                offset,
                header: Some(header),
                error,
                ..
            } if offset + header.record_len() <= end => {
                tracing::error!(blob = id, offset, key = %header.key, reason = %error, "damaged record: its key reads as damaged");
                entries.push(IndexEntry::of(offset, &header));
            }
            ScanItem::Damaged { error, .. } => return Err(error),
        }
    }
    Ok(entries)
}

/// Writes (or brings up to date) blob `id`'s index file to cover everything flushed;
/// returns its entries.
pub(crate) fn write_index_file(inner: &Inner, id: u32) -> Result<Vec<IndexEntry>> {
    let blob = inner.log.blob(id)?;
    let end = blob.flushed();
    let device = inner.device.as_ref();
    let old = load_index(device, id, end).unwrap_or(None);
    let (mut entries, start) = match old {
        Some(ix) if ix.covered_len == end => return Ok(ix.entries),
        Some(ix) => (ix.entries, ix.covered_len),
        None => (Vec::new(), BLOB_HEADER_LEN as u64),
    };
    entries.extend(scan_entries(
        blob.file.as_ref(),
        id,
        start,
        end,
        Check::Everything,
    )?);
    tracing::debug!(blob = %blob_name(id), records = entries.len(), "writing index file");
    let ix = IndexFile {
        blob_id: id,
        covered_len: end,
        entries,
    };
    store_index(device, &ix)?;
    Ok(ix.entries)
}
