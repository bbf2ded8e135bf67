# SPDX-License-Identifier: MIT
"""Socket options every zeromesh peer sets, in one place."""

from __future__ import annotations

from typing import Any

import zmq

from zeromesh.protocol.curve_certs import ClientCurve

RECONNECT_IVL_MS = 100
"""First reconnect attempt after a broker restart comes quickly..."""

RECONNECT_IVL_MAX_MS = 1500
"""...and backs off to at most this, so a restarted broker is found within ~1.5 s."""

HWM = 10_000
"""Messages queued per socket direction; push_many sends at most window/batch messages at once."""

HEARTBEAT_IVL_MS = 1000
"""ZMTP pings on every connection to a broker: a link cut without a reset (a machine cut off,
a dead switch) sends nothing back, and only a missing pong shows it..."""

HEARTBEAT_TIMEOUT_MS = 3000
"""...after this long libzmq drops the connection, the socket monitor sees it, and a client moves
to another broker (SPEC 2.4) as it does when a broker's process dies."""

SUB_RCVHWM = 100_000
"""Subscribers buffer more: a slow reader drops events (seen as gaps) rather than stalling."""


def new_dealer(ctx: Any, curve: ClientCurve | None = None, index: int = 0) -> Any:
    """A DEALER with our options, not yet connected (so a socket monitor sees its first connection).
    `curve`: make it a CURVE client of broker `index` of the client's list."""
    sock = ctx.socket(zmq.DEALER)
    if curve is not None:
        curve.apply(sock, index)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
    sock.setsockopt(zmq.SNDHWM, HWM)
    sock.setsockopt(zmq.RCVHWM, HWM)
    sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
    return sock


def connect_dealer(ctx: Any, endpoint: str, curve: ClientCurve | None = None, index: int = 0) -> Any:
    """A DEALER connected to the broker. libzmq keeps queued messages across reconnects."""
    sock = new_dealer(ctx, curve, index)
    sock.connect(endpoint)
    return sock


def new_sub(ctx: Any) -> Any:
    """A SUB with our options, not yet connected (see connect_sub)."""
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
    sock.setsockopt(zmq.RCVHWM, SUB_RCVHWM)
    sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
    return sock


def connect_sub(sock: Any, endpoints: list[str], curve: ClientCurve | None = None) -> None:
    """Connect one SUB to every PUB endpoint: it fair-queues what they publish. With `curve`, each
    connection gets its broker's server key: libzmq copies the options at connect()."""
    for index, endpoint in enumerate(endpoints):
        if curve is not None:
            curve.apply(sock, index)
        sock.connect(endpoint)


def event_monitor(sock: zmq.Socket, events: int, address: str) -> zmq.Socket:
    """A PAIR reading `sock`'s monitor events, with no high-water mark. libzmq's I/O thread sends
    monitor events with a blocking send: a bounded pipe nobody drains (a client left idle while
    its broker refuses it or restarts) would block that thread, and every socket of the context."""
    sock.monitor(address, events)
    reader = sock.context.socket(zmq.PAIR)
    reader.setsockopt(zmq.RCVHWM, 0)  # an inproc pipe is unbounded when either end sets 0
    reader.setsockopt(zmq.LINGER, 0)
    reader.connect(address)
    return reader
