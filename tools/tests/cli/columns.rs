//! `ringblob --column` against a real node: two columns of one name written, read (with a
//! range), described and removed on their own; `rm` without `--column` removes them all.

use std::process::{Command, Output, Stdio};

use crate::node_process::NodeProcess;

fn ringblob(addr: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringblob"))
        .arg("--remote")
        .arg(addr)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn ringblob: {e}"));
    if let Some(mut input) = child.stdin.take() {
        use std::io::Write;
        let _ = input.write_all(stdin);
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait: {e}"))
}

/// Runs and expects `code`; returns stdout.
fn run(addr: &str, args: &[&str], stdin: &[u8], code: i32) -> Vec<u8> {
    let out = ringblob(addr, args, stdin);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn lookup_json(addr: &str, args: &[&str]) -> serde_json::Value {
    serde_json::from_slice(&run(addr, args, b"", 0)).unwrap_or_default()
}

fn two_columns_put_get_lookup_rm(addr: &str) {
    run(addr, &["put", "photo"], b"full image", 0);
    run(addr, &["put", "photo", "--column", "thumb"], b"small", 0);
    run(
        addr,
        &["put", "photo", "--column", "7", "--append"],
        b"seven",
        0,
    );
    assert_eq!(run(addr, &["get", "photo"], b"", 0), b"full image");
    assert_eq!(
        run(addr, &["get", "photo", "--column", "data"], b"", 0),
        b"full image"
    );
    assert_eq!(
        run(addr, &["get", "photo", "--column", "2"], b"", 0),
        b"small"
    );
    let range = [
        "get", "photo", "--column", "thumb", "--offset", "1", "--size", "3",
    ];
    assert_eq!(run(addr, &range, b"", 0), b"mal");
    let thumb = lookup_json(addr, &["lookup", "photo", "--column", "thumb", "--json"]);
    assert_eq!(
        (thumb["column"].as_u64(), thumb["size"].as_u64()),
        (Some(2), Some(5))
    );
    let data = lookup_json(addr, &["lookup", "photo", "--json"]);
    assert_eq!(
        (data["column"].as_u64(), data["size"].as_u64()),
        (Some(0), Some(10))
    );
    let text = String::from_utf8(run(addr, &["lookup", "photo", "--column", "thumb"], b"", 0));
    assert!(text.unwrap_or_default().contains("column       2 (thumb)"));
    run(addr, &["get", "photo", "--column", "meta"], b"", 2);
    run(addr, &["lookup", "photo", "--column", "meta"], b"", 2);
    run(addr, &["rm", "photo", "--column", "thumb"], b"", 0);
    run(addr, &["get", "photo", "--column", "thumb"], b"", 2);
    run(addr, &["rm", "photo", "--column", "thumb"], b"", 2);
    assert_eq!(
        run(addr, &["get", "photo"], b"", 0),
        b"full image",
        "the rest stays"
    );
    assert_eq!(
        run(addr, &["get", "photo", "--column", "7"], b"", 0),
        b"seven"
    );
    run(addr, &["rm", "photo"], b"", 0);
    for column in ["data", "7"] {
        run(addr, &["get", "photo", "--column", column], b"", 2);
    }
    run(addr, &["rm", "photo"], b"", 2);
}

#[test]
fn columns_through_the_cli_on_every_backend() {
    for backend in ["blob", "fs", "mem"] {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let node = NodeProcess::start(dir.path(), &["--backend", backend]);
        eprintln!("backend {backend}");
        two_columns_put_get_lookup_rm(&node.addr);
    }
}

#[test]
fn an_unknown_column_is_a_usage_error_before_connecting() {
    // Port 1 has no node: the argument is refused before any connection is tried.
    for args in [
        &["get", "x", "--column", "thumbnail"][..],
        &["put", "x", "--column", "65536"],
        &["rm", "x", "--column=-1"],
        &["lookup", "x", "--column", ""],
    ] {
        let out = ringblob("127.0.0.1:1", args, b"v");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("unknown column"), "{args:?}: {err}");
    }
}
