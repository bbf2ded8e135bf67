# SPDX-License-Identifier: MIT
"""GET /events?topic=PREFIX: pub/sub events to browsers as server-sent events.

Each stream has its own SUB socket (ZeroMQ filters by prefix, so a browser
only costs the events it asked for). Every event becomes

    id: <epoch>:<seq>
    event: <topic>
    data: <body as text, one data line per line>

with a comment line every SSE_HEARTBEAT_S so idle streams stay open. A
stream ends when the browser hangs up (its socket is watched, so this is
noticed at once, not at the next write) or the edge stops.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import gevent
import gevent.queue

from . import defaults
from .metrics import EdgeMetrics
from .upstream import DisconnectWatch

log = logging.getLogger("zeromesh.edge.sse")

_END = object()
HEADERS = [
    ("Content-Type", "text/event-stream; charset=utf-8"),
    ("Cache-Control", "no-cache"),
    ("X-Accel-Buffering", "no"),
]


def format_event(topic: str, body: bytes, epoch: str, seq: int) -> bytes:
    text = body.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    lines = [f"id: {epoch}:{seq}", f"event: {topic}"] + [f"data: {line}" for line in text.split("\n")]
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def topics(query: str) -> list[str]:
    """The topic prefixes asked for (?topic=a&topic=b); none means every topic."""
    return parse_qs(query, keep_blank_values=True).get("topic", [])


class EventStreams:
    def __init__(
        self,
        client: Any,
        metrics: EdgeMetrics,
        heartbeat_s: float = defaults.SSE_HEARTBEAT_S,
        queue_max: int = defaults.SSE_QUEUE_MAX,
    ) -> None:
        self.client = client
        self.metrics = metrics
        self.heartbeat_s = heartbeat_s
        self.queue_max = queue_max
        self._open: set[gevent.queue.Queue] = set()
        self.closing = False

    def stream(self, environ: dict) -> Iterator[bytes]:
        prefixes = topics(environ.get("QUERY_STRING", ""))
        sub = self.client.subscribe(*prefixes)
        queue: gevent.queue.Queue = gevent.queue.Queue()
        sock = environ.get("zeromesh.socket")
        watch = DisconnectWatch(sock) if sock is not None else None
        reader = gevent.spawn(self._read, sub, queue)
        if watch is not None:
            watch.gone.rawlink(lambda _: queue.put(_END))
        return self._run(sub, queue, reader, watch)

    def _read(self, sub: Any, queue: gevent.queue.Queue) -> None:
        for event in sub:
            if queue.qsize() < self.queue_max:  # a browser that cannot keep up loses events, as pub/sub does
                queue.put(event)

    def _run(
        self, sub: Any, queue: gevent.queue.Queue, reader: gevent.Greenlet, watch: DisconnectWatch | None
    ) -> Iterator[bytes]:
        self._open.add(queue)
        self.metrics.sse_streams.inc()
        try:
            # retry: how long a browser waits before reconnecting; the comment flushes the headers now.
            yield b"retry: 2000\n: connected\n\n"
            while not self.closing:
                try:
                    item = queue.get(timeout=self.heartbeat_s)
                except gevent.queue.Empty:
                    yield b": heartbeat\n\n"
                    continue
                if item is _END:
                    return
                yield format_event(item.topic, item.body, item.epoch, item.seq)
        finally:
            self._open.discard(queue)
            self.metrics.sse_streams.dec()
            reader.kill()
            if watch is not None:
                watch.close()
            sub.close()

    def close(self) -> None:
        """End every open stream (the edge is stopping)."""
        self.closing = True
        for queue in list(self._open):
            queue.put(_END)
