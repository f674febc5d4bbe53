//! The IDs file: a node's ring IDs as kept in its data dir, so it rejoins at the same
//! positions. Pure encode/decode; the node does the IO.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `RBIDS\0\0\0` |
//! | 8 | 4 | format version, u32 LE (1) |
//! | 12 | 4 | count, u32 LE, ≤ [`MAX_IDS_PER_NODE`] |
//! | 16 | 32 · count | the IDs, each big-endian, strictly ascending |
//! | 16 + 32 · count | 4 | CRC-32/ISO-HDLC (zlib's `crc32`) of every byte before it, u32 LE |

use std::cmp::Ordering;

use super::{RingError, RingId, MAX_IDS_PER_NODE, RING_ID_LEN};

/// The first 8 bytes of an IDs file.
pub const IDS_FILE_MAGIC: [u8; 8] = *b"RBIDS\0\0\0";
/// The format version this build writes and reads.
pub const IDS_FILE_VERSION: u32 = 1;
/// Bytes before the first ID: magic, version, count.
pub const IDS_FILE_HEADER_LEN: usize = 16;
/// Bytes of the trailing CRC.
const CRC_LEN: usize = 4;
const _: () = assert!(IDS_FILE_HEADER_LEN == IDS_FILE_MAGIC.len() + 4 + 4);

/// The file holding the set `ids` (written ascending, duplicates dropped).
pub fn encode_ids_file(ids: &[RingId]) -> Result<Vec<u8>, RingError> {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let count = u32::try_from(sorted.len())
        .ok()
        .filter(|c| *c <= MAX_IDS_PER_NODE)
        .ok_or(RingError::TooManyIds {
            count: u64::try_from(sorted.len()).unwrap_or(u64::MAX),
            max: MAX_IDS_PER_NODE,
        })?;
    let mut out = Vec::with_capacity(file_len(count));
    out.extend_from_slice(&IDS_FILE_MAGIC);
    out.extend_from_slice(&IDS_FILE_VERSION.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    for id in &sorted {
        out.extend_from_slice(&id.0);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// The IDs in `bytes`, which must be one whole IDs file: checked in the order magic,
/// version, count limit, exact length, CRC, ascending IDs.
pub fn decode_ids_file(bytes: &[u8]) -> Result<Vec<RingId>, RingError> {
    let have = len_u64(bytes.len());
    let Some((header, rest)) = bytes.split_first_chunk::<IDS_FILE_HEADER_LEN>() else {
        return Err(RingError::Truncated {
            need: len_u64(IDS_FILE_HEADER_LEN + CRC_LEN),
            have,
        });
    };
    let (magic, version, count) = split_header(header);
    if magic != IDS_FILE_MAGIC {
        return Err(RingError::BadMagic { got: magic });
    }
    if version != IDS_FILE_VERSION {
        return Err(RingError::UnsupportedVersion {
            got: version,
            supported: IDS_FILE_VERSION,
        });
    }
    if count > MAX_IDS_PER_NODE {
        return Err(RingError::TooManyIds {
            count: u64::from(count),
            max: MAX_IDS_PER_NODE,
        });
    }
    let need = file_len(count);
    match bytes.len().cmp(&need) {
        Ordering::Less => {
            let need = len_u64(need);
            return Err(RingError::Truncated { need, have });
        }
        Ordering::Greater => {
            let extra = len_u64(bytes.len() - need);
            return Err(RingError::TrailingBytes { extra });
        }
        Ordering::Equal => {}
    }
    let (covered, stored) = bytes
        .split_last_chunk::<CRC_LEN>()
        .ok_or(RingError::Truncated {
            need: len_u64(need),
            have,
        })?;
    let stored = u32::from_le_bytes(*stored);
    let computed = crc32fast::hash(covered);
    if stored != computed {
        return Err(RingError::ChecksumMismatch { stored, computed });
    }
    let body = rest
        .get(..need - IDS_FILE_HEADER_LEN - CRC_LEN)
        .unwrap_or_default();
    parse_ids(body)
}

/// (magic, version, count) of a header.
fn split_header(header: &[u8; IDS_FILE_HEADER_LEN]) -> ([u8; 8], u32, u32) {
    let [m0, m1, m2, m3, m4, m5, m6, m7, v0, v1, v2, v3, c0, c1, c2, c3] = *header;
    (
        [m0, m1, m2, m3, m4, m5, m6, m7],
        u32::from_le_bytes([v0, v1, v2, v3]),
        u32::from_le_bytes([c0, c1, c2, c3]),
    )
}

/// The IDs of a body whose length is a multiple of 32, checked strictly ascending.
fn parse_ids(body: &[u8]) -> Result<Vec<RingId>, RingError> {
    let mut ids: Vec<RingId> = Vec::with_capacity(body.len() / RING_ID_LEN);
    for (index, chunk) in (0u32..).zip(body.chunks_exact(RING_ID_LEN)) {
        let mut id = RingId::MIN;
        id.0.copy_from_slice(chunk);
        if ids.last().is_some_and(|last| *last >= id) {
            return Err(RingError::NotAscending { index });
        }
        ids.push(id);
    }
    Ok(ids)
}

/// Bytes in a file of `count` IDs (`count` ≤ [`MAX_IDS_PER_NODE`], so no overflow).
fn file_len(count: u32) -> usize {
    IDS_FILE_HEADER_LEN + RING_ID_LEN * count as usize + CRC_LEN
}

fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counting() -> RingId {
        let mut id = RingId::MIN;
        for (i, b) in id.0.iter_mut().enumerate() {
            *b = i as u8;
        }
        id
    }

    fn two_ids() -> Vec<u8> {
        encode_ids_file(&[RingId::MAX, counting()]).unwrap_or_default()
    }

    /// Rewrites the trailing CRC after a test edited the bytes.
    fn reseal(bytes: &mut Vec<u8>) {
        bytes.truncate(bytes.len() - CRC_LEN);
        let crc = crc32fast::hash(bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn empty_file_matches_the_test_vector() -> Result<(), RingError> {
        // Written with Python: b"RBIDS\0\0\0" + pack("<II", 1, 0) + pack("<I", zlib.crc32(…)).
        let golden = [
            0x52, 0x42, 0x49, 0x44, 0x53, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x17, 0xab, 0xd4,
        ];
        assert_eq!(encode_ids_file(&[])?, golden);
        assert_eq!(decode_ids_file(&golden)?, vec![]);
        Ok(())
    }

    #[test]
    fn two_ids_are_sorted_and_sealed() -> Result<(), RingError> {
        let bytes = two_ids();
        assert_eq!(bytes.len(), 16 + 64 + 4);
        assert_eq!(bytes.get(16..48), Some(&counting().0[..]));
        // zlib.crc32 of the first 80 bytes, from Python.
        assert_eq!(bytes.get(80..), Some(&0x4b99_1413u32.to_le_bytes()[..]));
        assert_eq!(decode_ids_file(&bytes)?, vec![counting(), RingId::MAX]);
        // Duplicates are dropped: the file holds a set.
        assert_eq!(
            encode_ids_file(&[RingId::MAX, counting(), RingId::MAX])?,
            bytes
        );
        Ok(())
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = two_ids();
        for len in 0..bytes.len() {
            let got = decode_ids_file(&bytes[..len]);
            assert!(
                matches!(got, Err(RingError::Truncated { .. })),
                "len {len}: {got:?}"
            );
        }
        assert_eq!(
            decode_ids_file(&bytes[..10]),
            Err(RingError::Truncated { need: 20, have: 10 })
        );
        assert_eq!(
            decode_ids_file(&bytes[..50]),
            Err(RingError::Truncated { need: 84, have: 50 })
        );
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = two_ids();
        bytes.push(0);
        assert_eq!(
            decode_ids_file(&bytes),
            Err(RingError::TrailingBytes { extra: 1 })
        );
    }

    #[test]
    fn bad_magic() {
        let mut bytes = two_ids();
        bytes[0] = b'X';
        assert_eq!(
            decode_ids_file(&bytes),
            Err(RingError::BadMagic {
                got: *b"XBIDS\0\0\0"
            })
        );
    }

    #[test]
    fn unsupported_version() {
        let mut bytes = two_ids();
        bytes[8] = 2;
        reseal(&mut bytes);
        assert_eq!(
            decode_ids_file(&bytes),
            Err(RingError::UnsupportedVersion {
                got: 2,
                supported: 1
            })
        );
    }

    #[test]
    fn every_flipped_bit_after_the_header_fails_the_crc() {
        let bytes = two_ids();
        for at in IDS_FILE_HEADER_LEN..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[at] ^= 1 << bit;
                let got = decode_ids_file(&bad);
                assert!(
                    matches!(got, Err(RingError::ChecksumMismatch { .. })),
                    "byte {at} bit {bit}: {got:?}"
                );
            }
        }
    }

    #[test]
    fn oversize_count_is_refused_before_the_length_check() {
        let mut bytes = two_ids();
        bytes[12..16].copy_from_slice(&(MAX_IDS_PER_NODE + 1).to_le_bytes());
        assert_eq!(
            decode_ids_file(&bytes),
            Err(RingError::TooManyIds {
                count: u64::from(MAX_IDS_PER_NODE) + 1,
                max: MAX_IDS_PER_NODE
            })
        );
        bytes[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_ids_file(&bytes),
            Err(RingError::TooManyIds { .. })
        ));
        let too_many: Vec<RingId> = (0..=MAX_IDS_PER_NODE)
            .map(|i| {
                let mut id = RingId::MIN;
                id.0[28..].copy_from_slice(&i.to_be_bytes());
                id
            })
            .collect();
        assert!(matches!(
            encode_ids_file(&too_many),
            Err(RingError::TooManyIds { .. })
        ));
        assert!(
            encode_ids_file(&too_many[1..]).is_ok(),
            "exactly the limit is fine"
        );
    }

    #[test]
    fn ids_out_of_order_are_refused() {
        let mut bytes = two_ids();
        let (first, second) = (bytes[16..48].to_vec(), bytes[48..80].to_vec());
        bytes[16..48].copy_from_slice(&second);
        bytes[48..80].copy_from_slice(&first);
        reseal(&mut bytes);
        assert_eq!(
            decode_ids_file(&bytes),
            Err(RingError::NotAscending { index: 1 })
        );
        let mut dup = two_ids();
        dup[48..80].copy_from_slice(&first);
        reseal(&mut dup);
        assert_eq!(
            decode_ids_file(&dup),
            Err(RingError::NotAscending { index: 1 })
        );
    }
}
