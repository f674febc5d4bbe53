//! Feeds arbitrary bytes to the object record decoders (docs/OBJECTS.md): the manifest (and
//! its fixed part alone, as a small put reads it), the upload record, the name record (with
//! its attributes) and the attribute index entry (docs/ATTRIBUTES.md). Any `Err` is fine; a panic is a bug, and so is a decoded record that
//! does not re-encode to the very bytes it came from.
//!
//! Input: byte 0 picks the decoder; the rest is its input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringblob_backends::names::NameRecord;
use ringblob_protocol::attrs::Entry;
use ringblob_protocol::client::object::{Manifest, ManifestHead, UploadRecord};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    if mode % 4 == 3 {
        if let Ok(e) = Entry::decode(body) {
            assert_eq!(
                &e.encode()[..],
                body,
                "an index entry re-encodes to its bytes"
            );
        }
    } else if mode % 4 == 2 {
        if let Ok(r) = NameRecord::decode(body) {
            assert_eq!(
                r.encode().ok().as_deref(),
                Some(body),
                "a name record re-encodes to its bytes"
            );
        }
    } else if mode % 4 == 0 {
        let head = ManifestHead::decode(body);
        if let Ok(h) = head {
            assert!(u64::from(h.count) == Manifest::chunks_for(h.size, h.chunk_size));
        }
        if let Ok(m) = Manifest::decode(body) {
            assert_eq!(&m.encode()[..], body, "a manifest re-encodes to its bytes");
            assert!(m.chunk_crcs.len() as u64 == Manifest::chunks_for(m.size, m.chunk_size));
            assert_eq!(
                head.map(|h| (h.upload_id, h.count, h.size)),
                Ok((m.upload_id, m.chunk_crcs.len() as u32, m.size)),
                "a whole manifest's head reads as its fixed part"
            );
        }
    } else if let Ok(r) = UploadRecord::decode(body) {
        assert_eq!(
            &r.encode()[..],
            body,
            "an upload record re-encodes to its bytes"
        );
    }
});
