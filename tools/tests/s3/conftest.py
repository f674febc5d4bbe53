"""Harness for the S3 client suite: a secured two-group cluster of four `ringblob-node`
processes, each serving the HTTP gateway, shared by every test of the session.

Binaries come from $RINGBLOB_BIN_DIR (default: <repo>/target/debug). Node logs are printed
at the end of the run when a test failed (and the temporary directory is kept then).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import botocore.config
import pytest

REPO = Path(__file__).resolve().parents[3]
BIN_DIR = Path(os.environ.get("RINGBLOB_BIN_DIR", REPO / "target" / "debug")).resolve()
NODE_BIN = BIN_DIR / "ringblob-node"
CLI_BIN = BIN_DIR / "ringblob"

START_TIMEOUT = 60.0
CONVERGE_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
LOG_TAIL = 300  # lines of each node's log printed after a failure

S3_KEY_LINE = re.compile(r"access key id (\S+), secret access key ([0-9a-fA-F]+)")

# Filled at teardown when a test failed, printed by pytest_terminal_summary.
_FAILURE_LOGS = []


@dataclass
class Key:
    role: str
    namespaces: list
    id: str  # the key id, also the S3 access key id
    secret: str  # the binary protocol's secret (ID:SECRET for the CLI)
    s3_secret: str  # the S3 secret access key

    @property
    def cli(self):
        return f"{self.id}:{self.secret}"


@dataclass
class Node:
    index: int
    group: int
    data_dir: Path
    proc: subprocess.Popen
    logs: list = field(default_factory=list)
    addr: str = None  # binary listener, host:port
    http: str = None  # gateway, host:port
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seen: threading.Condition = None

    @property
    def endpoint(self):
        return f"http://{self.http}"

    def log_text(self, tail=None):
        with self._lock:
            lines = list(self.logs)
        if tail is not None:
            lines = lines[-tail:]
        return "\n".join(lines)


def _run(args, timeout=60, check=True, **kw):
    out = subprocess.run(
        [str(a) for a in args], capture_output=True, timeout=timeout, **kw
    )
    if check and out.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, args))} exited {out.returncode}\n"
            f"stdout: {out.stdout.decode(errors='replace')}\n"
            f"stderr: {out.stderr.decode(errors='replace')}"
        )
    return out


def _add_key(keys_file, role, namespaces):
    args = [NODE_BIN, "keys", "add", "--role", role, "--keys-file", keys_file]
    for ns in namespaces:
        args += ["--namespace", ns]
    out = _run(args)
    pair = out.stdout.decode().strip().splitlines()[-1].strip()
    key_id, secret = pair.split(":", 1)
    m = S3_KEY_LINE.search(out.stderr.decode())
    if not m:
        raise RuntimeError(f"no S3 key line in `keys add` stderr: {out.stderr!r}")
    if m.group(1) != key_id:
        raise RuntimeError(f"S3 key id {m.group(1)} differs from {key_id}")
    return Key(role, list(namespaces) or ["*"], key_id, secret, m.group(2))


def _start_node(index, group, root, keys_file, secret_file, seeds):
    data_dir = root / f"node{index}"
    args = [
        NODE_BIN,
        "--listen", "127.0.0.1:0",
        "--http-listen", "127.0.0.1:0",
        "--data-dir", data_dir,
        "--group", str(group),
        "--keys-file", keys_file,
        "--cluster-secret-file", secret_file,
        "--admin-listen", "off",
    ]
    for s in seeds:
        args += ["--seed", s]
    env = dict(os.environ)
    env.setdefault("RUST_LOG", "info")
    env["RINGBLOB_LOG_FORMAT"] = "text"
    proc = subprocess.Popen(
        [str(a) for a in args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    node = Node(index=index, group=group, data_dir=data_dir, proc=proc)
    node._seen = threading.Condition(node._lock)

    def word_after(line, marker):
        rest = line.split(marker, 1)
        if len(rest) < 2 or not rest[1].split():
            return None
        return rest[1].split()[0].strip('",')

    def reader():
        for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            with node._lock:
                node.logs.append(line)
                if node.http is None and "HTTP gateway on " in line:
                    node.http = word_after(line, "HTTP gateway on ")
                elif node.addr is None and "listening on " in line:
                    node.addr = word_after(line, "listening on ")
                node._seen.notify_all()
        with node._lock:
            node._seen.notify_all()

    threading.Thread(target=reader, daemon=True, name=f"node{index}-stderr").start()
    return node


def _wait_started(nodes):
    deadline = time.monotonic() + START_TIMEOUT
    for node in nodes:
        with node._lock:
            while node.addr is None or node.http is None:
                left = deadline - time.monotonic()
                if left <= 0 or node.proc.poll() is not None:
                    break
                node._seen.wait(min(left, 0.5))
            ok = node.addr is not None and node.http is not None
        if not ok:
            time.sleep(0.2)  # let the reader drain what a dead process printed
            status = node.proc.poll()
            raise RuntimeError(
                f"node{node.index} (group {node.group}) did not report both "
                f"'listening on' and 'HTTP gateway on' within {START_TIMEOUT:.0f}s "
                f"(exit status {status}); logs of every node:\n" + _all_logs(nodes)
            )


def _all_logs(nodes, tail=None):
    parts = []
    for n in nodes:
        parts.append(
            f"----- node{n.index} group {n.group} listen {n.addr} http {n.http} -----\n"
            + n.log_text(tail)
        )
    return "\n".join(parts)


def _stop(nodes):
    for n in nodes:
        if n.proc.poll() is None:
            try:
                n.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + STOP_TIMEOUT
    for n in nodes:
        try:
            n.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            n.proc.kill()
            n.proc.wait()


class Cluster:
    """What the tests get: the nodes, their endpoints, the keys, and client helpers."""

    def __init__(self, root, nodes, keys):
        self.root = root
        self.nodes = nodes
        self.keys = keys  # "write", "read", "limited" -> Key
        self.endpoints = [n.endpoint for n in nodes if n.http]
        self.endpoint = self.endpoints[0] if self.endpoints else None

    def _endpoint(self, endpoint):
        if endpoint is None:
            return self.endpoint
        if isinstance(endpoint, int):
            return self.endpoints[endpoint]
        return endpoint

    def client_for(self, access_key_id, secret_access_key, endpoint=None, **config):
        cfg = dict(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 2},
            max_pool_connections=16,
        )
        cfg.update(config)
        return boto3.client(
            "s3",
            endpoint_url=self._endpoint(endpoint),
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name="us-east-1",
            config=botocore.config.Config(**cfg),
        )

    def client(self, key="write", endpoint=None, **config):
        """A boto3 S3 client of `key` ("write", "read" or "limited") on `endpoint` (a URL,
        a node index, or None for the first node)."""
        k = self.keys[key]
        return self.client_for(k.id, k.s3_secret, endpoint, **config)

    def cli(self, *args, key="write", node=0, input=None, check=True, timeout=120):
        """Runs the `ringblob` CLI against node `node` with `key`."""
        return _run(
            [CLI_BIN, "--quiet", "--key", self.keys[key].cli, "--remote",
             self.nodes[node].addr, *args],
            timeout=timeout,
            check=check,
            input=input,
        )

    def routes(self, node):
        out = self.cli("routes", "--json", node=node, timeout=20)
        return json.loads(out.stdout)


def _wait_converged(cluster):
    deadline = time.monotonic() + CONVERGE_TIMEOUT
    last = {}
    while True:
        done = True
        for i, n in enumerate(cluster.nodes):
            try:
                table = cluster.routes(i)
                alive = sorted(
                    (x["group"], x["addr"]) for x in table["nodes"] if x.get("alive")
                )
                last[n.index] = alive
                if len(alive) != len(cluster.nodes):
                    done = False
            except Exception as e:  # not ready yet
                last[n.index] = repr(e)
                done = False
        if done:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the cluster did not converge to {len(cluster.nodes)} alive nodes in "
                f"{CONVERGE_TIMEOUT:.0f}s; last route tables seen: {last}\n"
                + _all_logs(cluster.nodes)
            )
        time.sleep(0.5)


def start_cluster():
    """Starts the four nodes and waits until they converged; returns the Cluster (whose
    `nodes` are running, to be stopped with `_stop`). Raises with the logs on failure."""
    for b in (NODE_BIN, CLI_BIN):
        if not b.exists():
            raise RuntimeError(
                f"{b} not found: build with `cargo build` or set RINGBLOB_BIN_DIR"
            )
    root = Path(tempfile.mkdtemp(prefix="ringblob-s3-"))
    secret_file = root / "cluster.secret"
    keys_file = root / "keys.json"
    _run([NODE_BIN, "keys", "cluster-secret", "--file", secret_file])
    keys = {
        "write": _add_key(keys_file, "write", []),
        "read": _add_key(keys_file, "read", []),
        "limited": _add_key(keys_file, "write", ["limited"]),
    }
    nodes = []
    c = Cluster(root, nodes, keys)
    try:
        first = _start_node(1, 1, root, keys_file, secret_file, [])
        nodes.append(first)
        _wait_started(nodes)
        for index, group in ((2, 1), (3, 2), (4, 2)):
            nodes.append(
                _start_node(index, group, root, keys_file, secret_file, [first.addr])
            )
        _wait_started(nodes)
        c.endpoints = [n.endpoint for n in nodes]
        c.endpoint = c.endpoints[0]
        _wait_converged(c)
    except BaseException:
        _stop(nodes)
        raise
    return c


@pytest.fixture(scope="session")
def cluster(request):
    try:
        c = start_cluster()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield c
    finally:
        _stop(c.nodes)
        if request.session.testsfailed > 0:
            _FAILURE_LOGS.append(
                f"ringblob node logs (last {LOG_TAIL} lines each; data in {c.root}):\n"
                + _all_logs(c.nodes, LOG_TAIL)
            )
        else:
            shutil.rmtree(c.root, ignore_errors=True)


def pytest_terminal_summary(terminalreporter):
    for text in _FAILURE_LOGS:
        terminalreporter.section("ringblob node logs")
        terminalreporter.write_line(text)


_BUCKET_CHARS = re.compile(r"[^a-z0-9-]+")


@pytest.fixture
def bucket_name(request):
    """A bucket name of this test's own (lowercase, 3-63 characters), not yet created."""
    base = _BUCKET_CHARS.sub("-", request.node.name.lower()).strip("-")
    base = base.removeprefix("test-")
    name = f"t-{base}"[:63].rstrip("-")
    return name


@pytest.fixture
def bucket(cluster, bucket_name):
    """A bucket of this test's own, created with the write key."""
    cluster.client().create_bucket(Bucket=bucket_name)
    return bucket_name


# The node limits failed authentications per source address (docs/SECURITY.md §5): a burst
# of 5, one more every 2 s, shared by S3 signatures and the binary protocol's AUTH. Every
# client here, the gateways' own connections to the nodes included, comes from 127.0.0.1,
# so a test that fails authentication on purpose makes at most 4 failures and then waits
# for the whole burst to come back before the next test runs.
AUTH_REFILL_SECONDS = 11


@pytest.fixture
def auth_failures():
    """For tests that fail authentication on purpose: waits for the limit to refill after."""
    yield
    time.sleep(AUTH_REFILL_SECONDS)
