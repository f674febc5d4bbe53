//! Random sequences of writes beyond whole values — appends, writes at an offset, streamed
//! uploads (parts in any order), columns, removes — and reopens, checked against a model,
//! on the blob backend (both index modes) and the fs backend.

use std::collections::BTreeMap;

use proptest::prelude::*;
use ringblob_backends::{Backend, BlobBackend, FsBackend};
use ringblob_engine::{Config, Durability, IndexMode, Key, Range, WriteOptions};

#[derive(Debug, Clone)]
enum Op {
    Put {
        k: u8,
        col: u16,
        len: usize,
    },
    Append {
        k: u8,
        col: u16,
        len: usize,
    },
    WriteAt {
        k: u8,
        col: u16,
        at: u64,
        len: usize,
    },
    /// An upload of `len` bytes sent in `parts` parts, in reverse order when `reversed`.
    Stream {
        k: u8,
        col: u16,
        len: usize,
        parts: usize,
        reversed: bool,
    },
    RemoveColumn {
        k: u8,
        col: u16,
    },
    Remove {
        k: u8,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0..6u8;
    let col = prop_oneof![3 => Just(0u16), 1 => 1..3u16];
    let len = prop_oneof![0..100usize, 0..70_000usize];
    prop_oneof![
        3 => (k.clone(), col.clone(), len.clone()).prop_map(|(k, col, len)| Op::Put { k, col, len }),
        3 => (k.clone(), col.clone(), len.clone()).prop_map(|(k, col, len)| Op::Append { k, col, len }),
        2 => (k.clone(), col.clone(), 0..80_000u64, 0..5000usize)
            .prop_map(|(k, col, at, len)| Op::WriteAt { k, col, at, len }),
        2 => (k.clone(), col.clone(), 0..200_000usize, 1..5usize, any::<bool>())
            .prop_map(|(k, col, len, parts, reversed)| Op::Stream { k, col, len, parts, reversed }),
        1 => (k.clone(), col).prop_map(|(k, col)| Op::RemoveColumn { k, col }),
        1 => k.prop_map(|k| Op::Remove { k }),
        1 => Just(Op::Reopen),
    ]
}

type Model = BTreeMap<(u8, u16), Vec<u8>>;

fn key(k: u8) -> Key {
    Key::from_name(b"model", &[k])
}

fn bytes(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed * 7) % 251) as u8)
        .collect()
}

fn quick() -> WriteOptions {
    WriteOptions::durability(Durability::None)
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Blob(IndexMode),
    Fs,
}

fn open(kind: Kind, dir: &std::path::Path) -> Box<dyn Backend> {
    match kind {
        Kind::Blob(index) => {
            let config = Config {
                max_blob_size: 256 << 10,
                frame_len: 4096,
                defrag_interval: None,
                index,
                ..Config::default()
            };
            Box::new(BlobBackend::open(dir, config).unwrap_or_else(|e| panic!("{e}")))
        }
        Kind::Fs => Box::new(FsBackend::open(dir).unwrap_or_else(|e| panic!("{e}"))),
    }
}

fn apply(b: &dyn Backend, m: &mut Model, n: usize, op: Op) -> Result<(), TestCaseError> {
    match op {
        Op::Put { k, col, len } => {
            let v = bytes(n, len);
            prop_assert!(b.write_column(&key(k), col, &v, quick()).is_ok());
            m.insert((k, col), v);
        }
        Op::Append { k, col, len } => {
            let v = bytes(n, len);
            prop_assert!(b.append_column(&key(k), col, &v, quick()).is_ok());
            m.entry((k, col)).or_default().extend_from_slice(&v);
        }
        Op::WriteAt { k, col, at, len } => {
            let v = bytes(n, len);
            prop_assert!(b.write_at_column(&key(k), col, at, &v, quick()).is_ok());
            let cur = m.entry((k, col)).or_default();
            let end = at as usize + len;
            if cur.len() < end {
                cur.resize(end, 0);
            }
            cur[at as usize..end].copy_from_slice(&v);
        }
        Op::Stream {
            k,
            col,
            len,
            parts,
            reversed,
        } => {
            let v = bytes(n, len);
            prop_assert!(b.prepare_column(&key(k), col, len as u64).is_ok());
            let size = len.div_ceil(parts).max(1);
            let mut chunks: Vec<(usize, &[u8])> = v
                .chunks(size)
                .enumerate()
                .map(|(i, c)| (i * size, c))
                .collect();
            if reversed {
                chunks.reverse();
            }
            for (at, c) in chunks {
                prop_assert!(b.write_part_column(&key(k), col, at as u64, c).is_ok());
            }
            prop_assert_eq!(
                b.commit_column(&key(k), col, len as u64, quick()).ok(),
                Some(len as u64)
            );
            m.insert((k, col), v);
        }
        Op::RemoveColumn { k, col } => {
            let r = b.remove_column(&key(k), col, quick());
            prop_assert_eq!(r.is_ok(), m.remove(&(k, col)).is_some());
        }
        Op::Remove { k } => {
            let had: Vec<_> = m.range((k, 0)..=(k, u16::MAX)).map(|(c, _)| *c).collect();
            had.iter().for_each(|c| {
                m.remove(c);
            });
            prop_assert_eq!(b.remove(&key(k), quick()).is_ok(), !had.is_empty());
        }
        Op::Reopen => {}
    }
    Ok(())
}

fn check(b: &dyn Backend, m: &Model) -> Result<(), TestCaseError> {
    for k in 0..6u8 {
        for col in 0..3u16 {
            let got = b.read_column(&key(k), col, Range::all()).ok();
            prop_assert_eq!(got.as_ref(), m.get(&(k, col)), "key {} column {}", k, col);
        }
    }
    Ok(())
}

fn run(kind: Kind, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut b = open(kind, dir.path());
    let mut m = Model::new();
    for (n, op) in ops.into_iter().enumerate() {
        if let Op::Reopen = op {
            prop_assert!(b.sync().is_ok());
            drop(b);
            b = open(kind, dir.path());
            check(b.as_ref(), &m)?;
            continue;
        }
        apply(b.as_ref(), &mut m, n, op)?;
    }
    check(b.as_ref(), &m)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn blob_sorted_matches_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        run(Kind::Blob(IndexMode::Sorted), ops)?;
    }

    #[test]
    fn blob_memory_index_matches_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        run(Kind::Blob(IndexMode::Memory), ops)?;
    }

    #[test]
    fn fs_matches_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        run(Kind::Fs, ops)?;
    }
}
