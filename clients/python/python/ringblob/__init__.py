"""ringblob: a Python client for the ringblob distributed blob store.

The cluster logic — routing by the route table, writes to several replica groups with W of
N, reads from the newest replica with fall-over and read repair, streamed uploads — is the
Rust client's, behind :class:`Client` (blocking) and :class:`AsyncClient` (asyncio).
Names map to keys exactly as the ``ringblob`` CLI maps them.
"""

from ._ringblob import Entry, Found, Meta, __version__
from .aio import AsyncClient, AsyncObjectFile
from . import errors
from .client import Client, ObjectFile
from .errors import (
    BadRequest,
    Busy,
    Changed,
    ChecksumMismatch,
    ConnectionFailed,
    NotFound,
    ProtocolError,
    QuorumNotReached,
    RangeOutOfBounds,
    ReadOnly,
    RingblobError,
    Timeout,
    TooLarge,
    Unauthorized,
    Unavailable,
)

__all__ = [
    "Client",
    "AsyncClient",
    "ObjectFile",
    "AsyncObjectFile",
    "Meta",
    "Entry",
    "Found",
    "__version__",
] + errors.__all__
