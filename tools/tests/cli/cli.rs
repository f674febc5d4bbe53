//! The `ringblob` CLI against a real node.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::node_process::NodeProcess;

fn ringblob(addr: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringblob"));
    cmd.arg("--remote")
        .arg(addr)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn ringblob: {e}"));
    if let (Some(mut input), Some(bytes)) = (child.stdin.take(), stdin) {
        let _ = input.write_all(bytes);
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait: {e}"))
}

fn ok(addr: &str, args: &[&str]) -> Vec<u8> {
    let out = ringblob(addr, args, None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn put_get_range_lookup_rm_and_exit_codes_then_data_survives_sigterm_restart() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let node = NodeProcess::start(dir.path(), &[]);
    let a = node.addr.clone();
    let file = dir.path().join("v.txt");
    std::fs::write(&file, b"hello, ringblob").unwrap_or_else(|e| panic!("{e}"));
    ok(&a, &["put", "greeting", file.to_str().unwrap_or_default()]);
    let piped = ringblob(
        &a,
        &["put", "piped", "--durability", "sync", "--compress"],
        Some(b"from stdin"),
    );
    assert_eq!(piped.status.code(), Some(0));
    assert_eq!(ok(&a, &["get", "greeting"]), b"hello, ringblob");
    assert_eq!(
        ok(&a, &["get", "greeting", "--offset", "7", "--size", "8"]),
        b"ringblob"
    );
    assert_eq!(ok(&a, &["get", "piped"]), b"from stdin");
    let out = dir.path().join("out");
    ok(
        &a,
        &["get", "greeting", "-o", out.to_str().unwrap_or_default()],
    );
    assert_eq!(
        std::fs::read(&out).ok().as_deref(),
        Some(&b"hello, ringblob"[..])
    );
    let lookup = String::from_utf8(ok(&a, &["lookup", "greeting"])).unwrap_or_default();
    assert!(lookup.contains("size         15"), "{lookup}");
    assert!(lookup.contains(&format!("{:08x}", crc32fast::hash(b"hello, ringblob"))));
    let missing = ringblob(&a, &["get", "no-such-key"], None);
    assert_eq!(missing.status.code(), Some(2), "missing key exits 2");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));
    ok(&a, &["rm", "piped"]);
    assert_eq!(ringblob(&a, &["rm", "piped"], None).status.code(), Some(2));
    let stat: serde_json::Value = serde_json::from_slice(&ok(&a, &["stat"])).unwrap_or_default();
    // The value and its name record.
    assert_eq!(stat["backend"]["keys"], 2);
    assert!(String::from_utf8_lossy(&ok(&a, &["routes"])).contains(&a));
    assert_eq!(
        ringblob(&a, &["put", "log", "--append"], Some(b"one,"))
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        ringblob(&a, &["put", "log", "--append"], Some(b"two"))
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        ringblob(&a, &["put", "log", "--offset", "4"], Some(b"TWO"))
            .status
            .code(),
        Some(0)
    );
    assert_eq!(ok(&a, &["get", "log"]), b"one,TWO");
    let both = ringblob(&a, &["put", "log", "--append", "--offset", "1"], Some(b"x"));
    assert_eq!(
        both.status.code(),
        Some(1),
        "--append and --offset exclude each other"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&ok(&a, &["defrag", "--wait"])).unwrap_or_default();
    assert!(
        report["blobs_rewritten"].is_array(),
        "defrag --wait prints its report: {report}"
    );
    let started: serde_json::Value =
        serde_json::from_slice(&ok(&a, &["defrag"])).unwrap_or_default();
    assert_eq!(started["started"], true);
    let bad = ringblob(&a, &["put", "x", "--durability", "maybe"], Some(b"x"));
    assert_eq!(bad.status.code(), Some(1), "other errors exit 1");
    let dead = ringblob("127.0.0.1:1", &["get", "greeting"], None);
    assert_eq!(dead.status.code(), Some(1), "unreachable node exits 1");

    assert_eq!(node.terminate(), Some(0), "SIGTERM stops the node cleanly");
    let node = NodeProcess::start(dir.path(), &[]);
    let env = Command::new(env!("CARGO_BIN_EXE_ringblob"))
        .args(["get", "greeting"])
        .env("RINGBLOB_REMOTE", &node.addr)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        env.stdout, b"hello, ringblob",
        "data is there after restart; RINGBLOB_REMOTE honoured"
    );
    assert_eq!(
        ringblob(&node.addr, &["get", "piped"], None).status.code(),
        Some(2),
        "removed stays removed"
    );
}

#[test]
fn concurrent_gets_to_files_never_mix_their_outputs() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let node = NodeProcess::start(dir.path(), &[]);
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(
        ringblob(&node.addr, &["put", "big"], Some(&big))
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        ringblob(&node.addr, &["put", "small"], Some(b"small value"))
            .status
            .code(),
        Some(0)
    );
    let (a, b) = (dir.path().join("x.a"), dir.path().join("x.b"));
    let spawn = |name: &str, out: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_ringblob"))
            .args([
                "--remote",
                &node.addr,
                "get",
                name,
                "-o",
                out.to_str().unwrap_or_default(),
            ])
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let (mut p, mut q) = (spawn("big", &a), spawn("small", &b));
    assert!(p.wait().is_ok_and(|s| s.success()) && q.wait().is_ok_and(|s| s.success()));
    assert!(std::fs::read(&a).ok() == Some(big), "x.a holds big");
    assert_eq!(std::fs::read(&b).ok().as_deref(), Some(&b"small value"[..]));
    // Output to a directory fails cleanly and leaves no temp file behind.
    let sub = dir.path().join("outdir");
    std::fs::create_dir(&sub).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ringblob(
            &node.addr,
            &["get", "big", "-o", sub.to_str().unwrap_or_default()],
            None
        )
        .status
        .code(),
        Some(1)
    );
    let leftovers = std::fs::read_dir(dir.path()).map(|d| {
        d.filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains("ringblob-part"))
            .count()
    });
    assert_eq!(leftovers.ok(), Some(0));
}

#[test]
fn every_backend_serves_the_cli() {
    for backend in ["blob", "fs", "mem"] {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let node = NodeProcess::start(dir.path(), &["--backend", backend]);
        let put = ringblob(&node.addr, &["put", "k"], Some(b"value"));
        assert_eq!(put.status.code(), Some(0), "{backend}");
        assert_eq!(ok(&node.addr, &["get", "k"]), b"value", "{backend}");
        let stat: serde_json::Value =
            serde_json::from_slice(&ok(&node.addr, &["stat"])).unwrap_or_default();
        assert_eq!(stat["backend"]["kind"], backend);
    }
}

#[test]
fn config_file_sets_options_and_flags_win() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cfg = dir.path().join("node.toml");
    let toml = format!(
        "data_dir = {:?}\nbackend = \"fs\"\nname = \"from-file\"\ngroup = 3\n",
        dir.path().join("d").display().to_string()
    );
    std::fs::write(&cfg, toml).unwrap_or_else(|e| panic!("{e}"));
    let node = NodeProcess::start(
        dir.path(),
        &[
            "--config",
            cfg.to_str().unwrap_or_default(),
            "--backend",
            "mem",
        ],
    );
    let stat: serde_json::Value =
        serde_json::from_slice(&ok(&node.addr, &["stat"])).unwrap_or_default();
    assert_eq!(stat["node"], "from-file");
    assert_eq!(stat["group"], 3);
    assert_eq!(stat["backend"]["kind"], "mem", "the flag beats the file");
    for bad_value in [
        "max_connections = 0\n",
        "max_blocking_calls = 9223372036854775807\n",
        "connection_lanes = 100000\n",
        "[blob]\nflush_interval_ms = 0\n",
    ] {
        let f = dir.path().join("bad-value.toml");
        std::fs::write(&f, bad_value).unwrap_or_else(|e| panic!("{e}"));
        let out = Command::new(env!("CARGO_BIN_EXE_ringblob-node"))
            .args([
                "--config",
                f.to_str().unwrap_or_default(),
                "--listen",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(dir.path().join("never"))
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            out.status.code(),
            Some(1),
            "{bad_value:?} must be refused with a message"
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("invalid"),
            "{bad_value:?}"
        );
    }
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "listn = \"x\"\n").unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(env!("CARGO_BIN_EXE_ringblob-node"))
        .args(["--config", bad.to_str().unwrap_or_default()])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out.status.code(),
        Some(1),
        "unknown config keys are refused"
    );
}

/// `ringblob-node keys add|list|remove` on a data directory: the key is printed once, as
/// `ID:SECRET`, and only its id, role and namespaces are listed.
#[test]
fn node_keys_are_added_listed_and_removed() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let keys = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_ringblob-node"))
            .arg("keys")
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, printed, err) = keys(&["add", "--role", "write", "--namespace", "photos"]);
    assert_eq!(code, Some(0), "{err}");
    let (id, secret) = printed
        .trim()
        .split_once(':')
        .unwrap_or_else(|| panic!("not ID:SECRET: {printed}"));
    assert_eq!(secret.len(), 64, "256-bit secret in hex");
    let (code, listed, _) = keys(&["list"]);
    assert_eq!(code, Some(0));
    assert_eq!(listed, format!("{id}\twrite\tphotos\n"));
    assert!(!listed.contains(secret));
    let (code, _, err) = keys(&["add", "--role", "root"]);
    assert_eq!(code, Some(2), "an unknown role is a usage error: {err}");
    let (code, _, _) = keys(&["remove", id]);
    assert_eq!(code, Some(0));
    let (_, listed, _) = keys(&["list"]);
    assert!(listed.is_empty());
}

/// Protected mode: a node with no keys and no TLS asked to listen beyond loopback refuses
/// to start unless `--insecure`, which it then warns about (with keys or TLS it starts:
/// `security.rs`).
#[test]
fn a_non_loopback_listen_needs_insecure() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(env!("CARGO_BIN_EXE_ringblob-node"))
        .args(["--listen", "0.0.0.0:0", "--backend", "mem", "--data-dir"])
        .arg(dir.path().join("refused"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--insecure") && err.contains("loopback"),
        "{err}"
    );
    assert!(!dir.path().join("refused").exists(), "nothing created");

    let mut child = Command::new(env!("CARGO_BIN_EXE_ringblob-node"))
        .args(["--listen", "0.0.0.0:0", "--backend", "mem", "--insecure"])
        .arg("--data-dir")
        .arg(dir.path().join("started"))
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = child.stderr.take().unwrap_or_else(|| panic!("stderr"));
    let mut seen = String::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("listening on") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.contains("listening on"), "{seen}");
    assert!(seen.contains("insecure"), "the start warns: {seen}");
}
