# SPDX-License-Identifier: MIT
"""The zeromesh exception hierarchy, shared by every Python part."""

from __future__ import annotations

import builtins


class ZeromeshError(Exception):
    """Root of every zeromesh error. `code` is the protocol's error code."""

    code = "error"


class ProtocolError(ZeromeshError):
    """Bytes on the wire that do not follow protocol/SPEC.md."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TimeoutError(ZeromeshError, builtins.TimeoutError):  # noqa: A001 - qualified use
    """A deadline passed. Also a builtin TimeoutError, so `except TimeoutError` works."""

    code = "timeout"


class UnreachableError(ZeromeshError, builtins.ConnectionError):
    """Nothing answered at the transport level: no live connection to the broker for the
    client's `connect_timeout`. Also a builtin ConnectionError."""

    code = "unreachable"


class RemoteError(ZeromeshError):
    """The broker or a remote handler answered with an error.

    Carries the (name, message, traceback) triple any language can show, plus
    the protocol error code (e.g. "remote", "no_responders", "queue_full").
    """

    def __init__(self, code: str, message: str, name: str = "", traceback: str = "") -> None:
        super().__init__(f"{code}: {name + ': ' if name else ''}{message}")
        self.code = code
        self.name = name
        self.message = message
        self.traceback = traceback


class NoRespondersError(RemoteError):
    """No worker serves the service (code no_responders)."""


class QueueFullError(RemoteError):
    """The queue is at its limit (code queue_full)."""
