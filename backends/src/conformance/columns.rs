//! Conformance cases for columns: each written, read (with ranges), described and removed
//! on its own; removing a key removes them all; iteration lists every (key, column).

use ringblob_engine::{Key, Range};

use super::{bytes, key, ok, opts, read, Fixture};
use crate::backend::Backend;
use crate::error::Error;
use crate::meta::{IterRequest, Position};

/// Column numbers the column cases use: the value, two named ones, the largest.
const DATA: u16 = 0;
const META: u16 = 1;
const THUMB: u16 = 2;
const LAST: u16 = u16::MAX;

fn read_col(b: &dyn Backend, k: &Key, column: u16) -> Option<Vec<u8>> {
    match b.read_column(k, column, Range::all()) {
        Ok(v) => Some(v),
        Err(Error::NotFound(_)) => None,
        Err(e) => panic!("read {k} column {column}: {e}"),
    }
}

fn column_numbers(b: &dyn Backend, k: &Key) -> Vec<u16> {
    ok(b.columns(k)).iter().map(|m| m.column).collect()
}

pub(super) fn columns_are_written_read_and_described_apart(fx: &mut Fixture) {
    let b = fx.backend();
    let (data, thumb) = (bytes(20, 200_000), bytes(21, 3000));
    assert_eq!(ok(b.write_column(&key(20), THUMB, &thumb, opts())), 3000);
    assert!(
        matches!(b.lookup(&key(20)), Err(Error::NotFound(k)) if k == key(20)),
        "a key with only column 2 has no column 0"
    );
    assert_eq!(ok(b.write_column(&key(20), DATA, &data, opts())), 200_000);
    ok(b.write_column(&key(20), LAST, b"last", opts()));
    assert!(read_col(b, &key(20), DATA) == Some(data.clone()));
    assert!(
        read(b, &key(20)) == Some(data.clone()),
        "column 0 is the value"
    );
    assert!(read_col(b, &key(20), THUMB) == Some(thumb.clone()));
    assert_eq!(read_col(b, &key(20), LAST).as_deref(), Some(&b"last"[..]));
    assert_eq!(read_col(b, &key(20), META), None);
    for (column, v) in [(DATA, &data), (THUMB, &thumb)] {
        for (off, size) in [(0u64, 10u64), (1000, 1500), (2990, 100)] {
            let got = ok(b.read_column(&key(20), column, Range::new(off, size)));
            let end = (off + size).min(v.len() as u64) as usize;
            assert!(
                got == v[off as usize..end],
                "column {column} range {off}+{size}"
            );
        }
        let m = ok(b.lookup_column(&key(20), column));
        assert_eq!(
            (m.key, m.column, m.size, m.checksum),
            (key(20), column, v.len() as u64, crc32fast::hash(v))
        );
    }
    assert!(matches!(
        b.read_column(&key(20), THUMB, Range::new(3001, 1)),
        Err(Error::RangeOutOfBounds {
            offset: 3001,
            len: 3000
        })
    ));
    assert!(matches!(
        b.lookup_column(&key(20), META),
        Err(Error::NotFound(_))
    ));
    assert_eq!(column_numbers(b, &key(20)), [DATA, THUMB, LAST]);
    assert_eq!(
        ok(b.stats()).keys,
        3,
        "stats count one value per (key, column)"
    );
    ok(b.write_column(&key(20), THUMB, b"new thumb", opts()));
    assert_eq!(
        read_col(b, &key(20), THUMB).as_deref(),
        Some(&b"new thumb"[..])
    );
    assert!(
        read(b, &key(20)) == Some(data),
        "overwriting a column leaves the others"
    );
}

pub(super) fn removing_a_column_keeps_the_others(fx: &mut Fixture) {
    let b = fx.backend();
    ok(b.write_column(&key(21), DATA, b"data", opts()));
    ok(b.write_column(&key(21), META, b"meta", opts()));
    ok(b.write_column(&key(21), THUMB, b"thumb", opts()));
    ok(b.remove_column(&key(21), META, opts()));
    assert_eq!(read_col(b, &key(21), META), None);
    assert!(matches!(
        b.lookup_column(&key(21), META),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        b.remove_column(&key(21), META, opts()),
        Err(Error::NotFound(_))
    ));
    assert_eq!(read_col(b, &key(21), DATA).as_deref(), Some(&b"data"[..]));
    assert_eq!(read_col(b, &key(21), THUMB).as_deref(), Some(&b"thumb"[..]));
    assert_eq!(column_numbers(b, &key(21)), [DATA, THUMB]);
    ok(b.remove_column(&key(21), DATA, opts()));
    assert_eq!(read(b, &key(21)), None, "the value is gone");
    assert_eq!(
        column_numbers(b, &key(21)),
        [THUMB],
        "the key lives on in column 2"
    );
    assert!(matches!(
        b.remove_column(&key(22), DATA, opts()),
        Err(Error::NotFound(_))
    ));
}

pub(super) fn removing_a_key_removes_every_column(fx: &mut Fixture) {
    let b = fx.backend();
    for column in [DATA, META, THUMB, LAST] {
        ok(b.write_column(&key(23), column, &column.to_le_bytes(), opts()));
    }
    ok(b.write_column(&key(24), THUMB, b"only a thumb", opts()));
    ok(b.remove(&key(23), opts()));
    for column in [DATA, META, THUMB, LAST] {
        assert_eq!(read_col(b, &key(23), column), None, "column {column}");
    }
    assert_eq!(column_numbers(b, &key(23)), Vec::<u16>::new());
    assert!(matches!(
        b.remove(&key(23), opts()),
        Err(Error::NotFound(_))
    ));
    ok(b.remove(&key(24), opts()));
    assert_eq!(
        read_col(b, &key(24), THUMB),
        None,
        "a key without column 0 is removed too"
    );
    assert_eq!(ok(b.stats()).keys, 0);
    ok(b.write_column(&key(23), META, b"back", opts()));
    assert_eq!(
        column_numbers(b, &key(23)),
        [META],
        "removed columns stay removed"
    );
}

pub(super) fn iteration_lists_every_key_and_column_once(fx: &mut Fixture) {
    let b = fx.backend();
    let mut want = Vec::new();
    for i in 0..7u64 {
        let columns: &[u16] = match i % 3 {
            0 => &[DATA],
            1 => &[DATA, META, THUMB],
            _ => &[THUMB, LAST],
        };
        for &c in columns {
            ok(b.write_column(&key(30 + i), c, &bytes(i, 10 + usize::from(c % 7)), opts()));
            want.push(Position {
                key: key(30 + i),
                column: c,
            });
        }
    }
    ok(b.remove_column(&key(31), META, opts()));
    want.retain(|p| {
        *p != Position {
            key: key(31),
            column: META,
        }
    });
    want.sort();
    for limit in [1, 2, 3, 100] {
        let mut seen = Vec::new();
        let mut req = IterRequest::all(limit);
        loop {
            let page = ok(b.iterate(&req));
            assert!(page.entries.len() <= limit);
            for m in &page.entries {
                let v = ok(b.read_column(&m.key, m.column, Range::all()));
                assert_eq!((m.size, m.checksum), (v.len() as u64, crc32fast::hash(&v)));
            }
            seen.extend(page.entries.iter().map(|m| m.position()));
            match page.next_after {
                Some(after) => req.after = Some(after),
                None => break,
            }
        }
        assert_eq!(
            seen, want,
            "pages of {limit}: every (key, column) once, in order"
        );
    }
    // The smallest key holds columns 2 and 65535, not 0.
    let after = Position {
        key: want[0].key,
        column: 0,
    };
    let page = ok(b.iterate(&IterRequest {
        after: Some(after),
        ..IterRequest::all(100)
    }));
    let expect: Vec<Position> = want.iter().copied().filter(|p| *p > after).collect();
    assert_eq!(
        expect.len(),
        want.len(),
        "nothing listed comes at or before (key, 0)"
    );
    let got: Vec<Position> = page.entries.iter().map(|m| m.position()).collect();
    assert_eq!(
        got, expect,
        "resuming after (key, 0) still lists the key's other columns"
    );
}

pub(super) fn columns_take_appends_offsets_and_uploads(fx: &mut Fixture) {
    let b = fx.backend();
    ok(b.write(&key(40), b"the value", opts()));
    assert_eq!(ok(b.append_column(&key(40), META, b"ab", opts())), 2);
    assert_eq!(ok(b.append_column(&key(40), META, b"cd", opts())), 4);
    assert_eq!(ok(b.write_at_column(&key(40), META, 1, b"XY", opts())), 4);
    assert_eq!(read_col(b, &key(40), META).as_deref(), Some(&b"aXYd"[..]));
    let v = bytes(41, 100_000);
    ok(b.prepare_column(&key(40), THUMB, 100_000));
    ok(b.prepare(&key(40), 10));
    ok(b.write_part_column(&key(40), THUMB, 50_000, &v[50_000..]));
    ok(b.write_part_column(&key(40), THUMB, 0, &v[..50_000]));
    ok(b.write_part(&key(40), 0, b"new value!"));
    assert_eq!(
        read_col(b, &key(40), THUMB),
        None,
        "invisible before commit"
    );
    assert!(matches!(
        b.commit_column(&key(40), LAST, 1, opts()),
        Err(Error::NoUpload(_))
    ));
    assert_eq!(
        ok(b.commit_column(&key(40), THUMB, 100_000, opts())),
        100_000
    );
    assert!(read_col(b, &key(40), THUMB) == Some(v));
    assert_eq!(
        read(b, &key(40)).as_deref(),
        Some(&b"the value"[..]),
        "column 0 untouched"
    );
    ok(b.commit(&key(40), 10, opts()));
    assert_eq!(read(b, &key(40)).as_deref(), Some(&b"new value!"[..]));
    assert_eq!(read_col(b, &key(40), META).as_deref(), Some(&b"aXYd"[..]));
}

pub(super) fn columns_survive_reopen(fx: &mut Fixture) {
    {
        let b = fx.backend();
        ok(b.write_column(&key(50), DATA, b"data", opts()));
        ok(b.write_column(&key(50), THUMB, b"thumb", opts()));
        ok(b.write_column(&key(50), META, b"meta", opts()));
        ok(b.remove_column(&key(50), META, opts()));
        ok(b.write_column(&key(51), THUMB, b"gone", opts()));
        ok(b.write_column(&key(51), DATA, b"gone too", opts()));
        ok(b.remove(&key(51), opts()));
        ok(b.prepare_column(&key(52), THUMB, 8));
        ok(b.write_part_column(&key(52), THUMB, 0, b"half"));
        ok(b.sync());
    }
    if !fx.restart() {
        return;
    }
    let b = fx.backend();
    assert_eq!(column_numbers(b, &key(50)), [DATA, THUMB]);
    assert_eq!(read_col(b, &key(50), THUMB).as_deref(), Some(&b"thumb"[..]));
    assert_eq!(column_numbers(b, &key(51)), Vec::<u16>::new());
    ok(b.prepare_column(&key(52), THUMB, 8));
    ok(b.write_part_column(&key(52), THUMB, 4, b"done"));
    ok(b.commit_column(&key(52), THUMB, 8, opts()));
    assert_eq!(
        read_col(b, &key(52), THUMB).as_deref(),
        Some(&b"halfdone"[..])
    );
}
