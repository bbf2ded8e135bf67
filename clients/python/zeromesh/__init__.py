# SPDX-License-Identifier: MIT
"""zeromesh: work queues, request/reply and pub/sub over one ZeroMQ broker.

from zeromesh import Client, Worker

with Client() as client:
    job_id = client.push("resize", b"...")
    print(client.request("echo", "hi"))
"""

from __future__ import annotations

import os

from . import native

# Before anything else is imported: the hot modules come from their compiled copies when built
# (zeromesh/native/; ZEROMESH_NATIVE=off runs the Python source throughout).
NATIVE = native.install(os.environ.get("ZEROMESH_NATIVE", "auto").strip().lower() or "auto")

from .client import Client
from .errors import (
    AuthenticationError,
    ForbiddenError,
    NoRespondersError,
    ProtocolError,
    QueueFullError,
    RemoteError,
    TimeoutError,  # noqa: A004 - zeromesh.TimeoutError, also a builtin TimeoutError
    UnreachableError,
    ZeromeshError,
)
from .job import DeadLetter, Job, Retry
from .messages import Event, Reply
from .subscription import Subscription
from .worker import Worker


def __getattr__(name: str) -> str:
    """`zeromesh.__version__`, looked up on first use: importing importlib.metadata costs every
    process about 50 ms at start (a broker, a worker, each CLI call), most of them never ask."""
    if name != "__version__":
        raise AttributeError(f"module 'zeromesh' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("zeromesh")
    except PackageNotFoundError:  # imported from a source tree that pip never installed
        found = "0+unknown"
    globals()["__version__"] = found
    return found


__all__ = [
    "AuthenticationError",
    "Client",
    "DeadLetter",
    "Retry",
    "Event",
    "ForbiddenError",
    "Job",
    "NoRespondersError",
    "ProtocolError",
    "QueueFullError",
    "RemoteError",
    "Reply",
    "Subscription",
    "TimeoutError",
    "UnreachableError",
    "Worker",
    "ZeromeshError",
]
