//! From the engine's typed errors to problem kinds. The engine says *what* failed
//! (`ChecksumMismatch { what }`, `Corrupt { reason }`, `Truncated`); the inspector adds
//! *where* it failed (at the tail of the file, or with valid records after it).

use ringblob_engine::format::record::RECORD_MAGIC;
use ringblob_engine::Error;

use super::problem::Kind;

/// What is known about the place a damaged region starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site {
    /// No valid record follows the damage: it runs to the end of the file.
    pub at_tail: bool,
    /// The bytes there start with the record magic (or with a prefix of it, when the file
    /// ends sooner): a record was being written here.
    pub looks_like_record: bool,
}

/// The kind of a damaged record or region.
pub fn kind_of(error: &Error, site: Site) -> Kind {
    match error {
        Error::Truncated { .. } if site.at_tail && site.looks_like_record => Kind::TruncatedTail,
        Error::Truncated { .. } if site.at_tail => Kind::GarbageAfterLastRecord,
        // A record that claims to run past the end of the file, yet valid records follow it.
        Error::Truncated { .. } => Kind::ImpossibleLength,
        Error::ChecksumMismatch { what, .. } => match *what {
            "record header" => Kind::BadHeaderCrc,
            "frame table" => Kind::BadFrameTableCrc,
            "value" => Kind::BadValueCrc,
            _ => Kind::BadDataCrc,
        },
        Error::Corrupt { what, .. } if *what == "compressed frame" => Kind::BadCompressedFrame,
        Error::Corrupt { reason, .. } if reason.contains("magic") => {
            if site.at_tail {
                Kind::GarbageAfterLastRecord
            } else {
                Kind::BadMagic
            }
        }
        Error::Corrupt { reason, .. } if reason.contains("length") => Kind::ImpossibleLength,
        Error::UnsupportedVersion { .. } => Kind::UnsupportedVersion,
        _ => Kind::BadRecordField,
    }
}

/// True when `head` (the bytes at a damaged offset, possibly fewer than four) starts like a
/// record: with the record magic, or with as much of it as the file still holds.
pub fn looks_like_record(head: &[u8]) -> bool {
    let magic = RECORD_MAGIC.to_le_bytes();
    let n = head.len().min(magic.len());
    n > 0 && head.get(..n) == magic.get(..n)
}

/// The file offset an engine error points at, when it names one.
pub fn error_offset(error: &Error) -> u64 {
    match error {
        Error::ChecksumMismatch { offset, .. }
        | Error::Corrupt { offset, .. }
        | Error::Truncated { offset, .. } => *offset,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MID: Site = Site {
        at_tail: false,
        looks_like_record: true,
    };

    fn corrupt(what: &'static str, reason: &str) -> Error {
        Error::Corrupt {
            what,
            file: "blob 1".into(),
            offset: 7,
            reason: reason.into(),
        }
    }

    fn crc(what: &'static str) -> Error {
        Error::ChecksumMismatch {
            what,
            blob: 1,
            offset: 7,
            expected: 1,
            got: 2,
        }
    }

    fn truncated() -> Error {
        Error::Truncated {
            what: "record",
            offset: 7,
            need: 100,
            have: 10,
        }
    }

    #[test]
    fn checksums_map_by_what() {
        assert_eq!(kind_of(&crc("record header"), MID), Kind::BadHeaderCrc);
        assert_eq!(kind_of(&crc("frame table"), MID), Kind::BadFrameTableCrc);
        assert_eq!(kind_of(&crc("frame data"), MID), Kind::BadDataCrc);
        assert_eq!(kind_of(&crc("value"), MID), Kind::BadValueCrc);
    }

    #[test]
    fn corrupt_maps_by_reason() {
        let magic = corrupt("record", "bad record magic 0x00000000");
        assert_eq!(kind_of(&magic, MID), Kind::BadMagic);
        let tail = Site {
            at_tail: true,
            looks_like_record: false,
        };
        assert_eq!(kind_of(&magic, tail), Kind::GarbageAfterLastRecord);
        let len = corrupt("record", "impossible stored length 5");
        assert_eq!(kind_of(&len, MID), Kind::ImpossibleLength);
        let flags = corrupt("record", "unknown record flags 0x8000");
        assert_eq!(kind_of(&flags, MID), Kind::BadRecordField);
        let snappy = corrupt("compressed frame", "decompresses to 3 bytes, expected 4");
        assert_eq!(kind_of(&snappy, MID), Kind::BadCompressedFrame);
    }

    #[test]
    fn truncation_depends_on_place() {
        let tail = |looks| Site {
            at_tail: true,
            looks_like_record: looks,
        };
        assert_eq!(kind_of(&truncated(), tail(true)), Kind::TruncatedTail);
        assert_eq!(
            kind_of(&truncated(), tail(false)),
            Kind::GarbageAfterLastRecord
        );
        assert_eq!(kind_of(&truncated(), MID), Kind::ImpossibleLength);
    }

    #[test]
    fn magic_prefixes_look_like_records() {
        assert!(looks_like_record(b"RBRC\0\0"));
        assert!(looks_like_record(b"RB"));
        assert!(!looks_like_record(b""));
        assert!(!looks_like_record(b"RX"));
        assert!(!looks_like_record(b"\0\0\0\0\0"));
    }

    #[test]
    fn offsets_come_from_the_error() {
        assert_eq!(error_offset(&crc("frame data")), 7);
        assert_eq!(error_offset(&Error::Closed), 0);
    }
}
