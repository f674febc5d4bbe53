//! One benchmark connection: handshake, then batches of `pipeline` requests written at once
//! and their replies read back.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use bytes::{Bytes, BytesMut};
use ringblob_protocol::client::{check_node_proof, Attempt, ClientSecurity};
use ringblob_protocol::tls::Stream;
use ringblob_protocol::wire::AuthRequest;
use ringblob_protocol::wire::{
    decode_frame, Durability, HandshakeRequest, ReadRequest, Reply, Request, WriteRequest,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::latency::Latencies;
use super::RemoteWorkload;

/// What one connection sends.
pub struct Plan {
    pub workload: RemoteWorkload,
    /// Index of its first request (keys are `(first + i) % keys.len()`).
    pub first: u64,
    pub count: u64,
    pub pipeline: usize,
    pub value_size: usize,
    pub durability: Durability,
    pub security: ClientSecurity,
}

pub fn durability(s: Option<&str>) -> Result<Durability> {
    Ok(match s {
        None => Durability::Default,
        Some("none") => Durability::None,
        Some("batch") => Durability::Batch,
        Some("sync") => Durability::Sync,
        Some(other) => bail!("unknown durability {other:?} (none, batch or sync)"),
    })
}

struct Wire {
    s: Stream,
    buf: BytesMut,
}

const NAME: &str = "ringblob-bench";

impl Wire {
    /// Connects, sets up TLS and handshakes (authenticating with the key, if any), as the
    /// client library does.
    async fn open(addr: &str, security: &ClientSecurity) -> Result<Wire> {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        tcp.set_nodelay(true)?;
        let s = match &security.tls {
            Some(tls) => Stream::Client(Box::new(tls.connect(tcp, addr).await?)),
            None => Stream::Plain(tcp),
        };
        let mut w = Wire {
            s,
            buf: BytesMut::with_capacity(64 << 10),
        };
        let attempt = security.credentials.get().map(Attempt::new);
        let mut hs = HandshakeRequest::new(NAME);
        if let Some(a) = &attempt {
            hs = a.offer(hs);
        }
        let reply = match w.ask(&Request::Handshake(hs)).await? {
            Reply::Handshake(r) => r,
            other => bail!("handshake answered with {other:?}"),
        };
        if let Some(a) = attempt {
            let (proof, expected) = a.prove(NAME, &reply)?;
            match w.ask(&Request::Auth(AuthRequest { proof })).await? {
                Reply::Auth(r) => check_node_proof(&r, &expected)?,
                other => bail!("AUTH answered with {other:?}"),
            }
        }
        Ok(w)
    }

    async fn ask(&mut self, req: &Request) -> Result<Reply> {
        let mut out = BytesMut::new();
        req.encode(0, [0; 32], 0, &mut out)?;
        self.s.write_all(&out).await?;
        self.reply().await
    }

    async fn reply(&mut self) -> Result<Reply> {
        loop {
            if let Some(f) = decode_frame(&mut self.buf)? {
                return Ok(Reply::decode(&f)?);
            }
            if self.s.read_buf(&mut self.buf).await? == 0 {
                bail!("node closed the connection");
            }
        }
    }
}

fn request(plan: &Plan, i: u64, value: &Bytes) -> Request {
    let put = match plan.workload {
        RemoteWorkload::Puts => true,
        // The workloads with nodes of their own send plain gets here.
        RemoteWorkload::Gets
        | RemoteWorkload::Forwarding
        | RemoteWorkload::Rebalance
        | RemoteWorkload::BigValues
        | RemoteWorkload::HugeObject
        | RemoteWorkload::Find => false,
        RemoteWorkload::Mixed => i.is_multiple_of(2),
    };
    if put {
        Request::Write(WriteRequest {
            durability: plan.durability,
            ..WriteRequest::whole(value.clone())
        })
    } else {
        Request::Read(ReadRequest::whole(0))
    }
}

/// What one connection measured: request latencies, error replies, and how long
/// connecting took (TCP, TLS and the handshake), in µs.
pub struct ConnResult {
    pub latencies: Latencies,
    pub errors: u64,
    pub connect_us: u64,
}

/// Runs the plan.
pub async fn run(addr: &str, keys: &[[u8; 32]], plan: Plan) -> Result<ConnResult> {
    let started = Instant::now();
    let mut w = Wire::open(addr, &plan.security).await?;
    let connect_us = started.elapsed().as_micros() as u64;
    let value = Bytes::from(
        (0..plan.value_size)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let mut lat = Latencies::default();
    let mut errors = 0;
    let mut out = BytesMut::new();
    let mut done = 0u64;
    while done < plan.count {
        let n = (plan.count - done).min(plan.pipeline as u64);
        out.clear();
        for j in 0..n {
            let i = plan.first + done + j;
            let key = keys[(i % keys.len() as u64) as usize];
            request(&plan, i, &value).encode(i, key, 0, &mut out)?;
        }
        let sent = Instant::now();
        w.s.write_all(&out).await?;
        for _ in 0..n {
            if matches!(w.reply().await?, Reply::Error { .. }) {
                errors += 1;
            }
            lat.record(sent.elapsed().as_micros() as u64);
        }
        done += n;
    }
    Ok(ConnResult {
        latencies: lat,
        errors,
        connect_us,
    })
}

/// The node's STAT object (for its RSS and bytes on disk).
pub async fn node_stat(addr: &str, security: &ClientSecurity) -> Result<serde_json::Value> {
    let mut w = Wire::open(addr, security).await?;
    match w.ask(&Request::Stat).await? {
        Reply::Stat(json) => Ok(serde_json::from_str(&json)?),
        other => bail!("stat answered with {other:?}"),
    }
}
