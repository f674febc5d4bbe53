//! Index hot paths: the in-memory key index probe, the bloom filter probe, the sealed keys'
//! locator probe (keys precomputed: the probe alone), and a point
//! lookup answered by sealed blobs' sorted indexes against one answered by the in-memory
//! index (the engine's `index = "sorted"` and `"memory"` modes).

use criterion::{criterion_group, criterion_main, Criterion};
use ringblob_engine::format::bloom::{Bloom, KeyHash};
use ringblob_engine::index::{Entry, KeyIndex, Loc};
use ringblob_engine::locator::Locator;
use ringblob_engine::{Config, Engine, IndexMode, Key, WriteOptions};
use std::hint::black_box;

const KEYS: u32 = 200_000;

fn key(i: u32) -> Key {
    Key::from_name(b"bench", &i.to_le_bytes())
}

fn memory_index(c: &mut Criterion) {
    let mut index = KeyIndex::with_capacity(KEYS as usize);
    for i in 0..KEYS {
        let tag = index.tag(&key(i));
        let loc = Loc {
            blob: 1,
            offset: i * 128,
            len: 128,
        };
        let _ = index.upsert(tag, 0, Entry::value(loc, 0), |_| Ok(false));
    }
    let tags: Vec<u64> = (0..KEYS)
        .map(|i| index.tag(&key(i.wrapping_mul(7919) % KEYS)))
        .collect();
    let mut n = 0usize;
    c.bench_function("memory_index/probe", |b| {
        b.iter(|| {
            n = (n + 1) % tags.len();
            index.candidates(black_box(tags[n]), 0)
        })
    });
}

fn bloom(c: &mut Criterion) {
    let mut bloom = Bloom::for_keys(u64::from(KEYS));
    for i in 0..KEYS {
        bloom.insert(KeyHash::of(&key(i), bloom.seed()));
    }
    let mut n = 0u32;
    c.bench_function("bloom/probe_hit", |b| {
        b.iter(|| {
            n = (n + 1) % KEYS;
            bloom.may_contain(KeyHash::of(&key(n), bloom.seed()))
        })
    });
    c.bench_function("bloom/probe_miss", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            bloom.may_contain(KeyHash::of(&key(KEYS + n), bloom.seed()))
        })
    });
}

/// A locator over `KEYS` keys in 200 blobs, probed for keys it holds and keys it does not.
fn locator(c: &mut Criterion) {
    let keys: Vec<Key> = (0..KEYS).map(key).collect();
    let absent: Vec<Key> = (KEYS..2 * KEYS).map(key).collect();
    let mut locator = Locator::for_entries(u64::from(KEYS));
    for (blob, chunk) in keys.chunks(KEYS as usize / 200).enumerate() {
        locator.insert_keys(blob as u32, chunk.iter());
    }
    let mut n = 0usize;
    c.bench_function("locator/probe_hit", |b| {
        b.iter(|| {
            n = (n + 7919) % keys.len();
            locator.candidates(black_box(&keys[n]))
        })
    });
    c.bench_function("locator/probe_miss", |b| {
        b.iter(|| {
            n = (n + 7919) % absent.len();
            locator.candidates(black_box(&absent[n]))
        })
    });
}

/// An engine whose keys all sit in sealed blobs, reopened (`index` mode as given).
fn sealed_engine(dir: &std::path::Path, index: IndexMode) -> Option<Engine> {
    let config = Config {
        index,
        max_blob_size: 4 << 20,
        ..Config::default()
    };
    let engine = Engine::open(dir, config.clone()).ok()?;
    for i in 0..KEYS {
        engine
            .write(&key(i), &[i as u8; 100], WriteOptions::default())
            .ok()?;
    }
    engine.rotate().ok()?;
    engine.close().ok()?;
    Engine::open(dir, config).ok()
}

fn lookups(c: &mut Criterion) {
    for (name, mode) in [("sorted", IndexMode::Sorted), ("memory", IndexMode::Memory)] {
        let Ok(dir) = tempfile::tempdir() else { return };
        let Some(engine) = sealed_engine(dir.path(), mode) else {
            return;
        };
        let mut n = 0u32;
        c.bench_function(&format!("engine_lookup/{name}_index"), |b| {
            b.iter(|| {
                n = (n + 7919) % KEYS;
                engine.lookup(black_box(&key(n))).is_ok()
            })
        });
        let _ = engine.close();
    }
}

criterion_group!(benches, memory_index, bloom, locator, lookups);
criterion_main!(benches);
