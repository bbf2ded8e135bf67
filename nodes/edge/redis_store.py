# SPDX-License-Identifier: MIT
"""What the edge reads from Redis: the invalidation stream and the feature switches.

Every failure becomes StreamUnavailable: the edge serves on without Redis,
it only loses the ability to replay (a gap then flushes the cache).
"""

from __future__ import annotations

import logging
from typing import Any

from zeromesh.protocol import redis_url

from .invalidation import START, StreamEntry, StreamUnavailable

log = logging.getLogger("zeromesh.edge.redis")

INVALIDATIONS_STREAM = "zeromesh:invalidations"
"""The capped stream the broker appends every zeromesh.invalidate.* event to (topic, body, seq, epoch, broker)."""

_PAGE = 1000


def connect(url: str, timeout_s: float = 1.0) -> Any:
    """A redis-py client for `url` (no connection is made yet; a redis+sentinel:// URL follows failovers).
    Short timeouts: Redis must never stall a page. ValueError when the URL is malformed."""
    return redis_url.connect(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)


def redact(url: str) -> str:
    """The URL without its passwords, for logs."""
    return redis_url.redact(url)


class RedisStore:
    def __init__(self, redis: Any) -> None:
        if redis is None:
            raise TypeError("RedisStore needs a redis client")
        self.redis = redis

    def _call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        import redis

        try:
            return fn(*args, **kw)
        except (redis.RedisError, OSError) as exc:
            raise StreamUnavailable(str(exc) or type(exc).__name__) from None

    def last_id(self) -> str:
        entries = self._call(self.redis.xrevrange, INVALIDATIONS_STREAM, count=1)
        return _text(entries[0][0]) if entries else START

    def contains(self, entry_id: str) -> bool:
        return bool(self._call(self.redis.xrange, INVALIDATIONS_STREAM, entry_id, entry_id, count=1))

    def entries_after(self, entry_id: str) -> list[StreamEntry]:
        out: list[StreamEntry] = []
        start = entry_id
        while True:
            page = self._call(self.redis.xrange, INVALIDATIONS_STREAM, "(" + start, "+", count=_PAGE)
            for raw_id, fields in page:
                entry = _entry(_text(raw_id), fields)
                if entry is not None:
                    out.append(entry)
            if len(page) < _PAGE:
                return out
            start = _text(page[-1][0])

    def ping(self) -> None:
        """StreamUnavailable unless Redis answers."""
        self._call(self.redis.ping)

    def load_features(self, features: Any) -> None:
        """Reload the feature switches from their hash (StreamUnavailable if Redis is down)."""
        self._call(features.load, self.redis)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _entry(entry_id: str, fields: dict) -> StreamEntry | None:
    try:
        return StreamEntry(
            entry_id,
            _text(fields[b"topic"]),
            bytes(fields.get(b"body", b"")),
            int(fields[b"seq"]),
            _text(fields[b"epoch"]),
            _text(fields.get(b"broker", b"")),
        )
    except (KeyError, ValueError, TypeError):
        log.warning("skipping malformed stream entry %s: %r", entry_id, fields)
        return None
