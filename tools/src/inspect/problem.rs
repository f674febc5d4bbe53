//! What is wrong, and where: one problem found in a data file, with a stable kind name that
//! scripts can match on (the `kind` field of `--json`).

use ringblob_engine::Key;
use serde::Serialize;

/// How bad a problem is. The exit status is decided by the worst one found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing, not damage (for example an index checkpoint that covers a prefix).
    Info,
    /// The bytes on disk are not what was written, or files disagree.
    Corruption,
    /// A file this build cannot interpret (written by a newer format version).
    Unreadable,
}

/// Every kind of problem. The names are part of the tool's contract: never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The file ends inside a record (a torn or cut append).
    TruncatedTail,
    /// A record was expected here but the magic bytes are wrong.
    BadMagic,
    /// A record header fails its CRC.
    BadHeaderCrc,
    /// A record's frame table fails its CRC.
    BadFrameTableCrc,
    /// A stored frame fails its CRC.
    BadDataCrc,
    /// Every frame checks out but the whole logical value fails `value_crc`.
    BadValueCrc,
    /// A compressed frame does not decompress to its logical length.
    BadCompressedFrame,
    /// A header or frame table holds a length no writer produces.
    ImpossibleLength,
    /// Another header field breaks a format rule (flags, reserved bytes, tombstone with a value).
    BadRecordField,
    /// Bytes after the last valid record that do not start a record.
    GarbageAfterLastRecord,
    /// The 32-byte blob file header is damaged or names another blob.
    BadBlobHeader,
    /// A file written by a format version this build does not read.
    UnsupportedVersion,
    /// An index file that fails its own checks (magic, CRCs, tiling, blob id).
    BadIndexFile,
    /// An index entry names a blob offset where no record starts.
    IndexEntryPointsAtNothing,
    /// An index entry names a record but disagrees with it (key, length, flags, column).
    IndexEntryMismatch,
    /// A valid record inside the range an index file covers that the index does not list.
    RecordMissingFromIndex,
    /// The index file covers only a prefix of its blob (normal for the active blob).
    IndexCoversPrefix,
    /// An index file whose blob file does not exist.
    OrphanIndexFile,
    /// A sorted index file (`data-N.sorted`) that fails its own checks (magic, CRCs, page
    /// order, fences), names another blob or describes another length of it.
    BadSortedIndex,
    /// A `removes.log` entry (or header) that fails its checks: a remove no longer
    /// remembered.
    BadRemoveLog,
    /// A partial last `removes.log` entry: an append torn by a crash, never acknowledged.
    TornRemoveLogEntry,
    /// `synced.pos` fails its checks.
    BadWatermark,
    /// A blob shorter than the synced watermark says it was: synced bytes were lost.
    SyncedBytesLost,
    /// Bytes the engine cut from a blob tail and saved beside it.
    SavedCutTail,
    /// A key journal (`data-N.journal`) header or entry that fails its checks.
    BadJournal,
    /// A partial last key journal entry: an append torn by a crash.
    TornJournalEntry,
}

impl Kind {
    /// Every kind, in the order `--help` lists them.
    pub const ALL: [Kind; 26] = [
        Kind::TruncatedTail,
        Kind::BadMagic,
        Kind::BadHeaderCrc,
        Kind::BadFrameTableCrc,
        Kind::BadDataCrc,
        Kind::BadValueCrc,
        Kind::BadCompressedFrame,
        Kind::ImpossibleLength,
        Kind::BadRecordField,
        Kind::GarbageAfterLastRecord,
        Kind::BadBlobHeader,
        Kind::UnsupportedVersion,
        Kind::BadIndexFile,
        Kind::IndexEntryPointsAtNothing,
        Kind::IndexEntryMismatch,
        Kind::RecordMissingFromIndex,
        Kind::IndexCoversPrefix,
        Kind::OrphanIndexFile,
        Kind::BadSortedIndex,
        Kind::BadRemoveLog,
        Kind::TornRemoveLogEntry,
        Kind::BadWatermark,
        Kind::SyncedBytesLost,
        Kind::SavedCutTail,
        Kind::BadJournal,
        Kind::TornJournalEntry,
    ];

    /// The stable name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::TruncatedTail => "truncated_tail",
            Kind::BadMagic => "bad_magic",
            Kind::BadHeaderCrc => "bad_header_crc",
            Kind::BadFrameTableCrc => "bad_frame_table_crc",
            Kind::BadDataCrc => "bad_data_crc",
            Kind::BadValueCrc => "bad_value_crc",
            Kind::BadCompressedFrame => "bad_compressed_frame",
            Kind::ImpossibleLength => "impossible_length",
            Kind::BadRecordField => "bad_record_field",
            Kind::GarbageAfterLastRecord => "garbage_after_last_record",
            Kind::BadBlobHeader => "bad_blob_header",
            Kind::UnsupportedVersion => "unsupported_version",
            Kind::BadIndexFile => "bad_index_file",
            Kind::IndexEntryPointsAtNothing => "index_entry_points_at_nothing",
            Kind::IndexEntryMismatch => "index_entry_mismatch",
            Kind::RecordMissingFromIndex => "record_missing_from_index",
            Kind::IndexCoversPrefix => "index_covers_prefix",
            Kind::OrphanIndexFile => "orphan_index_file",
            Kind::BadSortedIndex => "bad_sorted_index",
            Kind::BadRemoveLog => "bad_remove_log",
            Kind::TornRemoveLogEntry => "torn_remove_log_entry",
            Kind::BadWatermark => "bad_watermark",
            Kind::SyncedBytesLost => "synced_bytes_lost",
            Kind::SavedCutTail => "saved_cut_tail",
            Kind::BadJournal => "bad_journal",
            Kind::TornJournalEntry => "torn_journal_entry",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Kind::IndexCoversPrefix
            | Kind::OrphanIndexFile
            | Kind::TornRemoveLogEntry
            | Kind::SavedCutTail
            | Kind::TornJournalEntry => Severity::Info,
            Kind::UnsupportedVersion => Severity::Unreadable,
            _ => Severity::Corruption,
        }
    }
}

/// One problem. `file` and `offset` always name bytes of the same file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: Kind,
    /// The file's name inside the data directory (`data-00000001.blob`).
    pub file: String,
    /// Byte offset in `file` where the problem starts.
    pub offset: u64,
    /// For a damaged region of a blob: where it ends (the next valid record, or the end of
    /// the file). Everything in `offset..end` is lost.
    pub end: Option<u64>,
    /// For an index entry: the blob offset the entry names.
    pub blob_offset: Option<u64>,
    /// The record's key, when its header is intact enough to trust.
    pub key: Option<Key>,
    /// What exactly failed, for a person.
    pub reason: String,
}

impl Problem {
    pub fn new(kind: Kind, file: &str, offset: u64, reason: impl Into<String>) -> Self {
        Problem {
            kind,
            file: file.to_string(),
            offset,
            end: None,
            blob_offset: None,
            key: None,
            reason: reason.into(),
        }
    }

    pub fn with_end(mut self, end: u64) -> Self {
        self.end = Some(end);
        self
    }

    pub fn with_key(mut self, key: Option<Key>) -> Self {
        self.key = key;
        self
    }

    pub fn with_blob_offset(mut self, at: u64) -> Self {
        self.blob_offset = Some(at);
        self
    }

    pub fn severity(&self) -> Severity {
        self.kind.severity()
    }

    /// The `--json` form.
    pub fn to_json(&self) -> ProblemJson<'_> {
        ProblemJson {
            file: &self.file,
            offset: self.offset,
            end: self.end,
            kind: self.kind.name(),
            severity: self.severity(),
            key: self.key.map(|k| k.to_hex()),
            blob_offset: self.blob_offset,
            reason: &self.reason,
        }
    }
}

/// A problem as one `--json` line.
#[derive(Debug, Serialize)]
pub struct ProblemJson<'a> {
    pub file: &'a str,
    pub offset: u64,
    pub end: Option<u64>,
    pub kind: &'static str,
    pub severity: Severity,
    pub key: Option<String>,
    pub blob_offset: Option<u64>,
    pub reason: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn kind_names_are_unique_snake_case() {
        let names: HashSet<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), Kind::ALL.len());
        for n in names {
            assert!(
                n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{n}"
            );
        }
    }

    #[test]
    fn only_prefix_orphans_torn_remove_entries_and_saved_tails_are_info() {
        let info: Vec<Kind> = Kind::ALL
            .into_iter()
            .filter(|k| k.severity() == Severity::Info)
            .collect();
        let expected = [
            Kind::IndexCoversPrefix,
            Kind::OrphanIndexFile,
            Kind::TornRemoveLogEntry,
            Kind::SavedCutTail,
            Kind::TornJournalEntry,
        ];
        assert_eq!(info, expected);
    }
}
