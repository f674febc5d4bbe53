//! The CLI streams values: a 160 MiB put (from a file and from stdin) and get (to a file and
//! to stdout) keep the `ringblob` process under 64 MiB resident, and the bytes round-trip.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::node_process::NodeProcess;

fn or_panic<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `cmd` (stdin from `input`, stdout to `output`), returning its exit code and the
/// peak resident set size seen (`VmHWM` in `/proc/PID/status`, read every 5 ms: it only
/// grows, so the last reading before the exit is the peak up to then).
fn run_measured(
    mut cmd: Command,
    input: Option<&std::path::Path>,
    output: Option<&std::path::Path>,
) -> (i32, u64) {
    if let Some(p) = input {
        cmd.stdin(or_panic(std::fs::File::open(p)));
    }
    match output {
        Some(p) => cmd.stdout(or_panic(std::fs::File::create(p))),
        None => cmd.stdout(Stdio::null()),
    };
    let mut child = or_panic(cmd.stderr(Stdio::inherit()).spawn());
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            let kib = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            peak = peak.max(kib.unwrap_or(0) * 1024);
        }
        if let Some(code) = or_panic(child.try_wait()) {
            return (code.code().unwrap_or(-1), peak);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn large_puts_and_gets_stream_in_bounded_memory() {
    let dir = or_panic(tempfile::tempdir());
    let node = NodeProcess::start(&dir.path().join("data"), &[]);
    let value = dir.path().join("value");
    {
        let mut f = or_panic(std::fs::File::create(&value));
        let block: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();
        for i in 0..160u32 {
            let mut b = block.clone();
            b[..4].copy_from_slice(&i.to_le_bytes());
            or_panic(f.write_all(&b));
        }
    }
    let cli = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ringblob"));
        c.args(["--remote", &node.addr, "--quiet"]).args(args);
        c
    };
    let path = value.display().to_string();
    let budget = 64 << 20;
    let (code, rss) = run_measured(cli(&["put", "big", &path]), None, None);
    assert_eq!(code, 0);
    assert!(rss < budget, "put from a file: {rss} bytes resident");
    let (code, rss) = run_measured(cli(&["put", "piped"]), Some(&value), None);
    assert_eq!(code, 0);
    assert!(rss < budget, "put from stdin: {rss} bytes resident");
    let back = dir.path().join("back");
    let back_s = back.display().to_string();
    let (code, rss) = run_measured(cli(&["get", "big", "-o", &back_s]), None, None);
    assert_eq!(code, 0);
    assert!(rss < budget, "get to a file: {rss} bytes resident");
    assert!(or_panic(std::fs::read(&back)) == or_panic(std::fs::read(&value)));
    let piped = dir.path().join("piped");
    let (code, rss) = run_measured(cli(&["get", "piped"]), None, Some(&piped));
    assert_eq!(code, 0);
    assert!(rss < budget, "get to stdout: {rss} bytes resident");
    assert!(or_panic(std::fs::read(&piped)) == or_panic(std::fs::read(&value)));
}
