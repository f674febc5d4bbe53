//! Forwarding against a scripted owner on a real socket: runs sent in one write, streamed
//! replies relayed in order under the client's transaction ids, and an owner that fails
//! mid-run answered with `TIMEOUT` for exactly the frames it left unfinished.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::Peers;
use crate::wire::{
    decode_frame, Command, Frame, HandshakeReply, Header, Reply, Status, PROTOCOL_VERSION,
};

/// How the scripted owner answers the n-th request after the handshake.
#[derive(Clone, Copy)]
enum Script {
    /// Every request gets `parts` READ parts (the last without `MORE`).
    Parts(usize),
    /// The first request gets one part with `MORE`, then the owner hangs up.
    HangUpMidStream,
}

/// An owner on 127.0.0.1 following `script`; returns its address. Each part says the first
/// byte of the request's key and the part's number.
async fn owner(script: Script) -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"))
        .to_string();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(serve(s, script));
        }
    });
    addr
}

async fn serve(mut s: TcpStream, script: Script) {
    let mut buf = BytesMut::new();
    loop {
        let mut frames = Vec::new();
        while let Ok(Some(f)) = decode_frame(&mut buf) {
            frames.push(f);
        }
        let mut out = BytesMut::new();
        for f in &frames {
            if f.header.command == Command::Handshake {
                let hs = Reply::Handshake(HandshakeReply {
                    version: PROTOCOL_VERSION,
                    features: 0,
                    node_name: "scripted".into(),
                    node_nonce: None,
                });
                assert!(hs.encode(&f.header, &mut out).is_ok());
                continue;
            }
            match script {
                Script::Parts(n) => {
                    for i in 0..n {
                        part(
                            &f.header,
                            i + 1 < n,
                            &format!("{} {i}", f.header.key[0]),
                            &mut out,
                        );
                    }
                }
                Script::HangUpMidStream => {
                    part(&f.header, true, "first", &mut out);
                    let _ = s.write_all(&out).await;
                    return;
                }
            }
        }
        if s.write_all(&out).await.is_err() {
            return;
        }
        match s.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn part(request: &Header, more: bool, text: &str, out: &mut BytesMut) {
    let frame = Frame {
        header: request.reply_to(Status::Ok, more),
        payload: Bytes::from(text.to_string()),
    };
    assert!(frame.encode(out).is_ok());
}

/// A client's READ of key `[key; 32]` under transaction `trans`.
fn read(key: u8, trans: u64) -> Frame {
    Frame {
        header: Header::request(Command::Read, trans, [key; 32], 1),
        payload: Bytes::new(),
    }
}

/// The frames written to the client, in order.
fn frames_of(mut out: BytesMut) -> Vec<Frame> {
    let mut frames = Vec::new();
    while let Ok(Some(f)) = decode_frame(&mut out) {
        frames.push(f);
    }
    assert!(out.is_empty(), "{} stray bytes", out.len());
    frames
}

#[tokio::test]
async fn a_run_is_relayed_in_order_under_the_clients_transactions() {
    let addr = owner(Script::Parts(3)).await;
    let peers = Peers::new("relay-test", test_budget(), Default::default());
    let (a, b) = (read(7, 1000), read(9, 2000));
    let f = peers.send(&addr, &[(&a, 1), (&b, 1)]).await;
    let mut out = Vec::new();
    assert!(peers.finish(f, &mut out).await.is_ok());
    let frames = frames_of(BytesMut::from(&out[..]));
    let seen: Vec<(u64, bool, &[u8])> = frames
        .iter()
        .map(|f| (f.header.trans, f.header.has_more(), &f.payload[..]))
        .collect();
    assert_eq!(
        seen,
        vec![
            (1000, true, &b"7 0"[..]),
            (1000, true, b"7 1"),
            (1000, false, b"7 2"),
            (2000, true, b"9 0"),
            (2000, true, b"9 1"),
            (2000, false, b"9 2"),
        ]
    );
    assert!(frames
        .iter()
        .all(|f| f.header.hops == 0 && f.header.is_reply()));
}

#[tokio::test]
async fn an_owner_that_hangs_up_mid_stream_leaves_errors_not_silence() {
    let addr = owner(Script::HangUpMidStream).await;
    let peers = Peers::new("relay-test", test_budget(), Default::default());
    let (a, b) = (read(1, 10), read(2, 20));
    let f = peers.send(&addr, &[(&a, 1), (&b, 1)]).await;
    let mut out = Vec::new();
    assert!(peers.finish(f, &mut out).await.is_ok());
    let frames = frames_of(BytesMut::from(&out[..]));
    let seen: Vec<(u64, Status, bool)> = frames
        .iter()
        .map(|f| (f.header.trans, f.header.status, f.header.has_more()))
        .collect();
    // The part that came is relayed; then each transaction ends with its error (a read
    // nobody in the group can answer: UNAVAILABLE).
    assert_eq!(
        seen,
        vec![
            (10, Status::Ok, true),
            (10, Status::Unavailable, false),
            (20, Status::Unavailable, false),
        ]
    );
}

/// Reads an unreachable owner cannot answer are `UNAVAILABLE`; a client's whole write is
/// handed back to be hinted to the owner's successor (not answered); a write that was
/// forwarded already (or is not hintable) is `TIMEOUT`; the owner becomes suspect.
#[tokio::test]
async fn an_owner_that_cannot_be_reached_gets_every_frame_an_answer_or_a_hint() {
    let addr = unreachable_addr().await;
    let peers = Peers::new("relay-test", test_budget(), Default::default());
    let (a, b) = (read(1, 5), read(2, 6));
    let whole = write(3, 7, crate::wire::WriteRequest::whole("v"), 0);
    let forwarded = write(4, 8, crate::wire::WriteRequest::whole("v"), 1);
    let append = crate::wire::WriteRequest {
        mode: crate::wire::WriteMode::Append,
        ..crate::wire::WriteRequest::whole("v")
    };
    let append = write(5, 9, append, 0);
    let run = [(&a, 1), (&whole, 1), (&b, 1), (&forwarded, 1), (&append, 1)];
    let f = peers.send(&addr, &run).await;
    let mut out = Vec::new();
    let to_hint = match peers.finish(f, &mut out).await {
        Ok(h) => h,
        Err(e) => panic!("{e}"),
    };
    let frames = frames_of(BytesMut::from(&out[..]));
    let seen: Vec<(u64, Status)> = frames
        .iter()
        .map(|f| (f.header.trans, f.header.status))
        .collect();
    assert_eq!(
        seen,
        vec![
            (5, Status::Unavailable),
            (6, Status::Unavailable),
            (8, Status::Timeout),
            (9, Status::Timeout)
        ]
    );
    let hinted: Vec<u64> = to_hint.iter().map(|(f, _)| f.header.trans).collect();
    assert_eq!(hinted, vec![7]);
    assert!(peers.suspects.is_suspect(&addr));
}

/// A client's WRITE of key `[key; 32]` under transaction `trans`, `hops` hops in.
fn write(key: u8, trans: u64, w: crate::wire::WriteRequest, hops: u8) -> Frame {
    let mut h = Header::request(Command::Write, trans, [key; 32], 1);
    h.hops = hops;
    let mut out = BytesMut::new();
    assert!(crate::wire::Request::Write(w)
        .encode_with(&h, &mut out)
        .is_ok());
    match decode_frame(&mut out) {
        Ok(Some(f)) => f,
        other => panic!("{other:?}"),
    }
}

/// A read asked of a previous owner that cannot be reached is `UNAVAILABLE` (not knowing
/// whether the key exists), not `TIMEOUT` and never `NOT_FOUND`.
#[tokio::test]
async fn a_read_through_to_an_unreachable_previous_owner_is_unavailable() {
    let addr = unreachable_addr().await;
    let peers = Peers::new("relay-test", test_budget(), Default::default());
    let mut out = Vec::new();
    assert!(peers
        .read_through(&addr, 1, &read(1, 9), &mut out)
        .await
        .is_ok());
    let frames = frames_of(BytesMut::from(&out[..]));
    let seen: Vec<(u64, Status)> = frames
        .iter()
        .map(|f| (f.header.trans, f.header.status))
        .collect();
    assert_eq!(seen, vec![(9, Status::Unavailable)]);
}

/// Many client connections forwarding at once share the peer connection (their frames
/// written together by whichever caller is writing): each gets exactly its own reply.
#[tokio::test]
async fn concurrent_runs_share_the_peer_connection_and_get_their_own_replies() {
    let addr = owner(Script::Parts(1)).await;
    let peers = std::sync::Arc::new(Peers::new("relay-test", test_budget(), Default::default()));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200u64 {
        let (peers, addr) = (peers.clone(), addr.clone());
        tasks.spawn(async move {
            let key = (i % 250) as u8;
            let frame = read(key, 7_000 + i);
            let mut out = Vec::new();
            let f = peers.send(&addr, &[(&frame, 1)]).await;
            assert!(peers.finish(f, &mut out).await.is_ok());
            let frames = frames_of(BytesMut::from(&out[..]));
            assert_eq!(frames.len(), 1);
            assert_eq!(frames[0].header.trans, 7_000 + i);
            assert_eq!(&frames[0].payload[..], format!("{key} 0").as_bytes());
        });
    }
    while let Some(done) = tasks.join_next().await {
        assert!(done.is_ok(), "{done:?}");
    }
    assert_eq!(peers.clients.lock().await.len(), 1);
}

fn test_budget() -> crate::node::Budget {
    crate::node::Budget {
        owner_timeout: std::time::Duration::from_secs(30),
        max_clock_skew: std::time::Duration::from_millis(500),
    }
}

/// A port nothing listens on: bind, note it, close.
async fn unreachable_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    l.local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"))
        .to_string()
}
