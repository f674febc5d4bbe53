//! The CLI's output to a reader that goes away (`ringblob routes --json | head`): the
//! process ends quietly, as a Unix filter does, never with a panic and a backtrace.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use crate::node_process::NodeProcess;

#[test]
fn a_closed_pipe_ends_the_cli_quietly() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let node = NodeProcess::start(dir.path(), &[]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringblob"))
        .args(["--remote", &node.addr, "routes", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    // The reader goes before the CLI has connected, let alone written.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "{:?}: {stderr}",
        out.status
    );
    assert_eq!(node.terminate(), Some(0));
}
