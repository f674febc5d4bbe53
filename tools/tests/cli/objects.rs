//! Chunked objects through the CLI, with small chunks: values larger than a chunk round-trip
//! (from files and from pipes), ranges anywhere, `lookup` shows the object; a replaced or
//! removed object leaves no chunk behind; a damaged chunk is reported, never served; a
//! killed upload's chunks are found and reclaimed by `ringblob reclaim`.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ringblob_backends::names::NAME_COLUMN;
use ringblob_protocol::client::object::chunk_target;
use ringblob_protocol::client::{Client, ClientConfig, ClientError, PutOptions, Target};

use crate::node_process::NodeProcess;

const CHUNK: u64 = 64 << 10;

fn or_panic<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 131 + (i >> 16)) as u8).wrapping_add(seed))
        .collect()
}

struct Cli {
    addr: String,
}

impl Cli {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ringblob"));
        let chunk = CHUNK.to_string();
        c.args(["--remote", &self.addr, "--quiet", "--namespace", "media"])
            .args(["--chunk-size", &chunk])
            .args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        or_panic(self.cmd(args).output())
    }

    fn ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "ringblob {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn put_piped(&self, name: &str, data: &[u8]) {
        let mut child = or_panic(
            self.cmd(&["put", name])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn(),
        );
        if let Some(mut stdin) = child.stdin.take() {
            or_panic(stdin.write_all(data));
        }
        assert!(or_panic(child.wait()).success());
    }
}

fn keys_on(rt: &tokio::runtime::Runtime, addr: &str) -> u64 {
    rt.block_on(async {
        let c = or_panic(Client::connect(addr, ClientConfig::default()).await);
        let stat = or_panic(c.stat_value().await);
        stat["backend"]["keys"].as_u64().unwrap_or(u64::MAX)
    })
}

#[test]
fn objects_round_trip_with_ranges_and_leave_nothing_behind() {
    let dir = or_panic(tempfile::tempdir());
    let node = NodeProcess::start(&dir.path().join("data"), &[]);
    let cli = Cli {
        addr: node.addr.clone(),
    };
    let rt = or_panic(tokio::runtime::Runtime::new());

    // From a file: 17 chunks, the last one short.
    let big = content(16 * CHUNK as usize + 123, 1);
    let file = dir.path().join("big");
    or_panic(std::fs::write(&file, &big));
    cli.ok(&["put", "big", &file.display().to_string()]);
    assert!(cli.ok(&["get", "big"]) == big);
    let lookup: serde_json::Value = or_panic(serde_json::from_slice(
        &cli.ok(&["lookup", "big", "--json"]),
    ));
    assert_eq!(lookup["object"]["size"], big.len() as u64);
    assert_eq!(lookup["object"]["chunks"], 17);
    assert_eq!(lookup["object"]["chunk_size"], CHUNK);
    assert_eq!(
        keys_on(&rt, &node.addr),
        1 + 17 + 1 + 1,
        "manifest, chunks, upload record, name record"
    );

    // Ranges: inside one chunk, across chunk boundaries, near the end, past the end.
    let len = big.len() as u64;
    for (offset, size) in [
        (5, Some(10)),
        (CHUNK - 3, Some(10)),
        (CHUNK, Some(3 * CHUNK + 7)),
        (len - 100, None),
        (len - 100, Some(1000)),
        (len, None),
    ] {
        let mut args = vec![
            "get".to_string(),
            "big".into(),
            "--offset".into(),
            offset.to_string(),
        ];
        if let Some(s) = size {
            args.extend(["--size".into(), s.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let end = size.map_or(len, |s| (offset + s).min(len));
        assert!(
            cli.ok(&args) == big[offset as usize..end as usize],
            "range {offset} {size:?}"
        );
    }
    let past = cli.run(&["get", "big", "--offset", &(len + 1).to_string()]);
    assert!(!past.status.success());
    assert!(String::from_utf8_lossy(&past.stderr).contains("RANGE_OUT_OF_BOUNDS"));

    // From a pipe (size unknown, more than one part): an object too.
    let piped = content(9 << 20, 2);
    cli.put_piped("piped", &piped);
    assert!(cli.ok(&["get", "piped"]) == piped);
    let lookup: serde_json::Value = or_panic(serde_json::from_slice(
        &cli.ok(&["lookup", "piped", "--json"]),
    ));
    assert_eq!(lookup["object"]["chunks"], (9 << 20) / CHUNK);

    // A plain value that begins like a manifest is stored and read back as it is.
    let mut tricky = b"\x89RBOBJ\r\n".to_vec();
    tricky.extend_from_slice(&content(5000, 3));
    let tricky_file = dir.path().join("tricky");
    or_panic(std::fs::write(&tricky_file, &tricky));
    cli.ok(&["put", "tricky", &tricky_file.display().to_string()]);
    assert!(cli.ok(&["get", "tricky"]) == tricky);
    assert!(cli.ok(&["get", "tricky", "--offset", "3", "--size", "9"]) == tricky[3..12]);
    cli.ok(&["rm", "tricky"]);

    // Replacing an object by a small value, and removing an object, remove its chunks.
    let small = dir.path().join("small");
    or_panic(std::fs::write(&small, b"small now"));
    cli.ok(&["put", "big", &small.display().to_string()]);
    assert_eq!(cli.ok(&["get", "big"]), b"small now");
    cli.ok(&["rm", "piped"]);
    assert_eq!(
        keys_on(&rt, &node.addr),
        2,
        "only the small value (and its name record) is left"
    );
    let gone = cli.run(&["get", "piped"]);
    assert_eq!(gone.status.code(), Some(2), "a removed object is not found");

    // A value made larger than a chunk again, then overwritten by another object.
    cli.ok(&["put", "big", &file.display().to_string()]);
    let other = content(3 * CHUNK as usize + 1, 4);
    let other_file = dir.path().join("other");
    or_panic(std::fs::write(&other_file, &other));
    cli.ok(&["put", "big", &other_file.display().to_string()]);
    assert!(cli.ok(&["get", "big"]) == other);
    assert_eq!(
        keys_on(&rt, &node.addr),
        1 + 4 + 1 + 1,
        "with the name record"
    );
}

#[test]
fn a_damaged_chunk_is_reported_and_never_served() {
    let dir = or_panic(tempfile::tempdir());
    let node = NodeProcess::start(&dir.path().join("data"), &[]);
    let cli = Cli {
        addr: node.addr.clone(),
    };
    let rt = or_panic(tokio::runtime::Runtime::new());
    let value = content(4 * CHUNK as usize, 5);
    let file = dir.path().join("v");
    or_panic(std::fs::write(&file, &value));
    cli.ok(&["put", "photo", &file.display().to_string()]);
    // Chunk 2 overwritten behind the manifest's back (same length, other bytes).
    rt.block_on(async {
        let c = or_panic(Client::connect(&node.addr, ClientConfig::default()).await);
        let object = Target::named("media", b"photo".to_vec());
        let m = or_panic(c.object_manifest(&object).await).unwrap_or_else(|| panic!("no manifest"));
        let chunk = chunk_target(&object, &m.upload_id, 2);
        let wrong = bytes::Bytes::from(content(CHUNK as usize, 9));
        assert!(c.put(chunk, wrong, PutOptions::default()).await.is_ok());
    });
    let got = cli.run(&["get", "photo"]);
    assert!(!got.status.success());
    assert!(
        String::from_utf8_lossy(&got.stderr).contains("CHECKSUM_MISMATCH"),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    // A range inside the damaged chunk cannot be checked against the chunk's CRC, but a
    // range of whole chunks can: the intact ones read, the damaged one does not.
    let c0 = cli.ok(&["get", "photo", "--size", &CHUNK.to_string()]);
    assert!(c0 == value[..CHUNK as usize]);
    let c2 = cli.run(&[
        "get",
        "photo",
        "--offset",
        &(2 * CHUNK).to_string(),
        "--size",
        &CHUNK.to_string(),
    ]);
    assert!(!c2.status.success());
}

#[test]
fn a_killed_upload_leaves_chunks_that_reclaim_finds_and_removes() {
    let dir = or_panic(tempfile::tempdir());
    let node = NodeProcess::start(&dir.path().join("data"), &[]);
    let cli = Cli {
        addr: node.addr.clone(),
    };
    let rt = or_panic(tokio::runtime::Runtime::new());
    cli.ok(&["put", "kept", "/dev/null"]);
    // A completed object, which reclaim must leave alone.
    let done = content(3 * CHUNK as usize, 6);
    let done_file = dir.path().join("done");
    or_panic(std::fs::write(&done_file, &done));
    cli.ok(&["put", "done", &done_file.display().to_string()]);
    // An upload fed slowly through a pipe, killed after some chunks.
    let mut child = or_panic(
        cli.cmd(&["put", "interrupted"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn(),
    );
    let mut stdin = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
    // More than one part (8 MiB) first, so it is an object, then a trickle.
    or_panic(stdin.write_all(&content(9 << 20, 7)));
    let mut waited = 0;
    while keys_on(&rt, &node.addr) < 2 + 4 + 100 && waited < 300 {
        std::thread::sleep(Duration::from_millis(50));
        waited += 1;
    }
    or_panic(child.kill());
    let _ = child.wait();
    drop(stdin);
    let orphans = keys_on(&rt, &node.addr);
    assert!(orphans > 2 + 4 + 100, "chunks were written: {orphans} keys");
    assert_eq!(cli.run(&["get", "interrupted"]).status.code(), Some(2));

    // Within the grace period nothing is touched.
    let report: serde_json::Value = or_panic(serde_json::from_slice(&cli.ok(&["reclaim"])));
    let node_report = &report[&node.addr];
    assert_eq!(node_report["recent"], 1, "{report}");
    assert_eq!(node_report["live"], 1, "{report}");
    assert_eq!(keys_on(&rt, &node.addr), orphans);

    // With no grace: the orphan's chunks and record go, the live object stays.
    let report: serde_json::Value = or_panic(serde_json::from_slice(&cli.ok(&[
        "reclaim",
        "--grace-secs",
        "0",
    ])));
    let node_report = &report[&node.addr];
    assert_eq!(node_report["reclaimed"], 1, "{report}");
    assert_eq!(
        node_report["chunks_removed"].as_u64(),
        Some(orphans - (2 + 4 + 2) - 1),
        "{report}"
    );
    assert_eq!(node_report["live"], 1);
    assert_eq!(
        keys_on(&rt, &node.addr),
        2 + 4 + 2,
        "the live values with their name records"
    );
    assert!(cli.ok(&["get", "done"]) == done);
}

#[test]
fn an_object_reads_as_a_stream_and_a_failure_is_a_read_error() {
    use tokio::io::AsyncReadExt;
    let dir = or_panic(tempfile::tempdir());
    let node = NodeProcess::start(&dir.path().join("data"), &[]);
    let rt = or_panic(tokio::runtime::Runtime::new());
    rt.block_on(async {
        let config = ClientConfig {
            chunk_size: CHUNK,
            ..ClientConfig::default()
        };
        let c = std::sync::Arc::new(or_panic(Client::connect(&node.addr, config).await));
        let value = content(5 * CHUNK as usize + 17, 8);
        let mut src: &[u8] = &value;
        let name = Target::named("media", b"stream".to_vec());
        let n = c
            .put_object(
                name.clone(),
                &mut src,
                (Some(value.len() as u64), PutOptions::default()),
                |_| {},
            )
            .await;
        assert_eq!(n.ok(), Some(value.len() as u64));
        let mut back = Vec::new();
        let mut r = c.reader(name.clone(), (0, None));
        assert!(r.read_to_end(&mut back).await.is_ok());
        assert!(back == value);
        let mut part = Vec::new();
        let mut r = c.reader(name.clone(), (CHUNK - 5, Some(CHUNK + 10)));
        assert!(r.read_to_end(&mut part).await.is_ok());
        assert!(part == value[CHUNK as usize - 5..2 * CHUNK as usize + 5]);
        // A name with nothing under it: an error, not an empty stream.
        let mut none = Vec::new();
        let mut r = c.reader(Target::named("media", b"absent".to_vec()), (0, None));
        let e = r.read_to_end(&mut none).await;
        assert!(
            e.is_err_and(|e| e.to_string().contains("NOT_FOUND")),
            "absent"
        );
    });
}

#[test]
fn a_small_put_replaces_an_object_in_one_round_trip_and_removes_its_chunks() {
    use bytes::Bytes;
    use ringblob_backends::names::NameRecord;

    let dir = or_panic(tempfile::tempdir());
    let node = NodeProcess::start(&dir.path().join("data"), &[]);
    let rt = or_panic(tokio::runtime::Runtime::new());
    let config = ClientConfig {
        chunk_size: CHUNK,
        part_size: 32 << 10,
        ..ClientConfig::default()
    };
    let c = rt.block_on(async { or_panic(Client::connect(&node.addr, config).await) });
    let target = Target::named("media", b"photo".to_vec());
    let record = |size: u64| {
        let r = NameRecord::new("media", b"photo".to_vec(), size);
        Bytes::from(or_panic(r.encode()))
    };
    let o = PutOptions::default();
    rt.block_on(async {
        let big = content(3 * CHUNK as usize - 5, 7);
        let mut source = &big[..];
        let stored = c.put_object(target.clone(), &mut source, (None, o), |_| {});
        assert_eq!(or_panic(stored.await), big.len() as u64);
        or_panic(
            c.put_column(target.clone(), NAME_COLUMN, record(big.len() as u64), o)
                .await,
        );
        let old = or_panic(c.object_manifest(&target).await)
            .unwrap_or_else(|| panic!("a chunked object was stored"));
        assert_eq!(old.chunk_crcs.len(), 3);
        assert_eq!(
            keys_on_async(&node.addr).await,
            1 + 3 + 1 + 1,
            "manifest, chunks, upload record, name record"
        );

        let size = c.put_small(
            target.clone(),
            Bytes::from_static(b"tiny"),
            Some(record(4)),
            o,
        );
        assert_eq!(or_panic(size.await), 4);
        assert_eq!(or_panic(c.get(target.clone(), 0, None).await), &b"tiny"[..]);
        let named = or_panic(c.name_record("media", b"photo").await);
        assert_eq!(
            named.map(|r| r.size),
            Some(4),
            "the name record written beside it"
        );
        for index in 0..3 {
            let chunk = c
                .get(chunk_target(&target, &old.upload_id, index), 0, None)
                .await;
            assert!(
                chunk.as_ref().is_err_and(|e| e.is_not_found()),
                "chunk {index} of the replaced object: {:?}",
                chunk.map(|b| b.len())
            );
        }
        assert_eq!(
            keys_on_async(&node.addr).await,
            2,
            "the value and its name record"
        );

        // Over a plain value, and without a record (a raw key).
        let plain = c.put_small(target.clone(), Bytes::from_static(b"again"), None, o);
        assert_eq!(or_panic(plain.await), 5);
        assert_eq!(
            or_panic(c.get(target.clone(), 0, None).await),
            &b"again"[..]
        );
        let fresh = c.put_small([9u8; 32], Bytes::from_static(b"new key"), None, o);
        assert_eq!(or_panic(fresh.await), 7);

        // What a small put does not take: more than a part, or a manifest's beginning.
        let long = Bytes::from(content((32 << 10) + 1, 1));
        let magic = Bytes::from_static(b"\x89RBOBJ\r\n and more");
        for refused in [long, magic] {
            let r = c.put_small(target.clone(), refused, None, o).await;
            assert!(matches!(r, Err(ClientError::Input(_))), "{r:?}");
        }
        assert_eq!(
            or_panic(c.get(target.clone(), 0, None).await),
            &b"again"[..]
        );
    });
}

async fn keys_on_async(addr: &str) -> u64 {
    let c = or_panic(Client::connect(addr, ClientConfig::default()).await);
    let stat = or_panic(c.stat_value().await);
    stat["backend"]["keys"].as_u64().unwrap_or(u64::MAX)
}
