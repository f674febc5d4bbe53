//! The data directory's files beside blobs and their indexes: the backend's remove log
//! (`removes.log`), the engine's synced watermark (`synced.pos`), key journals
//! (`data-N.journal`), and tails the engine cut from blobs and saved
//! (`<blob>.cut-<offset>`).

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use ringblob_backends::remove_log::{
    Removal, REMOVE_ENTRY_LEN, REMOVE_LOG_FILE, REMOVE_LOG_HEADER_LEN, REMOVE_LOG_MAGIC,
    REMOVE_LOG_VERSIONS_READ,
};
use ringblob_engine::watermark::{self, WATERMARK_FILE};

use super::problem::{Kind, Problem};

/// Problems in the side files of the data directory `root`. `blob_len` gives a blob's
/// current length by id (`None` when there is no such blob).
pub fn check(root: &Path, blob_len: &dyn Fn(u32) -> Option<u64>) -> Result<Vec<Problem>> {
    let mut out = check_remove_log(&root.join(REMOVE_LOG_FILE))?;
    out.extend(check_watermark(&root.join(WATERMARK_FILE), blob_len)?);
    out.extend(saved_tails(root)?);
    out.extend(journals(root)?);
    Ok(out)
}

/// Every key journal checked: header, each entry's CRC; a partial last entry is a torn
/// append (information only).
fn journals(root: &Path) -> Result<Vec<Problem>> {
    use ringblob_engine::journal::{decode_entry, journal_name, ENTRY_LEN, HEADER_LEN};
    let mut out = Vec::new();
    let mut names = Vec::new();
    for entry in fs::read_dir(root).with_context(|| format!("list {}", root.display()))? {
        let entry = entry.with_context(|| format!("list {}", root.display()))?;
        if let Ok(name) = entry.file_name().into_string() {
            let id = name
                .strip_prefix("data-")
                .and_then(|n| n.strip_suffix(".journal"))
                .and_then(|n| n.parse::<u32>().ok());
            if let Some(id) = id.filter(|&id| journal_name(id) == name) {
                names.push((id, name));
            }
        }
    }
    names.sort();
    for (id, name) in names {
        let Some(bytes) = read_if_present(&root.join(&name))? else {
            continue;
        };
        let bad = |at: u64, why: String| Problem::new(Kind::BadJournal, &name, at, why);
        let mut good_header = bytes.len() >= HEADER_LEN && bytes[..8] == *b"RBJRNL\0\0";
        good_header &= bytes.get(8..12) == Some(&id.to_le_bytes()[..]);
        let crc = bytes
            .get(12..16)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        good_header &= crc
            == Some(ringblob_engine::format::crc32(
                &bytes[..12.min(bytes.len())],
            ));
        if !good_header {
            out.push(bad(0, format!("not a key journal header for blob {id}")));
            continue;
        }
        let body = &bytes[HEADER_LEN..];
        for (i, e) in body.chunks_exact(ENTRY_LEN).enumerate() {
            if decode_entry(e).is_none() {
                let at = (HEADER_LEN + i * ENTRY_LEN) as u64;
                let why =
                    format!("entry {i} fails its CRC: damage to that record would name no key");
                out.push(bad(at, why).with_end(at + ENTRY_LEN as u64));
            }
        }
        let partial = body.len() % ENTRY_LEN;
        if partial != 0 {
            let at = (bytes.len() - partial) as u64;
            let why =
                format!("a partial last entry of {partial} bytes (an append torn by a crash)");
            out.push(Problem::new(Kind::TornJournalEntry, &name, at, why));
        }
    }
    Ok(out)
}

fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

/// Every entry of the remove log checked: a damaged entry is a remove the node no longer
/// remembers (a copy older than it could bring the value back). A partial last entry is a
/// torn append (never acknowledged): information only.
fn check_remove_log(path: &Path) -> Result<Vec<Problem>> {
    let Some(bytes) = read_if_present(path)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let bad = |offset: u64, reason: String| {
        Problem::new(Kind::BadRemoveLog, REMOVE_LOG_FILE, offset, reason)
    };
    if bytes.is_empty() {
        return Ok(out);
    }
    let Some(header) = bytes.get(..REMOVE_LOG_HEADER_LEN) else {
        out.push(bad(0, "shorter than its 8-byte header".into()));
        return Ok(out);
    };
    let version = u16::from_le_bytes([header[4], header[5]]);
    let known = REMOVE_LOG_VERSIONS_READ.contains(&version);
    if header[..4] != REMOVE_LOG_MAGIC || !known || header[6..8] != [0, 0] {
        out.push(bad(
            0,
            format!("not a remove log header of version {REMOVE_LOG_VERSIONS_READ:?}"),
        ));
        return Ok(out);
    }
    let body = &bytes[REMOVE_LOG_HEADER_LEN..];
    for (i, chunk) in body.chunks_exact(REMOVE_ENTRY_LEN).enumerate() {
        let mut entry = [0u8; REMOVE_ENTRY_LEN];
        entry.copy_from_slice(chunk);
        if Removal::decode_in(version, &entry).is_none() {
            let at = (REMOVE_LOG_HEADER_LEN + i * REMOVE_ENTRY_LEN) as u64;
            out.push(
                bad(
                    at,
                    format!("entry {i} fails its CRC or has reserved bytes set"),
                )
                .with_end(at + REMOVE_ENTRY_LEN as u64),
            );
        }
    }
    let partial = body.len() % REMOVE_ENTRY_LEN;
    if partial != 0 {
        let at = (bytes.len() - partial) as u64;
        let reason =
            format!("a partial last entry of {partial} bytes (an append torn by a crash; ignored)");
        out.push(
            Problem::new(Kind::TornRemoveLogEntry, REMOVE_LOG_FILE, at, reason)
                .with_end(bytes.len() as u64),
        );
    }
    Ok(out)
}

/// The watermark decoded, and the blob it names at least as long as it says was synced.
fn check_watermark(path: &Path, blob_len: &dyn Fn(u32) -> Option<u64>) -> Result<Vec<Problem>> {
    let Some(bytes) = read_if_present(path)? else {
        return Ok(Vec::new());
    };
    let Some(synced) = watermark::decode(&bytes) else {
        let reason = "the synced watermark is damaged: the next open treats every tail past the index files as unsynced";
        return Ok(vec![Problem::new(
            Kind::BadWatermark,
            WATERMARK_FILE,
            0,
            reason,
        )]);
    };
    let mut proven = synced.unindexed.clone();
    proven.push(synced.pos);
    let mut out = Vec::new();
    for (blob, synced_len) in proven {
        match blob_len(blob) {
            Some(len) if len < synced_len => {
                let reason = format!(
                    "blob {blob} was synced up to {synced_len} but has {len} bytes: synced bytes were lost"
                );
                let name = ringblob_engine::blob::blob_name(blob);
                out.push(
                    Problem::new(Kind::SyncedBytesLost, &name, len, reason).with_end(synced_len),
                );
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Tails the engine cut from blobs and kept.
fn saved_tails(root: &Path) -> Result<Vec<Problem>> {
    let mut out = Vec::new();
    let list = fs::read_dir(root).with_context(|| format!("list {}", root.display()))?;
    for entry in list {
        let entry = entry.with_context(|| format!("list {}", root.display()))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with("data-") && name.contains(".blob.cut-") {
            let len = entry.metadata().map_or(0, |m| m.len());
            let reason = format!("{len} bytes the engine cut from a blob tail when it opened (a torn append, or garbage), kept for inspection");
            out.push(Problem::new(Kind::SavedCutTail, &name, 0, reason));
        }
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringblob_backends::remove_log::REMOVE_LOG_VERSION;

    fn removal(i: u8) -> Removal {
        Removal::of_column(ringblob_engine::Key([i; 32]), 0, 1000 + u64::from(i))
    }

    #[test]
    fn a_damaged_remove_log_entry_is_named_and_a_torn_tail_is_information() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(REMOVE_LOG_FILE);
        let mut bytes = REMOVE_LOG_MAGIC.to_vec();
        bytes.extend_from_slice(&REMOVE_LOG_VERSION.to_le_bytes());
        bytes.extend_from_slice(&[0, 0]);
        for i in 0..3 {
            bytes.extend_from_slice(&removal(i).encode());
        }
        fs::write(&path, &bytes)?;
        assert!(check_remove_log(&path)?.is_empty());
        bytes[REMOVE_LOG_HEADER_LEN + REMOVE_ENTRY_LEN + 5] ^= 1;
        bytes.extend_from_slice(&[7; 10]);
        fs::write(&path, &bytes)?;
        let found = check_remove_log(&path)?;
        let kinds: Vec<(Kind, u64)> = found.iter().map(|p| (p.kind, p.offset)).collect();
        assert_eq!(
            kinds,
            [(Kind::BadRemoveLog, 56), (Kind::TornRemoveLogEntry, 152)]
        );
        Ok(())
    }

    #[test]
    fn a_blob_shorter_than_its_watermark_is_named() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(WATERMARK_FILE);
        fs::write(&path, watermark::encode((3, 5000), &[]))?;
        assert!(check_watermark(&path, &|_| Some(5000))?.is_empty());
        let found = check_watermark(&path, &|_| Some(4000))?;
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].kind, found[0].offset, found[0].end),
            (Kind::SyncedBytesLost, 4000, Some(5000))
        );
        let mut bad = watermark::encode((3, 5000), &[]);
        bad[9] ^= 4;
        fs::write(&path, bad)?;
        assert_eq!(
            check_watermark(&path, &|_| Some(5000))?[0].kind,
            Kind::BadWatermark
        );
        Ok(())
    }
}
