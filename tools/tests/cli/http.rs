//! The HTTP gateway driven by curl: object routes with ranges, conditional requests,
//! content types and metadata, chunked uploads, listings and errors; values shared with the
//! CLI byte for byte; and, on a node with keys, authentication and the key's role.

use std::path::Path;
use std::process::Command;

use crate::node_process::NodeProcess;

fn or_panic<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// A curl reply: status code, headers (lower-case names), body.
struct Reply {
    code: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `curl -X METHOD URL ARGS`, the body to `dir/body`, headers to `dir/headers`.
fn curl(dir: &Path, method: &str, url: &str, args: &[&str]) -> Reply {
    let (body, heads) = (dir.join("body"), dir.join("headers"));
    let out = or_panic(
        Command::new("curl")
            .args(["-s", "-S", "-X", method, "-o"])
            .arg(&body)
            .arg("-D")
            .arg(&heads)
            .args(["-w", "%{http_code}"])
            .args(if method == "HEAD" {
                &["-I"][..]
            } else {
                &[][..]
            })
            .args(args)
            .arg(url)
            .output(),
    );
    let code = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(
        code > 0,
        "curl {method} {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let heads = std::fs::read_to_string(&heads).unwrap_or_default();
    let headers = heads
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        code,
        headers,
        body: std::fs::read(&body).unwrap_or_default(),
    }
}

fn ringblob(addr: &str, args: &[&str], stdin: &Path) -> std::process::Output {
    or_panic(
        Command::new(env!("CARGO_BIN_EXE_ringblob"))
            .args(["--remote", addr])
            .args(args)
            .stdin(or_panic(std::fs::File::open(stdin)))
            .output(),
    )
}

#[test]
fn objects_over_http_with_ranges_conditions_metadata_and_listings() {
    let dir = or_panic(tempfile::tempdir());
    let d = dir.path();
    let (node, http) = NodeProcess::start_http(&d.join("data"), &[]);
    let base = format!("http://{http}");
    let file = d.join("in.txt");
    or_panic(std::fs::write(&file, b"0123456789abcdefghij"));
    let url = format!("{base}/photos/trip/day1.txt");
    let put = curl(
        d,
        "PUT",
        &url,
        &[
            "--data-binary",
            &format!("@{}", file.display()),
            "-H",
            "Content-Type: text/plain",
            "-H",
            "x-amz-meta-camera: x100",
        ],
    );
    assert_eq!(put.code, 200, "{}", put.text());
    let etag = put.header("etag").unwrap_or_default().to_string();
    assert!(etag.starts_with('"') && etag.len() > 2, "{etag}");

    let get = curl(d, "GET", &url, &[]);
    assert_eq!(
        (get.code, get.text().as_str()),
        (200, "0123456789abcdefghij")
    );
    assert_eq!(get.header("content-type"), Some("text/plain"));
    assert_eq!(get.header("x-amz-meta-camera"), Some("x100"));
    assert_eq!(get.header("etag"), Some(etag.as_str()));
    assert_eq!(get.header("accept-ranges"), Some("bytes"));
    let modified = get.header("last-modified").unwrap_or_default().to_string();
    assert!(modified.ends_with("GMT"), "{modified}");

    let head = curl(d, "HEAD", &url, &[]);
    assert_eq!(
        (head.code, head.header("content-length")),
        (200, Some("20"))
    );
    assert!(!head.text().contains("0123"), "HEAD sends no body");
    // A whole GET is read in process (no lookup: the value's record describes it), a HEAD
    // through a client with a lookup: the same description.
    assert_eq!(head.header("etag"), Some(etag.as_str()));
    assert_eq!(head.header("last-modified"), Some(modified.as_str()));

    // Ranges: the three forms, past the end, unsatisfiable, several.
    for (range, want, content_range) in [
        ("bytes=2-5", "2345", "bytes 2-5/20"),
        ("bytes=15-", "fghij", "bytes 15-19/20"),
        ("bytes=-3", "hij", "bytes 17-19/20"),
        ("bytes=18-100", "ij", "bytes 18-19/20"),
    ] {
        let r = curl(d, "GET", &url, &["-H", &format!("Range: {range}")]);
        assert_eq!((r.code, r.text().as_str()), (206, want), "{range}");
        assert_eq!(r.header("content-range"), Some(content_range), "{range}");
    }
    let r = curl(d, "GET", &url, &["-H", "Range: bytes=20-"]);
    assert_eq!(
        (r.code, r.header("content-range")),
        (416, Some("bytes */20"))
    );
    let r = curl(d, "GET", &url, &["-H", "Range: bytes=0-1,4-5"]);
    assert_eq!(
        (r.code, r.body.len()),
        (200, 20),
        "several ranges: the whole body"
    );

    // Conditional requests.
    let inm = format!("If-None-Match: {etag}");
    assert_eq!(curl(d, "GET", &url, &["-H", &inm]).code, 304);
    assert_eq!(
        curl(d, "GET", &url, &["-H", "If-None-Match: \"other\""]).code,
        200
    );
    assert_eq!(
        curl(
            d,
            "GET",
            &url,
            &["-H", &format!("If-Modified-Since: {modified}")]
        )
        .code,
        304
    );
    assert_eq!(
        curl(d, "GET", &url, &["-H", "If-Match: \"other\""]).code,
        412
    );
    assert_eq!(
        curl(d, "GET", &url, &["-H", &format!("If-Match: {etag}")]).code,
        200
    );
    let create_only = ["--data-binary", "x", "-H", "If-None-Match: *"];
    assert_eq!(curl(d, "PUT", &url, &create_only).code, 412, "it exists");
    let new_url = format!("{base}/photos/trip/day2.txt");
    assert_eq!(
        curl(d, "PUT", &new_url, &create_only).code,
        200,
        "it did not"
    );
    let stale = ["--data-binary", "y", "-H", "If-Match: \"stale\""];
    assert_eq!(curl(d, "PUT", &url, &stale).code, 412);

    // A chunked upload (no Content-Length), read back by the CLI byte for byte.
    let big = d.join("big.bin");
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    or_panic(std::fs::write(&big, &bytes));
    let chunked = [
        "-T",
        &big.display().to_string(),
        "-H",
        "Transfer-Encoding: chunked",
    ];
    let big_url = format!("{base}/photos/big.bin");
    assert_eq!(curl(d, "PUT", &big_url, &chunked).code, 200);
    let out = ringblob(
        &node.addr,
        &["--namespace", "photos", "get", "big.bin"],
        &file,
    );
    assert!(out.status.success());
    assert!(out.stdout == bytes, "the CLI reads what HTTP wrote");
    // And HTTP reads what the CLI wrote, listed by both.
    let cli_put = ringblob(
        &node.addr,
        &["--namespace", "photos", "put", "cli.txt"],
        &file,
    );
    assert!(cli_put.status.success());
    let got = curl(d, "GET", &format!("{base}/photos/cli.txt"), &[]);
    assert_eq!((got.code, got.body), (200, or_panic(std::fs::read(&file))));

    let list = curl(d, "GET", &format!("{base}/photos/?prefix=trip/"), &[]);
    let json: serde_json::Value = or_panic(serde_json::from_slice(&list.body));
    let names: Vec<_> = json["names"].as_array().cloned().unwrap_or_default();
    let names: Vec<_> = names
        .iter()
        .map(|n| n["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["trip/day1.txt", "trip/day2.txt"], "{json}");
    assert_eq!(json["names"][0]["content_type"], "text/plain");
    let page = curl(d, "GET", &format!("{base}/photos/?limit=2"), &[]);
    let json: serde_json::Value = or_panic(serde_json::from_slice(&page.body));
    assert_eq!(json["next"], "cli.txt", "{json}");
    let spaces = curl(d, "GET", &format!("{base}/"), &[]);
    assert_eq!(
        spaces.text().trim(),
        r#"{"namespaces":["photos"],"next":null}"#
    );

    // Columns by query parameter.
    let thumb = format!("{url}?column=2");
    assert_eq!(
        curl(d, "PUT", &thumb, &["--data-binary", "small"]).code,
        200
    );
    assert_eq!(curl(d, "GET", &thumb, &[]).text(), "small");
    assert_eq!(
        curl(d, "GET", &url, &[]).body.len(),
        20,
        "column 0 unchanged"
    );

    // Errors are status codes with a body, never a dropped connection.
    let missing = curl(d, "GET", &format!("{base}/photos/none"), &[]);
    assert_eq!(missing.code, 404);
    assert!(missing.text().starts_with("404"), "{}", missing.text());
    assert_eq!(
        curl(
            d,
            "PUT",
            &format!("{url}?durability=forever"),
            &["--data-binary", "z"]
        )
        .code,
        400
    );
    assert_eq!(curl(d, "GET", &format!("{url}?column=x"), &[]).code, 400);
    let huge_meta = format!("x-amz-meta-big: {}", "m".repeat(3000));
    assert_eq!(
        curl(d, "PUT", &url, &["--data-binary", "z", "-H", &huge_meta]).code,
        400
    );

    // DELETE removes the name from listings too.
    assert_eq!(curl(d, "DELETE", &url, &[]).code, 204);
    assert_eq!(curl(d, "GET", &url, &[]).code, 404);
    assert_eq!(curl(d, "DELETE", &url, &[]).code, 404);
    let list = curl(d, "GET", &format!("{base}/photos/?prefix=trip/"), &[]);
    assert!(!list.text().contains("day1"), "{}", list.text());
    assert_eq!(node.terminate(), Some(0));
}

fn add_key(data: &Path, role: &str, namespaces: &str) -> String {
    let out = or_panic(
        Command::new(env!("CARGO_BIN_EXE_ringblob-node"))
            .args([
                "keys",
                "add",
                "--role",
                role,
                "--namespace",
                namespaces,
                "--data-dir",
            ])
            .arg(data)
            .output(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("rbk-") && l.contains(':'))
        .unwrap_or_else(|| panic!("no ID:SECRET in {text}"))
        .to_string()
}

#[test]
fn a_node_with_keys_serves_http_only_to_keys_with_the_role_and_namespace() {
    let dir = or_panic(tempfile::tempdir());
    let d = dir.path();
    let data = d.join("data");
    let writer = add_key(&data, "write", "photos");
    let reader = add_key(&data, "read", "*");
    let docs_reader = add_key(&data, "read", "docs");
    let (node, http) = NodeProcess::start_http(&data, &[]);
    let url = format!("http://{http}/photos/a.txt");
    let user = |k: &str| k.to_string();
    let put = |auth: &[&str]| {
        let mut args = vec!["--data-binary", "hello"];
        args.extend_from_slice(auth);
        curl(d, "PUT", &url, &args).code
    };
    let no_key = curl(d, "GET", &url, &[]);
    assert_eq!(no_key.code, 401);
    assert!(no_key
        .header("www-authenticate")
        .is_some_and(|v| v.starts_with("Basic")));
    let (id, _) = writer.split_once(':').unwrap_or_default();
    let wrong = format!("{id}:{}", "0".repeat(64));
    assert_eq!(put(&["-u", &wrong]), 401, "wrong secret");
    assert_eq!(put(&["-u", &user(&writer)]), 200, "Basic");
    let bearer = format!("Authorization: Bearer {writer}");
    assert_eq!(put(&["-H", &bearer]), 200, "Bearer");
    assert_eq!(put(&["-u", &user(&reader)]), 403, "a read key cannot write");
    let got = curl(d, "GET", &url, &["-u", &user(&reader)]);
    assert_eq!((got.code, got.text().as_str()), (200, "hello"));
    // The node owns the key and serves small reads in process: the key's namespaces still
    // apply there.
    let refused = curl(d, "GET", &url, &["-u", &user(&docs_reader)]);
    assert_eq!(refused.code, 403, "{}", refused.text());
    assert!(!refused.text().contains("hello"));
    let elsewhere = format!("http://{http}/docs/a.txt");
    let other = curl(
        d,
        "PUT",
        &elsewhere,
        &["--data-binary", "x", "-u", &user(&writer)],
    );
    assert_eq!(
        other.code,
        403,
        "the writer is limited to photos: {}",
        other.text()
    );
    let listed = curl(
        d,
        "GET",
        &format!("http://{http}/photos/"),
        &["-u", &user(&reader)],
    );
    assert!(listed.text().contains("a.txt"), "{}", listed.text());
    assert_eq!(node.terminate(), Some(0));
}

/// A client that reads a long body slowly does not hold up other requests: the long body
/// is read from the node over a connection of its own (the shared one would stop at its
/// full stream channel, and every request behind it would wait).
#[test]
fn a_slow_reader_of_a_long_body_holds_up_no_other_request() {
    let dir = or_panic(tempfile::tempdir());
    let d = dir.path();
    let (node, http) = NodeProcess::start_http(&d.join("data"), &[]);
    let big = d.join("big");
    or_panic(std::fs::write(&big, vec![7u8; 48 << 20]));
    let url = |name: &str| format!("http://{http}/media/{name}");
    let big_path = big.display().to_string();
    assert_eq!(curl(d, "PUT", &url("big"), &["-T", &big_path]).code, 200);
    let put = curl(
        d,
        "PUT",
        &url("small"),
        &["--data-binary", "0123456789abcdef"],
    );
    assert_eq!(put.code, 200);
    let mut slow = or_panic(
        Command::new("curl")
            .args(["-s", "--limit-rate", "64k", "-o", "/dev/null"])
            .arg(url("big"))
            .spawn(),
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    for _ in 0..5 {
        // A range goes through the node's client (not the in-process path), as the long
        // body does.
        let got = curl(
            d,
            "GET",
            &url("small"),
            &["-m", "20", "-H", "Range: bytes=2-5"],
        );
        assert_eq!((got.code, got.text().as_str()), (206, "2345"));
        let whole = curl(d, "GET", &url("small"), &["-m", "20"]);
        assert_eq!(whole.text(), "0123456789abcdef");
    }
    assert!(
        slow.try_wait().ok().flatten().is_none(),
        "the slow read ended early"
    );
    let _ = slow.kill();
    let _ = slow.wait();
    assert_eq!(node.terminate(), Some(0));
}

#[test]
fn a_body_shorter_than_its_content_length_stores_nothing() {
    use std::io::{Read, Write};
    let dir = or_panic(tempfile::tempdir());
    let d = dir.path();
    let (node, http) = NodeProcess::start_http(&d.join("data"), &[]);
    let mut s = or_panic(std::net::TcpStream::connect(&http));
    let head = format!("PUT /media/short HTTP/1.1\r\nHost: {http}\r\nContent-Length: 100\r\n\r\n");
    or_panic(s.write_all(head.as_bytes()));
    or_panic(s.write_all(&[b'x'; 50]));
    or_panic(s.shutdown(std::net::Shutdown::Write));
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer); // a 400, or the connection closed
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    let get = curl(d, "GET", &format!("http://{http}/media/short"), &[]);
    assert_eq!(get.code, 404, "a cut body stored something: {}", get.text());
    assert_eq!(node.terminate(), Some(0));
}

#[test]
fn removals_check_conditions_and_bad_paths_are_refused_with_a_status() {
    let dir = or_panic(tempfile::tempdir());
    let d = dir.path();
    let (node, http) = NodeProcess::start_http(&d.join("data"), &[]);
    let url = format!("http://{http}/ns1/cond");
    let put = curl(d, "PUT", &url, &["--data-binary", "keep me"]);
    assert_eq!(put.code, 200, "{}", put.text());
    let etag = put.header("etag").unwrap_or_default().to_string();

    // DELETE honours If-Match and If-Unmodified-Since (RFC 9110 §13.1).
    let refused = curl(d, "DELETE", &url, &["-H", "If-Match: \"abc\""]);
    assert_eq!(refused.code, 412, "{}", refused.text());
    let old = "If-Unmodified-Since: Sat, 01 Jan 2000 00:00:00 GMT";
    assert_eq!(curl(d, "DELETE", &url, &["-H", old]).code, 412);
    assert_eq!(curl(d, "GET", &url, &[]).text(), "keep me");
    let matching = format!("If-Match: {etag}");
    assert_eq!(curl(d, "DELETE", &url, &["-H", &matching]).code, 204);
    assert_eq!(curl(d, "GET", &url, &[]).code, 404);
    let gone = curl(d, "DELETE", &url, &["-H", &matching]);
    assert_eq!(gone.code, 412, "If-Match on nothing: {}", gone.text());

    // A name over the protocol's limit: 400 whatever the method.
    let long = format!("http://{http}/ns1/{}", "n".repeat(8000));
    for method in ["GET", "HEAD", "DELETE", "PUT"] {
        let data: &[&str] = if method == "PUT" {
            &["--data-binary", "x"]
        } else {
            &[]
        };
        let r = curl(d, method, &long, data);
        assert_eq!(r.code, 400, "{method}: {}", r.text());
    }
    // A path that is not UTF-8 once decoded.
    let bad = curl(
        d,
        "PUT",
        &format!("http://{http}/ns1/%FF"),
        &["--data-binary", "x"],
    );
    assert_eq!(bad.code, 400, "{}", bad.text());
    // A listing takes GET or HEAD only; an object no other method; both say which.
    let listing = curl(
        d,
        "PUT",
        &format!("http://{http}/ns1/"),
        &["--data-binary", "x"],
    );
    assert_eq!(listing.code, 405, "{}", listing.text());
    assert_eq!(listing.header("allow"), Some("GET, HEAD"));
    assert_eq!(
        curl(d, "HEAD", &format!("http://{http}/ns1/"), &[]).code,
        200
    );
    let patch = curl(d, "PATCH", &url, &[]);
    assert_eq!(patch.code, 405);
    assert_eq!(patch.header("allow"), Some("GET, HEAD, PUT, DELETE"));

    // If-Range: the range only for the current value, else the whole value.
    let put = curl(d, "PUT", &url, &["--data-binary", "0123456789"]);
    let etag = put.header("etag").unwrap_or_default().to_string();
    let current = format!("If-Range: {etag}");
    let part = curl(d, "GET", &url, &["-H", "Range: bytes=0-1", "-H", &current]);
    assert_eq!((part.code, part.text().as_str()), (206, "01"));
    let stale = ["-H", "Range: bytes=0-1", "-H", "If-Range: \"abc\""];
    let whole = curl(d, "GET", &url, &stale);
    assert_eq!((whole.code, whole.text().as_str()), (200, "0123456789"));

    // A metadata name given twice keeps both values.
    let twice = [
        "--data-binary",
        "m",
        "-H",
        "x-amz-meta-dup: a",
        "-H",
        "x-amz-meta-dup: b",
    ];
    assert_eq!(curl(d, "PUT", &url, &twice).code, 200);
    assert_eq!(
        curl(d, "HEAD", &url, &[]).header("x-amz-meta-dup"),
        Some("a,b")
    );

    // A body declared longer than an object can be is refused before it is sent.
    assert_eq!(
        early_answer(&http, "PUT /ns1/huge", 76_965_813_944_320),
        "HTTP/1.1 413"
    );
    assert_eq!(node.terminate(), Some(0));
}

/// The status line a request with `Expect: 100-continue` and `Content-Length: length` gets
/// before sending any of its body (its first 12 bytes).
fn early_answer(http: &str, request_line: &str, length: u64) -> String {
    use std::io::{Read, Write};
    let mut s = or_panic(std::net::TcpStream::connect(http));
    let head = format!(
        "{request_line} HTTP/1.1\r\nHost: {http}\r\nContent-Length: {length}\r\nExpect: 100-continue\r\n\r\n"
    );
    or_panic(s.write_all(head.as_bytes()));
    let mut status = [0u8; 12];
    or_panic(s.read_exact(&mut status));
    String::from_utf8_lossy(&status).into_owned()
}

/// A streamed PUT that misses its write quorum answers 503, yet the group that stored the
/// value also has its name record: what that group serves by name it lists.
#[test]
fn a_put_that_misses_its_quorum_leaves_no_unlisted_object() {
    let dir = or_panic(tempfile::tempdir());
    let d = dir.path();
    let (node1, http) = NodeProcess::start_http(&d.join("n1"), &["--group", "1"]);
    let node2 = NodeProcess::start(&d.join("n2"), &["--group", "2", "--seed", &node1.addr]);
    let empty = d.join("empty");
    or_panic(std::fs::write(&empty, b""));
    // Until a gateway write reaches both groups (node 2 read directly).
    let probe = format!("http://{http}/ns/probe");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let put = curl(d, "PUT", &probe, &["--data-binary", "p"]);
        let local = ["--namespace", "ns", "--groups", "2", "get", "probe"];
        if put.code == 200 && ringblob(&node2.addr, &local, &empty).status.success() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "group 2 never took a write"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    node2.kill9();

    let big: Vec<u8> = (0..12u32 << 20).map(|i| (i % 251) as u8).collect();
    let file = d.join("big");
    or_panic(std::fs::write(&file, &big));
    let url = format!("http://{http}/ns/big");
    let put = curl(
        d,
        "PUT",
        &url,
        &["--data-binary", &format!("@{}", file.display())],
    );
    assert_eq!(put.code, 503, "{}", put.text());
    let got = curl(d, "GET", &url, &[]);
    assert_eq!(got.code, 200);
    assert!(got.body == big, "the value group 1 stored");
    let listing = curl(d, "GET", &format!("http://{http}/ns/?prefix=big"), &[]);
    assert!(
        listing.text().contains("\"name\":\"big\""),
        "{}",
        listing.text()
    );
    assert_eq!(node1.terminate(), Some(0));
}
