# SPDX-License-Identifier: MIT
"""Is anybody there? A DEALER's connection state, from its socket monitor, read on demand.

libzmq hides connection problems: a DEALER connected to a port where nothing listens
queues every message and retries for ever, so a call would wait out its whole deadline
in silence. The monitor tells what the transport saw. It is read only when a call has
already waited `connect_timeout` without an answer, so it costs the fast path nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import zmq

from .handshake import FAILED, Outcomes, monitor_event
from .sockets import event_monitor

_LIVE = zmq.EVENT_HANDSHAKE_SUCCEEDED
"""Live only once the ZMTP handshake is done: a TCP connection to something that is not a
broker (or a CURVE handshake that fails) is no live connection."""
_DOWN = zmq.EVENT_DISCONNECTED

CONNECT_TIMEOUT_S = 1.0
"""How long a call waits on a socket that never had a live connection before it reports the
broker unreachable."""

RECONNECT_GRACE_S = 5.0
"""Once a socket had a live connection and lost it, calls wait this long for it to come back
(a broker restart takes a second or two, and pushes resend across it: SPEC 11) before they
report the broker unreachable."""


class Reached:
    """Whether a client has ever had a live connection to its broker (any of its sockets)."""

    __slots__ = ("ever",)

    def __init__(self) -> None:
        self.ever = False


class Liveness:
    def __init__(
        self,
        sock: Any,
        endpoint: str,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        reached: Reached | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Watch `sock`; create it before the socket connects, or its first connection goes unseen.

        `reached` is shared by every socket of one client: once any of them reached the broker,
        a new thread's socket that cannot is waiting out a restart, not facing an absent broker.
        """
        self.endpoint = endpoint
        self.reached = reached if reached is not None else Reached()
        self._sock = sock
        self._clock = clock
        # A unique address (handshake.py says why).
        self._monitor = event_monitor(sock, _LIVE | _DOWN | FAILED, f"inproc://zeromesh-liveness-{os.urandom(8).hex()}")
        self._outcomes = Outcomes(endpoint)  # the handshakes: refused or not (handshake.py)
        self.live = False
        self.ever_live = False  # this socket had a live connection at some time: what it sent may have arrived
        self.down_since = clock()
        self._read_at = self.down_since
        self._window = connect_timeout

    def _read(self) -> None:
        monitor = self._monitor
        now = self._clock()
        # A disconnect read now happened since the last read; no later than that, and (for a
        # client idle for an hour) taken as at most one connect_timeout ago.
        since = max(self._read_at, now - self._window)
        self._read_at = now
        while True:
            try:
                frames = monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError:
                return  # closed under us
            event, _ = monitor_event(frames)
            if event & _LIVE:
                self.live = self.ever_live = self.reached.ever = True
                self._outcomes.succeeded()
            elif event & FAILED:
                self._outcomes.failed(event)
            elif event & _DOWN and self.live:
                self.live = False
                self.down_since = since

    def had_connection(self) -> bool:
        """Whether this socket ever had a live connection (else nothing it sent reached a broker)."""
        self._read()
        return self.ever_live

    def refusal(self) -> str | None:
        """Why the broker refuses this socket's handshake, or None (never tried, or it succeeded last)."""
        self._read()
        return self._outcomes.refused

    def down_for(self) -> float:
        """Seconds without a live connection (0 while there is one)."""
        self._read()
        return 0.0 if self.live else self._clock() - self.down_since

    def unreachable_for(self, connect_timeout: float) -> float | None:
        """Seconds without a live connection, once that is long enough to give up; else None."""
        down = self.down_for()
        limit = max(connect_timeout, RECONNECT_GRACE_S) if self.reached.ever else connect_timeout
        return down if down >= limit else None

    def close(self) -> None:
        try:
            self._sock.disable_monitor()
        except zmq.ZMQError:
            pass  # the socket is closed already
        self._monitor.close(linger=0)


def unreachable_message(endpoint: str, waited: float) -> str:
    return f"cannot reach the broker at {endpoint} (no connection for {waited:.1f}s)"
