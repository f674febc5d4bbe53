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
