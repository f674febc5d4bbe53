"""Every method of the blocking client against one real node, and the CLI reading what
Python wrote (and the reverse), byte for byte."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

import ringblob
from conftest import cli


@pytest.fixture
def client(node):
    return ringblob.Client(node.addr, namespace="pytest")


def test_put_get_roundtrip_and_ranges(client):
    data = os.urandom(100_000)
    assert client.put("a/one", data) == len(data)
    assert client.get("a/one") == data
    assert client.get("a/one", offset=10, size=100) == data[10:110]
    assert client.get("a/one", offset=99_990) == data[99_990:]
    # bytearray and memoryview are values too
    assert client.put("a/two", bytearray(b"xyz")) == 3
    assert client.put("a/three", memoryview(b"abcd")) == 4
    assert client.get("a/three") == b"abcd"


def test_lookup_exists_remove(client):
    client.put("l/x", b"hello")
    m = client.lookup("l/x")
    assert isinstance(m, ringblob.Meta)
    assert (m.size, m.column, m.chunks) == (5, 0, None)
    assert m.checksum == 0x3610A686  # CRC-32 of b"hello"
    assert len(m.key) == 64 and m.timestamp_ns > 0
    assert client.exists("l/x")
    client.remove("l/x")
    assert not client.exists("l/x")
    with pytest.raises(ringblob.NotFound) as e:
        client.get("l/x")
    assert e.value.status in ("NOT_FOUND", "REMOVED")
    assert isinstance(e.value, ringblob.RingblobError)
    with pytest.raises(ringblob.NotFound):
        client.lookup("never/written")


def test_columns_appends_and_offset_writes(client):
    client.put("c/k", b"value")
    client.put("c/k", b"meta!", column=1)
    assert client.get("c/k", column=1) == b"meta!"
    assert client.get("c/k") == b"value"
    assert client.lookup("c/k", column=1).column == 1
    assert client.put("c/k", b"+more", append=True) == 10
    assert client.get("c/k") == b"value+more"
    client.put("c/k", b"V", offset=0)
    assert client.get("c/k") == b"Value+more"
    client.remove("c/k", column=1)
    assert not client.exists("c/k", column=1)
    assert client.exists("c/k")
    assert [e.name for e in client.ls("c/k")] == ["c/k"]
    client.remove("c/k", column=0)  # the value's column: its name goes with it
    assert [e.name for e in client.ls("c/k")] == []


def test_compress_and_durability(client):
    data = b"compressible " * 10_000
    assert client.put("d/z", data, compress=True, durability="sync") == len(data)
    assert client.get("d/z") == data
    assert client.lookup("d/z").stored_size < len(data)
    with pytest.raises(ValueError):
        client.put("d/z", b"x", durability="sometimes")


def test_file_like_path_and_upload(client, tmp_path):
    data = os.urandom(3 << 20)
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    assert client.put("f/path", p) == len(data)
    assert client.put("f/str", str(p)) == len(data)
    assert client.put("f/obj", io.BytesIO(data)) == len(data)
    assert client.upload("f/up", io.BytesIO(data), piece_size=100_000) == len(data)
    for n in ("f/path", "f/str", "f/obj", "f/up"):
        assert client.get(n) == data, n


def test_upload_abandoned_when_the_source_raises(client):
    client.put("f/keep", b"old value")

    class Broken(io.RawIOBase):
        def __init__(self):
            self.calls = 0

        def readable(self):
            return True

        def read(self, n=-1):
            self.calls += 1
            if self.calls > 3:
                raise OSError("disk went away")
            return b"x" * 1000

    with pytest.raises(OSError):
        client.upload("f/keep", Broken())
    assert client.get("f/keep") == b"old value"


def test_open_streams_and_seeks(client):
    data = os.urandom(5 << 20)
    client.put("o/big", data)
    with client.open("o/big", buffer_size=256 << 10) as f:
        assert f.read(10) == data[:10]
        f.seek(4 << 20)
        assert f.read(1000) == data[4 << 20:(4 << 20) + 1000]
        f.seek(-100, os.SEEK_END)
        assert f.read() == data[-100:]
        f.seek(0)
        h = hashlib.sha256()
        while True:
            piece = f.read(300_000)
            if not piece:
                break
            h.update(piece)
    assert h.digest() == hashlib.sha256(data).digest()


def test_bulk_get(client):
    client.put("b/1", b"one")
    client.put("b/2", b"two")
    got = client.bulk_get(["b/1", "b/2", "b/none"])
    assert got == {"b/1": b"one", "b/2": b"two", "b/none": None}


def test_ls_lists_names_in_order_with_prefix_and_pages(client):
    names = [f"ls/{i:04}" for i in range(25)]
    for n in names:
        client.put(n, n.encode())
    listed = [e.name for e in client.ls("ls/", page_size=7)]
    assert listed == names
    assert [e.name for e in client.ls("ls/", after="ls/0019")] == names[20:]
    assert [e.name for e in client.ls("ls/", limit=3)] == names[:3]
    e = next(iter(client.ls("ls/0003")))
    assert (e.name, e.size) == ("ls/0003", 7)
    assert "pytest" in [n.name for n in client.namespaces()]


def test_raw_keys(client):
    key = bytes(range(32))
    client.put(key, b"by key")
    assert client.get(key) == b"by key"
    assert client.lookup(key).key == key.hex()
    with pytest.raises(ValueError):
        client.put(b"short", b"x")
    with pytest.raises(TypeError):
        client.get(123)


def test_stat_routes_iterate(client):
    client.put("s/x", b"1")
    stat = client.stat()
    assert isinstance(stat, dict) and stat
    routes = client.routes()
    assert isinstance(routes, dict) and "nodes" in routes
    keys = {m.key for m in client.iterate(page_size=50)}
    assert client.lookup("s/x").key in keys


def test_python_and_cli_see_the_same_objects(client, node, tmp_path):
    data = os.urandom(200_000)
    client.put("x/from-python", data)
    out = cli(node.addr, "--namespace", "pytest", "get", "x/from-python")
    assert out.stdout == data
    src = tmp_path / "cli.bin"
    other = os.urandom(150_000)
    src.write_bytes(other)
    cli(node.addr, "--namespace", "pytest", "put", "x/from-cli", src)
    assert client.get("x/from-cli") == other
    listed = cli(node.addr, "ls", "pytest", "--prefix", "x/from-py").stdout.decode()
    assert "x/from-python" in listed


def test_several_addresses_first_that_answers(node):
    c = ringblob.Client(["127.0.0.1:1", node.addr], namespace="pytest", timeout=5)
    c.put("m/a", b"1")
    assert c.get("m/a") == b"1"


def test_unreachable_node_is_connection_failed():
    with pytest.raises(ringblob.ConnectionFailed):
        ringblob.Client("127.0.0.1:1", timeout=2)


def test_bad_arguments():
    with pytest.raises(ValueError):
        ringblob.Client("127.0.0.1:1", w="most")
    with pytest.raises(ValueError):
        ringblob.Client([])
    with pytest.raises(ValueError):
        ringblob.Client("127.0.0.1:1", key="no-colon")


def test_open_reads_only_the_version_it_opened(client):
    first = os.urandom(3 << 20)
    client.put("o/replaced", first)
    f = client.open("o/replaced", buffer_size=1 << 20)
    assert f.read(1000) == first[:1000]
    client.put("o/replaced", os.urandom(3 << 20))
    with pytest.raises(ringblob.Changed):
        f.read(2 << 20)
    with client.open("o/replaced") as g:
        assert g.read() == client.get("o/replaced")


def test_fork_child_makes_its_own_runtime(client, node):
    import multiprocessing

    client.put("fork/a", b"from the parent")
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_in_child, args=(node.addr, q))
    p.start()
    p.join(60)
    assert p.exitcode == 0
    assert q.get(timeout=5) == (b"from the parent", b"from the parent")


def test_one_client_shared_by_threads(client):
    # A sync client's runtime is driven by whichever thread is blocked on it: while one
    # thread waits (here often on a 1 MiB value), the others' replies must still reach them.
    import threading

    big = os.urandom(1 << 20)
    client.put("threads/big", big)
    results = {}

    def worker(n):
        ok = True
        for i in range(150):
            value = f"{n}/{i}".encode() * (i + 1)
            client.put(f"threads/{n}/{i}", value)
            ok &= client.get(f"threads/{n}/{i}") == value
            if i % 25 == 0:
                ok &= client.get("threads/big") == big
                with client.open("threads/big", buffer_size=200_000) as f:
                    f.seek(500_000)
                    ok &= f.read(300_000) == big[500_000:800_000]
        results[n] = ok

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == {n: True for n in range(6)}
    assert sum(1 for _ in client.ls("threads/")) == 6 * 150 + 1


def _in_child(addr, q):
    import asyncio

    got = ringblob.Client(addr, namespace="pytest", timeout=10).get("fork/a")

    async def use_async():
        return await ringblob.AsyncClient(addr, namespace="pytest").get("fork/a")

    q.put((got, asyncio.run(use_async())))
