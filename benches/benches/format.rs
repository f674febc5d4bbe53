//! Pure format hot paths: record header encode/decode, frame CRC and Snappy per frame size,
//! wire header encode/decode.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringblob_engine::format::record::RecordHeader;
use ringblob_engine::Key;
use ringblob_protocol::wire::{Command, Header};
use std::hint::black_box;

fn record_header(c: &mut Criterion) {
    let h = RecordHeader {
        flags: 0,
        column: 0,
        key: Key::from_name(b"bench", b"record"),
        value_len: 100,
        stored_len: 120,
        timestamp_ns: 1_796_000_000_000_000_000,
        frame_len: 65_536,
        frame_count: 1,
        value_crc: 0x1234_5678,
        table_crc: 0x9abc_def0,
    };
    let bytes = h.encode();
    c.bench_function("record_header/encode", |b| {
        b.iter(|| black_box(&h).encode())
    });
    c.bench_function("record_header/decode", |b| {
        b.iter(|| RecordHeader::decode(black_box(&bytes), 1, 4096))
    });
}

/// Incompressible-ish bytes (a value as users store photos) and text-like bytes.
fn frame_bytes(len: usize, text: bool) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|i| {
            if text {
                b"the quick brown fox jumps over the lazy dog "[i % 44]
            } else {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            }
        })
        .collect()
}

fn frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    for size in [4 << 10, 64 << 10, 1 << 20] {
        let random = frame_bytes(size, false);
        let text = frame_bytes(size, true);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("crc32", size), &random, |b, f| {
            b.iter(|| crc32fast::hash(black_box(f)))
        });
        let mut enc = snap::raw::Encoder::new();
        g.bench_with_input(
            BenchmarkId::new("snappy_compress_text", size),
            &text,
            |b, f| b.iter(|| enc.compress_vec(black_box(f))),
        );
        let packed = snap::raw::Encoder::new()
            .compress_vec(&text)
            .unwrap_or_default();
        let mut dec = snap::raw::Decoder::new();
        g.bench_with_input(
            BenchmarkId::new("snappy_decompress_text", size),
            &packed,
            |b, f| b.iter(|| dec.decompress_vec(black_box(f))),
        );
    }
    g.finish();
}

fn wire_header(c: &mut Criterion) {
    let h = Header::request(Command::Read, 42, [7u8; 32], 1);
    let mut buf = BytesMut::with_capacity(128);
    h.encode(&mut buf);
    let encoded = buf.clone();
    c.bench_function("wire_header/encode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&h).encode(&mut buf);
        })
    });
    c.bench_function("wire_header/decode", |b| {
        b.iter(|| Header::decode(black_box(&encoded)))
    });
}

criterion_group!(benches, record_header, frames, wire_header);
criterion_main!(benches);
