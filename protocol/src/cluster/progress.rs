//! [`TransferProgress`]: the small record a node keeps per outgoing transfer so it can
//! resume after a crash (`docs/PROTOCOL.md` §15.9).
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `RBTP` |
//! | 4 | 1 | version (1) |
//! | 5 | 32 | range start (exclusive), big-endian ring position |
//! | 37 | 32 | range end (inclusive) |
//! | 69 | 1 | 1 if a cursor follows, else 0 |
//! | 70 | 32 | cursor: the last key sent and acknowledged (zeros when absent) |
//! | 102 | 1 | length N of the target node's name, 1..=255 |
//! | 103 | N | the name, UTF-8 |
//! | 103 + N | 4 | CRC-32/ISO-HDLC of every byte before it, u32 LE |

use bytes::BufMut;

use super::reader::{bool_of, finish, id_of, need, put_text, text_of, u8_of};
use super::ClusterError;
use crate::ring::{KeyRange, RingId};
use crate::wire::KeyId;

/// The first 4 bytes of a progress record.
pub const PROGRESS_MAGIC: [u8; 4] = *b"RBTP";
/// The version of the progress record this build writes and reads.
pub const PROGRESS_VERSION: u8 = 1;
/// Bytes of a record before the name.
const FIXED_LEN: usize = 103;
/// Bytes of the trailing CRC.
const CRC_LEN: usize = 4;
/// The longest record: a 255-byte name.
pub const MAX_PROGRESS_LEN: usize = FIXED_LEN + 255 + CRC_LEN;
const _: () = assert!(FIXED_LEN == 4 + 1 + 32 + 32 + 1 + 32 + 1);

/// Where an outgoing transfer stands: its keys, its target and the last key acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferProgress {
    /// The keys to stream.
    pub range: KeyRange,
    /// The node that now owns them.
    pub to: String,
    /// The last key sent and acknowledged, in the range's order; `None` before the first.
    pub cursor: Option<KeyId>,
}

impl TransferProgress {
    /// The record's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, ClusterError> {
        let mut out = Vec::with_capacity(FIXED_LEN + self.to.len() + CRC_LEN);
        out.put_slice(&PROGRESS_MAGIC);
        out.put_u8(PROGRESS_VERSION);
        out.put_slice(&self.range.start_excl.0);
        out.put_slice(&self.range.end_incl.0);
        out.put_u8(u8::from(self.cursor.is_some()));
        out.put_slice(&self.cursor.unwrap_or_default());
        put_text(&mut out, &self.to, "transfer target")?;
        let crc = crc32fast::hash(&out);
        out.put_u32_le(crc);
        Ok(out)
    }

    /// Decodes one whole record, checking in order: length, magic, version, CRC, fields,
    /// and that the cursor lies in the range.
    pub fn decode(bytes: &[u8]) -> Result<TransferProgress, ClusterError> {
        let what = "transfer progress";
        if bytes.len() > MAX_PROGRESS_LEN {
            return Err(ClusterError::TooLarge {
                what,
                len: super::reader::as_u64(bytes.len()),
                max: super::reader::as_u64(MAX_PROGRESS_LEN),
            });
        }
        let mut buf = bytes;
        need(&buf, FIXED_LEN + 1 + CRC_LEN, what)?;
        let (body, crc) = bytes.split_at(bytes.len() - CRC_LEN);
        let mut magic = [0u8; 4];
        for slot in &mut magic {
            *slot = u8_of(&mut buf, what)?;
        }
        if magic != PROGRESS_MAGIC {
            return Err(ClusterError::BadMagic { what, got: magic });
        }
        let version = u8_of(&mut buf, what)?;
        if version != PROGRESS_VERSION {
            return Err(ClusterError::UnsupportedVersion {
                what,
                got: version,
                supported: PROGRESS_VERSION,
            });
        }
        check_crc(body, crc)?;
        let mut fields = body.get(5..).unwrap_or_default();
        let progress = decode_fields(&mut fields)?;
        finish(&fields, what)?;
        Ok(progress)
    }
}

fn check_crc(body: &[u8], stored: &[u8]) -> Result<(), ClusterError> {
    let mut le = [0u8; CRC_LEN];
    le.copy_from_slice(stored);
    let stored = u32::from_le_bytes(le);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(ClusterError::ChecksumMismatch {
            what: "transfer progress",
            stored,
            computed,
        });
    }
    Ok(())
}

fn decode_fields(buf: &mut &[u8]) -> Result<TransferProgress, ClusterError> {
    let start = id_of(buf, "transfer range start")?;
    let end = id_of(buf, "transfer range end")?;
    let has_cursor = bool_of(buf, "transfer cursor flag")?;
    let cursor = id_of(buf, "transfer cursor")?;
    let to = text_of(buf, "transfer target")?;
    let range = KeyRange::new(start, end);
    let cursor = match has_cursor {
        true if !range.contains(&cursor.0) => return Err(ClusterError::CursorOutsideRange),
        true => Some(cursor.0),
        false if cursor != RingId::MIN => {
            return Err(ClusterError::BadTag {
                what: "absent transfer cursor is not zero",
                got: 1,
            })
        }
        false => None,
    };
    Ok(TransferProgress { range, to, cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(v: u8) -> RingId {
        let mut id = RingId::MIN;
        id.0[0] = v;
        id
    }

    fn sample() -> TransferProgress {
        TransferProgress {
            range: KeyRange::new(at(10), at(20)),
            to: "node-b".into(),
            cursor: Some(at(15).0),
        }
    }

    #[test]
    fn round_trips() -> Result<(), ClusterError> {
        let bytes = sample().encode()?;
        assert_eq!(bytes.len(), FIXED_LEN + 6 + CRC_LEN);
        assert_eq!(TransferProgress::decode(&bytes)?, sample());
        let fresh = TransferProgress {
            cursor: None,
            ..sample()
        };
        assert_eq!(TransferProgress::decode(&fresh.encode()?)?, fresh);
        Ok(())
    }

    #[test]
    fn every_truncation_and_flip_is_an_error() -> Result<(), ClusterError> {
        let bytes = sample().encode()?;
        for cut in 0..bytes.len() {
            let short = bytes.get(..cut).unwrap_or_default();
            assert!(TransferProgress::decode(short).is_err(), "cut at {cut}");
        }
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            if let Some(b) = bad.get_mut(at) {
                *b ^= 0x40;
            }
            assert!(TransferProgress::decode(&bad).is_err(), "flip at {at}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(TransferProgress::decode(&long).is_err());
        Ok(())
    }

    #[test]
    fn a_cursor_outside_the_range_is_refused() -> Result<(), ClusterError> {
        let outside = TransferProgress {
            cursor: Some(at(30).0),
            ..sample()
        };
        assert_eq!(
            TransferProgress::decode(&outside.encode()?),
            Err(ClusterError::CursorOutsideRange)
        );
        Ok(())
    }

    #[test]
    fn golden_bytes() -> Result<(), ClusterError> {
        let bytes = sample().encode()?;
        assert_eq!(bytes.get(..5), Some(&b"RBTP\x01"[..]));
        assert_eq!(bytes.get(5), Some(&10));
        assert_eq!(bytes.get(37), Some(&20));
        assert_eq!(bytes.get(69..71), Some(&[1u8, 15][..]));
        assert_eq!(bytes.get(102..109), Some(&b"\x06node-b"[..]));
        // docs/PROTOCOL.md §15.9: the example record ends with CRC 0x25F568F0.
        let example = TransferProgress {
            range: KeyRange::new(at(0x0a), at(0x14)),
            to: "node-b".into(),
            cursor: Some(at(0x0f).0),
        };
        let bytes = example.encode()?;
        assert_eq!(bytes.len(), 113);
        assert_eq!(bytes.get(109..), Some(&[0xf0, 0x68, 0xf5, 0x25][..]));
        Ok(())
    }
}
