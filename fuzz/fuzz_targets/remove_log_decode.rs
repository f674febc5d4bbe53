//! `decode_log` (the backends' remove log, `docs/FORMAT.md` §16) on arbitrary bytes: it may
//! refuse a file (an unknown header) but never panic; it counts every 48-byte entry after
//! the header (and a torn one at the end) as either valid or damaged; the valid ones are
//! exactly the entries that decode on their own (in a version 1 file: without the whole-key
//! flag, a reserved byte there), in file order, and each re-encodes to the bytes it was read
//! from.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringblob_backends::remove_log::{decode_log, Removal, REMOVE_ENTRY_LEN, REMOVE_LOG_HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(decoded) = decode_log(data) else {
        return;
    };
    let body = data.get(REMOVE_LOG_HEADER_LEN..).unwrap_or_default();
    let torn = u64::from(!body.len().is_multiple_of(REMOVE_ENTRY_LEN));
    let chunks: Vec<&[u8]> = body.chunks_exact(REMOVE_ENTRY_LEN).collect();
    assert_eq!(
        decoded.entries.len() as u64 + decoded.damaged,
        chunks.len() as u64 + torn
    );
    let mut valid = Vec::new();
    for c in &chunks {
        let mut entry = [0u8; REMOVE_ENTRY_LEN];
        entry.copy_from_slice(c);
        if let Some(r) = Removal::decode_in(decoded.version, &entry) {
            assert_eq!(r.encode(), entry, "re-encodes to its bytes");
            valid.push(r);
        }
    }
    assert_eq!(valid, decoded.entries);
});
