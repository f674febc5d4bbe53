//! The admin listener beyond loopback on a node with keys: HTTPS with the node's
//! certificate; `/metrics` answers an admin key (Bearer or Basic) and refuses no key, a wrong
//! secret (401) and a key of another role (403); `/health` and `/ready` stay open.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use ringblob_protocol::auth::AccessKey;
use ringblob_protocol::tls::TlsClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::certs::Ca;
use crate::node_process::NodeProcess;

fn or_panic<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn add_key(data: &Path, role: &str) -> AccessKey {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringblob-node"))
        .args(["keys", "add", "--role", role, "--data-dir"])
        .arg(data)
        .output();
    let out = or_panic(out);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| AccessKey::parse(l.trim()).ok())
        .unwrap_or_else(|| panic!("no ID:SECRET in {text}"))
}

/// `GET path` over HTTPS to `addr`, trusting `ca`: (status code, body).
async fn https_get(addr: &str, ca: &Path, path: &str, auth: Option<&str>) -> (u16, String) {
    let tls = or_panic(TlsClient::load(Some(ca), None, None));
    let tcp = or_panic(tokio::net::TcpStream::connect(addr).await);
    let mut s = or_panic(tls.connect(tcp, addr).await);
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
    or_panic(s.write_all(req.as_bytes()).await);
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw)).await;
    // A TLS peer that closes without close_notify is fine here: the reply is complete.
    let _ = or_panic(read);
    crate::admin::status_and_body(&String::from_utf8_lossy(&raw))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_metrics_take_an_admin_key_over_https_and_probes_stay_open() {
    let dir = or_panic(tempfile::tempdir());
    let d = dir.path();
    let ca = Ca::new(d, "ca");
    let cert = ca.issue(d, "node", false);
    let data = d.join("data");
    let admin = add_key(&data, "admin");
    let reader = add_key(&data, "read");
    let node = NodeProcess::start(
        &data,
        &[
            "--backend",
            "mem",
            "--admin-listen",
            "0.0.0.0:0",
            "--tls-cert",
            or_panic(cert.cert.to_str().ok_or("path")),
            "--tls-key",
            or_panic(cert.key.to_str().ok_or("path")),
        ],
    );
    let at = node
        .admin
        .clone()
        .unwrap_or_else(|| panic!("no `admin interface on` line"));
    let port = at.rsplit(':').next().unwrap_or_default();
    let addr = format!("127.0.0.1:{port}");

    let (code, body) = https_get(&addr, &ca.pem, "/health", None).await;
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, body) = https_get(&addr, &ca.pem, "/ready", None).await;
        if code == 200 {
            break;
        }
        assert!(Instant::now() < until, "never ready: {code} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let bearer = format!("Bearer {}", admin.to_text());
    let (code, body) = https_get(&addr, &ca.pem, "/metrics", Some(&bearer)).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("# TYPE"), "{body}");
    // Basic: user name the key id, password the secret — `ID:SECRET` once more.
    let basic = base64::engine::general_purpose::STANDARD.encode(admin.to_text());
    let basic = format!("Basic {basic}");
    assert_eq!(
        https_get(&addr, &ca.pem, "/metrics", Some(&basic)).await.0,
        200
    );

    assert_eq!(https_get(&addr, &ca.pem, "/metrics", None).await.0, 401);
    let mut wrong = admin.clone();
    wrong.secret[3] ^= 0x10;
    let wrong = format!("Bearer {}", wrong.to_text());
    assert_eq!(
        https_get(&addr, &ca.pem, "/metrics", Some(&wrong)).await.0,
        401
    );
    let as_reader = format!("Bearer {}", reader.to_text());
    assert_eq!(
        https_get(&addr, &ca.pem, "/metrics", Some(&as_reader))
            .await
            .0,
        403
    );

    // Plain HTTP gets no answer from an HTTPS listener.
    let mut plain = or_panic(tokio::net::TcpStream::connect(&addr).await);
    or_panic(
        plain
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await,
    );
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut got)).await;
    assert!(!String::from_utf8_lossy(&got).contains("200 OK"));
}
