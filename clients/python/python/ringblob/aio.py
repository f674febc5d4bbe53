"""The asyncio client: the same operations as :class:`ringblob.Client`, as coroutines.

Requests run on the Rust client's own runtime and complete as asyncio futures: no thread
per request, the GIL released while they wait, and many requests in flight on one
connection (``asyncio.gather`` of a thousand gets is one client's ordinary work).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
from typing import Any, AsyncIterator, Dict, Iterable, Optional, Sequence, Union

from . import _common as c
from ._ringblob import Entry, Found, Meta, _Core


class AsyncClient(c.ClientBase):
    """The asyncio twin of :class:`ringblob.Client` (same arguments, same semantics).

    The connection is made by the first request (or ``await client.connect()``).
    """

    async def connect(self) -> "AsyncClient":
        await self._core.stat_async()
        return self

    async def __aenter__(self) -> "AsyncClient":
        return await self.connect()

    async def __aexit__(self, *exc: Any) -> None:
        self._core = None  # type: ignore[assignment]

    async def put(
        self,
        name: c.Name,
        data: Any,
        *,
        column: Optional[int] = None,
        compress: bool = False,
        durability: Optional[str] = None,
        append: bool = False,
        offset: Optional[int] = None,
        attrs: Optional[c.Attrs] = None,
    ) -> int:
        """As :meth:`ringblob.Client.put`."""
        name = c.check_name(name)
        raw = c.as_bytes(data)
        if raw is not None:
            return await self._core.put_async(
                name, raw, column, compress, durability, append, offset, c.attr_pairs(attrs)
            )
        if append or offset is not None:
            raise ValueError("append and offset take bytes")
        return await self.upload(
            name, data, column=column, compress=compress, durability=durability, attrs=attrs
        )

    async def upload(
        self,
        name: c.Name,
        source: Any,
        *,
        column: Optional[int] = None,
        compress: bool = False,
        durability: Optional[str] = None,
        piece_size: int = c.UPLOAD_PIECE,
        attrs: Optional[c.Attrs] = None,
    ) -> int:
        """As :meth:`ringblob.Client.upload`; ``source`` may also be an object whose
        ``read`` is a coroutine (aiofiles, an asyncio stream reader). A blocking ``read``
        runs on a worker thread (``asyncio.to_thread``), never on the event loop."""
        name = c.check_name(name)
        pairs = c.attr_pairs(attrs)
        if c.is_path(source):
            return await self._core.put_path_async(
                name, os.fspath(source), column, compress, durability, pairs
            )
        if not hasattr(source, "read"):
            raise TypeError("upload takes a path or a readable file-like object")
        up = self._core.upload(name, column, compress, durability, c.size_of(source), pairs)
        # A blocking read (a file, a pipe) runs on a worker thread, not on the event loop.
        blocking = not inspect.iscoroutinefunction(source.read)
        try:
            while True:
                if blocking:
                    piece = await asyncio.to_thread(source.read, piece_size)
                else:
                    piece = source.read(piece_size)
                if inspect.isawaitable(piece):
                    piece = await piece
                if not piece:
                    break
                await up.write_async(piece)
        except BaseException:
            up.abort()
            raise
        return await up.finish_async()

    async def remove(
        self, name: c.Name, *, column: Optional[int] = None, durability: Optional[str] = None
    ) -> None:
        await self._core.remove_async(c.check_name(name), column, durability)

    async def get(
        self,
        name: c.Name,
        *,
        column: Optional[int] = None,
        offset: int = 0,
        size: Optional[int] = None,
    ) -> bytes:
        return await self._core.get_async(c.check_name(name), column, offset, size)

    async def open(
        self, name: c.Name, *, column: Optional[int] = None, buffer_size: int = 1 << 20
    ) -> "AsyncObjectFile":
        """A seekable reader over the value: ``await f.read(n)`` fetches ranges as needed."""
        name = c.check_name(name)
        meta = await self._core.lookup_async(name, column)
        return AsyncObjectFile(self._core, name, column, meta, buffer_size)

    async def lookup(self, name: c.Name, *, column: Optional[int] = None) -> Meta:
        return await self._core.lookup_async(c.check_name(name), column)

    async def exists(self, name: c.Name, *, column: Optional[int] = None) -> bool:
        return await self._core.exists_async(c.check_name(name), column)

    async def bulk_get(
        self, names: Iterable[c.Name], *, column: Optional[int] = None
    ) -> Dict[c.Name, Optional[bytes]]:
        names = [c.check_name(n) for n in names]
        values = await self._core.bulk_get_async(names, column)
        return dict(zip(names, values))

    async def ls(
        self,
        prefix: str = "",
        *,
        namespace: Optional[str] = None,
        after: Optional[str] = None,
        limit: Optional[int] = None,
        page_size: int = 1000,
    ) -> AsyncIterator[Entry]:
        ns = self.namespace if namespace is None else namespace
        token = after.encode() if after is not None else None
        left = limit
        while left is None or left > 0:
            want = page_size if left is None else min(page_size, left)
            entries, token = await self._core.ls_async(ns, prefix, token, want)
            for e in entries:
                yield e
            if left is not None:
                left -= len(entries)
            if token is None:
                return

    async def find(
        self,
        query: Union[str, Sequence[str]],
        *,
        namespace: Optional[str] = None,
        exact: bool = False,
        after: Optional[str] = None,
        limit: Optional[int] = None,
        page_size: int = 1000,
    ) -> AsyncIterator[Found]:
        """As :meth:`ringblob.Client.find`."""
        words = c.query_words(query)
        token = after
        left = limit
        while left is None or left > 0:
            want = page_size if left is None else min(page_size, left)
            found, token = await self._core.find_async(namespace, words, exact, token, want)
            self.last_find_token = token
            for f in found:
                yield f
            if left is not None:
                left -= len(found)
            if token is None:
                return

    async def iterate(self, *, page_size: int = 1000) -> AsyncIterator[Meta]:
        after = None
        while True:
            metas, after = await self._core.iterate_async(after, page_size)
            for m in metas:
                yield m
            if after is None:
                return

    async def stat(self) -> Dict[str, Any]:
        return json.loads(await self._core.stat_async())

    async def routes(self) -> Dict[str, Any]:
        return json.loads(await self._core.routes_async())


class AsyncObjectFile:
    """A value read by ranges, ``buffer_size`` bytes per request at most, all of the version
    opened (a replaced value raises :class:`ringblob.Changed`)."""

    def __init__(
        self, core: _Core, name: c.Name, column: Optional[int], meta: Meta, buffer_size: int
    ) -> None:
        self._core = core
        self._name = name
        self._column = column
        self.meta = meta
        self._size = meta.size
        self._pos = 0
        self._piece = max(1, buffer_size)
        # (offset, size, task): the next range, started before it is asked for.
        self._ahead: Optional[tuple] = None

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._pos = c.seek_to(self._pos, self._size, offset, whence)
        return self._pos

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (``-1``: to the end) from the current position."""
        left = max(0, self._size - self._pos)
        want = left if n is None or n < 0 else min(n, left)
        out = bytearray()
        while len(out) < want:
            ask = min(self._piece, want - len(out))
            data = await self._range(self._pos, ask)
            if not data:
                break
            out += data
            self._pos += len(data)
        return bytes(out)

    async def _range(self, pos: int, size: int) -> bytes:
        """The range at ``pos``: the one read ahead if it is that one; the next one is
        started before returning (one range ahead at most)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == pos and ahead[1] == size:
            data = await ahead[2]
        else:
            data = await self._core.read_range_async(self._name, self._column, pos, size, *self._pin())
        end = pos + len(data)
        if data and end < self._size:
            nxt = min(size, self._size - end)
            task = asyncio.ensure_future(
                self._core.read_range_async(self._name, self._column, end, nxt, *self._pin())
            )
            self._ahead = (end, nxt, task)
        return data

    def _pin(self) -> tuple:
        m = self.meta
        return (m.group, m.timestamp_ns, m.chunks is not None)

    async def __aenter__(self) -> "AsyncObjectFile":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        # A read ahead is left to finish (cancelling it mid-reply would cost the connection).
        self._ahead = None
