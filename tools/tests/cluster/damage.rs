//! A node whose disk damaged some values answers them as damaged (`CHECKSUM_MISMATCH`),
//! never as an older value or as missing; a replicated read falls over to another group and
//! repairs the damaged group with that group's copy, after which the damaged node serves the
//! value itself again.

use ringblob_engine::{Config, Engine, Key};
use ringblob_protocol::client::{PutOptions, Quorum};
use ringblob_protocol::wire::Status;

use super::member::{self, Member};
use super::{client, converge, json, key, value};

fn flip(path: &std::path::Path, at: u64) {
    let mut b = std::fs::read(path).unwrap_or_else(|e| panic!("{e}"));
    b[at as usize] ^= 0x20;
    std::fs::write(path, b).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn damaged_values_are_reported_and_repaired_from_the_other_group() {
    let _serial = member::serial();
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let (mut a, b) = Member::start_two_groups(["a", "b"], root.path());
    rt.block_on(async {
        converge(&[&a, &b], 2).await;
        let c = client(&b.addr).await;
        // Keys 0..12: group 2 first, then group 1: group 1 holds the newer version, so a
        // replicated read tries it first. Keys 12..18 the other way round: group 2's is
        // newer, and a read goes there first.
        for i in 0..18 {
            let order = if i < 12 { [2, 1] } else { [1, 2] };
            for g in order {
                let opts = PutOptions::default();
                let r = c
                    .put_groups(key(i), 0, value(i), opts, &[g], Quorum::All)
                    .await;
                assert!(r.is_ok(), "put {i}: {:?}", r.err().map(|o| o.to_string()));
            }
        }
    });
    // a's disk damages the values of keys 0..6 while it is down.
    a.kill9();
    {
        let e = Engine::open(&a.dir, Config::default()).unwrap_or_else(|e| panic!("{e}"));
        let mut places = Vec::new();
        for i in (0..6).chain(12..15) {
            let m = e
                .lookup(&Key(key(i)))
                .unwrap_or_else(|e| panic!("key {i}: {e}"));
            places.push(m);
        }
        drop(e);
        for m in places {
            let blob = a.dir.join(ringblob_engine::blob::blob_name(m.blob));
            flip(&blob, m.offset + m.stored_size - 2);
        }
    }
    a.start();
    rt.block_on(async {
        converge(&[&a, &b], 2).await;
        let only_a = client(&a.addr).await;
        for i in (0..6).chain(12..15) {
            let got = only_a.get_groups(key(i), 0, &[1]).await;
            let status = got.as_ref().err().and_then(|e| e.status());
            assert_eq!(status, Some(Status::ChecksumMismatch), "key {i}: {got:?}");
        }
        let stat = json(&only_a, false).await;
        let records_known = stat["backend"]["damage"]["records_known"].as_u64();
        assert!(records_known >= Some(9), "{stat}");
        // Group 1 first: it fails its checks, group 2 serves, group 1 is repaired. Where
        // group 2 holds the newer version it serves, and a damaged group 1 (its lookup says
        // so) is repaired with it too.
        let both = client(&b.addr).await;
        for i in 0..18 {
            let got = both.get_groups(key(i), 0, &[1, 2]).await;
            let Ok(read) = got else {
                panic!("key {i}: {got:?}")
            };
            assert_eq!(read.value, value(i), "key {i}");
            match i {
                0..6 | 12..15 => {
                    assert_eq!((read.group, read.repaired.clone()), (2, vec![1]), "key {i}")
                }
                6..12 => assert_eq!(read.group, 1, "key {i}"),
                _ => assert_eq!((read.group, read.repaired.clone()), (2, vec![]), "key {i}"),
            }
        }
        for i in 0..18 {
            let got = only_a.get_groups(key(i), 0, &[1]).await;
            assert_eq!(
                got.ok().map(|r| r.value),
                Some(value(i)),
                "key {i} after repair"
            );
        }
    });
}

/// Bit rot healed with no command: bits flip in sealed blobs of a running node a (group 1);
/// its scrub finds the damaged records and stops listing them; b's repair rounds see them
/// missing in group 1 and copy them from group 2; group 1 alone serves them again. Nothing
/// else reads them (a runs no repair rounds of its own).
#[test]
fn the_scrub_finds_bit_rot_and_repair_heals_it_with_no_command() {
    let _serial = member::serial();
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let scrubbing = "repair_interval_secs = 0\n[blob]\nmax_blob_records = 2\n\
                     scrub_interval_secs = 1\nscrub_mb_per_sec = 0\n";
    let mut a = Member::new("a", 1, root.path(), None).with_config(scrubbing);
    a.start();
    let repairing = "repair_interval_secs = 1\n";
    let mut b = Member::new("b", 2, root.path(), Some(&a.addr)).with_config(repairing);
    b.start();
    rt.block_on(async {
        converge(&[&a, &b], 2).await;
        let c = client(&b.addr).await;
        for i in 0..12 {
            let opts = PutOptions::default();
            let r = c
                .put_groups(key(i), 0, value(i), opts, &[1, 2], Quorum::All)
                .await;
            assert!(r.is_ok(), "put {i}: {:?}", r.err().map(|o| o.to_string()));
        }
    });
    let flipped = flip_sealed_values(&a.dir, 0..6);
    assert!(flipped >= 3, "only {flipped} values were in sealed blobs");
    rt.block_on(async {
        let only_a = client(&a.addr).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let stat = json(&only_a, false).await;
            let scrub = &stat["backend"]["damage"]["scrub"];
            let found = scrub["damaged_found"].as_u64().unwrap_or(0);
            let mut healed = 0;
            if found >= flipped {
                for i in 0..12 {
                    let got = only_a.in_group(1).get_column(key(i), 0, 0, None).await;
                    healed += usize::from(got.ok() == Some(value(i)));
                }
            }
            if healed == 12 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{healed} of 12 readable in group 1 alone; {flipped} flipped; scrub {scrub}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    });
}

/// Flips a bit near the end of the live record of each key of `keys` that lies in a sealed
/// blob of `dir` (found with `blob-inspect list`), under the running node; how many.
fn flip_sealed_values(dir: &std::path::Path, keys: std::ops::Range<u64>) -> u64 {
    use std::os::unix::fs::FileExt;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_blob-inspect"))
        .args(["list", "--json"])
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let newest = records
        .iter()
        .filter_map(|r| r["file"].as_str())
        .max()
        .unwrap_or_default()
        .to_string();
    let mut flipped = 0;
    for i in keys {
        let hex = Key(key(i)).to_hex();
        let live = records.iter().find(|r| {
            r["key"] == hex.as_str() && r["state"] == "live" && r["file"] != newest.as_str()
        });
        let Some(r) = live else { continue };
        let file = dir.join(r["file"].as_str().unwrap_or_default());
        let at = r["offset"].as_u64().unwrap_or(0) + r["stored_size"].as_u64().unwrap_or(0) - 2;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&file)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut byte = [0u8; 1];
        f.read_exact_at(&mut byte, at)
            .unwrap_or_else(|e| panic!("{e}"));
        byte[0] ^= 0x20;
        f.write_all_at(&byte, at).unwrap_or_else(|e| panic!("{e}"));
        flipped += 1;
    }
    flipped
}

/// A remove made in group 1 only, whose remove log is then lost (a damaged disk): group 1
/// still answers the remove from its tombstones (`REMOVED`), so a replicated read never
/// brings group 2's older value back, and it carries the remove to group 2.
#[test]
fn a_remove_outlives_the_loss_of_the_remove_log() {
    let _serial = member::serial();
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let (mut a, b) = Member::start_two_groups(["a", "b"], root.path());
    rt.block_on(async {
        converge(&[&a, &b], 2).await;
        let c = client(&b.addr).await;
        for i in 0..6 {
            let r = c
                .put_groups(
                    key(i),
                    0,
                    value(i),
                    PutOptions::default(),
                    &[1, 2],
                    Quorum::All,
                )
                .await;
            assert!(r.is_ok(), "put {i}: {:?}", r.err().map(|o| o.to_string()));
        }
        for i in 0..3 {
            let removed = c.in_group(1).remove(key(i), Default::default()).await;
            assert!(removed.is_ok(), "remove {i}: {removed:?}");
        }
    });
    a.kill9();
    std::fs::remove_file(a.dir.join("removes.log")).unwrap_or_else(|e| panic!("{e}"));
    a.start();
    rt.block_on(async {
        converge(&[&a, &b], 2).await;
        let c = client(&b.addr).await;
        for i in 0..6 {
            let got = c.get_groups(key(i), 0, &[1, 2]).await;
            if i < 3 {
                let status = got.as_ref().err().and_then(|e| e.status());
                assert!(
                    matches!(status, Some(Status::NotFound | Status::Removed)),
                    "key {i} came back: {got:?}"
                );
            } else {
                assert_eq!(got.ok().map(|r| r.value), Some(value(i)), "key {i}");
            }
        }
        // The read carried the remove to group 2.
        for i in 0..3 {
            let got = c.in_group(2).lookup_column(key(i), 0).await;
            let status = got.as_ref().err().and_then(|e| e.status());
            assert!(
                matches!(status, Some(Status::NotFound | Status::Removed)),
                "key {i} still in group 2: {got:?}"
            );
        }
    });
}
