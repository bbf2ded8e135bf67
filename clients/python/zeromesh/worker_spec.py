# SPDX-License-Identifier: MIT
"""What a Worker hands its I/O side: settings, handlers, and the two events it watches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import zmq

from .handlers import HandlerTable


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    endpoint: str
    context: zmq.Context
    own_context: bool
    """The I/O side terminates the context once it has closed its sockets."""
    concurrency: int
    """Handlers running at once: threads (thread pool) or greenlets (gevent pool)."""
    credit: int
    heartbeat_s: float
    label: str | None
    kill_on_cancel: bool
    """gevent pool: a request the broker cancels gets its greenlet killed."""
    handlers: HandlerTable
    registered: Any
    """Event the I/O side sets once the broker has answered the first READY."""
    done: Any
    """Event the I/O side sets once it has stopped (DISCONNECT sent, sockets closed)."""
    index: int = 0
    """Which broker of the worker's list this session serves (`endpoint` is that broker's)."""
    split: Any = None
    """The CreditSplit shared by the worker's sessions (credit_split.py); None: the whole credit."""
    curve: Any = None
    """The worker's ClientCurve (protocol/curve_certs.py); None: no CURVE."""
    connect_timeout: float = 1.0
    """How long a refused handshake lasts before the session reports it to `failure`."""
    failure: Any = None
    """The WorkerFailure shared by the worker's sessions (worker_failure.py): what run() raises."""
