//! A real node serves what is in memory inline and sends reads that would wait for the disk
//! to the blocking pool: with its blob files pushed out of the page cache, every value still
//! reads back right, `STAT` counts the refused inline batches, and pings are answered
//! throughout.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringblob_engine::Key;
use ringblob_protocol::client::{Client, ClientConfig, PutOptions};
use ringblob_protocol::wire::Durability;

use crate::node_process::NodeProcess;

const KEYS: u32 = 3000;

fn or_panic<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn k(i: u32) -> [u8; 32] {
    Key::from_name(b"inline", format!("k{i}").as_bytes()).0
}

fn value(i: u32) -> Bytes {
    let len = 4096 + (i as usize * 131) % 4096;
    (0..len)
        .map(|j| (j as u32 ^ i.wrapping_mul(2_654_435_761)) as u8)
        .collect::<Vec<u8>>()
        .into()
}

#[allow(unsafe_code)]
/// Drops `dir`'s data files from the page cache (they are synced, so clean); returns how
/// many bytes of them are still cached afterwards, and their size.
fn evict(dir: &std::path::Path) -> (usize, usize) {
    let mut resident = 0;
    let mut total = 0;
    for entry in or_panic(std::fs::read_dir(dir)) {
        let path = or_panic(entry).path();
        let Ok(f) = std::fs::File::open(&path) else {
            continue;
        };
        if !path.is_file() {
            continue;
        }
        // SAFETY: plain fadvise on an open descriptor; no memory is passed.
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0, "fadvise {}", path.display());
        resident += cached_bytes(&f);
        total += f.metadata().map_or(0, |m| m.len() as usize);
    }
    (resident, total)
}

/// Bytes of `f` in the page cache (`mincore` over a map of it).
#[allow(unsafe_code)]
fn cached_bytes(f: &std::fs::File) -> usize {
    let len = f.metadata().map_or(0, |m| m.len() as usize);
    if len == 0 {
        return 0;
    }
    // SAFETY: a read-only shared map of a file we hold open, unmapped below; `mincore`
    // writes one byte per page into `pages`, which has room for every page of `len`.
    unsafe {
        let map = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        assert_ne!(map, libc::MAP_FAILED);
        let page = 4096;
        let mut pages = vec![0u8; len.div_ceil(page)];
        let rc = libc::mincore(map, len, pages.as_mut_ptr());
        libc::munmap(map, len);
        assert_eq!(rc, 0);
        pages.iter().filter(|p| **p & 1 == 1).count() * page
    }
}

async fn stat(c: &Client) -> serde_json::Value {
    or_panic(serde_json::from_str(&or_panic(c.stat().await)))
}

#[test]
fn cold_reads_go_to_the_pool_and_the_node_keeps_answering() {
    let dir = or_panic(tempfile::tempdir());
    let node = NodeProcess::start(dir.path(), &[]);
    let rt = or_panic(tokio::runtime::Runtime::new());
    rt.block_on(async {
        let c = or_panic(Client::connect(&node.addr, ClientConfig::default()).await);
        let sync = PutOptions {
            durability: Durability::Sync,
            ..PutOptions::default()
        };
        for i in 0..KEYS {
            or_panic(c.put(k(i), value(i), sync).await);
        }
        // Warm: served inline.
        let before = stat(&c).await;
        for i in 0..100 {
            assert_eq!(or_panic(c.get(k(i), 0, None).await), value(i));
        }
        let warm = stat(&c).await;
        let served_inline = |s: &serde_json::Value| s["served_inline"].as_u64().unwrap_or(0);
        let refused = |s: &serde_json::Value| s["inline_refused"].as_u64().unwrap_or(0);
        // Warm reads are served inline; `RWF_NOWAIT` may still refuse a cached page that is
        // locked for writeback at that moment (the values were just written durably), and a
        // refused read goes to the pool: a few are allowed, each counted.
        let inline = served_inline(&warm) - served_inline(&before);
        let sent_on = refused(&warm) - refused(&before);
        assert!(inline + sent_on >= 100 && inline >= 95, "{warm}");

        let (still_cached, total) = evict(dir.path());
        let pinger = {
            let addr = node.addr.clone();
            tokio::spawn(async move {
                let c = or_panic(Client::connect(&addr, ClientConfig::default()).await);
                let mut slowest = Duration::ZERO;
                for _ in 0..200 {
                    let t = Instant::now();
                    or_panic(c.ping().await);
                    slowest = slowest.max(t.elapsed());
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                slowest
            })
        };
        for i in (0..KEYS).rev() {
            assert_eq!(or_panic(c.get(k(i), 0, None).await), value(i), "key {i}");
        }
        let slowest = or_panic(pinger.await);
        let cold = stat(&c).await;
        println!(
            "cold reads: {} inline batches refused, {} bytes still cached after eviction, \
             slowest ping {slowest:?}",
            refused(&cold) - refused(&warm),
            still_cached
        );
        // (Where the file system keeps the pages anyway — tmpfs — there is nothing cold.)
        if still_cached < total / 4 {
            assert!(
                refused(&cold) > refused(&warm),
                "cold reads were refused inline"
            );
        }
        // Generous: a ping waits for no disk read (it is never queued behind one).
        assert!(slowest < Duration::from_secs(2), "slowest ping {slowest:?}");
    });
}
