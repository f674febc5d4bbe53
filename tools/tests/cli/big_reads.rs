//! A real node streams long READ replies: several clients reading large values slowly while
//! others upload keep the node's resident memory bounded (one piece per stream, not one
//! value), other clients are served meanwhile, and a value replaced mid-reply ends the reply
//! with `CHANGED` — never bytes of two versions. Over TLS, a slow reader gets every byte of
//! its reply, on a connection lane and on the shared runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use ringblob_engine::Key;
use ringblob_protocol::client::{Client, ClientConfig, ClientError, PutOptions};
use ringblob_protocol::wire::{Durability, Status};
use tokio::io::AsyncWrite;

use crate::node_process::NodeProcess;

const MIB: u64 = 1 << 20;

fn or_panic<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn k(name: &str) -> [u8; 32] {
    Key::from_name(b"big", name.as_bytes()).0
}

/// Resident and peak resident bytes of a process.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Byte `i` of value `seed`: every value differs, every position differs.
fn byte_at(seed: u8, i: u64) -> u8 {
    (i.wrapping_mul(31)
        .wrapping_add(i >> 20)
        .wrapping_add(u64::from(seed) * 7)
        % 251) as u8
}

fn value(seed: u8, len: u64) -> Bytes {
    (0..len)
        .map(|i| byte_at(seed, i))
        .collect::<Vec<_>>()
        .into()
}

/// A destination that takes `per_tick` bytes every `tick` and checks each byte against
/// value `seed`: a slow reader that would notice a wrong byte. With a gate, it stops taking
/// bytes once it has `gate.0` until the gate opens, and publishes how many it has.
struct SlowCheck {
    seed: u8,
    at: u64,
    per_tick: usize,
    tick: Duration,
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
    wrong: u64,
    gate: Option<Gate>,
}

struct Gate {
    at: u64,
    open: Arc<AtomicBool>,
    taken: Arc<AtomicU64>,
}

impl SlowCheck {
    fn new(seed: u8, per_tick: usize, tick: Duration) -> Self {
        SlowCheck {
            seed,
            at: 0,
            per_tick,
            tick,
            wait: None,
            wrong: 0,
            gate: None,
        }
    }
}

impl AsyncWrite for SlowCheck {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let tick = self.tick;
        let wait = self
            .wait
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(tick)));
        if wait.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.wait = None;
        if let Some(g) = &self.gate {
            if self.at >= g.at && !g.open.load(Ordering::SeqCst) {
                // Look again in 5 ms (the sleep wakes this task).
                let mut again = Box::pin(tokio::time::sleep(Duration::from_millis(5)));
                let _ = again.as_mut().poll(cx);
                self.wait = Some(again);
                return Poll::Pending;
            }
        }
        let n = buf.len().min(self.per_tick);
        for &b in &buf[..n] {
            if b != byte_at(self.seed, self.at) {
                self.wrong += 1;
            }
            self.at += 1;
        }
        if let Some(g) = &self.gate {
            g.taken.store(self.at, Ordering::SeqCst);
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

async fn connect(addr: &str) -> Client {
    let config = ClientConfig {
        timeout: Duration::from_secs(60),
        ..ClientConfig::default()
    };
    or_panic(Client::connect(addr, config).await)
}

#[test]
fn slow_readers_of_large_values_and_uploads_keep_the_node_within_its_memory() {
    let dir = or_panic(tempfile::tempdir());
    let node = NodeProcess::start(&dir.path().join("data"), &[]);
    let pid = node.child.id();
    let rt = or_panic(tokio::runtime::Runtime::new());
    let (readers, len) = (4u8, 96 * MIB);
    let idle = rt.block_on(async {
        let c = connect(&node.addr).await;
        assert!(c.ping().await.is_ok());
        let idle = rss(pid).0;
        // Written through uploads (8 MiB parts), one after the other.
        for seed in 0..readers {
            let v = value(seed, len);
            let mut src: &[u8] = &v;
            let put = c
                .put_stream(
                    k(&format!("v{seed}")),
                    0,
                    &mut src,
                    (Some(len), PutOptions::default()),
                    |_| {},
                )
                .await;
            assert_eq!(put.ok(), Some(len));
        }
        idle
    });
    let (fast_done, slow_done) = rt.block_on(async {
        // Each reader takes 1 MiB every 40 ms: about 25 MiB/s, nearly four seconds a value.
        let slow: Vec<_> = (0..readers)
            .map(|seed| {
                let addr = node.addr.clone();
                tokio::spawn(async move {
                    let c = connect(&addr).await;
                    let mut out = SlowCheck::new(seed, MIB as usize, Duration::from_millis(40));
                    let got = c.get_to(k(&format!("v{seed}")), 0, None, &mut out).await;
                    (
                        got.map_err(|e| e.to_string()),
                        out.wrong,
                        tokio::time::Instant::now(),
                    )
                })
            })
            .collect();
        // Meanwhile: uploads of other values, and small requests that must not wait.
        let uploads: Vec<_> = (0..4u8)
            .map(|i| {
                let addr = node.addr.clone();
                tokio::spawn(async move {
                    let c = connect(&addr).await;
                    let v = value(100 + i, 48 * MIB);
                    let mut src: &[u8] = &v;
                    let key = k(&format!("up{i}"));
                    c.put_stream(key, 0, &mut src, (None, PutOptions::default()), |_| {})
                        .await
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        let fast = connect(&node.addr).await;
        let buffered = PutOptions {
            durability: Durability::None,
            ..PutOptions::default()
        };
        for i in 0..50u32 {
            let key = k(&format!("small{i}"));
            let v = Bytes::from(format!("small value {i}"));
            assert!(fast.put(key, v.clone(), buffered).await.is_ok());
            assert_eq!(fast.get(key, 0, None).await.ok(), Some(v));
        }
        let fast_done = tokio::time::Instant::now();
        let mut slow_done = Vec::new();
        for s in slow {
            let (got, wrong, at) = or_panic(s.await);
            assert_eq!(got, Ok(len), "a slow reader's value");
            assert_eq!(wrong, 0, "bytes that are not the value's");
            slow_done.push(at);
        }
        for u in uploads {
            assert_eq!(or_panic(u.await), Ok(48 * MIB));
        }
        (fast_done, slow_done)
    });
    let (_, peak) = rss(pid);
    let grew = peak.saturating_sub(idle);
    println!(
        "{readers} slow readers of {} MiB + 4 uploads of 48 MiB: node idle RSS {} MiB, peak {} MiB (+{} MiB)",
        len / MIB,
        idle / MIB,
        peak / MIB,
        grew / MIB
    );
    assert!(
        slow_done.iter().all(|&t| t > fast_done),
        "the small requests finished while every slow reader was still reading"
    );
    // Whole-value replies would hold 4 x 96 MiB; streamed ones a 4 MiB piece each, plus the
    // uploads' 8 MiB parts and the allocator's slack.
    assert!(grew < 128 * MIB, "node RSS grew {} MiB", grew / MIB);
    // Every uploaded value reads back.
    rt.block_on(async {
        let c = connect(&node.addr).await;
        for i in 0..4u8 {
            let got = c.get(k(&format!("up{i}")), 0, None).await;
            assert!(got.ok() == Some(value(100 + i, 48 * MIB)), "upload {i}");
        }
    });
}

type Reading = (Result<u64, ClientError>, u64, u64);

/// A reader of value "moving" (expected to be value `seed`) that stops after 8 MiB until
/// the returned flag is set; it has taken its 8 MiB when this returns. Its outcome: the
/// read's result, wrong bytes, bytes taken.
async fn gated_reader(addr: &str, seed: u8) -> (tokio::task::JoinHandle<Reading>, Arc<AtomicBool>) {
    let (open, taken) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let gate = Gate {
        at: 8 * MIB,
        open: open.clone(),
        taken: taken.clone(),
    };
    let addr = addr.to_string();
    let reader = tokio::spawn(async move {
        let c = connect(&addr).await;
        let mut out = SlowCheck::new(seed, MIB as usize, Duration::from_millis(1));
        out.gate = Some(gate);
        let got = c.get_to(k("moving"), 0, None, &mut out).await;
        (got, out.wrong, out.at)
    });
    while taken.load(Ordering::SeqCst) < 8 * MIB {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (reader, open)
}

#[test]
fn a_value_replaced_mid_reply_ends_it_with_changed_never_mixed_bytes() {
    let dir = or_panic(tempfile::tempdir());
    let node = NodeProcess::start(&dir.path().join("data"), &[]);
    let rt = or_panic(tokio::runtime::Runtime::new());
    rt.block_on(async {
        let c = connect(&node.addr).await;
        let len = 64 * MIB;
        assert!(c
            .put(k("moving"), value(1, len), PutOptions::default())
            .await
            .is_ok());
        // The reader stops after 8 MiB (the node is then at most a few pieces ahead) until
        // the value has been replaced.
        let (reader, open) = gated_reader(&node.addr, 1).await;
        assert!(c
            .put(k("moving"), value(2, len), PutOptions::default())
            .await
            .is_ok());
        open.store(true, Ordering::SeqCst);
        let (got, wrong, received) = or_panic(reader.await);
        assert_eq!(wrong, 0, "every byte received is the old value's");
        assert!(received < len, "the reply was cut short");
        match got {
            Err(e @ ClientError::Status { .. }) => {
                assert_eq!(e.status(), Some(Status::Changed), "{e}")
            }
            other => panic!("expected CHANGED, got {other:?}"),
        }
        // Read again: the new value, whole.
        assert!(c.get(k("moving"), 0, None).await.ok() == Some(value(2, len)));
        // A removal mid-reply is CHANGED too.
        let (reader, open) = gated_reader(&node.addr, 2).await;
        assert!(c.remove(k("moving"), Default::default()).await.is_ok());
        open.store(true, Ordering::SeqCst);
        let (got, _, _) = or_panic(reader.await);
        assert_eq!(got.err().and_then(|e| e.status()), Some(Status::Changed));
    });
}

/// Large values over TLS, written whole and read back by a reader slower than the node, with
/// and without a connection lane: every byte arrives, in order. Sockets full at the end of a
/// write make tokio-rustls keep records back until the next write or a flush, on the node
/// (`tls::stream::push_held`) and in the client (`client::Conn` flushes); without either,
/// replies were cut or requests never completed when this ran beside the lanes test.
#[test]
fn a_slow_reader_over_tls_gets_its_whole_reply() {
    for lanes in [0, 1] {
        let dir = or_panic(tempfile::tempdir());
        let (node, config) = crate::lanes::tls_node(dir.path(), lanes);
        let config = ClientConfig {
            timeout: Duration::from_secs(20),
            ..config
        };
        let rt = or_panic(tokio::runtime::Runtime::new());
        rt.block_on(async {
            let c = or_panic(Client::connect(&node.addr, config).await);
            let len = 12 * MIB;
            let opts = PutOptions {
                compress: false,
                ..PutOptions::default()
            };
            for seed in 0..3u8 {
                let key = k(&format!("tls{seed}"));
                or_panic(c.put(key, value(seed, len), opts).await);
                // 256 KiB every 10 ms: the node's socket stays full to the end.
                let mut out = SlowCheck::new(seed, 256 << 10, Duration::from_millis(10));
                let got = c.get_to(key, 0, None, &mut out).await;
                assert_eq!(
                    got.map_err(|e| e.to_string()),
                    Ok(len),
                    "value {seed} read whole with {lanes} lanes"
                );
                assert_eq!(out.wrong, 0, "value {seed}: every byte right");
            }
        });
        assert_eq!(node.terminate(), Some(0));
    }
}
