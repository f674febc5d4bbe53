//! The machine's own limit for a forwarded request's extra cost: a plain loopback TCP
//! ping-pong with the forwarding run's shape (connections × pipeline, a 64-byte message,
//! echoed back whole by a server on its own thread). A forwarded request pays one more
//! such round trip (node to owner and back) than a request sent to the owner; no
//! forwarding code can remove it, so the target is stated against it.

use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::Latencies;

const MESSAGE: usize = 64;

/// `count` round trips over `connections` connections, each keeping `pipeline` messages in
/// flight; returns `{"p50_us", "p99_us", "ops_per_sec", ...}`.
pub async fn ping_pong(connections: u32, pipeline: u32, count: u64) -> Result<Value> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding the probe")?;
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let server = std::thread::spawn(move || echo_server(listener));
    let per_conn = count.div_ceil(u64::from(connections.max(1)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections.max(1) {
        tasks.push(tokio::spawn(client(addr, pipeline.max(1), per_conn)));
    }
    let mut all = Latencies::default();
    for t in tasks {
        all.merge(t.await.context("probe client")??);
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(server); // The server thread ends with the process; its connections are closed.
    Ok(json!({
        "connections": connections,
        "pipeline": pipeline,
        "message_bytes": MESSAGE,
        "round_trips": all.len(),
        "ops_per_sec": all.len() as f64 / seconds,
        "p50_us": all.percentile(50.0),
        "p99_us": all.percentile(99.0),
    }))
}

/// One connection: `pipeline` messages in flight until `n` have come back.
async fn client(addr: std::net::SocketAddr, pipeline: u32, n: u64) -> Result<Latencies> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let mut lat = Latencies::default();
    let msg = [0x5au8; MESSAGE];
    let mut back = vec![0u8; MESSAGE];
    let mut sent_at = std::collections::VecDeque::new();
    let mut sent = 0u64;
    while (lat.len() as u64) < n {
        while sent < n && sent_at.len() < pipeline as usize {
            s.write_all(&msg).await?;
            sent_at.push_back(Instant::now());
            sent += 1;
        }
        s.read_exact(&mut back).await?;
        let t = sent_at.pop_front().unwrap_or_else(Instant::now);
        lat.record(t.elapsed().as_micros() as u64);
    }
    Ok(lat)
}

/// Echoes every connection's bytes back, on a runtime of its own (one thread).
fn echo_server(listener: std::net::TcpListener) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::from_std(listener)?;
        let served: Result<()> = loop {
            let (mut s, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => break Err(e.into()),
            };
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 << 10];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        };
        served
    })
}
