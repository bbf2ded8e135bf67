# SPDX-License-Identifier: MIT
"""The client's view of errors: the protocol's classes, and ERROR headers -> exceptions."""

from __future__ import annotations

import builtins

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


class AuthenticationError(ZeromeshError, builtins.PermissionError):
    """The broker refused this client's handshake (no key, an unknown or removed key, or a
    wrong server key): nothing sent on that connection reaches it. Also a builtin
    PermissionError. The message starts "authentication refused by the broker at ADDR: "."""

    code = "unauthenticated"


class ForbiddenError(RemoteError):
    """The broker knows the key but its roles do not allow the command (code forbidden)."""


_BY_CODE: dict[str, type[RemoteError]] = {
    wire.E_NO_RESPONDERS: NoRespondersError,
    wire.E_QUEUE_FULL: QueueFullError,
    wire.E_FORBIDDEN: ForbiddenError,
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
    "AuthenticationError",
    "ForbiddenError",
    "NoRespondersError",
    "ProtocolError",
    "QueueFullError",
    "RemoteError",
    "TimeoutError",
    "UnreachableError",
    "ZeromeshError",
    "error_from_header",
]
