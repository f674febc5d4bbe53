//! The append path with keys that share tags: every candidate a write or read meets must
//! be told apart by the key in its record, wherever that record is (write buffer, blob file,
//! sealed blob).

use std::sync::Arc;

use crate::config::{Config, Range, WriteOptions};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::index::TAG_BITS_FOR_TESTS;
use crate::io::MemDevice;
use crate::key::Key;

fn key(i: u64) -> Key {
    Key::from_name(b"collide", &i.to_le_bytes())
}

fn value(i: u64, round: u64) -> Vec<u8> {
    format!("key {i}, round {round}").into_bytes()
}

/// `tag_bits` kept of each key's tag (0: every key shares one).
fn open(tag_bits: u64) -> Result<Engine> {
    TAG_BITS_FOR_TESTS.with(|b| b.set(tag_bits));
    let config = Config {
        max_blob_size: 64 << 10,
        max_blob_records: 40,
        write_buffer_size: 512,
        defrag_interval: None,
        ..Config::default()
    };
    let engine = Engine::open_on(Arc::new(MemDevice::new()), config);
    TAG_BITS_FOR_TESTS.with(|b| b.set(u64::MAX));
    engine
}

/// What each key must read as: its last value, or removed.
fn check(engine: &Engine, expected: &[Option<Vec<u8>>]) -> Result<()> {
    for (i, want) in expected.iter().enumerate() {
        let got = engine.read(&key(i as u64), Range::all());
        match (want, got) {
            (Some(v), Ok(got)) => assert_eq!(&got, v, "key {i}"),
            (None, Err(Error::NotFound(_))) => {}
            (want, got) => panic!("key {i}: want {want:?}, got {got:?}"),
        }
    }
    Ok(())
}

#[test]
fn writes_of_keys_sharing_tags_replace_only_their_own_records() -> Result<()> {
    for tag_bits in [0, 3 << 16] {
        let engine = open(tag_bits)?;
        let opts = WriteOptions::default();
        let mut expected: Vec<Option<Vec<u8>>> = vec![None; 60];
        for round in 0..5u64 {
            for i in 0..60u64 {
                if round > 0 && (i + round).is_multiple_of(4) {
                    let removed = engine.remove(&key(i));
                    assert!(
                        removed.is_ok() == expected[i as usize].is_some(),
                        "{removed:?}"
                    );
                    expected[i as usize] = None;
                } else {
                    engine.write(&key(i), &value(i, round), opts)?;
                    expected[i as usize] = Some(value(i, round));
                }
            }
            check(&engine, &expected)?;
            if round == 2 {
                engine.rotate()?;
            }
        }
        let live = expected.iter().filter(|v| v.is_some()).count() as u64;
        assert_eq!(engine.stats().keys, live, "tag bits {tag_bits:#x}");
        engine.close()?;
    }
    Ok(())
}
