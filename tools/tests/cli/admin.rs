//! The admin listener of a real node: `/health`, `/ready`, and `/metrics` in the Prometheus
//! text format (checked by a parser here, and by `promtool check metrics` where installed),
//! whose request counters move by exactly the requests made, by command, status and route,
//! and whose checksum failures count a damaged read. JSON logs are JSON lines.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringblob_engine::Key;
use ringblob_protocol::client::{Client, ClientConfig, PutOptions};

use crate::node_process::NodeProcess;

fn or_panic<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// `GET path` over HTTP/1.1: (status code, body).
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = or_panic(std::net::TcpStream::connect(addr));
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    or_panic(s.write_all(req.as_bytes()));
    let mut raw = String::new();
    or_panic(s.read_to_string(&mut raw));
    status_and_body(&raw)
}

/// An HTTP/1.1 response's status code (0 if there is none) and body.
pub fn status_and_body(raw: &str) -> (u16, String) {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, body.to_string())
}

/// A sample's name with its labels sorted, e.g. `x{a="1",b="2"}`.
type Series = String;

/// Parses the Prometheus text format strictly enough to catch a malformed exposition:
/// every line is a `# HELP`/`# TYPE` comment or `name{labels} value`, every sample's family
/// has a TYPE, values are numbers. Returns every sample.
fn parse_exposition(text: &str) -> BTreeMap<Series, f64> {
    let mut types = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut w = rest.splitn(3, ' ');
            let (kind, name, what) = (w.next(), w.next(), w.next());
            assert!(matches!(kind, Some("HELP" | "TYPE")), "bad comment: {line}");
            let name = name.unwrap_or_else(|| panic!("bad comment: {line}"));
            if kind == Some("TYPE") {
                let t = what.unwrap_or_default();
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                    "bad type: {line}"
                );
                types.insert(name.to_string(), t.to_string());
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let name = series.split('{').next().unwrap_or_default();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name: {line}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(*f)))
            .unwrap_or(name);
        assert!(types.contains_key(family), "no TYPE for {name}");
        let labels = series.strip_prefix(name).unwrap_or_default();
        if !labels.is_empty() {
            assert!(
                labels.starts_with('{') && labels.ends_with('}'),
                "bad labels: {line}"
            );
        }
        samples.insert(series.to_string(), value);
    }
    samples
}

fn metric(samples: &BTreeMap<Series, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

fn requests(command: &str, status: &str, route: &str) -> String {
    format!(
        "ringblob_request_duration_seconds_count{{command=\"{command}\",route=\"{route}\",status=\"{status}\"}}"
    )
}

fn scrape(admin: &str) -> (String, BTreeMap<Series, f64>) {
    let (code, body) = http_get(admin, "/metrics");
    assert_eq!(code, 200, "{body}");
    let samples = parse_exposition(&body);
    (body, samples)
}

#[test]
fn health_ready_and_metrics_that_count_exactly_what_happened() {
    let dir = or_panic(tempfile::tempdir());
    let data = dir.path().join("data");
    let node = NodeProcess::start(&data, &[]);
    let admin = node
        .admin
        .clone()
        .unwrap_or_else(|| panic!("no `admin interface on` line"));
    assert_eq!(http_get(&admin, "/health"), (200, "ok\n".to_string()));
    // Ready once the node has joined its cluster of one.
    let until = Instant::now() + Duration::from_secs(20);
    let ready = loop {
        let r = http_get(&admin, "/ready");
        if r.0 == 200 || Instant::now() > until {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(ready, (200, "ready\n".to_string()));
    assert_eq!(http_get(&admin, "/nothing").0, 404);

    let (_, before) = scrape(&admin);
    let rt = or_panic(tokio::runtime::Runtime::new());
    let value = Bytes::from(vec![b'Q'; 200 << 10]);
    rt.block_on(async {
        let c = or_panic(Client::connect(&node.addr, ClientConfig::default()).await);
        for i in 0..5 {
            let k = Key::from_name(b"m", format!("k{i}").as_bytes()).0;
            assert!(c
                .put(k, Bytes::from_static(b"v"), PutOptions::default())
                .await
                .is_ok());
        }
        for i in 0..3 {
            let k = Key::from_name(b"m", format!("k{i}").as_bytes()).0;
            assert!(c.get(k, 0, None).await.is_ok());
        }
        for i in 0..2 {
            let k = Key::from_name(b"m", format!("absent{i}").as_bytes()).0;
            assert!(c.get(k, 0, None).await.is_err());
        }
        let big = Key::from_name(b"m", b"damaged").0;
        assert!(c
            .put(big, value.clone(), PutOptions::default())
            .await
            .is_ok());
    });
    let (text, after) = scrape(&admin);
    let delta = |s: &str| metric(&after, s) - metric(&before, s);
    assert_eq!(delta(&requests("WRITE", "OK", "local")), 6.0, "{text}");
    assert_eq!(delta(&requests("READ", "OK", "local")), 3.0, "{text}");
    assert_eq!(
        delta(&requests("READ", "NOT_FOUND", "local")),
        2.0,
        "{text}"
    );
    assert_eq!(delta(&requests("READ", "OK", "forwarded")), 0.0);
    assert!(delta("ringblob_received_bytes_total") >= (200 << 10) as f64);
    assert!(metric(&after, "ringblob_backend_keys") >= 6.0, "{text}");
    assert_eq!(metric(&after, "ringblob_up"), 1.0);
    assert!(metric(&after, "ringblob_disk_free_bytes") > 0.0, "{text}");

    // A flipped byte in the stored value: the read fails, and is counted once.
    let mut flipped = false;
    for entry in or_panic(std::fs::read_dir(&data)) {
        let path = or_panic(entry).path();
        if path.extension().is_none_or(|e| e != "blob") {
            continue;
        }
        let bytes = or_panic(std::fs::read(&path));
        let run = vec![b'Q'; 4096];
        if let Some(at) = bytes.windows(run.len()).position(|w| w == run) {
            use std::os::unix::fs::FileExt;
            let f = or_panic(std::fs::OpenOptions::new().write(true).open(&path));
            or_panic(f.write_all_at(&[b'Q' ^ 0x01], (at + 100) as u64));
            flipped = true;
        }
    }
    assert!(flipped, "the value was found in a blob file");
    rt.block_on(async {
        let c = or_panic(Client::connect(&node.addr, ClientConfig::default()).await);
        let big = Key::from_name(b"m", b"damaged").0;
        assert!(c.get(big, 0, None).await.is_err());
    });
    let (text, damaged) = scrape(&admin);
    let d = |s: &str| metric(&damaged, s) - metric(&after, s);
    assert_eq!(d("ringblob_checksum_failures_total"), 1.0, "{text}");
    assert_eq!(
        d(&requests("READ", "CHECKSUM_MISMATCH", "local")),
        1.0,
        "{text}"
    );

    // promtool, where installed (CI installs Debian's prometheus package).
    match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            if let Some(mut stdin) = child.stdin.take() {
                or_panic(stdin.write_all(text.as_bytes()));
            }
            let out = or_panic(child.wait_with_output());
            assert!(
                out.status.success(),
                "promtool check metrics: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(e) => println!("promtool not run ({e}); the exposition was checked by the parser"),
    }
}

#[test]
fn json_logs_are_json_lines_and_the_admin_listener_can_be_off() {
    let dir = or_panic(tempfile::tempdir());
    let node = NodeProcess::start_env(
        &dir.path().join("data"),
        &["--log-format", "json", "--admin-listen", "off"],
        &[("RUST_LOG", "info,ringblob::access=debug")],
    );
    assert!(node.admin.is_none(), "no admin listener when off");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringblob"))
        .args(["--remote", &node.addr, "get", "nothing-here"])
        .output();
    assert_eq!(or_panic(out).status.code(), Some(2));
    std::thread::sleep(Duration::from_millis(300));
    let lines = node.logs.lock().map(|l| l.clone()).unwrap_or_default();
    assert!(!lines.is_empty());
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
    assert!(lines.iter().any(|l| l.contains("listening on")));
    // The access log: the GET (a LOOKUP and a READ of the name) with its status.
    let access: Vec<serde_json::Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "ringblob::access")
        .collect();
    assert!(
        access.iter().any(|v| v["fields"]["status"] == "NOT_FOUND"
            && v["fields"]["us"].is_u64()
            && v["fields"]["peer"] == "127.0.0.1"),
        "{access:?}"
    );
}

#[test]
fn a_non_loopback_admin_listener_needs_insecure_on_a_node_with_keys() {
    let dir = or_panic(tempfile::tempdir());
    let data = dir.path().join("data");
    let keys = std::process::Command::new(env!("CARGO_BIN_EXE_ringblob-node"))
        .args(["keys", "add", "--role", "admin", "--data-dir"])
        .arg(&data)
        .output();
    assert!(or_panic(keys).status.success());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringblob-node"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "0.0.0.0:0",
            "--data-dir",
        ])
        .arg(&data)
        .output();
    let out = or_panic(out);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing an admin listener"), "{err}");
}

#[test]
fn a_node_advertises_what_it_is_told_and_never_an_unspecified_address() {
    let dir = or_panic(tempfile::tempdir());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringblob-node"))
        .args(["--listen", "0.0.0.0:0", "--insecure", "--data-dir"])
        .arg(dir.path().join("refused"))
        .output();
    let out = or_panic(out);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without --advertise"), "{err}");

    let node = NodeProcess::start(
        &dir.path().join("data"),
        &[
            "--insecure",
            "--advertise",
            "127.0.0.1:0",
            "--listen",
            "0.0.0.0:0",
        ],
    );
    assert!(node.addr.starts_with("127.0.0.1:"), "{}", node.addr);
    let routes = std::process::Command::new(env!("CARGO_BIN_EXE_ringblob"))
        .args(["--remote", &node.addr, "routes", "--json"])
        .output();
    let routes = or_panic(routes);
    assert!(routes.status.success());
    let table: serde_json::Value = or_panic(serde_json::from_slice(&routes.stdout));
    assert_eq!(table["nodes"][0]["addr"], node.addr.as_str(), "{table}");

    // Host names are accepted.
    let named = NodeProcess::start(&dir.path().join("named"), &["--listen", "localhost:0"]);
    assert!(!named.addr.is_empty());
}

#[test]
fn ping_and_status_report_every_node_and_version_names_the_commit() {
    let dir = or_panic(tempfile::tempdir());
    let node = NodeProcess::start(&dir.path().join("data"), &[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringblob"))
        .args(["--remote", &node.addr, "ping", "--count", "3", "--json"])
        .output();
    let out = or_panic(out);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row: serde_json::Value = or_panic(serde_json::from_slice(&out.stdout));
    assert_eq!(row["node"], node.addr.as_str());
    assert_eq!(row["pings"], 3);
    assert!(row["p50_us"].as_u64().is_some_and(|us| us > 0), "{row}");
    let down = std::process::Command::new(env!("CARGO_BIN_EXE_ringblob"))
        .args(["--remote", "127.0.0.1:1", "--timeout", "2", "ping"])
        .output();
    assert!(!or_panic(down).status.success());
    // status: the node on one screen, and as JSON.
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_ringblob"))
        .args(["--remote", &node.addr, "status", "--json"])
        .output();
    let status = or_panic(status);
    assert!(status.status.success());
    let row: serde_json::Value = or_panic(serde_json::from_slice(&status.stdout));
    assert_eq!(row["addr"], node.addr.as_str());
    assert_eq!(row["alive"], true);
    assert!(
        row["keys"].is_u64() && row["disk_free_bytes"].is_u64(),
        "{row}"
    );
    let screen = std::process::Command::new(env!("CARGO_BIN_EXE_ringblob"))
        .args(["--remote", &node.addr, "status"])
        .output();
    let screen = String::from_utf8_lossy(&or_panic(screen).stdout).to_string();
    assert!(
        screen.contains("1 alive") && screen.contains("idle"),
        "{screen}"
    );
    for bin in [
        env!("CARGO_BIN_EXE_ringblob"),
        env!("CARGO_BIN_EXE_ringblob-node"),
    ] {
        let v = or_panic(std::process::Command::new(bin).arg("--version").output());
        let text = String::from_utf8_lossy(&v.stdout).to_string();
        assert!(text.contains("(commit "), "{text}");
    }
}
