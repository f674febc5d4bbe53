"""Exceptions raised by ringblob clients.

Every failure is a :class:`RingblobError`; the subclasses name what went wrong, mapped from
the node's status (``status`` holds its protocol name, e.g. ``"NOT_FOUND"``) or from the
client side (a connection that failed, a reply that timed out).
"""

from __future__ import annotations

from typing import Dict, List, Optional


class RingblobError(Exception):
    """Base of every ringblob error.

    Attributes:
        message: what failed, as the client or the node said it.
        status: the node's status name (``"NOT_FOUND"``, ``"CHECKSUM_MISMATCH"``, ...), or
            ``None`` when the node did not answer.
    """

    def __init__(self, message: str, status: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class NotFound(RingblobError):
    """The name (or key, or column) has no value: never written, or removed."""


class ChecksumMismatch(RingblobError):
    """The stored bytes failed their checksum on the node that answered (damaged there)."""


class Unauthorized(RingblobError):
    """The access key is unknown or wrong, or its role or namespaces do not allow this."""


class Timeout(RingblobError, TimeoutError):
    """No reply in time (the client's timeout, or a node's own)."""


class Busy(RingblobError):
    """The node is overloaded or at its connection limit; retry later."""


class Unavailable(RingblobError):
    """The node cannot answer for this key now (e.g. its range is moving); ask again."""


class TooLarge(RingblobError):
    """A value, request or count is over a protocol or node limit."""


class BadRequest(RingblobError):
    """The node refused the request as malformed."""


class ReadOnly(RingblobError):
    """The node refuses writes (read-only mode, or poisoned after a failed sync)."""


class RangeOutOfBounds(RingblobError):
    """The range starts past the end of the value."""


class Changed(RingblobError):
    """The value changed while it was being read (a newer version replaced it)."""


class ConnectionFailed(RingblobError, ConnectionError):
    """No node could be reached, or the connection was lost."""


class ProtocolError(RingblobError):
    """A reply did not follow the protocol."""


class QuorumNotReached(RingblobError):
    """A replicated write (``groups=``) stored by fewer groups than ``w`` asks.

    Attributes:
        succeeded: the groups that stored it.
        failed: each failed group and why.
    """

    def __init__(
        self,
        message: str,
        status: Optional[str] = None,
        succeeded: Optional[List[int]] = None,
        failed: Optional[Dict[int, str]] = None,
    ) -> None:
        super().__init__(message, status)
        self.succeeded = list(succeeded or [])
        self.failed = dict(failed or {})


__all__ = [
    "RingblobError",
    "NotFound",
    "ChecksumMismatch",
    "Unauthorized",
    "Timeout",
    "Busy",
    "Unavailable",
    "TooLarge",
    "BadRequest",
    "ReadOnly",
    "RangeOutOfBounds",
    "Changed",
    "ConnectionFailed",
    "ProtocolError",
    "QuorumNotReached",
]
