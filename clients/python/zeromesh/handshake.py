# SPDX-License-Identifier: MIT
"""Refused handshakes: what a socket monitor says when a broker will not let a socket in.

libzmq keeps retrying a connection whose CURVE handshake the broker refuses, and queues
what is sent on it for ever, so without this a call would wait in silence. The monitor's
handshake-failed events name the cause: HANDSHAKE_FAILED_AUTH when ZAP refused the key
(unknown or removed); HANDSHAKE_FAILED_PROTOCOL or _NO_DETAIL when the two sides do not
agree on the mechanism (CURVE on one side only) or the server key is wrong (measured with
libzmq 4.3.5; which of the two a mismatch shows depends on timing).

_NO_DETAIL is also what a connection cut during its handshake reports (a broker restarting,
another program on that port): one alone is not a refusal. Two in a row, with no success
between, are (a wrong server key fails every retry the same way).
"""

from __future__ import annotations

import logging
import os
import struct
from typing import Any

import zmq

from .errors import AuthenticationError
from .sockets import event_monitor

log = logging.getLogger("zeromesh.client")

SUCCEEDED = zmq.EVENT_HANDSHAKE_SUCCEEDED
FAILED_AUTH = zmq.EVENT_HANDSHAKE_FAILED_AUTH
FAILED = zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
"""The three events that make an endpoint "refused"."""

PREFIX = "authentication refused by the broker at "

NO_DETAIL = zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
NO_DETAIL_STREAK = 2
"""_NO_DETAIL failures in a row that make a refusal (one may be a connection cut mid-handshake)."""


class Outcomes:
    """One endpoint's handshake outcomes, read in order: refused or not, and why."""

    __slots__ = ("endpoint", "refused", "cuts")

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.refused: str | None = None
        self.cuts = 0  # _NO_DETAIL failures since the last success or other failure

    def succeeded(self) -> None:
        self.refused, self.cuts = None, 0

    def failed(self, event: int) -> None:
        if event & NO_DETAIL and not event & (FAILED & ~NO_DETAIL):
            self.cuts += 1
            if self.cuts < NO_DETAIL_STREAK:
                return
        else:
            self.cuts = 0
        self.refused = refusal_message(self.endpoint, event)


def refusal_message(endpoint: str, event: int) -> str:
    """What a refused handshake means, for the error and the log."""
    if event & FAILED_AUTH:
        why = "key not allowed"
    else:
        why = "handshake failed (CURVE on one side only, a wrong server public key, or no zeromesh broker there)"
    return f"{PREFIX}{endpoint}: {why}"


def monitor_event(frames: list[bytes]) -> tuple[int, str]:
    """(event, endpoint) of one monitor message."""
    event = struct.unpack_from("=H", frames[0])[0]
    return event, frames[1].decode("utf-8", "replace") if len(frames) > 1 else ""


class HandshakeWatch:
    """The handshake outcomes of one socket, per endpoint it connects to, read on demand.

    Read it often (each call of `read` drains the monitor): a monitor nobody reads fills
    up, and libzmq then holds up the monitored socket's handshakes.
    """

    def __init__(self, sock: Any) -> None:
        """Create before the socket connects, or its first handshake goes unseen."""
        self._sock = sock
        # A unique address: pyzmq's default names the monitor after the socket's fd, which a new socket
        # may reuse while the old one still lingers with its monitor bound.
        self.monitor = event_monitor(sock, SUCCEEDED | FAILED, f"inproc://zeromesh-handshake-{os.urandom(8).hex()}")
        """Readable when there is something to read (a poller may watch it)."""
        self.refused: dict[str, str] = {}  # endpoint -> refusal_message, until it succeeds
        self.ever_succeeded = False
        self._outcomes: dict[str, Outcomes] = {}

    def read(self) -> dict[str, str]:
        """Drain the monitor; the endpoints refused now (the last outcome of each was a failure)."""
        while True:
            try:
                frames = self.monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return self.refused
            except zmq.ZMQError:
                return self.refused  # closed under us
            event, endpoint = monitor_event(frames)
            outcomes = self._outcomes.setdefault(endpoint, Outcomes(endpoint))
            if event & SUCCEEDED:
                self.ever_succeeded = True
                outcomes.succeeded()
            elif event & FAILED:
                outcomes.failed(event)
            if outcomes.refused is None:
                self.refused.pop(endpoint, None)
            else:
                self.refused[endpoint] = outcomes.refused

    def error(self) -> AuthenticationError | None:
        """An AuthenticationError for the first refused endpoint, or None."""
        refused = self.read()
        return AuthenticationError(next(iter(refused.values()))) if refused else None

    def close(self) -> None:
        try:
            self._sock.disable_monitor()
        except zmq.ZMQError:
            pass  # the socket is closed already
        self.monitor.close(linger=0)
