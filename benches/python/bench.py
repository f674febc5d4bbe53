#!/usr/bin/env python3
"""The Python client against redis-py, in the same run (a benchmark, not a test).

One ringblob-node (release build) and one redis-server (Debian's, no persistence) on
loopback; one Python process; 100-byte values:
  puts         sequential, Client.put (name + name record) and a raw 32-byte key (value
               only), durability none    vs redis-py SET
  gets         sequential, Client.get                        vs redis-py GET
  async gets   1,000 concurrent gets from one AsyncClient    vs redis.asyncio (a blocking
               pool of 100 connections)
  stream       a 64 MiB value: Client.open() read to the end vs `ringblob get` (the CLI)
Prints one JSON object: operations/s for each side and the ratios ringblob / redis.

Needs: `cargo build --release -p ringblob-tools`, `pip install ./clients/python redis`,
redis-server on PATH. Usage: python3 benches/python/bench.py [--count N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
import redis.asyncio as aredis

import ringblob

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "target" / "release"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_node(work: Path) -> tuple:
    log = open(work / "node.log", "wb")
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "ringblob-node"), "--data-dir", str(work / "data"), "--listen",
         f"127.0.0.1:{port}", "--admin-listen", "off"],
        stdout=log, stderr=log)
    addr = f"127.0.0.1:{port}"
    for _ in range(200):
        try:
            ringblob.Client(addr, timeout=1)
            return proc, addr
        except ringblob.RingblobError:
            time.sleep(0.05)
    raise RuntimeError("node did not start")


def start_redis(work: Path) -> tuple:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(work)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    r = redis.Redis(port=port)
    for _ in range(200):
        try:
            r.ping()
            return proc, port
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis did not start")


def rate(n: int, secs: float) -> float:
    return round(n / secs, 1)


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=20000)
    args = ap.parse_args()
    n = args.count
    work = Path(tempfile.mkdtemp(prefix="ringblob-pybench-"))
    node, addr = start_node(work)
    rproc, rport = start_redis(work)
    try:
        c = ringblob.Client(addr, namespace="bench")
        r = redis.Redis(port=rport)
        value = os.urandom(100)
        names = [f"k{i:07}" for i in range(n)]
        keys = [i.to_bytes(4, "little") * 8 for i in range(n)]
        out = {"count": n, "value_size": 100, "cpus": os.cpu_count()}

        def rb_put():
            for k in names:
                c.put(k, value, durability="none")

        def rb_put_raw():
            for k in keys:
                c.put(k, value, durability="none")

        def redis_set():
            for k in names:
                r.set(k, value)

        def rb_get():
            for k in names:
                c.get(k)

        def redis_get():
            for k in names:
                r.get(k)

        out["puts"] = {"ringblob": rate(n, timed(rb_put)), "ringblob_raw_key": rate(n, timed(rb_put_raw)),
                       "redis": rate(n, timed(redis_set))}
        out["gets"] = {"ringblob": rate(n, timed(rb_get)), "redis": rate(n, timed(redis_get))}

        async def concurrent():
            ac = ringblob.AsyncClient(addr, namespace="bench")
            # redis.asyncio runs one command per connection at a time: a pool of 100
            # (its concurrent requests wait for a free connection).
            pool = aredis.BlockingConnectionPool(port=rport, max_connections=100)
            ar = aredis.Redis(connection_pool=pool)
            batch = names[:1000]
            await ac.get(batch[0])
            await ar.get(batch[0])
            rounds = max(1, n // 1000)
            t = time.perf_counter()
            for _ in range(rounds):
                got = await asyncio.gather(*(ac.get(k) for k in batch))
            rb = rate(rounds * 1000, time.perf_counter() - t)
            assert got[0] == value
            t = time.perf_counter()
            for _ in range(rounds):
                got = await asyncio.gather(*(ar.get(k) for k in batch))
            rd = rate(rounds * 1000, time.perf_counter() - t)
            await ar.aclose()
            return rb, rd

        rb, rd = asyncio.run(concurrent())
        out["async_gets_1000_concurrent"] = {"ringblob": rb, "redis": rd}

        big = work / "big.bin"
        big.write_bytes(os.urandom(64 << 20))
        c.put("big", big)

        def py_stream():
            with c.open("big", buffer_size=4 << 20) as f:
                while f.read(4 << 20):
                    pass

        def cli_stream():
            subprocess.run([str(BIN / "ringblob"), "--quiet", "--remote", addr, "--namespace",
                            "bench", "get", "big"], stdout=subprocess.DEVNULL, check=True)

        py_stream()
        py = min(timed(py_stream) for _ in range(3))
        cl = min(timed(cli_stream) for _ in range(3))
        out["stream_64mib_mb_per_sec"] = {"python_open": round(64 * 1.048576 / py, 1),
                                          "cli_get": round(64 * 1.048576 / cl, 1)}
        out["ratios"] = {
            "puts_vs_redis": round(out["puts"]["ringblob"] / out["puts"]["redis"], 3),
            "puts_raw_key_vs_redis": round(out["puts"]["ringblob_raw_key"] / out["puts"]["redis"], 3),
            "gets_vs_redis": round(out["gets"]["ringblob"] / out["gets"]["redis"], 3),
            "async_gets_vs_redis": round(rb / rd, 3),
            "stream_vs_cli": round(cl / py, 3),
        }
        print(json.dumps(out))
    finally:
        node.terminate()
        rproc.terminate()
        node.wait()
        rproc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
