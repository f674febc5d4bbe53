//! The 32-byte header at the start of every blob file.

use super::{crc32, le_u32, le_u64};
use crate::error::{Error, Result};

/// `RINGBLOB`: the first eight bytes of every blob file.
pub const BLOB_MAGIC: [u8; 8] = *b"RINGBLOB";
/// The blob format version this build writes. Version 2 gives the record `column` field its
/// meaning (a record belongs to a (key, column)); version 1 blobs, whose records all have
/// column 0, read the same under it. Version 3 adds patch records (`FLAG_PATCH`, §6.7),
/// which only version 3 blobs hold.
pub const FORMAT_VERSION: u32 = 3;
/// The oldest blob format version this build reads.
pub const MIN_FORMAT_VERSION: u32 = 1;
/// Length of the blob file header.
pub const BLOB_HEADER_LEN: usize = 32;

/// The decoded blob file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobHeader {
    pub version: u32,
    pub flags: u32,
    pub blob_id: u32,
}

impl BlobHeader {
    /// A header for a new blob of this build's version.
    pub fn new(blob_id: u32) -> Self {
        BlobHeader {
            version: FORMAT_VERSION,
            flags: 0,
            blob_id,
        }
    }

    /// Encodes the header.
    pub fn encode(&self) -> [u8; BLOB_HEADER_LEN] {
        let mut b = [0u8; BLOB_HEADER_LEN];
        b[0..8].copy_from_slice(&BLOB_MAGIC);
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..24].copy_from_slice(&u64::from(self.blob_id).to_le_bytes());
        let crc = crc32(&b[0..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks a header; `file` names it in errors.
    pub fn decode(b: &[u8], file: &str) -> Result<Self> {
        if b.len() < BLOB_HEADER_LEN {
            return Err(Error::Truncated {
                what: "blob header",
                offset: 0,
                need: BLOB_HEADER_LEN as u64,
                have: b.len() as u64,
            });
        }
        let corrupt = |reason: String| Error::Corrupt {
            what: "blob header",
            file: file.to_string(),
            offset: 0,
            reason,
        };
        if b[0..8] != BLOB_MAGIC {
            return Err(corrupt(format!("bad magic {:02x?}", &b[0..8])));
        }
        let expected = le_u32(b, 28);
        let got = crc32(&b[0..28]);
        if expected != got {
            return Err(corrupt(format!(
                "header checksum mismatch: expected {expected:#010x}, got {got:#010x}"
            )));
        }
        let version = le_u32(b, 8);
        if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(Error::UnsupportedVersion {
                file: file.to_string(),
                version,
                supported: FORMAT_VERSION,
            });
        }
        let flags = le_u32(b, 12);
        if flags != 0 {
            return Err(corrupt(format!("unknown flags {flags:#x}")));
        }
        if le_u32(b, 24) != 0 {
            return Err(corrupt("reserved bytes are not zero".into()));
        }
        let id = le_u64(b, 16);
        let blob_id = u32::try_from(id).map_err(|_| corrupt(format!("blob id {id} too large")))?;
        Ok(BlobHeader {
            version,
            flags,
            blob_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = BlobHeader::new(7);
        assert_eq!(BlobHeader::decode(&h.encode(), "x").ok(), Some(h));
    }

    #[test]
    fn rejects_damage() {
        let good = BlobHeader::new(7).encode();
        assert!(matches!(
            BlobHeader::decode(&good[..31], "x"),
            Err(Error::Truncated {
                need: 32,
                have: 31,
                ..
            })
        ));
        let mut bad = good;
        bad[0] = b'X';
        let e = BlobHeader::decode(&bad, "x").err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("bad magic")));
        let mut bad = good;
        bad[17] ^= 1;
        let e = BlobHeader::decode(&bad, "x").err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("checksum mismatch")));
    }

    fn with_version(v: u32) -> [u8; BLOB_HEADER_LEN] {
        let mut b = BlobHeader::new(1).encode();
        b[8..12].copy_from_slice(&v.to_le_bytes());
        let crc = crc32(&b[0..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b
    }

    #[test]
    fn rejects_future_and_zero_versions_reads_versions_1_and_2() {
        for v in [0, 4] {
            assert!(matches!(
                BlobHeader::decode(&with_version(v), "x"),
                Err(Error::UnsupportedVersion { version, supported: 3, .. }) if version == v
            ));
        }
        for v in [1, 2] {
            let old = BlobHeader::decode(&with_version(v), "x").map(|h| h.version);
            assert_eq!(old.ok(), Some(v));
        }
        assert_eq!(BlobHeader::new(1).version, 3);
    }
}
