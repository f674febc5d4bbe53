//! Route lookup on a 64-node ring (64 IDs each): the table's pass over every ID against the
//! node's per-table rings (`Routing`, a binary search).

use criterion::{criterion_group, criterion_main, Criterion};
use ringblob_protocol::ring::{RingId, RouteNode, RouteTable, Routing};
use std::hint::black_box;
use std::sync::Arc;

fn table() -> RouteTable {
    let mut x = 0x243f_6a88_85a3_08d3u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let nodes = (0..64)
        .map(|n| RouteNode {
            name: format!("node-{n:02}"),
            addr: format!("10.0.0.{n}:1025"),
            group: 1 + n % 2,
            ids: (0..64)
                .map(|_| {
                    let mut id = [0u8; 32];
                    for chunk in id.chunks_mut(8) {
                        chunk.copy_from_slice(&next().to_be_bytes());
                    }
                    RingId(id)
                })
                .collect(),
            alive: true,
            leaving: false,
            incarnation: 1,
        })
        .collect();
    RouteTable::new(1, nodes)
}

fn routing(c: &mut Criterion) {
    let t = Arc::new(table());
    let r = Routing::new(t.clone());
    let keys: Vec<[u8; 32]> = (0..1024u32)
        .map(|i| {
            let mut k = [0u8; 32];
            k[..4].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
            k
        })
        .collect();
    let mut n = 0usize;
    c.bench_function("route_owner/table_scan_64_nodes", |b| {
        b.iter(|| {
            n = (n + 1) % keys.len();
            t.owner(1, black_box(&keys[n])).is_some()
        })
    });
    c.bench_function("route_owner/routing_64_nodes", |b| {
        b.iter(|| {
            n = (n + 1) % keys.len();
            r.owner(1, black_box(&keys[n])).is_some()
        })
    });
}

criterion_group!(benches, routing);
criterion_main!(benches);
