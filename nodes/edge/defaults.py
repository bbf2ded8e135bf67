# SPDX-License-Identifier: MIT
"""The HTTP edge's defaults. The CLI may override the listen address, the routes file and the workers."""

from __future__ import annotations

LISTEN = "127.0.0.1:8080"
"""Where the edge listens (env ZEROMESH_HTTP)."""

ROUTES_FILE = "routes.toml"
"""The route table read when --routes is not given (an absent default file means no routes)."""

REDIS_SOCKET = "var/redis/redis.sock"
"""Redis when ZEROMESH_REDIS_URL is unset: the embedded server's socket, relative to the working directory."""

MAX_BODY = 1024 * 1024
"""Largest request body a route accepts unless it sets max_body (bytes); larger gets 413 unread."""

TIMEOUT_S = 5.0
"""A route's deadline unless it sets timeout_s: the REQUEST's timeout_ms, or how long a push waits for CONFIRM."""

RETRY_AFTER_S = 1
"""Retry-After on a 503: no worker serves the service (yet), or the mesh is short of capacity."""

CACHE_MAX_ENTRIES = 10_000
"""Pages the full-page cache holds; the least recently used goes first."""

CACHE_MAX_BYTES = 64 * 1024 * 1024
"""Bytes of page bodies the cache holds, the same way."""

STALE_GRACE_FACTOR = 10
"""An expired page is kept this many TTLs longer, served only as STALE when its service fails."""

CATCHUP_S = 5.0
"""How often the edge compares the Redis stream of invalidations with what it applied (and reloads features)."""

REPLAY_WAIT_S = 0.5
"""How long a replay waits for the broker's (asynchronous) stream writes to show the missed seqs."""

SSE_HEARTBEAT_S = 15.0
"""A comment line this often keeps idle event streams (and the proxies between) open."""

SSE_QUEUE_MAX = 1000
"""Events buffered for one slow browser; past this they are dropped (pub/sub is at-most-once)."""

LINGER_TIME_S = 10.0
"""After a 413, the edge reads and discards the rest of the refused body for at most this long, so the
client, still sending, can read the answer instead of a connection reset (nginx: lingering_time)."""

LINGER_IDLE_S = 2.0
"""... and stops sooner when the client sends nothing for this long (nginx: lingering_timeout)."""

LINGER_MAX_BYTES = 256 * 1024 * 1024
"""... or once it has discarded this much."""

LINGER_MAX_CONNECTIONS = 64
"""Connections discarding a refused body at once, per process; past this one is closed at once (a reset)."""

HEALTH_TIMEOUT_S = 1.0
"""/readyz waits this long for the broker's status and Redis's PING."""

STOP_GRACE_S = 5.0
"""On SIGTERM, requests in progress get this long to finish."""

RESERVED_PATHS = ("/healthz", "/readyz", "/metrics", "/events")
"""Served by the edge itself, before any route."""
