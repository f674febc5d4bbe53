//! Starting and stopping a real `ringblob-node` process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct NodeProcess {
    pub child: Child,
    pub addr: String,
    /// The admin listener's address (`admin interface on`), if it has one.
    pub admin: Option<String>,
    /// Every log line so far.
    pub logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl NodeProcess {
    /// Starts a node over `dir` (on a free loopback port unless `extra` has a `--listen`),
    /// waiting for its `listening on` line.
    pub fn start(dir: &Path, extra: &[&str]) -> NodeProcess {
        Self::start_env(dir, extra, &[])
    }

    /// [`start`](Self::start) with environment variables set for the node.
    pub fn start_env(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> NodeProcess {
        let listen: &[&str] = if extra.contains(&"--listen") {
            &[]
        } else {
            &["--listen", "127.0.0.1:0"]
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringblob-node"));
        cmd.args(listen).arg("--data-dir").arg(dir).args(extra);
        cmd.envs(env.iter().copied());
        let mut child = cmd
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn node: {e}"));
        let Some(err) = child.stderr.take() else {
            panic!("no stderr")
        };
        let (tx, rx) = mpsc::channel();
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = logs.clone();
        let admin = std::sync::Arc::new(std::sync::Mutex::new(None));
        let admin_seen = admin.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if std::env::var_os("RINGBLOB_TEST_LOGS").is_some() {
                    eprintln!("[node] {line}");
                }
                let word_after = |marker: &str| {
                    let rest = line.split(marker).nth(1)?;
                    let w = rest.split_whitespace().next()?;
                    Some(w.trim_end_matches(['"', ',']).to_string())
                };
                if let Some(a) = word_after("admin interface on ") {
                    if let Ok(mut slot) = admin_seen.lock() {
                        *slot = Some(a);
                    }
                } else if let Some(addr) = word_after("listening on ") {
                    let _ = tx.send(addr);
                }
                if let Ok(mut all) = kept.lock() {
                    all.push(line);
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => {
                let admin = admin.lock().ok().and_then(|a| a.clone());
                NodeProcess {
                    child,
                    addr,
                    admin,
                    logs,
                }
            }
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                let lines = logs.lock().map(|l| l.join("\n")).unwrap_or_default();
                panic!("node printed no 'listening on' line (exit {status:?}); its log:\n{lines}");
            }
        }
    }

    /// Starts a node with its HTTP gateway on a loopback port the node picks (no port is
    /// chosen here and then bound there: another process could take it meanwhile), and
    /// returns it with the gateway's address, from its `HTTP gateway on` line.
    pub fn start_http(dir: &Path, extra: &[&str]) -> (NodeProcess, String) {
        let mut args = vec!["--http-listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let node = Self::start(dir, &args);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let seen = node.logs.lock().ok().and_then(|lines| {
                lines.iter().find_map(|l| {
                    let rest = l.split("HTTP gateway on ").nth(1)?;
                    let w = rest.split_whitespace().next()?;
                    Some(w.trim_end_matches(['"', ',']).to_string())
                })
            });
            if let Some(addr) = seen {
                return (node, addr);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "node printed no 'HTTP gateway on' line"
            );
            std::thread::sleep(Duration::from_millis(20));
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
