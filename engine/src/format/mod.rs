//! The on-disk format, byte for byte as `docs/FORMAT.md` describes it. Pure: bytes in,
//! values or typed errors out; no IO.

pub mod blob_header;
pub mod bloom;
pub mod crc_algebra;
pub mod frame_walk;
pub mod frames;
pub mod index_file;
pub mod record;
pub mod sorted_index;
pub mod stream_encoder;

/// The CRC-32 used everywhere on disk: CRC-32/ISO-HDLC (polynomial 0x04C11DB7, reflected,
/// init and final XOR 0xFFFFFFFF), as computed by `crc32fast`. `crc32(b"123456789") == 0xCBF43926`.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// Reads a little-endian u16 at `at`; callers have checked the length.
pub(crate) fn le_u16(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[at..at + 2]);
    u16::from_le_bytes(a)
}

/// Reads a little-endian u32 at `at`; callers have checked the length.
pub(crate) fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

/// Reads a little-endian u64 at `at`; callers have checked the length.
pub(crate) fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc_test_vector() {
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
    }
}
