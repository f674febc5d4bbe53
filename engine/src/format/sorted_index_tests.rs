use super::*;

fn entries(n: usize) -> Vec<IndexEntry> {
    let mut v: Vec<IndexEntry> = (0..n)
        .map(|i| IndexEntry {
            key: Key::from_name(b"sorted", &(i / 2).to_le_bytes()),
            offset: 32 + 100 * i as u64,
            record_len: 100,
            flags: if i % 7 == 3 { FLAG_TOMBSTONE } else { 0 },
            column: (i % 2) as u16,
        })
        .collect();
    v.sort_by_key(|e| (e.key, e.column));
    v
}

fn file(n: usize) -> Vec<u8> {
    let e = entries(n);
    encode_sorted(&SortedSource {
        blob_id: 9,
        covered_len: 32 + 100 * n as u64,
        entries: &e,
        self_dead_bytes: 300.min(100 * n as u64),
        superseded: &[
            Superseded {
                blob: 2,
                values: 3,
                bytes: 400,
            },
            Superseded {
                blob: 5,
                values: 0,
                bytes: 88,
            },
        ],
    })
}

#[test]
fn round_trip_over_several_pages() {
    for n in [0, 1, ENTRIES_PER_PAGE, ENTRIES_PER_PAGE + 1, 1000] {
        let (h, tail, got) = decode_all(&file(n), "s").expect("decodes");
        assert_eq!(got, entries(n), "{n} entries");
        assert_eq!(h.page_count as usize, n.div_ceil(ENTRIES_PER_PAGE));
        assert_eq!(h.self_dead_bytes, 300.min(100 * n as u64));
        assert_eq!(tail.superseded.len(), 2);
        assert_eq!(tail.fences.len(), h.page_count as usize);
        let keys = entries(n);
        let hashes = keys
            .iter()
            .map(|e| crate::format::bloom::KeyHash::of(&e.key, tail.bloom.seed()));
        assert!(hashes.clone().all(|k| tail.bloom.may_contain(k)));
    }
}

#[test]
fn every_flipped_bit_in_header_tail_or_page_is_caught() {
    let good = file(ENTRIES_PER_PAGE + 5);
    // Every byte that carries meaning: header fields, page headers and entries, the tail.
    let meaningful = (0..80)
        .chain(SORTED_HEADER_LEN..SORTED_HEADER_LEN + 8 + 48 * ENTRIES_PER_PAGE)
        .chain(SORTED_HEADER_LEN + PAGE_LEN..SORTED_HEADER_LEN + PAGE_LEN + 8 + 48 * 5)
        .chain(SORTED_HEADER_LEN + 2 * PAGE_LEN..good.len());
    for i in meaningful {
        let mut b = good.clone();
        b[i] ^= 0x10;
        assert!(decode_all(&b, "s").is_err(), "flip at byte {i} accepted");
    }
}

#[test]
fn truncation_is_caught() {
    let good = file(200);
    for n in (0..good.len()).step_by(97) {
        assert!(decode_all(&good[..n], "s").is_err(), "{n} bytes accepted");
    }
}

#[test]
fn entries_outside_the_blob_are_refused() {
    let mut e = entries(3);
    e[1].offset = 10_000;
    let b = encode_sorted(&SortedSource {
        blob_id: 9,
        covered_len: 332,
        entries: &e,
        self_dead_bytes: 0,
        superseded: &[],
    });
    let err = decode_all(&b, "s").err().map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("out of bounds")));
}

#[test]
fn superseded_rows_must_name_older_blobs() {
    let e = entries(2);
    let b = encode_sorted(&SortedSource {
        blob_id: 4,
        covered_len: 232,
        entries: &e,
        self_dead_bytes: 0,
        superseded: &[Superseded {
            blob: 4,
            values: 1,
            bytes: 100,
        }],
    });
    assert!(decode_all(&b, "s").is_err());
}

#[test]
fn an_entry_offset_near_the_top_of_u64_is_refused_not_wrapped() {
    // Found by the sorted_index_decode fuzzer: offset + record_len overflowed.
    let mut e = entries(1);
    e[0].offset = u64::MAX - 10;
    let b = encode_sorted(&SortedSource {
        blob_id: 9,
        covered_len: 1000,
        entries: &e,
        self_dead_bytes: 0,
        superseded: &[],
    });
    assert!(decode_all(&b, "s").is_err());
}

#[test]
fn find_in_page_agrees_with_decode_page() {
    let b = file(ENTRIES_PER_PAGE * 2 + 7);
    let (h, tail, all) = decode_all(&b, "s").expect("decodes");
    for i in 0..h.page_count {
        let at = SORTED_HEADER_LEN + i as usize * PAGE_LEN;
        let page = &b[at..at + PAGE_LEN];
        for e in decode_page(&h, &tail.fences, i, page, "s").expect("page") {
            let got = find_in_page(&h, i, page, &(e.key, e.column), "s").expect("found");
            assert_eq!(got, Some(e));
            let absent = (e.key, e.column + 7);
            assert!(!all.iter().any(|x| (x.key, x.column) == absent));
            assert_eq!(find_in_page(&h, i, page, &absent, "s").ok(), Some(None));
        }
        let mut bad = page.to_vec();
        bad[100] ^= 1;
        assert!(find_in_page(&h, i, &bad, &(all[0].key, 0), "s").is_err());
    }
}
