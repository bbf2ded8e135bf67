# SPDX-License-Identifier: MIT
"""Defaults shared by the broker and every client. The CLI may override each."""

from __future__ import annotations

BROKER_ENDPOINT = "tcp://127.0.0.1:5555"
"""ROUTER endpoint for clients and workers (env ZEROMESH_BROKER)."""

PUB_ENDPOINT = "tcp://127.0.0.1:5556"
"""PUB endpoint for subscribers (env ZEROMESH_PUB)."""

MAX_MESSAGE = 16 * 1024 * 1024
"""Largest body the broker accepts, in bytes (env ZEROMESH_MAX_MESSAGE)."""

HEARTBEAT_S = 1.0
"""Seconds between heartbeats in each direction when a link is otherwise idle."""

HEARTBEAT_LIVENESS = 3
"""Heartbeat intervals without any traffic after which a peer is declared dead."""

REQUEST_TIMEOUT_S = 5.0
"""Default deadline of a request, in seconds."""

PUSH_TIMEOUT_S = 10.0
"""How long a producer waits for the broker's CONFIRM before giving up."""

PUSH_RESEND_S = 2.0
"""An unconfirmed push is sent again after this long (the same id: at-least-once)."""

WORKER_CREDIT = 16
"""Jobs and requests a worker holds at once unless it says otherwise."""

QUEUE_MAX_DEPTH = 100_000
"""Jobs a queue holds in memory before producers get queue_full."""

QUEUE_MAX_ATTEMPTS = 5
"""Deliveries of a job before it is dead-lettered."""

QUEUE_LEASE_S = 60.0
"""Seconds a worker may hold a job without acking or extending it."""

DEAD_LETTER_MAX = 10_000
"""Dead letters kept per queue in memory; the oldest are dropped past this."""

SERVICE_MAX_PENDING = 10_000
"""Requests that may wait for a worker of one service."""

SERVICE_MAX_ATTEMPTS = 2
"""Deliveries of a request (a worker died holding it) before it fails."""

TRACE_HISTORY = 100_000
"""Finished job ids the broker remembers for `zeromesh trace`."""
