//! Blob files: naming, and the handle the engine keeps for each one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::io::DeviceFile;

/// What a file in a data directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Blob,
    Index,
    Sorted,
}

/// `data-<id, 8 decimal digits>.blob`.
pub fn blob_name(id: u32) -> String {
    format!("data-{id:08}.blob")
}

/// `data-<id, 8 decimal digits>.index`.
pub fn index_name(id: u32) -> String {
    format!("data-{id:08}.index")
}

/// `data-<id, 8 decimal digits>.sorted`: the sorted index of a sealed blob.
pub fn sorted_name(id: u32) -> String {
    format!("data-{id:08}.sorted")
}

/// Parses a blob, index or sorted index file name.
pub fn parse_name(name: &str) -> Option<(u32, FileKind)> {
    let rest = name.strip_prefix("data-")?;
    let (id, kind) = if let Some(id) = rest.strip_suffix(".blob") {
        (id, FileKind::Blob)
    } else if let Some(id) = rest.strip_suffix(".index") {
        (id, FileKind::Index)
    } else {
        (rest.strip_suffix(".sorted")?, FileKind::Sorted)
    };
    if !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id: u32 = id.parse().ok()?;
    // Only the canonical spelling counts, so two files can never claim one id.
    let canonical = match kind {
        FileKind::Blob => blob_name(id),
        FileKind::Index => index_name(id),
        FileKind::Sorted => sorted_name(id),
    };
    (canonical == name).then_some((id, kind))
}

/// An open blob file.
pub struct Blob {
    pub id: u32,
    /// Unique among the blobs this process opens: tells apart two blobs that had one id
    /// (a retired one and a later one), which the record cache must never confuse.
    serial: u64,
    pub file: Arc<dyn DeviceFile>,
    /// Bytes written to the file (the write buffer may hold more for the active blob).
    flushed: AtomicU64,
    /// Why the blob's records are not served, when its own header is damaged.
    damaged: Option<String>,
}

impl Blob {
    pub fn new(id: u32, file: Arc<dyn DeviceFile>, flushed: u64) -> Self {
        static SERIALS: AtomicU64 = AtomicU64::new(1);
        Blob {
            id,
            serial: SERIALS.fetch_add(1, Ordering::Relaxed),
            file,
            flushed: AtomicU64::new(flushed),
            damaged: None,
        }
    }

    /// See the field: unique per blob opened by this process.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// A blob whose header is damaged: kept open (its records are known, and a read of
    /// one answers `why` as damage) but never written to.
    pub fn damaged(id: u32, file: Arc<dyn DeviceFile>, len: u64, why: String) -> Self {
        Blob {
            damaged: Some(why),
            ..Blob::new(id, file, len)
        }
    }

    /// Why the blob's records are not served, if they are not.
    pub fn damage(&self) -> Option<&str> {
        self.damaged.as_deref()
    }

    pub fn flushed(&self) -> u64 {
        self.flushed.load(Ordering::Acquire)
    }

    pub fn set_flushed(&self, len: u64) {
        self.flushed.store(len, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_ignored() {
        assert_eq!(parse_name(&blob_name(12)), Some((12, FileKind::Blob)));
        assert_eq!(parse_name(&index_name(7)), Some((7, FileKind::Index)));
        assert_eq!(parse_name(&sorted_name(7)), Some((7, FileKind::Sorted)));
        assert_eq!(parse_name("data-1.blob"), None);
        assert_eq!(parse_name("data-000000001.blob"), None);
        assert_eq!(
            parse_name(&blob_name(123_456_789)),
            Some((123_456_789, FileKind::Blob))
        );
        assert_eq!(parse_name("data-0000000x.blob"), None);
        assert_eq!(parse_name("LOCK"), None);
        assert_eq!(parse_name("data-00000001.blob.tmp"), None);
    }
}
