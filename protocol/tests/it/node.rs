//! The node server over real sockets on 127.0.0.1: every command through the client,
//! malformed and hostile input byte by byte, caps, timeouts and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ringblob_backends::{Backend, BlobBackend, MemBackend};
use ringblob_engine::Key;
use ringblob_protocol::client::{Client, ClientConfig, PutOptions};
use ringblob_protocol::node::{self, Node, NodeConfig};
use ringblob_protocol::wire::{
    decode_frame, Command, Durability, Frame, HandshakeRequest, Header, IterateEnd, IterateRequest,
    Reply, Request, Status, HEADER_LEN,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    node: Arc<Node>,
}

async fn start(backend: Arc<dyn Backend>, config: NodeConfig) -> Running {
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("bind: {e}"),
    };
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"));
    let node = Node::new(backend, config, addr);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(node::run(listener, node.clone(), async move {
        let _ = rx.await;
    }));
    Running {
        addr,
        stop: Some(tx),
        task,
        node,
    }
}

async fn start_mem() -> Running {
    start(Arc::new(MemBackend::open_memory()), NodeConfig::default()).await
}

async fn client(addr: SocketAddr) -> Client {
    match Client::connect(&addr.to_string(), ClientConfig::default()).await {
        Ok(c) => c,
        Err(e) => panic!("connect: {e}"),
    }
}

fn k(name: &str) -> [u8; 32] {
    Key::from_name(b"", name.as_bytes()).0
}

/// A raw socket and the bytes read from it but not yet decoded.
struct Raw {
    s: TcpStream,
    buf: BytesMut,
}

async fn connect(addr: SocketAddr) -> Raw {
    let s = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    Raw {
        s,
        buf: BytesMut::new(),
    }
}

/// A raw connection that has completed the handshake.
async fn raw(addr: SocketAddr) -> Raw {
    let mut s = connect(addr).await;
    let mut buf = BytesMut::new();
    let hs = Request::Handshake(HandshakeRequest::new("raw"));
    assert!(hs.encode(1, [0; 32], 0, &mut buf).is_ok());
    assert!(s.s.write_all(&buf).await.is_ok());
    let f = next_frame(&mut s).await;
    assert!(matches!(
        f.map(|f| Reply::decode(&f)),
        Some(Ok(Reply::Handshake(_)))
    ));
    s
}

/// The next frame from the node, or `None` if it closed the connection.
async fn next_frame(r: &mut Raw) -> Option<Frame> {
    loop {
        if let Ok(Some(f)) = decode_frame(&mut r.buf) {
            return Some(f);
        }
        match tokio::time::timeout(Duration::from_secs(10), r.s.read_buf(&mut r.buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return None,
        }
    }
}

async fn closed_by_node(r: &mut Raw) -> bool {
    let mut b = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), r.s.read(&mut b)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

fn error_status(f: &Option<Frame>) -> Option<Status> {
    match f.as_ref().map(Reply::decode) {
        Some(Ok(Reply::Error { status, .. })) => Some(status),
        _ => None,
    }
}

#[tokio::test]
async fn every_command_works_through_the_client() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let backend = BlobBackend::open(dir.path(), ringblob_engine::Config::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let n = start(Arc::new(backend), NodeConfig::default()).await;
    let c = client(n.addr).await;
    assert!(c.ping().await.is_ok());
    let o = PutOptions::default();
    assert_eq!(
        c.put(k("a"), Bytes::from_static(b"hello world"), o)
            .await
            .ok(),
        Some(11)
    );
    assert_eq!(
        c.get(k("a"), 0, None).await.ok().as_deref(),
        Some(&b"hello world"[..])
    );
    assert_eq!(
        c.get(k("a"), 6, Some(3)).await.ok().as_deref(),
        Some(&b"wor"[..])
    );
    let m = c.lookup(k("a")).await.ok();
    assert_eq!(
        m.map(|m| (m.size, m.checksum)),
        Some((11, crc32fast::hash(b"hello world")))
    );
    assert_eq!(
        c.append(k("a"), Bytes::from_static(b"!"), o).await.ok(),
        Some(12)
    );
    assert_eq!(
        c.write_at(k("a"), 0, Bytes::from_static(b"J"), o)
            .await
            .ok(),
        Some(12)
    );
    assert_eq!(
        c.get(k("a"), 0, None).await.ok().as_deref(),
        Some(&b"Jello world!"[..])
    );
    let err = c.get(k("a"), 13, None).await.err();
    assert_eq!(err.and_then(|e| e.status()), Some(Status::RangeOutOfBounds));
    // Larger than one frame and one reply part: streamed both ways.
    let big: Bytes = (0..40u32 << 20)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let sync = PutOptions {
        compress: true,
        durability: Durability::Sync,
        ..PutOptions::default()
    };
    assert_eq!(
        c.put(k("big"), big.clone(), sync).await.ok(),
        Some(big.len() as u64)
    );
    assert!(c.get(k("big"), 0, None).await.ok() == Some(big.clone()));
    let mut sink: Vec<u8> = Vec::new();
    let streamed = c.get_to(k("big"), 1, None, &mut sink).await.ok();
    assert_eq!(streamed, Some(big.len() as u64 - 1));
    assert!(sink[..] == big[1..], "streamed read returns the same bytes");
    assert!(
        c.get(k("big"), 3 << 20, Some(5 << 20))
            .await
            .ok()
            .as_deref()
            == Some(&big[3 << 20..8 << 20])
    );
    let items = c
        .bulk_read(vec![k("a"), k("missing")])
        .await
        .unwrap_or_default();
    assert_eq!(
        items.iter().map(|i| i.status).collect::<Vec<_>>(),
        vec![Status::Ok, Status::NotFound]
    );
    let req = IterateRequest {
        from: [0; 32],
        to: [0xFF; 32],
        after: None,
        limit: 1,
    };
    let (entries, end) = c.iterate(req).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(entries.len(), 1);
    assert!(matches!(end, IterateEnd::ResumeAfter(_)));
    assert!(c.remove(k("a"), Durability::Batch).await.is_ok());
    assert!(c
        .get(k("a"), 0, None)
        .await
        .err()
        .is_some_and(|e| e.is_not_found()));
    assert!(c
        .remove(k("a"), Durability::Batch)
        .await
        .err()
        .is_some_and(|e| e.is_not_found()));
    let stat: serde_json::Value =
        serde_json::from_str(&c.stat().await.unwrap_or_default()).unwrap_or_default();
    assert_eq!(stat["backend"]["kind"], "blob");
    assert_eq!(stat["backend"]["keys"], 1);
    let routes: serde_json::Value =
        serde_json::from_str(&c.routes().await.unwrap_or_default()).unwrap_or_default();
    assert_eq!(routes["nodes"][0]["addr"], n.addr.to_string());
    assert_eq!(
        routes["nodes"][0]["ids"],
        serde_json::json!([]),
        "a node outside a cluster owns its whole group"
    );
}

#[tokio::test]
async fn first_frame_must_be_a_handshake() {
    let n = start_mem().await;
    let mut s = connect(n.addr).await;
    let mut buf = BytesMut::new();
    assert!(Request::Ping.encode(5, [0; 32], 0, &mut buf).is_ok());
    assert!(s.s.write_all(&buf).await.is_ok());
    let f = next_frame(&mut s).await;
    assert_eq!(error_status(&f), Some(Status::BadRequest));
    assert_eq!(f.map(|f| f.header.trans), Some(5));
    assert!(closed_by_node(&mut s).await);
}

/// The version is negotiated once: a second HANDSHAKE, alone or pipelined right behind the
/// first, is `BAD_REQUEST` (PROTOCOL.md §3), and the connection goes on serving.
#[tokio::test]
async fn a_second_handshake_is_refused_and_the_connection_lives() {
    let n = start_mem().await;
    let mut s = connect(n.addr).await;
    let mut buf = BytesMut::new();
    for trans in [1, 2] {
        let hs = Request::Handshake(HandshakeRequest::new("twice"));
        assert!(hs.encode(trans, [0; 32], 0, &mut buf).is_ok());
    }
    assert!(Request::Ping.encode(3, [0; 32], 0, &mut buf).is_ok());
    assert!(s.s.write_all(&buf).await.is_ok());
    let first = next_frame(&mut s).await;
    assert!(matches!(
        first.map(|f| Reply::decode(&f)),
        Some(Ok(Reply::Handshake(_)))
    ));
    let second = next_frame(&mut s).await;
    assert_eq!(second.as_ref().map(|f| f.header.trans), Some(2));
    assert_eq!(error_status(&second), Some(Status::BadRequest));
    let third = next_frame(&mut s).await;
    assert!(matches!(
        third.map(|f| (f.header.trans, Reply::decode(&f))),
        Some((3, Ok(Reply::Pong)))
    ));
    let mut again = BytesMut::new();
    let hs = Request::Handshake(HandshakeRequest::new("later"));
    assert!(hs.encode(4, [0; 32], 0, &mut again).is_ok());
    assert!(s.s.write_all(&again).await.is_ok());
    assert_eq!(
        error_status(&next_frame(&mut s).await),
        Some(Status::BadRequest)
    );
}

/// `ITERATE` with `limit` 0 lists up to `DEFAULT_ITERATE_LIMIT` entries, as PROTOCOL.md
/// says, not one.
#[tokio::test]
async fn iterate_with_limit_zero_uses_the_default_limit() {
    let n = start_mem().await;
    let c = client(n.addr).await;
    for i in 0..1005 {
        let put = c
            .put(
                k(&format!("key-{i}")),
                bytes::Bytes::from_static(b"v"),
                Default::default(),
            )
            .await;
        assert!(put.is_ok(), "{put:?}");
    }
    let req = ringblob_protocol::wire::IterateRequest {
        from: [0; 32],
        to: [0xff; 32],
        after: None,
        limit: 0,
    };
    let (entries, end) = c.iterate(req).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        entries.len(),
        ringblob_protocol::wire::DEFAULT_ITERATE_LIMIT as usize
    );
    assert!(matches!(
        end,
        ringblob_protocol::wire::IterateEnd::ResumeAfter(_)
    ));
}

#[tokio::test]
async fn incompatible_handshake_is_refused_clearly() {
    let n = start_mem().await;
    let mut s = connect(n.addr).await;
    let mut buf = BytesMut::new();
    let hs = HandshakeRequest {
        min_version: 7,
        max_version: 9,
        features: 0,
        client_name: "future".into(),
        auth: None,
    };
    assert!(Request::Handshake(hs)
        .encode(1, [0; 32], 0, &mut buf)
        .is_ok());
    assert!(s.s.write_all(&buf).await.is_ok());
    let f = next_frame(&mut s).await;
    assert_eq!(error_status(&f), Some(Status::UnsupportedVersion));
    assert!(closed_by_node(&mut s).await);
}

#[tokio::test]
async fn bad_magic_and_oversized_length_close_only_that_connection() {
    let n = start_mem().await;
    let mut bad = raw(n.addr).await;
    assert!(bad.s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.is_ok());
    assert!(closed_by_node(&mut bad).await, "bad magic must close");
    let mut huge = raw(n.addr).await;
    let mut buf = BytesMut::new();
    assert!(Request::Ping.encode(2, [0; 32], 0, &mut buf).is_ok());
    let mut h = Header::decode(&buf).unwrap_or_else(|e| panic!("{e}"));
    h.payload_len = u32::MAX;
    assert!(huge.s.write_all(&h.to_bytes()).await.is_ok());
    assert!(
        closed_by_node(&mut huge).await,
        "an oversized length must close before any payload"
    );
    let c = client(n.addr).await;
    assert!(
        c.ping().await.is_ok(),
        "the node keeps serving everyone else"
    );
    assert!(
        n.node
            .info
            .counters
            .bad_frames
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );
}

#[tokio::test]
async fn unknown_command_and_bad_payload_get_error_replies_and_the_connection_lives() {
    let n = start_mem().await;
    let mut s = raw(n.addr).await;
    let mut buf = BytesMut::new();
    let mut h = Header::request(Command::Ping, 9, [0; 32], 0);
    h.command = Command::from_u16(999);
    assert!(ringblob_protocol::wire::encode_frame(&h, &mut buf, |_| Ok(())).is_ok());
    let mut r = Header::request(Command::Read, 10, [0; 32], 0);
    r.command = Command::Read;
    assert!(ringblob_protocol::wire::encode_frame(&r, &mut buf, |b| {
        b.extend_from_slice(&[1, 2, 3]);
        Ok(())
    })
    .is_ok());
    assert!(Request::Ping.encode(11, [0; 32], 0, &mut buf).is_ok());
    assert!(s.s.write_all(&buf).await.is_ok());
    let first = next_frame(&mut s).await;
    assert_eq!(error_status(&first), Some(Status::UnknownCommand));
    let second = next_frame(&mut s).await;
    assert_eq!(error_status(&second), Some(Status::BadRequest));
    let third = next_frame(&mut s).await;
    assert!(matches!(
        third.map(|f| (f.header.trans, Reply::decode(&f))),
        Some((11, Ok(Reply::Pong)))
    ));
}

#[tokio::test]
async fn wrong_version_in_a_header_is_refused() {
    let n = start_mem().await;
    let mut s = raw(n.addr).await;
    let mut h = Header::request(Command::Ping, 3, [0; 32], 0);
    h.version = ringblob_protocol::wire::MAX_PROTOCOL_VERSION + 1;
    let mut buf = BytesMut::new();
    assert!(ringblob_protocol::wire::encode_frame(&h, &mut buf, |_| Ok(())).is_ok());
    assert!(s.s.write_all(&buf).await.is_ok());
    assert_eq!(
        error_status(&next_frame(&mut s).await),
        Some(Status::UnsupportedVersion)
    );
}

#[tokio::test]
async fn truncated_frame_then_hangup_leaves_the_node_serving() {
    let n = start_mem().await;
    let mut s = raw(n.addr).await;
    let mut buf = BytesMut::new();
    assert!(Request::Ping.encode(2, [0; 32], 0, &mut buf).is_ok());
    assert!(s.s.write_all(&buf[..HEADER_LEN / 2]).await.is_ok());
    drop(s);
    assert!(client(n.addr).await.ping().await.is_ok());
}

#[tokio::test]
async fn slow_loris_is_cut_off_after_the_read_timeout() {
    let config = NodeConfig {
        read_timeout: Duration::from_millis(300),
        ..NodeConfig::default()
    };
    let n = start(Arc::new(MemBackend::open_memory()), config).await;
    let mut s = raw(n.addr).await;
    let mut buf = BytesMut::new();
    assert!(Request::Ping.encode(2, [0; 32], 0, &mut buf).is_ok());
    // One byte at a time, slower than the frame deadline allows.
    let mut cut = false;
    for b in buf.iter() {
        if s.s.write_all(&[*b]).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        cut || closed_by_node(&mut s).await,
        "slow sender kept its connection"
    );
    assert!(client(n.addr).await.ping().await.is_ok());
}

#[tokio::test]
async fn connection_cap_refuses_cleanly() {
    let config = NodeConfig {
        max_connections: 2,
        ..NodeConfig::default()
    };
    let n = start(Arc::new(MemBackend::open_memory()), config).await;
    let _a = raw(n.addr).await;
    let _b = raw(n.addr).await;
    let mut c = connect(n.addr).await;
    let f = next_frame(&mut c).await;
    assert_eq!(error_status(&f), Some(Status::ConnectionLimit));
    assert_eq!(
        f.map(|f| (f.header.trans, f.header.command.as_u16())),
        Some((0, 0))
    );
    assert!(closed_by_node(&mut c).await);
    drop(_a);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        client(n.addr).await.ping().await.is_ok(),
        "a freed slot is reused"
    );
}

#[tokio::test]
async fn pipelined_requests_all_get_their_replies() {
    let n = start_mem().await;
    let mut s = raw(n.addr).await;
    let mut buf = BytesMut::new();
    for i in 0..300u64 {
        let w = Request::Write(ringblob_protocol::wire::WriteRequest::whole(Bytes::from(
            i.to_le_bytes().to_vec(),
        )));
        assert!(w.encode(1000 + i, k(&i.to_string()), 0, &mut buf).is_ok());
    }
    assert!(s.s.write_all(&buf).await.is_ok());
    let mut seen = std::collections::BTreeSet::new();
    let mut rbuf = BytesMut::new();
    while seen.len() < 300 {
        match decode_frame(&mut rbuf) {
            Ok(Some(f)) => {
                assert!(matches!(Reply::decode(&f), Ok(Reply::Write(_))));
                seen.insert(f.header.trans);
            }
            _ => {
                let read =
                    tokio::time::timeout(Duration::from_secs(10), s.s.read_buf(&mut rbuf)).await;
                assert!(matches!(read, Ok(Ok(n)) if n > 0), "node stopped answering");
            }
        }
    }
    assert_eq!(seen, (1000..1300).collect());
}

#[tokio::test]
async fn a_pipeline_of_sync_writes_shares_fdatasyncs() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let backend = BlobBackend::open(dir.path(), ringblob_engine::Config::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let backend: Arc<dyn Backend> = Arc::new(backend);
    let n = start(backend.clone(), NodeConfig::default()).await;
    let mut s = raw(n.addr).await;
    let mut buf = BytesMut::new();
    for i in 0..100u64 {
        let w = ringblob_protocol::wire::WriteRequest {
            durability: Durability::Sync,
            ..ringblob_protocol::wire::WriteRequest::whole(Bytes::from(vec![7u8; 100]))
        };
        assert!(Request::Write(w)
            .encode(i, k(&format!("s{i}")), 0, &mut buf)
            .is_ok());
    }
    let before = backend.stats().ok().and_then(|s| s.syncs).unwrap_or(0);
    assert!(s.s.write_all(&buf).await.is_ok());
    for _ in 0..100 {
        assert!(matches!(
            next_frame(&mut s).await.map(|f| Reply::decode(&f)),
            Some(Ok(Reply::Write(_)))
        ));
    }
    let syncs = backend.stats().ok().and_then(|s| s.syncs).unwrap_or(0) - before;
    assert!(
        (1..20).contains(&syncs),
        "100 pipelined sync writes took {syncs} fdatasyncs"
    );
}

#[tokio::test]
async fn graceful_shutdown_answers_in_flight_requests_and_syncs() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let backend = BlobBackend::open(dir.path(), ringblob_engine::Config::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut n = start(Arc::new(backend), NodeConfig::default()).await;
    let c = client(n.addr).await;
    let none = PutOptions {
        compress: false,
        durability: Durability::None,
        ..PutOptions::default()
    };
    for i in 0..100 {
        assert!(c
            .put(k(&format!("k{i}")), Bytes::from(vec![i as u8; 100]), none)
            .await
            .is_ok());
    }
    if let Some(stop) = n.stop.take() {
        let _ = stop.send(());
    }
    assert!(matches!((&mut n.task).await, Ok(Ok(()))));
    drop(c);
    drop(n);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let b = BlobBackend::open(dir.path(), ringblob_engine::Config::default())
        .unwrap_or_else(|e| panic!("reopen: {e}"));
    for i in 0..100 {
        let v = b
            .read(&Key(k(&format!("k{i}"))), ringblob_engine::Range::all())
            .ok();
        assert_eq!(v, Some(vec![i as u8; 100]));
    }
}

#[tokio::test]
async fn defrag_over_the_wire_reclaims_space_and_reports() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = ringblob_engine::Config {
        max_blob_size: 64 << 10,
        defrag_interval: None,
        ..ringblob_engine::Config::default()
    };
    let backend = BlobBackend::open(dir.path(), config).unwrap_or_else(|e| panic!("{e}"));
    let n = start(Arc::new(backend), NodeConfig::default()).await;
    let c = client(n.addr).await;
    let o = PutOptions {
        compress: false,
        durability: Durability::Sync,
        ..PutOptions::default()
    };
    for round in 0..3u8 {
        for i in 0..100 {
            assert!(c
                .put(k(&format!("d{i}")), Bytes::from(vec![round; 700]), o)
                .await
                .is_ok());
        }
    }
    // Rotated blobs are sealed by the maintenance thread within its 100 ms interval.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let report: serde_json::Value =
        serde_json::from_str(&c.defrag(true).await.unwrap_or_default()).unwrap_or_default();
    assert!(
        report["bytes_reclaimed"].as_u64().is_some_and(|b| b > 0),
        "{report}"
    );
    assert!(report["blobs_rewritten"]
        .as_array()
        .is_some_and(|a| !a.is_empty()));
    for i in 0..100 {
        assert_eq!(
            c.get(k(&format!("d{i}")), 0, None).await.ok().as_deref(),
            Some(&[2u8; 700][..])
        );
    }
    let started: serde_json::Value =
        serde_json::from_str(&c.defrag(false).await.unwrap_or_default()).unwrap_or_default();
    assert_eq!(started["started"], true);
    let stat: serde_json::Value =
        serde_json::from_str(&c.stat().await.unwrap_or_default()).unwrap_or_default();
    assert!(
        stat["backend"]["defrag"]["runs"]
            .as_u64()
            .is_some_and(|r| r >= 1),
        "{stat}"
    );
    let mem = start_mem().await;
    let err = client(mem.addr).await.defrag(true).await.err();
    assert_eq!(
        err.and_then(|e| e.status()),
        Some(Status::BadRequest),
        "mem has nothing to defragment"
    );
}

#[tokio::test]
async fn pipelined_large_reads_are_split_across_rounds_and_all_answered() {
    let n = start_mem().await;
    let c = client(n.addr).await;
    let big: Bytes = (0..30u32 << 20)
        .map(|i| (i % 249) as u8)
        .collect::<Vec<u8>>()
        .into();
    assert!(c
        .put(k("big"), big.clone(), PutOptions::default())
        .await
        .is_ok());
    // Four 30 MiB reads in one write: more than one batch's reply budget (64 MiB).
    let mut s = raw(n.addr).await;
    let mut buf = BytesMut::new();
    for t in 0..4u64 {
        let r = Request::Read(ringblob_protocol::wire::ReadRequest::whole(0));
        assert!(r.encode(100 + t, k("big"), 0, &mut buf).is_ok());
    }
    assert!(s.s.write_all(&buf).await.is_ok());
    let mut got: std::collections::BTreeMap<u64, Vec<u8>> = Default::default();
    let mut done = 0;
    while done < 4 {
        let Some(f) = next_frame(&mut s).await else {
            panic!("node closed the connection")
        };
        let more = f.header.has_more();
        match Reply::decode(&f) {
            Ok(Reply::ReadPart { data, .. }) => got
                .entry(f.header.trans)
                .or_default()
                .extend_from_slice(&data),
            other => panic!("unexpected {other:?}"),
        }
        if !more {
            done += 1;
        }
    }
    assert_eq!(got.len(), 4);
    assert!(
        got.values().all(|v| v[..] == big[..]),
        "every read returns the whole value"
    );
}

/// `IF_NEWER` copies (hand-over and repair): stored with their timestamp over older or
/// absent records, refused `NOT_NEWER` over a record at least as new, which stays.
#[tokio::test]
async fn copies_are_stored_only_over_older_records() {
    let n = start_mem().await;
    let c = client(n.addr).await;
    let copy = PutOptions::copy_if_newer;
    assert!(c
        .put(k("copied"), Bytes::from_static(b"v1"), copy(100))
        .await
        .is_ok());
    let meta = c.lookup(k("copied")).await.map(|m| m.timestamp_ns);
    assert_eq!(meta.ok(), Some(100));
    let older = c
        .put(k("copied"), Bytes::from_static(b"v0"), copy(100))
        .await;
    assert!(
        matches!(
            older,
            Err(ringblob_protocol::client::ClientError::Status {
                status: Status::NotNewer,
                ..
            })
        ),
        "{older:?}"
    );
    // A write made on the node after the copy's original was read wins over the copy.
    assert!(c
        .put(
            k("local"),
            Bytes::from_static(b"local"),
            PutOptions::default()
        )
        .await
        .is_ok());
    let local_ts = c.lookup(k("local")).await.map_or(0, |m| m.timestamp_ns);
    let stale = c
        .put(k("local"), Bytes::from_static(b"copy"), copy(local_ts - 1))
        .await;
    assert!(
        matches!(&stale, Err(e) if e.status() == Some(Status::NotNewer)),
        "{stale:?}"
    );
    let got = c.get(k("local"), 0, None).await;
    assert_eq!(got.ok().as_deref(), Some(&b"local"[..]));
    let newer = c
        .put(k("local"), Bytes::from_static(b"copy"), copy(local_ts + 1))
        .await;
    assert!(newer.is_ok(), "{newer:?}");
    let got = c.get(k("local"), 0, None).await;
    assert_eq!(got.ok().as_deref(), Some(&b"copy"[..]));
}

/// A peer whose listen queue is full drops the SYN, so connecting hangs (as with a host
/// that is down): the client gives up after its connect timeout instead of the kernel's
/// minutes of retries.
#[tokio::test]
async fn connecting_to_a_peer_that_never_answers_times_out() {
    let socket = tokio::net::TcpSocket::new_v4().unwrap_or_else(|e| panic!("socket: {e}"));
    assert!(socket
        .bind("127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")))
        .is_ok());
    let listener = socket.listen(1).unwrap_or_else(|e| panic!("listen: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"));
    // Fill the accept queue (never accepted) until a connect no longer completes.
    let mut held = Vec::new();
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => held.push(s),
            _ => break,
        }
    }
    let config = ClientConfig {
        connect_timeout: Duration::from_millis(300),
        ..ClientConfig::default()
    };
    let r = Client::connect(&addr.to_string(), config).await;
    assert!(
        matches!(
            &r,
            Err(ringblob_protocol::client::ClientError::Connect { source, .. })
                if source.kind() == std::io::ErrorKind::TimedOut
        ),
        "{:?}",
        r.err()
    );
    drop(listener);
}

/// `RANGE_DIGEST`: two nodes holding the same values send the same leaves; one value that
/// differs changes exactly one leaf, whatever the order the values were written in.
#[tokio::test]
async fn range_digests_differ_exactly_where_the_values_do() {
    use ringblob_protocol::wire::RangeDigestRequest;
    let (a, b) = (start_mem().await, start_mem().await);
    let (ca, cb) = (client(a.addr).await, client(b.addr).await);
    let names: Vec<String> = (0..300).map(|i| format!("digest-{i}")).collect();
    for name in &names {
        assert!(ca
            .put(k(name), Bytes::from(name.clone()), PutOptions::default())
            .await
            .is_ok());
    }
    for name in names.iter().rev() {
        let v = if name == "digest-7" {
            "other bytes".to_string()
        } else {
            name.clone()
        };
        assert!(cb
            .put(k(name), Bytes::from(v), PutOptions::default())
            .await
            .is_ok());
    }
    let whole = RangeDigestRequest {
        start_excl: [0; 32],
        end_incl: [0; 32],
        depth: 2,
    };
    let (da, db) = match (ca.range_digest(whole).await, cb.range_digest(whole).await) {
        (Ok(da), Ok(db)) => (da, db),
        other => panic!("RANGE_DIGEST failed: {other:?}"),
    };
    assert_eq!((da.records, db.records), (300, 300));
    assert_eq!(da.leaves.len(), 256);
    let differ = da
        .leaves
        .iter()
        .zip(&db.leaves)
        .filter(|(x, y)| x != y)
        .count();
    assert_eq!(differ, 1, "leaves that differ");
    assert!(cb
        .put(
            k("digest-7"),
            Bytes::from("digest-7"),
            PutOptions::default()
        )
        .await
        .is_ok());
    let again = cb.range_digest(whole).await.map(|d| d.leaves);
    assert_eq!(again.ok(), Some(da.leaves));
    let too_deep = RangeDigestRequest { depth: 4, ..whole };
    assert!(ca.range_digest(too_deep).await.is_err());
}

#[tokio::test]
async fn valid_frames_before_a_framing_error_are_all_answered() {
    let n = start_mem().await;
    let mut s = raw(n.addr).await;
    let mut buf = BytesMut::new();
    for i in 0..3000u64 {
        assert!(Request::Ping.encode(10 + i, [0; 32], 0, &mut buf).is_ok());
    }
    buf.extend_from_slice(b"garbage that is no frame header at all, followed by more of it");
    assert!(s.s.write_all(&buf).await.is_ok());
    let mut pongs = 0;
    while let Some(f) = next_frame(&mut s).await {
        assert!(matches!(Reply::decode(&f), Ok(Reply::Pong)), "{f:?}");
        pongs += 1;
    }
    assert_eq!(
        pongs, 3000,
        "every ping before the garbage is answered, then the close"
    );
}

#[tokio::test]
async fn a_connection_that_never_handshakes_is_closed_after_the_handshake_timeout() {
    let config = NodeConfig {
        handshake_timeout: Duration::from_millis(300),
        ..NodeConfig::default()
    };
    let n = start(Arc::new(MemBackend::open_memory()), config).await;
    let mut silent = connect(n.addr).await;
    // closed_by_node waits up to 10 s; the idle timeout is 300 s.
    assert!(
        closed_by_node(&mut silent).await,
        "a silent connection kept its slot"
    );
    // A handshake that arrives in time is unaffected, however long the connection lives.
    let mut greeted = raw(n.addr).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut buf = BytesMut::new();
    assert!(Request::Ping.encode(2, [0; 32], 0, &mut buf).is_ok());
    assert!(greeted.s.write_all(&buf).await.is_ok());
    let f = next_frame(&mut greeted).await;
    assert!(matches!(
        f.map(|f| Reply::decode(&f)),
        Some(Ok(Reply::Pong))
    ));
}

/// Pipelines `reads` whole reads of `key` and never reads a reply.
async fn slow_reader(addr: SocketAddr, key: [u8; 32], reads: u64) -> Raw {
    let mut s = raw(addr).await;
    let mut buf = BytesMut::new();
    for i in 0..reads {
        let r = Request::Read(ringblob_protocol::wire::ReadRequest::whole(0));
        assert!(r.encode(100 + i, key, 0, &mut buf).is_ok());
    }
    assert!(s.s.write_all(&buf).await.is_ok());
    s
}

#[tokio::test]
async fn clients_that_never_read_are_bounded_and_closed_after_the_write_timeout() {
    let config = NodeConfig {
        write_timeout: Duration::from_millis(300),
        max_reply_memory: 4 << 20,
        ..NodeConfig::default()
    };
    let n = start(Arc::new(MemBackend::open_memory()), config).await;
    let c = client(n.addr).await;
    let big = Bytes::from(vec![7u8; 1 << 20]);
    assert!(c.put(k("big"), big, PutOptions::default()).await.is_ok());
    let mut slow = Vec::new();
    for _ in 0..6 {
        slow.push(slow_reader(n.addr, k("big"), 64).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Replies built and not written stay within the node's budget (the socket buffers of
    // the slow connections hold some more, outside it).
    let held = (4 << 20) - n.node.reply_budget.available();
    assert!(held <= 4 << 20, "{held}");
    // Small requests never wait behind them.
    let other = client(n.addr).await;
    for _ in 0..20 {
        assert!(other.ping().await.is_ok());
        assert!(other.lookup(k("big")).await.is_ok());
    }
    // The slow connections are closed once their replies stall for the write timeout (one
    // after the other: each waits for its share first), and their budget is back. Nothing
    // is read meanwhile, which would drain them.
    tokio::time::sleep(Duration::from_secs(6)).await;
    for s in &mut slow {
        assert!(
            closed_by_node(s).await,
            "a client that reads nothing kept its connection"
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(n.node.reply_budget.available(), 4 << 20);
    let got = other.get(k("big"), 0, None).await;
    assert_eq!(got.map(|v| v.len()).ok(), Some(1 << 20));
}

#[tokio::test]
async fn a_bulk_read_naming_a_big_value_many_times_is_bounded_by_its_reply() {
    let n = start_mem().await;
    let c = client(n.addr).await;
    let v = Bytes::from(vec![3u8; 20 << 20]);
    assert!(c.put(k("twenty"), v, PutOptions::default()).await.is_ok());
    let keys = vec![k("twenty"); 1024];
    let items = c.bulk_read(keys).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(items.len(), 1024);
    let ok = items.iter().filter(|i| i.status == Status::Ok).count();
    let too_large = items
        .iter()
        .filter(|i| i.status == Status::TooLarge)
        .count();
    // 64 MiB of reply holds three copies; the rest say TOO_LARGE without being read.
    assert_eq!((ok, too_large), (3, 1021));
    // A value over what one frame carries is not read at all.
    let huge = Bytes::from(vec![4u8; 34 << 20]);
    assert!(c.put(k("huge"), huge, PutOptions::default()).await.is_ok());
    let items = c
        .bulk_read(vec![k("huge"); 1024])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(items.iter().all(|i| i.status == Status::TooLarge));
}

#[tokio::test]
async fn a_write_far_past_the_end_is_refused_before_it_allocates() {
    let n = start_mem().await;
    let c = client(n.addr).await;
    let r = c
        .write_at(
            k("sparse"),
            (1 << 30) - 16,
            Bytes::from_static(b"x"),
            PutOptions::default(),
        )
        .await;
    let status = r.as_ref().err().and_then(|e| e.status());
    assert_eq!(status, Some(Status::TooLarge), "{r:?}");
    assert!(c.lookup(k("sparse")).await.is_err(), "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_served_on_lanes_are_answered_and_shut_down_gracefully() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let backend = BlobBackend::open(dir.path(), ringblob_engine::Config::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let config = NodeConfig {
        connection_lanes: 2,
        ..NodeConfig::default()
    };
    let mut n = start(Arc::new(backend), config).await;
    // Six connections, three per lane; half write durably (the shared sync wakes waiters
    // on the lanes' runtimes from its own thread).
    let mut writers = tokio::task::JoinSet::new();
    for c in 0..6u8 {
        let addr = n.addr;
        writers.spawn(async move {
            let client = client(addr).await;
            let opts = PutOptions {
                compress: false,
                durability: if c.is_multiple_of(2) {
                    Durability::Batch
                } else {
                    Durability::None
                },
                ..PutOptions::default()
            };
            for i in 0..50u8 {
                let key = k(&format!("c{c}-{i}"));
                if let Err(e) = client.put(key, Bytes::from(vec![c ^ i; 300]), opts).await {
                    panic!("put on connection {c}: {e}");
                }
                let got = client.get(key, 0, None).await.ok();
                assert_eq!(got, Some(Bytes::from(vec![c ^ i; 300])));
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        assert!(done.is_ok(), "a connection's task failed: {done:?}");
    }
    // That every lane serves is checked on a real process (tools/tests/cli/lanes.rs):
    // here other tests' nodes start lanes of their own in this process.
    if let Some(stop) = n.stop.take() {
        let _ = stop.send(());
    }
    assert!(matches!((&mut n.task).await, Ok(Ok(()))));
    drop(n);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let b = BlobBackend::open(dir.path(), ringblob_engine::Config::default())
        .unwrap_or_else(|e| panic!("reopen: {e}"));
    for c in 0..6u8 {
        for i in 0..50u8 {
            let v = b
                .read(&Key(k(&format!("c{c}-{i}"))), ringblob_engine::Range::all())
                .ok();
            assert_eq!(v, Some(vec![c ^ i; 300]), "c{c}-{i} after the restart");
        }
    }
}
