"""What the sync and async clients share: argument checks and conversions."""

from __future__ import annotations

import inspect
import os
from typing import Any, Iterable, List, Mapping, Optional, Tuple, Union

from ._ringblob import _Core

#: A value is named by a ``str`` (hashed into its key in the client's namespace, as the
#: ``ringblob`` CLI does) or by a raw 32-byte key (``bytes``).
Name = Union[str, bytes]

#: ``tls=`` takes ``True`` (system roots), a CA file path, or a mapping with any of
#: ``ca``, ``cert``, ``key`` (a client certificate and its key) and ``server_name``.
TlsArg = Union[None, bool, str, "os.PathLike[str]", Mapping[str, Any]]

TlsTuple = Tuple[Optional[str], Optional[str], Optional[str], Optional[str]]

#: An object's attributes: property name to ``str`` or ``int`` (docs/ATTRIBUTES.md).
Attrs = Mapping[str, Union[str, int]]


def attr_pairs(attrs: Optional[Attrs]) -> Optional[List[Tuple[str, Union[str, int]]]]:
    """``attrs`` as (name, value) pairs for the native client; checks value types."""
    if attrs is None:
        return None
    pairs = []
    for k, v in attrs.items():
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            raise TypeError(f"attribute {k!r}: a str or an int, not {type(v).__name__}")
        pairs.append((str(k), v))
    return pairs


def query_words(query: Union[str, Iterable[str]]) -> List[str]:
    """A query's terms: a string split on whitespace, or the terms given."""
    words = query.split() if isinstance(query, str) else [str(w) for w in query]
    if not words:
        raise ValueError("a query needs at least one term")
    return words


#: Bytes read from a file-like object per piece of a streamed upload.
UPLOAD_PIECE = 1 << 20


def addrs_of(addrs: Union[str, Iterable[str]]) -> List[str]:
    """One address, a comma-separated list, or an iterable of addresses."""
    if isinstance(addrs, str):
        out = [a.strip() for a in addrs.split(",") if a.strip()]
    else:
        out = [str(a) for a in addrs]
    if not out:
        raise ValueError("no node address given")
    return out


def tls_of(tls: TlsArg) -> Optional[TlsTuple]:
    if tls is None or tls is False:
        return None
    if tls is True:
        return (None, None, None, None)
    if isinstance(tls, (str, os.PathLike)):
        return (os.fspath(tls), None, None, None)
    if isinstance(tls, Mapping):
        unknown = set(tls) - {"ca", "cert", "key", "server_name"}
        if unknown:
            raise ValueError(f"tls: unknown settings {sorted(unknown)}")

        def path(k: str) -> Optional[str]:
            v = tls.get(k)
            return None if v is None else os.fspath(v)

        return (path("ca"), path("cert"), path("key"), tls.get("server_name"))
    raise TypeError("tls: True, a CA file, or a mapping of ca/cert/key/server_name")


def groups_of(groups: Optional[Iterable[int]]) -> List[int]:
    return [int(g) for g in groups] if groups is not None else []


def check_name(name: Name) -> Name:
    if isinstance(name, str):
        return name
    if isinstance(name, (bytes, bytearray, memoryview)):
        raw = bytes(name)
        if len(raw) != 32:
            raise ValueError(f"a raw key is 32 bytes, not {len(raw)} (names are str)")
        return raw
    raise TypeError(f"a name is str (or a raw 32-byte key), not {type(name).__name__}")


def as_bytes(data: Any) -> Optional[bytes]:
    """``data`` as bytes if it is a bytes-like value, else ``None``."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    return None


def is_path(data: Any) -> bool:
    return isinstance(data, (str, os.PathLike))


def size_of(source: Any) -> Optional[int]:
    """The bytes left in a seekable file-like object, if it can tell (never for objects
    whose methods are coroutines: aiofiles and the like)."""
    if any(inspect.iscoroutinefunction(getattr(source, m, None)) for m in ("seekable", "tell", "seek")):
        return None
    try:
        if not source.seekable():
            return None
        here = source.tell()
        end = source.seek(0, os.SEEK_END)
        source.seek(here, os.SEEK_SET)
        return max(0, end - here)
    except (AttributeError, OSError, TypeError, ValueError):
        return None


class ClientBase:
    """What :class:`ringblob.Client` and :class:`ringblob.AsyncClient` share: the settings
    (checked here, before anything connects) and the native client they drive."""

    #: The continuation token of the last page :meth:`find` read (``None`` once a query
    #: ran to its end): pass it as ``after=`` to go on.
    last_find_token: Optional[str] = None

    def __init__(
        self,
        addrs: Union[str, Iterable[str]],
        *,
        groups: Optional[Iterable[int]] = None,
        w: str = "quorum",
        namespace: str = "",
        key: Optional[str] = None,
        tls: TlsArg = None,
        timeout: float = 30.0,
    ) -> None:
        self._core = _Core(
            addrs_of(addrs),
            namespace,
            groups_of(groups),
            w,
            key,
            tls_of(tls),
            float(timeout),
        )

    @property
    def namespace(self) -> str:
        """The namespace names are keyed in."""
        return self._core.namespace

    @property
    def groups(self) -> List[int]:
        """The replica groups, in preference order (empty: the connected node's)."""
        return list(self._core.groups)


def seek_to(pos: int, size: int, offset: int, whence: int) -> int:
    """The position a ``seek(offset, whence)`` from ``pos`` in a value of ``size`` gives."""
    base = {os.SEEK_SET: 0, os.SEEK_CUR: pos, os.SEEK_END: size}.get(whence)
    if base is None:
        raise ValueError(f"whence={whence}")
    if base + offset < 0:
        raise ValueError("negative position")
    return base + offset
