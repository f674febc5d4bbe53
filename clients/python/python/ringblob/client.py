"""The blocking client."""

from __future__ import annotations

import io
import json
import os
from typing import Any, BinaryIO, Dict, Iterable, Iterator, Optional, Sequence, Union

from . import _common as c
from ._ringblob import Entry, Found, Meta, _Core


class Client(c.ClientBase):
    """A client of a ringblob cluster (blocking; thread-safe).

    Args:
        addrs: a node address (``"host:port"``), a comma-separated list, or a list; tried in
            order until one answers. Requests are routed from there like the CLI's.
        groups: replica groups in preference order. With groups, a write goes to each and
            succeeds when ``w`` of them stored it (else :class:`QuorumNotReached`); a read
            takes the newest replica, falls over when a group cannot answer and repairs
            stale groups. Without, the connected node's group serves everything.
        w: the write quorum with groups: ``"one"``, ``"quorum"`` (a majority) or ``"all"``.
        namespace: the namespace names are keyed in (the CLI's ``--namespace``).
        key: an access key ``"ID:SECRET"`` (proved to the node, never sent).
        tls: ``True``, a CA file, or a mapping of ``ca``, ``cert``, ``key``, ``server_name``.
        timeout: seconds to wait for each reply.

    Values are named by ``str`` names (hashed into keys exactly as ``ringblob`` does, so the
    CLI and Python see the same objects) or by raw 32-byte keys (``bytes``).
    """

    def __init__(
        self,
        addrs: Union[str, Iterable[str]],
        *,
        groups: Optional[Iterable[int]] = None,
        w: str = "quorum",
        namespace: str = "",
        key: Optional[str] = None,
        tls: c.TlsArg = None,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(
            addrs, groups=groups, w=w, namespace=namespace, key=key, tls=tls, timeout=timeout
        )
        self._core.connect()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Drops the connection (also done when the client is garbage-collected)."""
        self._core = None  # type: ignore[assignment]

    # -- writes -----------------------------------------------------------------------

    def put(
        self,
        name: c.Name,
        data: Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", BinaryIO],
        *,
        column: Optional[int] = None,
        compress: bool = False,
        durability: Optional[str] = None,
        append: bool = False,
        offset: Optional[int] = None,
        attrs: Optional[c.Attrs] = None,
    ) -> int:
        """Stores ``data`` under ``name``; returns the value's size.

        ``attrs`` gives the object attributes (``{"camera": "x100", "year": 2024}``: str or
        int values) that :meth:`find` queries; a put without them leaves the object none.

        ``data`` is bytes, a path (``str`` or ``os.PathLike``: the file is streamed), or a
        readable file-like object (streamed, as :meth:`upload`). ``append`` adds to the
        end of the value, ``offset`` writes inside it (bytes only, no groups).
        ``durability`` is ``"none"``, ``"batch"`` or ``"sync"`` (default: the node's).
        A value written through a name gets a name record, so :meth:`ls` lists it.
        """
        name = c.check_name(name)
        raw = c.as_bytes(data)
        pairs = c.attr_pairs(attrs)
        if raw is not None:
            return self._core.put(name, raw, column, compress, durability, append, offset, pairs)
        if append or offset is not None:
            raise ValueError("append and offset take bytes")
        return self.upload(name, data, column=column, compress=compress, durability=durability, attrs=attrs)  # type: ignore[arg-type]

    def upload(
        self,
        name: c.Name,
        source: Union[str, "os.PathLike[str]", BinaryIO],
        *,
        column: Optional[int] = None,
        compress: bool = False,
        durability: Optional[str] = None,
        piece_size: int = c.UPLOAD_PIECE,
        attrs: Optional[c.Attrs] = None,
    ) -> int:
        """Streams a file (a path) or a readable file-like object into ``name`` with bounded
        memory (a few pieces of ``piece_size`` in flight, whatever the size); large values
        become chunked objects. Returns the size stored. If reading ``source`` raises, the
        upload is abandoned before anything becomes the value.
        """
        name = c.check_name(name)
        pairs = c.attr_pairs(attrs)
        if c.is_path(source):
            return self._core.put_path(name, os.fspath(source), column, compress, durability, pairs)  # type: ignore[arg-type]
        if not hasattr(source, "read"):
            raise TypeError("upload takes a path or a readable file-like object")
        up = self._core.upload(name, column, compress, durability, c.size_of(source), pairs)
        try:
            while True:
                piece = source.read(piece_size)
                if not piece:
                    break
                up.write(piece)
        except BaseException:
            up.abort()
            raise
        return up.finish()

    def remove(
        self, name: c.Name, *, column: Optional[int] = None, durability: Optional[str] = None
    ) -> None:
        """Removes the value with every column (a chunked object with its chunks), or one
        ``column``. Raises :class:`NotFound` if there is nothing to remove (without groups).
        """
        self._core.remove(c.check_name(name), column, durability)

    # -- reads ------------------------------------------------------------------------

    def get(
        self,
        name: c.Name,
        *,
        column: Optional[int] = None,
        offset: int = 0,
        size: Optional[int] = None,
    ) -> bytes:
        """The value (``size`` bytes from ``offset``; default all of it), in memory. Use
        :meth:`open` to stream a large one."""
        return self._core.get(c.check_name(name), column, offset, size)

    def open(
        self, name: c.Name, *, column: Optional[int] = None, buffer_size: int = 1 << 20
    ) -> io.BufferedReader:
        """A readable, seekable binary file over the value: reads fetch ranges as they are
        needed (``buffer_size`` at a time), so memory stays bounded whatever the size; all
        of them of the version opened (:class:`ObjectFile`)."""
        raw = ObjectFile(self._core, c.check_name(name), column)
        return io.BufferedReader(raw, buffer_size)

    def lookup(self, name: c.Name, *, column: Optional[int] = None) -> Meta:
        """The value's meta: size (a chunked object's), version, checksum, key."""
        return self._core.lookup(c.check_name(name), column)

    def exists(self, name: c.Name, *, column: Optional[int] = None) -> bool:
        return self._core.exists(c.check_name(name), column)

    def bulk_get(
        self, names: Iterable[c.Name], *, column: Optional[int] = None
    ) -> Dict[c.Name, Optional[bytes]]:
        """Many values at once (one request per node); ``None`` for missing ones."""
        names = [c.check_name(n) for n in names]
        values = self._core.bulk_get(names, column)
        return dict(zip(names, values))

    def ls(
        self,
        prefix: str = "",
        *,
        namespace: Optional[str] = None,
        after: Optional[str] = None,
        limit: Optional[int] = None,
        page_size: int = 1000,
    ) -> Iterator[Entry]:
        """The names of a namespace (default: the client's) in byte order, from every node
        of a group, page by page; ``after`` resumes after a name."""
        ns = self.namespace if namespace is None else namespace
        yield from self._pages(ns, prefix, after, limit, page_size)

    def find(
        self,
        query: Union[str, Sequence[str]],
        *,
        namespace: Optional[str] = None,
        exact: bool = False,
        after: Optional[str] = None,
        limit: Optional[int] = None,
        page_size: int = 1000,
    ) -> Iterator[Found]:
        """The objects of a namespace (default: the client's) whose attributes match
        ``query`` — ``"camera=x100 year=*"``, or its terms as a list: ``NAME=VALUE``,
        ``NAME=*``, ``!NAME``, ``NAME!=VALUE``, ``or`` between groups — asking only the nodes
        that can hold answers, page by page (docs/ATTRIBUTES.md). ``exact``: no other
        property either. ``after`` resumes after a token (:attr:`last_find_token`)."""
        words = c.query_words(query)
        token = after
        left = limit
        while left is None or left > 0:
            want = page_size if left is None else min(page_size, left)
            found, token = self._core.find(namespace, words, exact, token, want)
            self.last_find_token = token
            yield from found
            if left is not None:
                left -= len(found)
            if token is None:
                return

    def namespaces(self) -> Iterator[Entry]:
        """The namespaces that hold names."""
        yield from self._pages(None, "", None, None, 1000)

    def _pages(
        self,
        ns: Optional[str],
        prefix: str,
        after: Optional[str],
        limit: Optional[int],
        page_size: int,
    ) -> Iterator[Entry]:
        token = after.encode() if after is not None else None
        left = limit
        while left is None or left > 0:
            want = page_size if left is None else min(page_size, left)
            entries, token = self._core.ls(ns, prefix, token, want)
            for e in entries:
                yield e
            if left is not None:
                left -= len(entries)
            if token is None:
                return

    def iterate(self, *, page_size: int = 1000) -> Iterator[Meta]:
        """Every (key, column) the connected node stores, in key order (a node-local
        view, for tools: names are not known here)."""
        after = None
        while True:
            metas, after = self._core.iterate(after, page_size)
            yield from metas
            if after is None:
                return

    def stat(self) -> Dict[str, Any]:
        """The connected node's statistics."""
        return json.loads(self._core.stat())

    def routes(self) -> Dict[str, Any]:
        """The route table: nodes, groups and their ranges."""
        return json.loads(self._core.routes())


class ObjectFile(io.RawIOBase):
    """A value read by ranges (wrapped in a ``BufferedReader`` by :meth:`Client.open`).

    Every read is of the version opened: if the value is replaced or removed meanwhile, a
    read raises :class:`ringblob.Changed` (or :class:`ringblob.NotFound`) rather than
    joining bytes of two versions."""

    def __init__(self, core: _Core, name: c.Name, column: Optional[int]) -> None:
        super().__init__()
        self._core = core
        self._name = name
        self._column = column
        meta = core.lookup(name, column)
        self.meta: Meta = meta
        self._size = meta.size
        self._pos = 0
        # (offset, size, read in flight): the next range, started before it is asked for.
        self._ahead: Optional[tuple] = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._pos = c.seek_to(self._pos, self._size, offset, whence)
        return self._pos

    def readinto(self, b: Any) -> int:
        left = self._size - self._pos
        if left <= 0:
            return 0
        n = min(len(b), left)
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == self._pos and ahead[1] == n:
            data = ahead[2].wait()
        else:
            data = self._core.read_range(self._name, self._column, self._pos, n, *self._pin())
        b[: len(data)] = data
        self._pos += len(data)
        if data and self._pos < self._size:
            # The next range of the same length starts now, while this one is consumed.
            nxt = min(n, self._size - self._pos)
            self._ahead = (
                self._pos,
                nxt,
                self._core.read_range_ahead(self._name, self._column, self._pos, nxt, *self._pin()),
            )
        return len(data)

    def _pin(self) -> tuple:
        m = self.meta
        return (m.group, m.timestamp_ns, m.chunks is not None)

    def close(self) -> None:
        self._ahead = None
        super().close()
