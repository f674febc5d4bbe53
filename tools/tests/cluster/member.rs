//! One `ringblob-node` process of a test cluster, on a fixed address (so it can be killed and
//! restarted where the cluster knows it).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct Member {
    pub name: String,
    pub group: u32,
    pub addr: String,
    pub dir: PathBuf,
    /// The admin listener's address, from the node's `admin interface on` line.
    pub admin: Option<String>,
    pub seed: Option<String>,
    config: Option<PathBuf>,
    child: Option<Child>,
}

/// Cluster tests run one at a time: a node killed and restarted keeps its address, which a
/// test running alongside could otherwise be handed by the OS while it is down.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A free 127.0.0.1 port for both TCP and UDP (asked of the OS, then released).
pub fn free_addr() -> String {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let addr = tcp.local_addr().unwrap_or_else(|e| panic!("{e}"));
        if std::net::UdpSocket::bind(addr).is_ok() {
            return addr.to_string();
        }
    }
}

impl Member {
    pub fn new(name: &str, group: u32, root: &std::path::Path, seed: Option<&str>) -> Member {
        Member {
            name: name.to_string(),
            group,
            addr: free_addr(),
            dir: root.join(name),
            admin: None,
            seed: seed.map(str::to_string),
            config: None,
            child: None,
        }
        .with_config("")
    }

    /// Starts with this TOML configuration too. Unless it says otherwise, a node that stops
    /// answering keeps its ranges for 2 s (not the default 30 s) before they move, so tests
    /// of take-over do not wait.
    pub fn with_config(mut self, toml: &str) -> Member {
        let path = self.dir.with_extension("toml");
        let grace = if toml.contains("down_grace_secs") {
            ""
        } else {
            "down_grace_secs = 2\n"
        };
        std::fs::write(&path, format!("{grace}{toml}")).unwrap_or_else(|e| panic!("{e}"));
        self.config = Some(path);
        self
    }

    /// Starts the nodes `names` of `group` with the configuration `toml`, the first as the
    /// others' seed.
    pub fn start_group(
        names: [&str; 3],
        group: u32,
        root: &std::path::Path,
        toml: &str,
    ) -> [Member; 3] {
        let mut first = Member::new(names[0], group, root, None).with_config(toml);
        first.start();
        let seed = first.addr.clone();
        let mut rest = [names[1], names[2]]
            .map(|n| Member::new(n, group, root, Some(&seed)).with_config(toml));
        for m in &mut rest {
            m.start();
        }
        let [b, c] = rest;
        [first, b, c]
    }

    /// Starts node `names[0]` alone in group 1 and `names[1]` alone in group 2 (seeded by
    /// the first): two replica groups of one node each.
    pub fn start_two_groups(names: [&str; 2], root: &std::path::Path) -> (Member, Member) {
        let mut first = Member::new(names[0], 1, root, None);
        first.start();
        let mut second = Member::new(names[1], 2, root, Some(&first.addr));
        second.start();
        (first, second)
    }

    /// Starts (or restarts) the process and waits for its `listening on` line.
    pub fn start(&mut self) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringblob-node"));
        cmd.args(["--listen", &self.addr, "--name", &self.name])
            .args(["--group", &self.group.to_string(), "--data-dir"])
            .arg(&self.dir);
        if let Some(seed) = &self.seed {
            cmd.args(["--seed", seed]);
        }
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        let mut child = cmd
            .env(
                "RUST_LOG",
                std::env::var("RINGBLOB_TEST_RUST_LOG").unwrap_or("info".into()),
            )
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn node: {e}"));
        let Some(err) = child.stderr.take() else {
            panic!("no stderr")
        };
        let (tx, rx) = mpsc::channel();
        let (admin_tx, admin_rx) = mpsc::channel();
        let name = self.name.clone();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("admin interface on ").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    let _ = admin_tx.send(addr.to_string());
                }
                if line.contains("listening on ") {
                    let _ = tx.send(());
                }
                if std::env::var_os("RINGBLOB_TEST_LOGS").is_some() {
                    eprintln!("[{name}] {line}");
                }
                if let Ok(mut l) = log.lock() {
                    l.push(line);
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = child.kill();
            let lines = seen.lock().map(|l| l.join("\n")).unwrap_or_default();
            panic!("{} printed no 'listening on' line:\n{lines}", self.name);
        }
        self.admin = admin_rx.try_recv().ok();
        self.child = Some(child);
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// Waits up to `limit` for the process to exit on its own; its exit code if it did.
    pub fn exited_within(&mut self, limit: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + limit;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status.code().unwrap_or(-1));
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Member {
    /// SIGSTOP: the process stops answering but keeps its sockets (a long GC, a VM stall).
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`pause`](Self::pause).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let Some(c) = &self.child else {
            panic!("{} is not running", self.name)
        };
        let status = Command::new("kill")
            .args([sig, &c.id().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("kill {sig}: {e}"));
        assert!(status.success(), "kill {sig} {} failed", self.name);
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too.
        self.kill9();
    }
}
