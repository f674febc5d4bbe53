//! A full disk, for real: a node on a 24 MiB tmpfs fills it. Writes are refused `NO_SPACE`
//! (nothing poisoned); reads and removes keep working; once the operator frees space, writes
//! resume with no restart; every acknowledged value is intact and `blob-inspect verify` finds
//! the directory healthy.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringblob_engine::Key;
use ringblob_protocol::client::{Client, ClientConfig, ClientError};
use ringblob_protocol::wire::Status;

use crate::node_process::NodeProcess;

fn or_panic<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// A size-limited tmpfs, unmounted when dropped.
struct SmallDisk {
    at: PathBuf,
}

impl SmallDisk {
    /// `None` (with the reason printed) where mounting is impossible (not root, no tmpfs).
    fn mount(at: &Path, size: &str) -> Option<SmallDisk> {
        or_panic(std::fs::create_dir_all(at));
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallDisk { at: at.into() }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs here: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.at).status();
    }
}

fn key(i: u64) -> [u8; 32] {
    Key::from_name(b"full", &i.to_le_bytes()).0
}

fn value(i: u64) -> Bytes {
    Bytes::from(vec![(i % 251) as u8; 512 << 10])
}

fn is_no_space(r: &Result<u64, ClientError>) -> bool {
    matches!(
        r,
        Err(ClientError::Status {
            status: Status::NoSpace,
            ..
        })
    )
}

#[test]
fn a_full_disk_refuses_writes_keeps_reads_and_removes_and_recovers_without_a_restart() {
    let dir = or_panic(tempfile::tempdir());
    let Some(disk) = SmallDisk::mount(&dir.path().join("disk"), "24m") else {
        return;
    };
    // The operator's own file on the same disk, deleted later to make room.
    let ballast = disk.at.join("ballast");
    or_panic(std::fs::write(&ballast, vec![7u8; 6 << 20]));
    let data = disk.at.join("data");
    let config = dir.path().join("node.toml");
    or_panic(std::fs::write(
        &config,
        "[blob]\nreserve_mb = 1\ndefrag_interval_secs = 0\n",
    ));
    let config = config.display().to_string();
    let node = NodeProcess::start(&data, &["--config", &config]);
    let rt = or_panic(tokio::runtime::Runtime::new());
    let addr = node.addr.clone();
    rt.block_on(async {
        let c = or_panic(Client::connect(&addr, ClientConfig::default()).await);
        let mut stored = Vec::new();
        let mut refused = None;
        for i in 0..200 {
            let r = c.put(key(i), value(i), Default::default()).await;
            if is_no_space(&r) {
                refused = Some(i);
                break;
            }
            or_panic(r);
            stored.push(i);
        }
        let next = refused.unwrap_or_else(|| panic!("never refused: {} stored", stored.len()));
        assert!(stored.len() > 10, "only {} values fit", stored.len());
        // Refused again, not poisoned: reads of everything stored, and removes, work.
        assert!(is_no_space(
            &c.put(key(next), value(next), Default::default()).await
        ));
        for &i in &stored {
            assert_eq!(or_panic(c.get(key(i), 0, None).await), value(i), "key {i}");
        }
        let removed: Vec<u64> = stored.iter().copied().take(3).collect();
        for &i in &removed {
            or_panic(c.remove(key(i), Default::default()).await);
        }
        let stat = or_panic(c.stat_value().await);
        assert!(stat["backend"]["read_only"].is_null(), "poisoned: {stat}");
        // The operator frees space: writes resume by themselves.
        or_panic(std::fs::remove_file(&ballast));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = c.put(key(next), value(next), Default::default()).await;
            if r.is_ok() {
                break;
            }
            assert!(is_no_space(&r), "{r:?}");
            assert!(Instant::now() < deadline, "writes did not resume");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for &i in &stored {
            let got = c.get(key(i), 0, None).await;
            if removed.contains(&i) {
                assert!(
                    matches!(&got, Err(e) if e.is_not_found()),
                    "key {i} is back"
                );
            } else {
                assert_eq!(or_panic(got), value(i), "key {i}");
            }
        }
        assert_eq!(or_panic(c.get(key(next), 0, None).await), value(next));
    });
    assert_eq!(node.terminate(), Some(0));
    let verify = or_panic(
        Command::new(env!("CARGO_BIN_EXE_blob-inspect"))
            .arg("verify")
            .arg(&data)
            .output(),
    );
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}
