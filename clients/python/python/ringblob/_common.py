"""What the sync and async clients share: argument checks and conversions."""

from __future__ import annotations

import os
from typing import Any, Iterable, List, Mapping, Optional, Tuple, Union

#: A value is named by a ``str`` (hashed into its key in the client's namespace, as the
#: ``ringblob`` CLI does) or by a raw 32-byte key (``bytes``).
Name = Union[str, bytes]

#: ``tls=`` takes ``True`` (system roots), a CA file path, or a mapping with any of
#: ``ca``, ``cert``, ``key`` (a client certificate and its key) and ``server_name``.
TlsArg = Union[None, bool, str, "os.PathLike[str]", Mapping[str, Any]]

TlsTuple = Tuple[Optional[str], Optional[str], Optional[str], Optional[str]]

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
    """The bytes left in a seekable file-like object, if it can tell."""
    try:
        if not source.seekable():
            return None
        here = source.tell()
        end = source.seek(0, os.SEEK_END)
        source.seek(here, os.SEEK_SET)
        return max(0, end - here)
    except (AttributeError, OSError, ValueError):
        return None
