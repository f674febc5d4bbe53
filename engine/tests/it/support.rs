//! Helpers shared by the engine's integration tests.

use std::sync::Arc;

use ringblob_engine::io::{Device, MemDevice};
use ringblob_engine::{Config, Durability, Engine, Key, Range, WriteOptions};

/// A small config so tests rotate blobs and cut values into several frames.
pub fn small_config() -> Config {
    Config {
        max_blob_size: 64 << 10,
        max_blob_records: 50,
        frame_len: 4096,
        defrag_interval: None,
        ..Config::default()
    }
}

pub fn key(i: u64) -> Key {
    Key::from_name(b"test", &i.to_le_bytes())
}

/// Deterministic value bytes for key `i`, version `v`, length `len`; compressible when `i` is even.
pub fn value(i: u64, v: u64, len: usize) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ v.wrapping_add(1).wrapping_mul(0xD1B5_4A32_D192_ED03);
    (0..len)
        .map(|j| {
            if i.is_multiple_of(2) {
                (j / 16) as u8 ^ (v as u8)
            } else {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            }
        })
        .collect()
}

pub fn open_mem(dev: &MemDevice, config: Config) -> Engine {
    match Engine::open_on(Arc::new(dev.clone()) as Arc<dyn Device>, config) {
        Ok(e) => e,
        Err(e) => panic!("open failed: {e}"),
    }
}

pub fn sync_opts() -> WriteOptions {
    WriteOptions::durability(Durability::Sync)
}

pub fn read_all(e: &Engine, k: &Key) -> ringblob_engine::Result<Vec<u8>> {
    e.read(k, Range::all())
}
