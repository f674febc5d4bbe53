//! Random operation sequences checked against a `BTreeMap` model.

use std::collections::BTreeMap;

use proptest::prelude::*;
use ringblob_engine::io::MemDevice;
use ringblob_engine::{Config, Durability, Engine, Error, IndexMode, Range, WriteOptions};

use crate::support::{key, open_mem, small_config, value};

#[derive(Debug, Clone)]
enum Op {
    Put {
        k: u64,
        col: u16,
        len: usize,
        compress: bool,
    },
    Get {
        k: u64,
        col: u16,
    },
    GetRange {
        k: u64,
        col: u16,
        offset: u64,
        size: u64,
    },
    RemoveColumn {
        k: u64,
        col: u16,
    },
    Remove {
        k: u64,
    },
    Columns {
        k: u64,
    },
    /// Reopens, in memory mode when `memory` (the index mode may change across opens).
    Reopen {
        memory: bool,
    },
    Rotate,
    Sync,
    Defrag,
}

fn col() -> impl Strategy<Value = u16> {
    prop_oneof![3 => Just(0u16), 1 => 1..3u16]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..20u64, col(), prop_oneof![0..200usize, 0..20_000usize], any::<bool>())
            .prop_map(|(k, col, len, compress)| Op::Put { k, col, len, compress }),
        4 => (0..24u64, col()).prop_map(|(k, col)| Op::Get { k, col }),
        3 => (0..20u64, col(), 0..21_000u64, 0..10_000u64)
            .prop_map(|(k, col, offset, size)| Op::GetRange { k, col, offset, size }),
        1 => (0..24u64, col()).prop_map(|(k, col)| Op::RemoveColumn { k, col }),
        2 => (0..24u64).prop_map(|k| Op::Remove { k }),
        1 => (0..24u64).prop_map(|k| Op::Columns { k }),
        1 => any::<bool>().prop_map(|memory| Op::Reopen { memory }),
        1 => Just(Op::Rotate),
        1 => Just(Op::Sync),
        1 => Just(Op::Defrag),
    ]
}

fn check_get(
    got: ringblob_engine::Result<Vec<u8>>,
    want: Option<&Vec<u8>>,
    range: Range,
) -> Result<(), TestCaseError> {
    match (got, want) {
        (Ok(v), Some(w)) => {
            let start = (range.offset as usize).min(w.len());
            let end = range
                .size
                .map_or(w.len(), |s| (start + s as usize).min(w.len()));
            prop_assert_eq!(&v[..], &w[start..end]);
        }
        (Err(Error::NotFound(_)), None) => {}
        (Err(Error::RangeOutOfBounds { .. }), Some(w)) => {
            prop_assert!(range.offset > w.len() as u64)
        }
        (other, w) => prop_assert!(
            false,
            "got {:?}, model has {:?} bytes",
            other.map(|v| v.len()),
            w.map(Vec::len)
        ),
    }
    Ok(())
}

type Model = BTreeMap<(u64, u16), Vec<u8>>;

fn config(memory: bool) -> Config {
    let index = if memory {
        IndexMode::Memory
    } else {
        IndexMode::Sorted
    };
    Config {
        index,
        ..small_config()
    }
}

fn run(ops: Vec<Op>, memory: bool) -> Result<(), TestCaseError> {
    let dev = MemDevice::new();
    let mut e = open_mem(&dev, config(memory));
    let mut model = Model::new();
    for (n, op) in ops.into_iter().enumerate() {
        if let Op::Reopen { memory } = op {
            drop(e);
            e = open_mem(&dev, config(memory));
            continue;
        }
        apply(&e, &mut model, n as u64, op)?;
    }
    check_listing(&e, &model)
}

fn apply(e: &Engine, model: &mut Model, n: u64, op: Op) -> Result<(), TestCaseError> {
    match op {
        Op::Put {
            k,
            col,
            len,
            compress,
        } => {
            let v = value(k, n, len);
            let opts = WriteOptions {
                compress: Some(compress),
                durability: Some(Durability::None),
                ..WriteOptions::default()
            };
            prop_assert!(e.write_column(&key(k), col, &v, opts).is_ok());
            model.insert((k, col), v);
        }
        Op::Get { k, col } => {
            let got = e.read_column(&key(k), col, Range::all());
            check_get(got, model.get(&(k, col)), Range::all())?;
        }
        Op::GetRange {
            k,
            col,
            offset,
            size,
        } => {
            let r = Range::new(offset, size);
            check_get(e.read_column(&key(k), col, r), model.get(&(k, col)), r)?;
        }
        Op::RemoveColumn { k, col } => {
            let r = e.remove_column(&key(k), col, Durability::None);
            prop_assert_eq!(r.is_ok(), model.remove(&(k, col)).is_some());
        }
        Op::Remove { k } => {
            let had: Vec<_> = model
                .range((k, 0)..=(k, u16::MAX))
                .map(|(c, _)| *c)
                .collect();
            had.iter().for_each(|c| {
                model.remove(c);
            });
            let r = e.remove_with(&key(k), Durability::None);
            prop_assert_eq!(r.is_ok(), !had.is_empty());
        }
        Op::Columns { k } => {
            let got: Vec<u16> = e
                .columns(&key(k))
                .unwrap_or_default()
                .iter()
                .map(|m| m.column)
                .collect();
            let want: Vec<u16> = model
                .range((k, 0)..=(k, u16::MAX))
                .map(|((_, c), _)| *c)
                .collect();
            prop_assert_eq!(got, want);
        }
        Op::Reopen { .. } => {}
        Op::Rotate => prop_assert!(e.rotate().is_ok()),
        Op::Sync => prop_assert!(e.sync().is_ok()),
        Op::Defrag => {
            let all = ringblob_engine::DefragOptions {
                min_garbage_ratio: 0.0,
                max_bytes_per_sec: 0,
            };
            prop_assert!(e.defrag_with(all).is_ok());
        }
    }
    Ok(())
}

fn check_listing(e: &Engine, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(e.stats().keys, model.len() as u64);
    let mut listed: Vec<_> = e
        .iterate()
        .map(|m| m.map(|m| (m.key, m.column)))
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    listed.sort();
    let mut want: Vec<_> = model.keys().map(|(k, c)| (key(*k), *c)).collect();
    want.sort();
    prop_assert_eq!(listed, want);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_a_btreemap(ops in proptest::collection::vec(op(), 1..120)) {
        run(ops, false)?;
    }

    #[test]
    fn engine_in_memory_index_mode_matches_a_btreemap(ops in proptest::collection::vec(op(), 1..120)) {
        run(ops, true)?;
    }
}
