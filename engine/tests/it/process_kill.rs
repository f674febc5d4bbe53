//! Real process kills: a child process writes with `sync` durability and reports each
//! acknowledged key on stdout; it is killed with SIGKILL at a random moment; the parent
//! reopens the directory and checks every acknowledged key byte for byte.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::{Rng, SeedableRng};
use ringblob_engine::{Config, Durability, Engine, WriteOptions};

use crate::support::{key, value};

const CHILD_DIR: &str = "RINGBLOB_KILL_CHILD_DIR";
const CHILD_CYCLE: &str = "RINGBLOB_KILL_CHILD_CYCLE";
const CYCLES: u64 = 20;
const TEST_NAME: &str = "process_kill::kill9_keeps_every_acknowledged_sync_write";

fn config() -> Config {
    // Small blobs so kills land around rotations too.
    Config {
        max_blob_size: 1 << 20,
        frame_len: 16 << 10,
        ..Config::default()
    }
}

fn value_len(i: u64) -> usize {
    [100, 5_000, 70_000, 1][(i % 4) as usize]
}

/// The child: writes keys `cycle * 1_000_000 + i` forever, printing `ACK <i>` after each
/// acknowledged write, until killed.
fn child(dir: &str, cycle: u64) {
    let e = match Engine::open(dir, config()) {
        Ok(e) => e,
        Err(err) => panic!("child open: {err}"),
    };
    let opts = WriteOptions::durability(Durability::Sync);
    for i in 0.. {
        let k = cycle * 1_000_000 + i;
        if let Err(err) = e.write(&key(k), &value(k, 0, value_len(i)), opts) {
            panic!("child write: {err}");
        }
        println!("ACK {k}");
    }
}

fn run_child(dir: &str, cycle: u64, delay: Duration) -> Vec<u64> {
    run_child_of(TEST_NAME, dir, cycle, delay)
}

fn run_child_of(test: &str, dir: &str, cycle: u64, delay: Duration) -> Vec<u64> {
    let exe = std::env::current_exe().unwrap_or_default();
    let spawned = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_CYCLE, cycle.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut proc = match spawned {
        Ok(p) => p,
        Err(err) => panic!("spawn child: {err}"),
    };
    let Some(out) = proc.stdout.take() else {
        panic!("no child stdout")
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(k) = line
                .strip_prefix("ACK ")
                .and_then(|n| n.parse::<u64>().ok())
            {
                let _ = tx.send(k);
            }
        }
    });
    // Wait for the first acknowledgement, then let it run a random while longer.
    let first = rx.recv_timeout(Duration::from_secs(30));
    assert!(first.is_ok(), "child acknowledged nothing in 30 s");
    std::thread::sleep(delay);
    assert!(proc.kill().is_ok(), "SIGKILL failed");
    let _ = proc.wait();
    let _ = reader.join();
    first.into_iter().chain(rx.try_iter()).collect()
}

#[test]
fn kill9_keeps_every_acknowledged_sync_write() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let cycle = std::env::var(CHILD_CYCLE)
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        child(&dir, cycle);
        return;
    }
    let seed: u64 = std::env::var("RINGBLOB_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            now.as_nanos() as u64 ^ u64::from(std::process::id())
        });
    eprintln!("process-kill test seed: {seed} (replay with RINGBLOB_KILL_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let Ok(dir) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    let path = dir.path().to_string_lossy().into_owned();
    let mut acked: Vec<u64> = Vec::new();
    for cycle in 0..CYCLES {
        let delay = Duration::from_millis(rng.gen_range(0..120));
        let got = run_child(&path, cycle, delay);
        assert!(
            !got.is_empty(),
            "seed {seed}: cycle {cycle} acknowledged nothing"
        );
        acked.extend(got);
        let e = match Engine::open(&path, config()) {
            Ok(e) => e,
            Err(err) => panic!("seed {seed}: reopen after kill {cycle}: {err}"),
        };
        for &k in &acked {
            let want = value(k, 0, value_len(k % 1_000_000));
            match e.read(&key(k), ringblob_engine::Range::all()) {
                Ok(v) => assert!(v == want, "seed {seed}: key {k} differs after kill {cycle}"),
                Err(err) => panic!("seed {seed}: acknowledged key {k} after kill {cycle}: {err}"),
            }
        }
        assert!(e.close().is_ok());
    }
    eprintln!(
        "process-kill test: {} acknowledged writes verified over {CYCLES} kills",
        acked.len()
    );
}

const APPEND_TEST_NAME: &str = "process_kill::kill9_keeps_every_acknowledged_append";

/// The `n`-th chunk appended: lengths cycle so appends start mid-frame, on a frame boundary,
/// across several frames, and within one.
fn chunk(n: u64) -> Vec<u8> {
    value(n, 7, [300, 16 << 10, 40_000, 1][(n % 4) as usize])
}

/// How many whole chunks a value of `len` bytes holds, if it is made of them exactly.
fn chunks_in(len: usize) -> Option<u64> {
    let (mut n, mut sum) = (0u64, 0usize);
    while sum < len {
        sum += chunk(n).len();
        n += 1;
    }
    (sum == len).then_some(n)
}

/// The child of the append test: appends chunk after chunk to one value with `sync`
/// durability, printing `ACK <chunks>` after each acknowledged append, until killed.
fn append_child(dir: &str) {
    let e = match Engine::open(dir, config()) {
        Ok(e) => e,
        Err(err) => panic!("child open: {err}"),
    };
    let k = key(u64::MAX);
    let len = e.lookup(&k).map_or(0, |m| m.size as usize);
    let Some(mut n) = chunks_in(len) else {
        panic!("child: value of {len} bytes is not whole chunks");
    };
    let opts = WriteOptions::durability(Durability::Sync);
    loop {
        if let Err(err) = e.append_column(&k, 0, &chunk(n), opts) {
            panic!("child append: {err}");
        }
        n += 1;
        println!("ACK {n}");
    }
}

/// Appends (patch records) under `kill -9`: after each kill the value is exactly the first
/// `n` chunks, `n` at least the number acknowledged.
#[test]
fn kill9_keeps_every_acknowledged_append() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        append_child(&dir);
        return;
    }
    let Ok(dir) = tempfile::tempdir() else {
        panic!("tempdir")
    };
    let path = dir.path().to_string_lossy().into_owned();
    let mut acked = 0u64;
    for cycle in 0..8u64 {
        let delay = Duration::from_millis(17 * cycle % 100);
        let got = run_child_of(APPEND_TEST_NAME, &path, cycle, delay);
        acked = got.into_iter().max().unwrap_or(acked).max(acked);
        let e = match Engine::open(&path, config()) {
            Ok(e) => e,
            Err(err) => panic!("reopen after kill {cycle}: {err}"),
        };
        let v = e.read(&key(u64::MAX), ringblob_engine::Range::all());
        let Ok(v) = v else {
            panic!("after kill {cycle}: {v:?}");
        };
        let n = chunks_in(v.len());
        assert!(
            n.is_some_and(|n| n >= acked),
            "after kill {cycle}: {} bytes, {acked} chunks acknowledged",
            v.len()
        );
        let want: Vec<u8> = (0..n.unwrap_or(0)).flat_map(chunk).collect();
        assert!(v == want, "after kill {cycle}: the value differs");
        assert!(e.close().is_ok());
    }
    eprintln!("append kill test: {acked} acknowledged appends verified over 8 kills");
}
