//! Starting and stopping a real `ringblob-node` process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct NodeProcess {
    pub child: Child,
    pub addr: String,
}

impl NodeProcess {
    /// Starts a node on a free port over `dir`, waiting for its `listening on` line.
    pub fn start(dir: &Path, extra: &[&str]) -> NodeProcess {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringblob-node"));
        cmd.args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(extra);
        let mut child = cmd
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn node: {e}"));
        let Some(err) = child.stderr.take() else {
            panic!("no stderr")
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if std::env::var_os("RINGBLOB_TEST_LOGS").is_some() {
                    eprintln!("[node] {line}");
                }
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(
                        rest.split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_string(),
                    );
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => NodeProcess { child, addr },
            Err(_) => {
                let _ = child.kill();
                panic!("node printed no 'listening on' line");
            }
        }
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id() as i32;
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .ok()?;
        self.child.wait().ok()?.code()
    }

    /// SIGKILL.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
