//! Access keys, roles, namespaces, the handshake's defences, key reloads, TLS and protected
//! mode, against real `ringblob-node` processes over real sockets.

use std::path::Path;
use std::process::{Command as Process, Output};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ringblob_protocol::auth::AccessKey;
use ringblob_protocol::client::{
    Attempt, Client, ClientConfig, ClientError, ClientSecurity, Credentials, Target,
};
use ringblob_protocol::wire::command::ALL_COMMANDS;
use ringblob_protocol::wire::{
    decode_frame, AuthRequest, BulkReadRequest, Command, Frame, HandshakeRequest, IterateRequest,
    LookupRequest, RangeDigestRequest, ReadRequest, RemoveRequest, Reply, Request, Status,
    WriteRequest,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::certs::Ca;
use crate::node_process::NodeProcess;

fn or_panic<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// `ringblob-node keys ARGS --data-dir DIR`; its stdout.
fn keys(dir: &Path, args: &[&str]) -> String {
    let out = or_panic(
        Process::new(env!("CARGO_BIN_EXE_ringblob-node"))
            .arg("keys")
            .args(args)
            .arg("--data-dir")
            .arg(dir)
            .output(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn add_key(dir: &Path, role: &str, namespaces: &[&str]) -> AccessKey {
    let mut args = vec!["add", "--role", role];
    for ns in namespaces {
        args.extend(["--namespace", ns]);
    }
    or_panic(AccessKey::parse(&keys(dir, &args)))
}

fn config(security: ClientSecurity) -> ClientConfig {
    ClientConfig {
        timeout: Duration::from_secs(5),
        retries: 0,
        security,
        ..ClientConfig::default()
    }
}

fn with_key(key: Option<&AccessKey>) -> ClientSecurity {
    ClientSecurity {
        credentials: Credentials::new(key.cloned()),
        tls: None,
    }
}

async fn connect(addr: &str, key: Option<&AccessKey>) -> Result<Client, ClientError> {
    Client::connect(addr, config(with_key(key))).await
}

fn status(r: &Result<Vec<Reply>, ClientError>) -> Option<Status> {
    match r {
        Err(ClientError::Status { status, .. }) => Some(*status),
        _ => None,
    }
}

/// A well-formed request of each command.
fn request_for(cmd: Command) -> Request {
    match cmd {
        Command::Ping => Request::Ping,
        Command::Handshake => Request::Handshake(HandshakeRequest::new("again")),
        Command::Lookup => Request::Lookup(LookupRequest { column: 0 }),
        Command::Read => Request::Read(ReadRequest::whole(0)),
        Command::Write => Request::Write(WriteRequest::whole(Bytes::from_static(b"v"))),
        Command::Remove => Request::Remove(RemoveRequest {
            durability: Default::default(),
            column: None,
            if_newer: None,
            version: None,
            deadline_ns: None,
        }),
        Command::Iterate => Request::Iterate(IterateRequest {
            from: [0; 32],
            to: [0xff; 32],
            after: None,
            limit: 10,
        }),
        Command::BulkRead => Request::BulkRead(BulkReadRequest {
            column: 0,
            keys: vec![[7; 32]],
        }),
        Command::Stat => Request::Stat,
        Command::RouteList => Request::RouteList,
        Command::Defrag => Request::Defrag { wait: false },
        // Status only: the test must not make its node leave.
        Command::Leave => Request::Leave(ringblob_protocol::wire::LeaveAsk::Status),
        Command::RangeDigest => Request::RangeDigest(RangeDigestRequest {
            start_excl: [0; 32],
            end_incl: [0xff; 32],
            depth: 1,
        }),
        Command::Auth => Request::Auth(AuthRequest { proof: [0; 32] }),
        Command::List => Request::List(ringblob_protocol::wire::ListRequest {
            limit: 10,
            ..Default::default()
        }),
        // A cancel of nothing: answered at once (NOT_FOUND) to whoever may watch.
        Command::Watch => Request::Watch(ringblob_protocol::wire::WatchRequest {
            cancel: Some(999),
            ..Default::default()
        }),
        Command::Unknown(n) => panic!("no request for command {n}"),
    }
}

/// The issue's table: what each role may send (HANDSHAKE and AUTH are not refused as
/// unauthorized: repeated, they are `BAD_REQUEST`).
fn allowed(role: Option<&str>, cmd: Command) -> bool {
    use Command::*;
    let free = [Ping, Handshake, Auth];
    let read = [Lookup, Read, Iterate, BulkRead, RouteList, List, Watch];
    let write = [Write, Remove];
    free.contains(&cmd)
        || match role {
            None => false,
            Some("read") => read.contains(&cmd),
            Some("write") => read.contains(&cmd) || write.contains(&cmd),
            Some("admin") => true,
            Some(other) => panic!("role {other}"),
        }
}

fn start_with_keys(dir: &Path, extra: &[&str]) -> NodeProcess {
    NodeProcess::start(dir, &[&["--backend", "mem"], extra].concat())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_needs_a_key_and_each_role_does_exactly_its_commands() {
    let dir = or_panic(tempfile::tempdir());
    let read = add_key(dir.path(), "read", &[]);
    let write = add_key(dir.path(), "write", &[]);
    let admin = add_key(dir.path(), "admin", &[]);
    let node = start_with_keys(dir.path(), &[]);
    let who = [
        (None, None),
        (Some("read"), Some(&read)),
        (Some("write"), Some(&write)),
        (Some("admin"), Some(&admin)),
    ];
    for (role, key) in who {
        let c = or_panic(connect(&node.addr, key).await);
        for cmd in ALL_COMMANDS {
            let r = c.call(&request_for(cmd), [7; 32]).await;
            let refused = status(&r) == Some(Status::Unauthorized);
            assert_eq!(refused, !allowed(role, cmd), "{role:?} {cmd}: {r:?}");
            if refused {
                let Err(e) = &r else { continue };
                let msg = e.to_string();
                let says = if role.is_none() {
                    msg.contains("not authenticated") && msg.contains("--key")
                } else {
                    msg.contains("needs role")
                };
                assert!(says, "the refusal says what is missing: {msg}");
            }
        }
    }
    // A command number the node does not define is UNKNOWN_COMMAND to anyone, even
    // unauthenticated.
    let mut s = raw(&node.addr, "127.0.0.1").await;
    let mut buf = BytesMut::new();
    send(&mut s, &Request::Handshake(HandshakeRequest::new("new")), 1).await;
    assert!(matches!(reply(&mut s, &mut buf).await, Reply::Handshake(_)));
    let mut h = ringblob_protocol::wire::Header::request(Command::Unknown(99), 2, [0; 32], 0);
    h.payload_len = 0;
    let mut out = BytesMut::new();
    or_panic(ringblob_protocol::wire::encode_frame(&h, &mut out, |_| {
        Ok(())
    }));
    or_panic(s.write_all(&out).await);
    let f = next(&mut s, &mut buf)
        .await
        .unwrap_or_else(|| panic!("closed"));
    assert_eq!(f.header.status, Status::UnknownCommand);

    // The refusals were counted; the connection lived through them.
    let c = or_panic(connect(&node.addr, Some(&admin)).await);
    let stat = or_panic(c.stat_value().await);
    assert!(stat["unauthorized"].as_u64().unwrap_or(0) > 10, "{stat}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_limited_key_cannot_touch_another_namespace() {
    let dir = or_panic(tempfile::tempdir());
    let photos = add_key(dir.path(), "write", &["photos"]);
    let node = start_with_keys(dir.path(), &[]);
    let c = or_panic(connect(&node.addr, Some(&photos)).await);
    let mine = Target::named("photos", &b"cat.jpg"[..]);
    let theirs = Target::named("docs", &b"cat.jpg"[..]);
    let o = Default::default();
    or_panic(c.put(mine.clone(), Bytes::from_static(b"meow"), o).await);
    assert_eq!(&or_panic(c.get(mine.clone(), 0, None).await)[..], b"meow");
    let unauthorized = |r: Result<(), ClientError>| match r {
        Err(ClientError::Status { status, message }) => {
            assert_eq!(status, Status::Unauthorized, "{message}");
        }
        other => panic!("not refused: {other:?}"),
    };
    let put = c.put(theirs.clone(), Bytes::from_static(b"x"), o).await;
    unauthorized(put.map(|_| ()));
    unauthorized(c.get(theirs.clone(), 0, None).await.map(|_| ()));
    unauthorized(c.remove(theirs, Default::default()).await);
    // By key ID alone (no name for the node to check), by bulk read and by iterate.
    unauthorized(c.get(mine.id(), 0, None).await.map(|_| ()));
    unauthorized(c.bulk_read(vec![mine.id()]).await.map(|_| ()));
    let all = IterateRequest {
        from: [0; 32],
        to: [0xff; 32],
        after: None,
        limit: 10,
    };
    unauthorized(c.iterate(all).await.map(|_| ()));
    // The CLI sends names: its own namespace works, another is refused.
    let cli = |ns: &str, args: &[&str]| -> Output {
        or_panic(
            Process::new(env!("CARGO_BIN_EXE_ringblob"))
                .args(["--remote", &node.addr, "--namespace", ns])
                .env("RINGBLOB_KEY", photos.to_text())
                .args(args)
                .output(),
        )
    };
    let got = cli("photos", &["get", "cat.jpg"]);
    assert_eq!(
        got.stdout,
        b"meow",
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    let refused = cli("docs", &["get", "cat.jpg"]);
    assert_ne!(refused.status.code(), Some(0));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("UNAUTHORIZED") && err.contains("photos"),
        "{err}"
    );
}

/// A raw connection, from `local` (an address on the loopback network).
async fn raw(addr: &str, local: &str) -> TcpStream {
    let socket = or_panic(TcpSocket::new_v4());
    or_panic(socket.bind(or_panic(format!("{local}:0").parse())));
    or_panic(socket.connect(or_panic(addr.parse())).await)
}

async fn send(s: &mut TcpStream, req: &Request, trans: u64) {
    let mut out = BytesMut::new();
    or_panic(req.encode(trans, [0; 32], 0, &mut out));
    or_panic(s.write_all(&out).await);
}

/// The next frame, or `None` once the node closed the connection.
async fn next(s: &mut TcpStream, buf: &mut BytesMut) -> Option<Frame> {
    loop {
        if let Some(f) = or_panic(decode_frame(buf)) {
            return Some(f);
        }
        let read = tokio::time::timeout(Duration::from_secs(10), s.read_buf(buf)).await;
        match or_panic(read) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

async fn reply(s: &mut TcpStream, buf: &mut BytesMut) -> Reply {
    let f = next(s, buf).await.unwrap_or_else(|| panic!("closed"));
    or_panic(Reply::decode(&f))
}

/// Handshakes offering `attempt`'s key and nonce; the node's handshake reply (or the
/// refusal).
async fn try_offer(
    s: &mut TcpStream,
    buf: &mut BytesMut,
    attempt: &Attempt,
) -> Result<ringblob_protocol::wire::HandshakeReply, Reply> {
    let hs = Request::Handshake(attempt.offer(HandshakeRequest::new("raw")));
    send(s, &hs, 1).await;
    match reply(s, buf).await {
        Reply::Handshake(r) => Ok(r),
        other => Err(other),
    }
}

async fn offer(
    s: &mut TcpStream,
    buf: &mut BytesMut,
    attempt: &Attempt,
) -> ringblob_protocol::wire::HandshakeReply {
    try_offer(s, buf, attempt)
        .await
        .unwrap_or_else(|r| panic!("{r:?}"))
}

/// A full authenticated exchange with `key`; the AUTH reply, or the handshake's refusal.
async fn authenticate(s: &mut TcpStream, key: &AccessKey) -> Reply {
    let mut buf = BytesMut::new();
    let attempt = Attempt::new(key.clone());
    let hs = match try_offer(s, &mut buf, &attempt).await {
        Ok(hs) => hs,
        Err(refused) => return refused,
    };
    let (proof, _) = or_panic(attempt.prove("raw", &hs));
    send(s, &Request::Auth(AuthRequest { proof }), 2).await;
    reply(s, &mut buf).await
}

fn is_unauthorized(r: &Reply) -> bool {
    matches!(
        r,
        Reply::Error {
            status: Status::Unauthorized,
            ..
        }
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_handshakes_are_refused_and_the_node_keeps_serving_others() {
    let dir = or_panic(tempfile::tempdir());
    let key = add_key(dir.path(), "write", &[]);
    let node = start_with_keys(dir.path(), &[]);
    let addr = node.addr.clone();

    // A version-1 client is told why.
    let mut s = raw(&addr, "127.0.0.1").await;
    let mut buf = BytesMut::new();
    let mut v1 = HandshakeRequest::new("old");
    v1.max_version = 1;
    send(&mut s, &Request::Handshake(v1), 1).await;
    match reply(&mut s, &mut buf).await {
        Reply::Error { status, message } => {
            assert_eq!(status, Status::Unauthorized);
            assert!(message.contains("version 2"), "{message}");
        }
        other => panic!("{other:?}"),
    }

    // The wrong secret.
    let wrong = AccessKey {
        id: key.id.clone(),
        secret: [9; 32],
    };
    let r = connect(&addr, Some(&wrong)).await;
    let Err(ClientError::Auth(msg)) = r else {
        panic!("accepted a wrong secret: {:?}", r.map(|_| ()))
    };
    assert!(msg.contains("authentication failed"), "{msg}");

    // A captured exchange replayed: same client nonce, the old proof.
    let attempt = Attempt::new(key.clone());
    let mut first = raw(&addr, "127.0.0.1").await;
    let mut b1 = BytesMut::new();
    let hs = offer(&mut first, &mut b1, &attempt).await;
    let (proof, _) = or_panic(attempt.prove("raw", &hs));
    send(&mut first, &Request::Auth(AuthRequest { proof }), 2).await;
    assert!(matches!(reply(&mut first, &mut b1).await, Reply::Auth(_)));
    let mut again = raw(&addr, "127.0.0.1").await;
    let mut b2 = BytesMut::new();
    let hs2 = offer(&mut again, &mut b2, &attempt).await;
    assert_ne!(
        hs.node_nonce, hs2.node_nonce,
        "a fresh node nonce per connection"
    );
    send(&mut again, &Request::Auth(AuthRequest { proof }), 2).await;
    assert!(is_unauthorized(&reply(&mut again, &mut b2).await));
    assert!(
        next(&mut again, &mut b2).await.is_none(),
        "closed after a failure"
    );

    // A truncated handshake, and one that never sends its proof.
    let mut cut = raw(&addr, "127.0.0.1").await;
    let mut out = BytesMut::new();
    or_panic(Request::Handshake(HandshakeRequest::new("cut")).encode(1, [0; 32], 0, &mut out));
    or_panic(cut.write_all(&out[..out.len() / 2]).await);
    drop(cut);
    let mut silent = raw(&addr, "127.0.0.1").await;
    let _ = offer(
        &mut silent,
        &mut BytesMut::new(),
        &Attempt::new(key.clone()),
    )
    .await;

    // A flood of failures from 127.0.0.2: blocked after a burst; 127.0.0.1 still served.
    let mut blocked = false;
    for _ in 0..20 {
        let mut f = raw(&addr, "127.0.0.2").await;
        let r = authenticate(&mut f, &wrong).await;
        if let Reply::Error { message, .. } = &r {
            blocked |= message.contains("too many failed");
        }
        if blocked {
            break;
        }
        assert!(is_unauthorized(&r), "{r:?}");
    }
    assert!(blocked, "a flood of failures is rate-limited");
    let mut f = raw(&addr, "127.0.0.2").await;
    let mut fb = BytesMut::new();
    send(
        &mut f,
        &Request::Handshake(Attempt::new(key.clone()).offer(HandshakeRequest::new("x"))),
        1,
    )
    .await;
    assert!(
        is_unauthorized(&reply(&mut f, &mut fb).await),
        "blocked before any proof"
    );
    let c = or_panic(connect(&addr, Some(&key)).await);
    or_panic(
        c.put([1; 32], Bytes::from_static(b"served"), Default::default())
            .await,
    );
    let mut good = raw(&addr, "127.0.0.1").await;
    assert!(matches!(
        authenticate(&mut good, &key).await,
        Reply::Auth(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_keys_and_closes_a_removed_keys_connections() {
    let dir = or_panic(tempfile::tempdir());
    let old = add_key(dir.path(), "write", &[]);
    let node = start_with_keys(dir.path(), &[]);
    let mut held = raw(&node.addr, "127.0.0.1").await;
    assert!(matches!(
        authenticate(&mut held, &old).await,
        Reply::Auth(_)
    ));
    let new = add_key(dir.path(), "read", &[]);
    assert!(
        connect(&node.addr, Some(&new)).await.is_err(),
        "not before SIGHUP"
    );
    keys(dir.path(), &["remove", &old.id]);
    let hup = Process::new("kill")
        .args(["-HUP", &node.child.id().to_string()])
        .status();
    assert!(or_panic(hup).success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let c = loop {
        match connect(&node.addr, Some(&new)).await {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("the new key is not accepted after SIGHUP: {e}"),
        }
    };
    or_panic(c.ping().await);
    // The removed key's open connection is closed, without it sending anything.
    let mut buf = BytesMut::new();
    assert!(next(&mut held, &mut buf).await.is_none(), "still open");
    assert!(connect(&node.addr, Some(&old)).await.is_err());
}

/// The CLI's `stat` against `addr` with `args`: exit code and stderr.
fn cli_stat(addr: &str, args: &[&str]) -> (Option<i32>, String) {
    let out = or_panic(
        Process::new(env!("CARGO_BIN_EXE_ringblob"))
            .args(["--remote", addr, "--timeout", "5"])
            .args(args)
            .arg("stat")
            .output(),
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_else(|| panic!("path"))
}

#[test]
fn tls_with_keys_and_clear_errors_for_every_mismatch() {
    let dir = or_panic(tempfile::tempdir());
    let d = dir.path();
    let ca = Ca::new(d, "ca");
    let other_ca = Ca::new(d, "other-ca");
    let server = ca.issue(d, "node", false);
    let expired = ca.issue(d, "expired", true);
    let admin = add_key(&d.join("data"), "admin", &[]);
    let tls_node = NodeProcess::start(
        &d.join("data"),
        &[
            "--backend",
            "mem",
            "--tls-cert",
            path(&server.cert),
            "--tls-key",
            path(&server.key),
        ],
    );
    let key = admin.to_text();
    let trusted = ["--key", &key, "--tls-ca", path(&ca.pem)];
    let (code, err) = cli_stat(&tls_node.addr, &trusted);
    assert_eq!(code, Some(0), "{err}");

    let started = Instant::now();
    let (code, err) = cli_stat(&tls_node.addr, &["--key", &key]);
    assert_ne!(code, Some(0));
    assert!(err.contains("requires TLS"), "plaintext to TLS: {err}");
    let (code, err) = cli_stat(
        &tls_node.addr,
        &["--key", &key, "--tls-ca", path(&other_ca.pem)],
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("TLS handshake failed"), "wrong CA: {err}");

    let plain = NodeProcess::start(&d.join("plain"), &["--backend", "mem"]);
    let (code, err) = cli_stat(&plain.addr, &["--tls-ca", path(&ca.pem)]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("TLS handshake failed"),
        "TLS to plaintext: {err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "errors, not hangs"
    );

    let old = NodeProcess::start(
        &d.join("old"),
        &[
            "--backend",
            "mem",
            "--tls-cert",
            path(&expired.cert),
            "--tls-key",
            path(&expired.key),
        ],
    );
    let (code, err) = cli_stat(&old.addr, &["--tls-ca", path(&ca.pem)]);
    assert_ne!(code, Some(0));
    assert!(
        err.to_lowercase().contains("expired"),
        "expired certificate: {err}"
    );

    // Mutual TLS: a client without a certificate from the CA is refused.
    let client = ca.issue(d, "client", false);
    let stranger = other_ca.issue(d, "stranger", false);
    let mutual = NodeProcess::start(
        &d.join("mutual"),
        &[
            "--backend",
            "mem",
            "--tls-cert",
            path(&server.cert),
            "--tls-key",
            path(&server.key),
            "--tls-client-ca",
            path(&ca.pem),
        ],
    );
    let (code, err) = cli_stat(&mutual.addr, &["--tls-ca", path(&ca.pem)]);
    assert_ne!(code, Some(0), "no client certificate");
    assert!(err.contains("Certificate"), "the TLS alert is shown: {err}");
    let as_stranger = [
        "--tls-ca",
        path(&ca.pem),
        "--tls-cert",
        path(&stranger.cert),
        "--tls-key",
        path(&stranger.key),
    ];
    assert_ne!(cli_stat(&mutual.addr, &as_stranger).0, Some(0), "wrong CA");
    let as_client = [
        "--tls-ca",
        path(&ca.pem),
        "--tls-cert",
        path(&client.cert),
        "--tls-key",
        path(&client.key),
    ];
    let (code, err) = cli_stat(&mutual.addr, &as_client);
    assert_eq!(code, Some(0), "{err}");
}

/// Protected mode: beyond loopback, keys (or TLS) are enough; without either the node
/// refuses unless `--insecure` (`cli.rs`).
#[test]
fn a_node_with_keys_or_tls_listens_beyond_loopback() {
    let dir = or_panic(tempfile::tempdir());
    add_key(&dir.path().join("keyed"), "admin", &[]);
    let started = |data: &str, extra: &[&str]| {
        let mut child = or_panic(
            Process::new(env!("CARGO_BIN_EXE_ringblob-node"))
                .args(["--listen", "0.0.0.0:0", "--backend", "mem", "--data-dir"])
                .arg(dir.path().join(data))
                .args(extra)
                .stderr(std::process::Stdio::piped())
                .spawn(),
        );
        let stderr = child.stderr.take().unwrap_or_else(|| panic!("stderr"));
        let mut seen = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            seen.push_str(&line);
            if line.contains("listening on") {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(seen.contains("listening on"), "{seen}");
        assert!(!seen.contains("insecure"), "{seen}");
    };
    started("keyed", &[]);
    let ca = Ca::new(dir.path(), "ca");
    let cert = ca.issue(dir.path(), "node", false);
    started(
        "tls",
        &["--tls-cert", path(&cert.cert), "--tls-key", path(&cert.key)],
    );
}
