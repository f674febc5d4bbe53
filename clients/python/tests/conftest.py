"""Real nodes for the client's tests, started from the built binaries.

Binaries come from $RINGBLOB_BIN_DIR, else <repo>/target/release, else <repo>/target/debug
(the first that has both `ringblob-node` and `ringblob`). Each node logs to a file in its
directory; the tail of every log is printed when a test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import List, Optional

import pytest

REPO = Path(__file__).resolve().parents[3]


def _bin_dir() -> Path:
    env = os.environ.get("RINGBLOB_BIN_DIR")
    if env:
        return Path(env).resolve()
    for profile in ("release", "debug"):
        d = REPO / "target" / profile
        if (d / "ringblob-node").exists() and (d / "ringblob").exists():
            return d
    return REPO / "target" / "debug"


BIN_DIR = _bin_dir()
NODE_BIN = BIN_DIR / "ringblob-node"
CLI_BIN = BIN_DIR / "ringblob"
START_TIMEOUT = 60.0
CONVERGE_TIMEOUT = 60.0


class Node:
    """One `ringblob-node` process on loopback."""

    def __init__(self, root: Path, name: str, group: int = 0, seeds=(), extra=()):
        self.dir = root / name
        self.dir.mkdir(parents=True)
        self.group = group
        self.log_path = self.dir / "node.log"
        self.args = [str(NODE_BIN), "--data-dir", str(self.dir / "data"),
                     "--admin-listen", "off"]
        if group:
            self.args += ["--group", str(group)]
        for s in seeds:
            self.args += ["--seed", s]
        self.args += list(extra)
        self.addr: Optional[str] = None
        self.proc: Optional[subprocess.Popen] = None

    def start(self, listen: str = "127.0.0.1:0") -> "Node":
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info"),
                   RINGBLOB_LOG_FORMAT="text")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args + ["--listen", listen], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, env=env)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            for line in text.splitlines():
                if "listening on " in line:
                    word = line.split("listening on ", 1)[1].split()[0].strip('",')
                    self.addr = word
            if self.addr:
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"node did not start ({self.proc.poll()}):\n{self.log_tail()}")

    def restart(self) -> "Node":
        """Starts again on the same address."""
        assert self.addr
        return self.start(self.addr)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def cli(addr: str, *args, input: Optional[bytes] = None, key: Optional[str] = None,
        check: bool = True) -> subprocess.CompletedProcess:
    """Runs the `ringblob` CLI against `addr`."""
    argv = [str(CLI_BIN), "--quiet", "--remote", addr]
    if key:
        argv += ["--key", key]
    out = subprocess.run(argv + [str(a) for a in args], input=input, capture_output=True,
                         timeout=120)
    if check and out.returncode != 0:
        raise RuntimeError(f"ringblob {args} exited {out.returncode}: {out.stderr!r}")
    return out


def wait_converged(nodes: List[Node]) -> None:
    deadline = time.monotonic() + CONVERGE_TIMEOUT
    last = None
    while time.monotonic() < deadline:
        ok = True
        for n in nodes:
            out = cli(n.addr, "routes", "--json", check=False)
            if out.returncode != 0:
                ok = False
                continue
            table = json.loads(out.stdout)
            alive = [x for x in table["nodes"] if x.get("alive")]
            last = table
            if len(alive) != len(nodes):
                ok = False
        if ok:
            return
        time.sleep(0.3)
    raise RuntimeError(f"no convergence: {last}")


@pytest.fixture(scope="session")
def root():
    d = Path(tempfile.mkdtemp(prefix="ringblob-py-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def bins():
    for b in (NODE_BIN, CLI_BIN):
        if not b.exists():
            pytest.fail(f"{b} not found: `cargo build --release -p ringblob-tools` or set "
                        "RINGBLOB_BIN_DIR", pytrace=False)
    return BIN_DIR


@pytest.fixture(scope="session")
def node(root, bins):
    """One node without keys, shared by the session's single-node tests."""
    n = Node(root, "single").start()
    yield n
    n.stop()


@pytest.fixture
def fresh_nodes(root, bins, request):
    """Nodes a test starts itself (`fresh_nodes(name, ...)`), stopped after it; their logs
    are printed if it failed."""
    started: List[Node] = []

    def make(name: str, **kw) -> Node:
        n = Node(root, f"{request.node.name}-{name}", **kw).start()
        started.append(n)
        return n

    yield make
    failed = getattr(request.node, "rep_call", None)
    for n in started:
        if failed is not None and failed.failed:
            print(f"----- {n.dir.name} -----\n{n.log_tail()}")
        n.stop()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
