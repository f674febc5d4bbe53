//! Names and listing against a real node: names written by the CLI and by the client
//! library are listed by `ringblob ls` in byte order, across pages, by prefix and by
//! namespace; a removed name disappears; the index survives a restart and a SIGKILL.

use std::process::{Command, Output};

use bytes::Bytes;
use ringblob_backends::names::NameRecord;
use ringblob_protocol::client::{Client, ClientConfig, PutOptions, Target};
use ringblob_protocol::wire::Durability;

use crate::node_process::NodeProcess;

fn or_panic<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn ringblob(addr: &str, args: &[&str]) -> Output {
    or_panic(
        Command::new(env!("CARGO_BIN_EXE_ringblob"))
            .arg("--remote")
            .arg(addr)
            .args(args)
            .output(),
    )
}

/// `ringblob ls ARGS` lines (exit 0 expected).
fn ls(addr: &str, args: &[&str]) -> Vec<String> {
    let mut all = vec!["ls"];
    all.extend_from_slice(args);
    let out = ringblob(addr, &all);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Writes `n` names `{prefix}{i:05}` of `ns` through the library, durably.
async fn put_names(addr: &str, ns: &str, prefix: &str, n: usize) {
    let c = or_panic(Client::connect(addr, ClientConfig::default()).await);
    let opts = PutOptions {
        durability: Durability::Sync,
        ..PutOptions::default()
    };
    for i in 0..n {
        let name = format!("{prefix}{i:05}");
        let value = Bytes::from(format!("value of {name}"));
        let len = value.len() as u64;
        or_panic(
            c.put_column(Target::named(ns, name.clone()), 0, value, opts)
                .await,
        );
        let record = NameRecord {
            content_type: "text/plain".into(),
            ..NameRecord::new(ns, name.into_bytes(), len)
        };
        or_panic(c.put_name_record(&record, opts).await);
    }
}

fn expected(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:05}")).collect()
}

#[test]
fn names_are_listed_in_order_across_pages_and_restarts() {
    let dir = or_panic(tempfile::tempdir());
    let node = NodeProcess::start(dir.path(), &[]);
    let addr = node.addr.clone();
    let rt = or_panic(tokio::runtime::Runtime::new());
    rt.block_on(put_names(&addr, "photos", "b/", 1500));
    rt.block_on(put_names(&addr, "photos", "a/", 20));
    rt.block_on(put_names(&addr, "docs", "", 3));
    // The CLI's own puts are listed too.
    let put = |args: &[&str]| {
        let out = or_panic(
            Command::new(env!("CARGO_BIN_EXE_ringblob"))
                .args(["--remote", &addr])
                .args(args)
                .stdin(std::process::Stdio::null())
                .output(),
        );
        assert_eq!(out.status.code(), Some(0), "{args:?}");
    };
    put(&["--namespace", "docs", "put", "zz-cli", "/dev/null"]);
    // A CLI put records the media type (guessed from the name, or given) and the entity
    // tag the HTTP gateway serves for the value stored.
    let photo = dir.path().join("photo-source");
    or_panic(std::fs::write(&photo, b"not really a jpeg"));
    let photo = photo.to_string_lossy().into_owned();
    put(&["--namespace", "typed", "put", "cat.jpg", &photo]);
    put(&[
        "--namespace",
        "typed",
        "put",
        "notes",
        &photo,
        "--content-type",
        "text/x-notes",
    ]);
    let typed = ls(&addr, &["typed", "--json"]);
    let entries: Vec<serde_json::Value> = typed
        .iter()
        .map(|l| or_panic(serde_json::from_str(l)))
        .collect();
    assert_eq!(entries[0]["content_type"], "image/jpeg", "{typed:?}");
    assert_eq!(entries[1]["content_type"], "text/x-notes", "{typed:?}");
    rt.block_on(async {
        let c = or_panic(Client::connect(&addr, ClientConfig::default()).await);
        for e in &entries {
            let name = e["name"].as_str().unwrap_or_default().to_string();
            let (meta, manifest) = or_panic(c.object_meta(&Target::named("typed", name)).await);
            let served = ringblob_protocol::gateway::object_etag(&meta, manifest.map(|m| m.crc32));
            assert_eq!(e["etag"], served.as_str(), "{e}");
        }
    });

    let mut all = expected("a/", 20);
    all.extend(expected("b/", 1500));
    assert_eq!(ls(&addr, &["photos"]), all, "two pages, in byte order");
    assert_eq!(ls(&addr, &["photos", "--prefix", "a/"]), expected("a/", 20));
    assert_eq!(ls(&addr, &["photos", "--limit", "3"]), all[..3]);
    assert_eq!(ls(&addr, &["photos", "--after", "b/01498"]), ["b/01499"]);
    assert_eq!(
        ls(&addr, &["--namespace", "docs"]),
        ["00000", "00001", "00002", "zz-cli"]
    );
    assert_eq!(ls(&addr, &["--namespaces"]), ["docs", "photos", "typed"]);
    let long = ls(&addr, &["photos", "--prefix", "a/00001", "--json"]);
    let entry: serde_json::Value = or_panic(serde_json::from_str(&long[0]));
    assert_eq!(entry["name"], "a/00001");
    assert_eq!(entry["content_type"], "text/plain");
    assert_eq!(entry["size"], "value of a/00001".len());

    // Removed names disappear, whole keys and name columns alike.
    let rm = ringblob(&addr, &["--namespace", "photos", "rm", "a/00003"]);
    assert_eq!(rm.status.code(), Some(0));
    let mut left = expected("a/", 20);
    left.remove(3);
    assert_eq!(ls(&addr, &["photos", "--prefix", "a/"]), left);
    // Removing the value's column removes its name too; other columns keep theirs.
    let rm = ringblob(
        &addr,
        &["--namespace", "photos", "rm", "a/00004", "--column", "data"],
    );
    assert_eq!(rm.status.code(), Some(0));
    left.remove(3);
    assert_eq!(ls(&addr, &["photos", "--prefix", "a/"]), left);

    // The index is rebuilt from the name records on restart, after SIGTERM and SIGKILL.
    assert_eq!(node.terminate(), Some(0));
    let node = NodeProcess::start(dir.path(), &["--listen", &addr]);
    assert_eq!(ls(&addr, &["photos", "--prefix", "a/"]), left);
    rt.block_on(put_names(&addr, "photos", "c/", 5));
    node.kill9();
    let node = NodeProcess::start(dir.path(), &["--listen", &addr]);
    assert_eq!(ls(&addr, &["photos", "--prefix", "c/"]), expected("c/", 5));
    assert_eq!(ls(&addr, &["photos"]).len(), 18 + 1500 + 5);
    // The name column takes only whole, valid records of the key, versioned or not.
    rt.block_on(async {
        let c = or_panic(Client::connect(&addr, ClientConfig::default()).await);
        let t = Target::named("photos", b"a/00001".to_vec());
        let other = NameRecord::new("photos", b"else".to_vec(), 1);
        let other = Bytes::from(or_panic(other.encode()));
        let col = ringblob_backends::names::NAME_COLUMN;
        for version in [None, Some(1)] {
            let o = PutOptions {
                version,
                ..PutOptions::default()
            };
            for junk in [Bytes::from_static(b"junk"), other.clone()] {
                let put = c.put_column(t.clone(), col, junk, o).await;
                let status = put.err().and_then(|e| e.status());
                assert_eq!(status, Some(ringblob_protocol::wire::Status::BadRequest));
            }
        }
    });
    assert_eq!(ls(&addr, &["photos", "--prefix", "a/00001"]), ["a/00001"]);
    assert_eq!(node.terminate(), Some(0));
}

#[test]
fn export_and_import_carry_a_namespace_with_its_types_and_metadata() {
    let dir = or_panic(tempfile::tempdir());
    let node = NodeProcess::start(&dir.path().join("data"), &[]);
    let addr = node.addr.clone();
    let rt = or_panic(tokio::runtime::Runtime::new());
    rt.block_on(put_names(&addr, "src", "n/", 30));
    // A value of several parts, with a content type and metadata.
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    rt.block_on(async {
        let c = or_panic(Client::connect(&addr, ClientConfig::default()).await);
        let t = Target::named("src", b"big.bin".to_vec());
        let len = big.len() as u64;
        or_panic(
            c.put_column(t, 0, Bytes::from(big.clone()), PutOptions::default())
                .await,
        );
        let record = NameRecord {
            content_type: "application/x-test".into(),
            user_meta: vec![("camera".into(), "x100".into())],
            ..NameRecord::new("src", b"big.bin".to_vec(), len)
        };
        or_panic(c.put_name_record(&record, PutOptions::default()).await);
    });
    let archive = dir.path().join("src.tar");
    let archive_text = archive.display().to_string();
    let out = ringblob(&addr, &["export", "src", "-o", &archive_text]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("exported 31 names"));
    let out = ringblob(&addr, &["import", "dst", "-i", &archive_text]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ls(&addr, &["dst"]), ls(&addr, &["src"]));
    let got = ringblob(&addr, &["--namespace", "dst", "get", "big.bin"]);
    assert!(got.stdout == big, "the big value came back whole");
    let got = ringblob(&addr, &["--namespace", "dst", "get", "n/00007"]);
    assert_eq!(got.stdout, b"value of n/00007");
    let json = ls(&addr, &["dst", "--prefix", "big", "--json"]);
    let entry: serde_json::Value = or_panic(serde_json::from_str(&json[0]));
    assert_eq!(entry["content_type"], "application/x-test");
    assert_eq!(entry["meta"]["camera"], "x100");
    assert_eq!(entry["size"], 5_000_000);
    // A prefix exports only its names.
    let out = ringblob(
        &addr,
        &["export", "src", "--prefix", "n/0000", "-o", &archive_text],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("exported 10 names"));
    assert_eq!(node.terminate(), Some(0));
}
