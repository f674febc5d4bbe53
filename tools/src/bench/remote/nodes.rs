//! `ringblob-node` processes that the cluster workloads start themselves: free 127.0.0.1
//! ports, one scratch directory, and guards that kill every node (and remove the directory)
//! when dropped, on success and on error alike.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// Lines of a node's log kept to explain a failed start.
const LOG_TAIL: usize = 20;

/// Set this to copy every node's log lines to stderr.
const LOGS_ENV: &str = "RINGBLOB_BENCH_NODE_LOGS";

/// `ringblob-node`: `--node-bin`, else the file next to this executable.
pub fn node_binary(flag: Option<&Path>) -> Result<PathBuf> {
    let path = match flag {
        Some(p) => p.to_path_buf(),
        None => {
            let exe = std::env::current_exe().context("finding the ringblob-bench executable")?;
            let dir = exe
                .parent()
                .with_context(|| format!("{} has no parent directory", exe.display()))?;
            dir.join("ringblob-node")
        }
    };
    if !path.is_file() {
        bail!(
            "no ringblob-node at {} (build it, or pass --node-bin PATH)",
            path.display()
        );
    }
    Ok(path)
}

/// A free 127.0.0.1 port for both TCP and UDP (asked of the OS, then released).
pub fn free_addr() -> Result<String> {
    for _ in 0..100 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").context("binding a probe port")?;
        let addr = tcp.local_addr()?;
        if std::net::UdpSocket::bind(addr).is_ok() {
            return Ok(addr.to_string());
        }
    }
    bail!("found no port free for both TCP and UDP")
}

/// A scratch directory, removed when dropped.
pub struct Scratch {
    pub path: PathBuf,
}

impl Scratch {
    /// A fresh directory under `parent`, named after this process.
    pub fn new(parent: &Path) -> Result<Scratch> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = parent.join(format!(
            "ringblob-bench-cluster-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Scratch { path })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// How to start one node.
pub struct NodeSpec<'a> {
    pub bin: &'a Path,
    pub root: &'a Path,
    pub name: &'a str,
    pub group: u32,
    pub seed: Option<&'a str>,
    pub rebalance_mb_per_sec: u64,
}

/// A running node; killed when dropped.
pub struct NodeProc {
    pub name: String,
    pub addr: String,
    child: Child,
}

impl NodeProc {
    /// Starts the node in `root/name` and waits for its `listening on` line.
    pub fn start(s: &NodeSpec) -> Result<NodeProc> {
        let dir = s.root.join(s.name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let config = s.root.join(format!("{}.toml", s.name));
        std::fs::write(
            &config,
            format!("rebalance_mb_per_sec = {}\n", s.rebalance_mb_per_sec),
        )
        .with_context(|| format!("writing {}", config.display()))?;
        let addr = free_addr()?;
        let mut cmd = Command::new(s.bin);
        cmd.args(["--listen", &addr, "--name", s.name])
            .args(["--group", &s.group.to_string()])
            .arg("--data-dir")
            .arg(&dir)
            .arg("--config")
            .arg(&config);
        if let Some(seed) = s.seed {
            cmd.args(["--seed", seed]);
        }
        let child = cmd
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", s.bin.display()))?;
        // The guard exists from here on: an early return kills the process.
        let mut node = NodeProc {
            name: s.name.to_string(),
            addr,
            child,
        };
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let ready = match node.child.stderr.take() {
            Some(err) => drain_log(err, s.name.to_string(), tail.clone()),
            None => bail!("node {} has no stderr pipe", s.name),
        };
        if ready.recv_timeout(Duration::from_secs(60)).is_err() {
            let lines: Vec<String> = tail
                .lock()
                .map(|t| t.iter().cloned().collect())
                .unwrap_or_default();
            bail!(
                "node {} did not report `listening on` within 60 s; its last log lines:\n{}",
                s.name,
                lines.join("\n")
            );
        }
        Ok(node)
    }
}

impl NodeProc {
    /// One node of its own (`n1`, group 1, no seeds) in `root`.
    pub fn single(bin: &Path, root: &Path, rebalance_mb_per_sec: u64) -> Result<NodeProc> {
        NodeProc::start(&NodeSpec {
            bin,
            root,
            name: "n1",
            group: 1,
            seed: None,
            rebalance_mb_per_sec,
        })
    }

    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a node's log until it closes (so the pipe never fills), keeping the last lines and
/// signalling once the node listens.
fn drain_log(
    err: std::process::ChildStderr,
    name: String,
    tail: Arc<Mutex<VecDeque<String>>>,
) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    let echo = std::env::var_os(LOGS_ENV).is_some();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains("listening on ") {
                let _ = tx.send(());
            }
            if echo {
                eprintln!("[{name}] {line}");
            }
            if let Ok(mut t) = tail.lock() {
                if t.len() == LOG_TAIL {
                    t.pop_front();
                }
                t.push_back(line);
            }
        }
    });
    rx
}
