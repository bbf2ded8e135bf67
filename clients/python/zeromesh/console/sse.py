# SPDX-License-Identifier: MIT
"""The SSE stream (`GET /events`): the poller's snapshot once a second, a heartbeat comment in
between when nothing changed, at most `max_clients` streams at once. A browser that goes away
is noticed within a quarter of a second (its socket reads as closed: see `gone`) or at the next write
(pywsgi then closes the generator); either way the generator's `finally` frees the slot."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import gevent
from gevent import select

from .poller import INTERVAL_S, Poller

HEARTBEAT_S = 10.0
"""A comment line at least this often, so that proxies keep the stream open."""


class Streams:
    def __init__(self, poller: Poller, max_clients: int = 16) -> None:
        self.poller = poller
        self.max_clients = max_clients
        self.open = 0

    def take(self) -> bool:
        """Claim a slot (False when all are taken)."""
        if self.open >= self.max_clients:
            return False
        self.open += 1
        return True

    def stream(self, sock: Any = None) -> Iterator[bytes]:
        """The body of a stream whose slot was taken (`sock`: its connection); frees it when closed."""
        try:
            yield b"retry: 2000\n\n"
            sent, beat = -1, time.monotonic()
            while True:
                if self.poller.version != sent:
                    sent = self.poller.version
                    yield b"data: " + json.dumps(self.poller.snapshot, separators=(",", ":")).encode() + b"\n\n"
                    beat = time.monotonic()
                elif time.monotonic() - beat >= HEARTBEAT_S:
                    yield b": heartbeat\n\n"
                    beat = time.monotonic()
                gevent.sleep(INTERVAL_S / 4)
                if sock is not None and gone(sock):
                    return
        finally:
            self.open -= 1


def gone(sock: Any) -> bool:
    """Whether the browser closed the connection: it reads as EOF. (A browser sends nothing on an
    event stream, so a readable socket with data is left alone.)"""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True
