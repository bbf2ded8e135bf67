# SPDX-License-Identifier: MIT
"""The client's view of errors: the protocol's classes, and ERROR headers -> exceptions."""

from __future__ import annotations

from zeromesh.protocol import wire
from zeromesh.protocol.errors import (
    NoRespondersError,
    ProtocolError,
    QueueFullError,
    RemoteError,
    TimeoutError,  # noqa: A004 - zeromesh.TimeoutError, also a builtin TimeoutError
    UnreachableError,
    ZeromeshError,
)

_BY_CODE: dict[str, type[RemoteError]] = {
    wire.E_NO_RESPONDERS: NoRespondersError,
    wire.E_QUEUE_FULL: QueueFullError,
}


def error_from_header(header: dict) -> ZeromeshError:
    """The exception an ERROR header stands for (not raised, so callers can clean up first)."""
    code = str(header.get("code") or "error")
    message = str(header.get("message") or "")
    if code == wire.E_TIMEOUT:
        exc: ZeromeshError = TimeoutError(message or "the broker's deadline passed")
        return exc
    cls = _BY_CODE.get(code, RemoteError)
    return cls(code, message, str(header.get("name") or ""), str(header.get("traceback") or ""))


__all__ = [
    "NoRespondersError",
    "ProtocolError",
    "QueueFullError",
    "RemoteError",
    "TimeoutError",
    "UnreachableError",
    "ZeromeshError",
    "error_from_header",
]
