//! Random operation sequences checked against a `BTreeMap` model.

use std::collections::BTreeMap;

use proptest::prelude::*;
use ringblob_engine::io::MemDevice;
use ringblob_engine::{Durability, Error, Range, WriteOptions};

use crate::support::{key, open_mem, small_config, value};

#[derive(Debug, Clone)]
enum Op {
    Put { k: u64, len: usize, compress: bool },
    Get { k: u64 },
    GetRange { k: u64, offset: u64, size: u64 },
    Remove { k: u64 },
    Reopen,
    Rotate,
    Sync,
    Defrag,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..20u64, prop_oneof![0..200usize, 0..20_000usize], any::<bool>())
            .prop_map(|(k, len, compress)| Op::Put { k, len, compress }),
        4 => (0..24u64).prop_map(|k| Op::Get { k }),
        3 => (0..20u64, 0..21_000u64, 0..10_000u64).prop_map(|(k, offset, size)| Op::GetRange { k, offset, size }),
        2 => (0..24u64).prop_map(|k| Op::Remove { k }),
        1 => Just(Op::Reopen),
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

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dev = MemDevice::new();
    let mut e = open_mem(&dev, small_config());
    let mut model: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    for (n, op) in ops.into_iter().enumerate() {
        match op {
            Op::Put { k, len, compress } => {
                let v = value(k, n as u64, len);
                let opts = WriteOptions {
                    compress: Some(compress),
                    durability: Some(Durability::None),
                };
                prop_assert!(e.write(&key(k), &v, opts).is_ok());
                model.insert(k, v);
            }
            Op::Get { k } => check_get(e.read(&key(k), Range::all()), model.get(&k), Range::all())?,
            Op::GetRange { k, offset, size } => {
                let r = Range::new(offset, size);
                check_get(e.read(&key(k), r), model.get(&k), r)?;
            }
            Op::Remove { k } => {
                let r = e.remove(&key(k));
                prop_assert_eq!(r.is_ok(), model.remove(&k).is_some());
            }
            Op::Reopen => {
                drop(e);
                e = open_mem(&dev, small_config());
            }
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
    }
    prop_assert_eq!(e.stats().keys, model.len() as u64);
    let mut listed: Vec<_> = e
        .iterate()
        .map(|m| m.map(|m| m.key))
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    listed.sort();
    let mut want: Vec<_> = model.keys().map(|k| key(*k)).collect();
    want.sort();
    prop_assert_eq!(listed, want);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_a_btreemap(ops in proptest::collection::vec(op(), 1..120)) {
        run(ops)?;
    }
}
