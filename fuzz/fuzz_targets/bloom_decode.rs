//! `Bloom::decode` on arbitrary bytes and parameters, then probes and inserts on whatever it
//! accepts: `decode` may refuse (`None`) but never panic, and neither may a filter it
//! returned. A decoded filter re-encodes to the bytes it came from, holds every key inserted
//! into it, and a filter built with `Bloom::for_keys` holds every key it was given, also
//! after an encode/decode round trip.
//!
//! Input: `[mode][blocks u32][probes u32][seed u64][keys len u16]`, then `keys len` bytes of
//! 32-byte keys, then the filter's bytes. Mode bit 0: `blocks` as given (else the number of
//! whole blocks in the filter's bytes, so the length matches); bit 1: `probes` as given (else
//! `probes % 9`, around the accepted 1..=7).

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringblob_engine::format::bloom::{Bloom, KeyHash, BLOCK_LEN};
use ringblob_engine::Key;

/// Bytes of the fixed part of the input.
const PREFIX: usize = 19;

fuzz_target!(|data: &[u8]| {
    let Some((p, rest)) = data.split_first_chunk::<PREFIX>() else {
        return;
    };
    let mode = p[0];
    let keys_len = usize::from(u16::from_le_bytes([p[17], p[18]])).min(rest.len());
    let (key_bytes, filter) = rest.split_at(keys_len);
    let keys: Vec<Key> = key_bytes
        .chunks_exact(32)
        .map(|c| {
            let mut k = [0u8; 32];
            k.copy_from_slice(c);
            Key(k)
        })
        .collect();
    let blocks = if mode & 1 != 0 {
        u32::from_le_bytes([p[1], p[2], p[3], p[4]])
    } else {
        (filter.len() / BLOCK_LEN) as u32
    };
    let probes = u32::from_le_bytes([p[5], p[6], p[7], p[8]]);
    let probes = if mode & 2 != 0 { probes } else { probes % 9 };
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&p[9..17]);
    let seed = u64::from_le_bytes(seed);

    // Whole blocks only when the length was derived, so decode is not refused for the tail.
    let stored = &filter[..filter.len().min(blocks as usize * BLOCK_LEN)];
    let _ = Bloom::decode(filter, blocks, probes, seed);
    if let Some(mut f) = Bloom::decode(stored, blocks, probes, seed) {
        decoded(&mut f, stored, &keys);
    }
    built(&keys);
});

/// Checks on a filter `decode` accepted from `stored`.
fn decoded(f: &mut Bloom, stored: &[u8], keys: &[Key]) {
    let mut again = Vec::new();
    f.encode_into(&mut again);
    assert_eq!(again, stored, "a decoded filter re-encodes differently");
    for k in keys {
        let _ = f.may_contain(KeyHash::of(k, f.seed()));
    }
    for k in keys {
        f.insert(KeyHash::of(k, f.seed()));
    }
    let lost = keys
        .iter()
        .find(|k| !f.may_contain(KeyHash::of(k, f.seed())));
    assert_eq!(lost, None, "a decoded filter lost an inserted key");
}

/// A filter sized for `keys` holds them all, before and after a round trip.
fn built(keys: &[Key]) {
    let mut f = Bloom::for_keys(keys.len() as u64);
    for k in keys {
        f.insert(KeyHash::of(k, f.seed()));
    }
    let mut bytes = Vec::new();
    f.encode_into(&mut bytes);
    let back = Bloom::decode(&bytes, f.blocks(), f.probes(), f.seed());
    assert_eq!(
        back.as_ref(),
        Some(&f),
        "a built filter does not round-trip"
    );
    let lost = keys
        .iter()
        .find(|k| !f.may_contain(KeyHash::of(k, f.seed())));
    assert_eq!(lost, None, "a built filter lost a key");
}
