"""The asyncio client: the same operations as coroutines, many requests in flight."""

from __future__ import annotations

import asyncio
import io
import os

import pytest

import ringblob


def run(coro):
    return asyncio.run(coro)


def test_thousand_concurrent_gets_complete_and_match(node):
    async def main():
        async with ringblob.AsyncClient(node.addr, namespace="async") as c:
            values = {f"k/{i:04}": os.urandom(100 + i % 50) for i in range(1000)}
            await asyncio.gather(*(c.put(k, v) for k, v in values.items()))
            names = list(values)
            got = await asyncio.gather(*(c.get(k) for k in names))
            assert got == [values[k] for k in names]

    run(main())


def test_cancelled_and_failing_operations_leave_the_others_their_results(node):
    async def main():
        async with ringblob.AsyncClient(node.addr, namespace="async-mixed") as c:
            values = {f"m/{i:03}": os.urandom(64) for i in range(200)}
            await asyncio.gather(*(c.put(k, v) for k, v in values.items()))
            names = list(values)
            ops = []
            for i, k in enumerate(names):
                ops.append(c.get(k))
                if i % 10 == 0:
                    ops.append(c.get(f"missing/{i}"))
            # Some are cancelled before their results come back: the rest still get theirs.
            tasks = [asyncio.ensure_future(op) for op in ops]
            for t in tasks[::7]:
                t.cancel()
            done = await asyncio.gather(*tasks, return_exceptions=True)
            for t, got in zip(tasks, done):
                if t.cancelled():
                    assert isinstance(got, asyncio.CancelledError)
            kept = [g for t, g in zip(tasks, done) if not t.cancelled()]
            missing = [g for g in kept if isinstance(g, ringblob.NotFound)]
            assert missing, "a missing key's get raises NotFound"
            assert all(isinstance(g, (bytes, ringblob.NotFound)) for g in kept)
            got = await asyncio.gather(*(c.get(k) for k in names))
            assert got == [values[k] for k in names]

    run(main())


def test_event_loops_in_several_threads_each_get_their_own_results(node):
    import threading

    results = {}

    def worker(n):
        async def main():
            async with ringblob.AsyncClient(node.addr, namespace=f"loop{n}") as c:
                values = {f"t/{i:03}": os.urandom(80) for i in range(300)}
                await asyncio.gather(*(c.put(k, v) for k, v in values.items()))
                got = await asyncio.gather(*(c.get(k) for k in values))
                return got == list(values.values())

        results[n] = asyncio.run(main())

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {0: True, 1: True, 2: True, 3: True}


def test_async_methods(node, tmp_path):
    async def main():
        c = ringblob.AsyncClient(node.addr, namespace="async2")
        data = os.urandom(2 << 20)
        assert await c.put("a", data) == len(data)
        assert await c.get("a", offset=5, size=5) == data[5:10]
        m = await c.lookup("a")
        assert m.size == len(data)
        assert await c.exists("a")
        p = tmp_path / "f"
        p.write_bytes(data)
        assert await c.put("p", p) == len(data)
        assert await c.upload("u", io.BytesIO(data), piece_size=123_456) == len(data)
        assert await c.get("u") == data
        f = await c.open("u", buffer_size=100_000)
        f.seek(1 << 20)
        assert await f.read(1000) == data[1 << 20:(1 << 20) + 1000]
        f.seek(-10, os.SEEK_END)
        assert await f.read() == data[-10:]
        assert await c.bulk_get(["a", "none"]) == {"a": data, "none": None}
        names = [e.name async for e in c.ls()]
        assert names == ["a", "p", "u"]
        metas = [m async for m in c.iterate()]
        assert metas
        assert "nodes" in await c.routes()
        assert await c.stat()
        await c.remove("a")
        assert not await c.exists("a")
        with pytest.raises(ringblob.NotFound):
            await c.get("a")

    run(main())


def test_async_upload_from_an_async_reader(node):
    class Reader:
        def __init__(self, data):
            self.buf = io.BytesIO(data)

        async def read(self, n):
            await asyncio.sleep(0)
            return self.buf.read(n)

    async def main():
        c = ringblob.AsyncClient(node.addr, namespace="async3")
        data = os.urandom(1 << 20)
        assert await c.upload("r", Reader(data), piece_size=65536) == len(data)
        assert await c.get("r") == data

    run(main())


def test_async_open_reads_ahead_and_only_its_version(node):
    async def main():
        c = ringblob.AsyncClient(node.addr, namespace="async4")
        data = os.urandom(5 << 20)
        await c.put("v", data)
        async with await c.open("v", buffer_size=1 << 20) as f:
            assert await f.read() == data
            f.seek(123)
            assert await f.read(2 << 20) == data[123:123 + (2 << 20)]
        f = await c.open("v", buffer_size=1 << 20)
        assert await f.read(1 << 20) == data[: 1 << 20]
        await c.put("v", os.urandom(5 << 20))
        with pytest.raises(ringblob.Changed):
            await f.read(3 << 20)

    run(main())
