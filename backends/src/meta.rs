//! What backends report about values, iteration pages and totals.

use std::fmt;
use std::path::PathBuf;

use ringblob_engine::Key;
use serde::Serialize;

/// Where a value lives, for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Blob { blob: u32, offset: u64 },
    File(PathBuf),
    Memory,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Blob { blob, offset } => write!(f, "blob {blob} offset {offset}"),
            Location::File(p) => write!(f, "file {}", p.display()),
            Location::Memory => f.write_str("memory"),
        }
    }
}

/// A live value's description: one column of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub key: Key,
    /// The column described (0 = the value).
    pub column: u16,
    /// Logical size in bytes.
    pub size: u64,
    /// Bytes it takes in storage.
    pub stored_size: u64,
    pub timestamp_ns: u64,
    /// CRC-32 (crc32fast) of the whole value.
    pub checksum: u32,
    pub location: Location,
}

impl Meta {
    /// Where this value comes in iteration order.
    pub fn position(&self) -> Position {
        Position {
            key: self.key,
            column: self.column,
        }
    }
}

/// A place in iteration order: entries come by key, then by column within a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub key: Key,
    pub column: u16,
}

/// One page of an iteration over an inclusive key range, in (key, column) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IterRequest {
    pub from: Key,
    pub to: Key,
    /// Resume strictly after this entry: `Position { key, column: 0 }` still lists the
    /// key's columns above 0.
    pub after: Option<Position>,
    /// At most this many entries, (key, column) pairs (clamped to [`MAX_ITER_LIMIT`]).
    pub limit: usize,
}

/// Largest page an iteration returns.
pub const MAX_ITER_LIMIT: usize = 10_000;

impl IterRequest {
    /// Every key, `limit` per page.
    pub fn all(limit: usize) -> Self {
        IterRequest {
            from: Key([0; 32]),
            to: Key([0xFF; 32]),
            after: None,
            limit,
        }
    }
}

/// A page of entries (one per live column of each key) and where to resume.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IterPage {
    pub entries: Vec<Meta>,
    /// `Some(last entry's position)` when more entries may follow: pass it as `after`.
    pub next_after: Option<Position>,
}

/// Totals a backend reports.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct BackendStats {
    pub kind: String,
    /// Live values: one per (key, column).
    pub keys: u64,
    pub bytes_on_disk: u64,
    pub live_bytes: u64,
    pub garbage_bytes: u64,
    pub uploads_in_progress: u64,
    /// Removes remembered for conditional copies and repair (the remove log).
    pub removes_remembered: u64,
    /// Engine details (blob backend only).
    pub index_bytes: Option<u64>,
    pub blobs: Option<u64>,
    pub syncs: Option<u64>,
    pub read_only: Option<String>,
    /// Garbage in sealed blobs: what a defragmentation would free now.
    pub reclaimable_bytes: Option<u64>,
    pub defrag: Option<DefragState>,
    /// Damage on disk (blob backend only; docs/FORMAT.md §9.5).
    pub damage: Option<DamageState>,
    /// Writes refused `NO_SPACE` since open (backends that can tell).
    pub writes_refused_no_space: Option<u64>,
    /// Free space on the data directory's file system (backends that can tell).
    pub disk_free_bytes: Option<u64>,
    /// The name index (a node's backend wrapped in [`crate::names::NamedBackend`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_index: Option<crate::names::NameIndexStats>,
    /// Small records kept in memory (blob backend only; `record_cache_mb`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_cache: Option<RecordCacheState>,
}

/// The blob engine's record cache, for stats.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RecordCacheState {
    /// Reads of small records answered from memory, and those that went to the file.
    pub hits: u64,
    pub misses: u64,
    /// Shards (of 16) that pass most reads straight to the file now, their hits too few.
    pub passing_shards: u64,
    pub entries: u64,
    /// Memory charged: the records and a fixed overhead each; at most `capacity_bytes`.
    pub bytes: u64,
    pub capacity_bytes: u64,
}

/// Damage the engine found, for stats: at open, and by reads since.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct DamageState {
    /// Damaged records whose key is known (their keys read as damaged), found at open.
    pub records: u64,
    /// Damaged regions whose key cannot be known, found at open.
    pub unknown_regions: u64,
    /// Bytes cut from blob tails at open (torn appends, garbage), saved beside the blob.
    pub tail_bytes_cut: u64,
    /// Synced bytes lost from blobs (restored as zeros, their records read as damaged).
    pub bytes_lost: u64,
    /// Blobs whose header is damaged (every record in them reads as damaged).
    pub blobs: Vec<u32>,
    /// Damaged records known now (found at open, by a read or by the scrub since).
    pub records_known: u64,
    /// Known damaged records per blob id.
    pub records_known_by_blob: std::collections::BTreeMap<u32, u64>,
    /// Reads that failed a checksum since open.
    pub checksum_failures: u64,
    /// The background scrub.
    pub scrub: ScrubState,
}

/// The background scrub's state, for stats.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ScrubState {
    pub running: bool,
    /// Passes finished since open.
    pub passes: u64,
    /// The blob being checked.
    pub blob: Option<u32>,
    pub blobs_checked: u64,
    pub records_checked: u64,
    pub bytes_checked: u64,
    /// Damaged records the scrub found.
    pub damaged_found: u64,
    pub last_pass_secs: Option<f64>,
}

/// Defragmentation's state, for stats.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct DefragState {
    pub running: bool,
    pub runs: u64,
    pub blobs_rewritten: u64,
    pub bytes_reclaimed: u64,
    pub last_error: Option<String>,
}

/// What one defragmentation did.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct DefragSummary {
    pub blobs_rewritten: Vec<u32>,
    pub blobs_skipped_damaged: Vec<u32>,
    pub records_copied: u64,
    pub bytes_copied: u64,
    pub tombstones_kept: u64,
    pub tombstones_dropped: u64,
    pub bytes_reclaimed: u64,
    pub seconds: f64,
    /// When nothing was rewritten, why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}
