//! The engine's small side formats on arbitrary bytes: the synced watermark
//! (`watermark::decode`), key journal entries (`journal::decode_entry`) and the one-bit
//! repair of a damaged record header (`RecordHeader::repaired_one_bit`). None may panic; a
//! watermark or journal entry that decodes re-encodes to the same bytes, and a repaired
//! header is one flipped bit from the input and re-encodes to a valid header.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringblob_engine::format::record::{RecordHeader, RECORD_HEADER_LEN};
use ringblob_engine::{journal, watermark};

fuzz_target!(|data: &[u8]| {
    if let Some(w) = watermark::decode(data) {
        assert_eq!(watermark::encode(w.pos, &w.unindexed), data);
    }
    if let Some(e) = journal::decode_entry(data) {
        assert_eq!(&journal::encode_entry(&e)[..], &data[..journal::ENTRY_LEN]);
    }
    if let Some(h) = RecordHeader::repaired_one_bit(data, 1, 32) {
        let fixed = h.encode();
        let flipped: u32 = fixed
            .iter()
            .zip(&data[..RECORD_HEADER_LEN])
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        assert_eq!(flipped, 1);
    }
});
