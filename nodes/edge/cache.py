# SPDX-License-Identifier: MIT
"""The edge's full-page cache: LRU bounded by entries and bytes, TTL, tags, and a stale grace period.

A page is fresh until its TTL passes. After that it is kept `grace_factor`
TTLs longer, served only when its service fails (X-Cache: STALE), so a
service outage degrades pages instead of breaking them. Invalidations remove
pages outright: a page known to be wrong is never served, not even stale.

Single-threaded (one gevent hub): nothing here yields, so no locks.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from . import defaults


@dataclass(slots=True)
class CacheEntry:
    status: str  # "200 OK"
    headers: list[tuple[str, str]]  # as sent, without X-Cache
    body: bytes
    path: str  # http.path, for invalidation by path prefix
    tags: frozenset[str]
    expires: float = 0.0
    stale_until: float = 0.0

    @property
    def size(self) -> int:
        return len(self.body) + 64 * len(self.headers) + 256


CacheKey = tuple[str, ...]


def cache_key(host: str, path: str, query: str, vary: Iterable[str] = ()) -> CacheKey:
    """Host, path, query and the values of the route's vary headers: a tuple, so no separator
    character can make two different requests share a key."""
    return (host, path, query, *vary)


class PageCache:
    def __init__(
        self,
        max_entries: int = defaults.CACHE_MAX_ENTRIES,
        max_bytes: int = defaults.CACHE_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
        grace_factor: float = defaults.STALE_GRACE_FACTOR,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self.grace_factor = grace_factor
        self._entries: OrderedDict[CacheKey, CacheEntry] = OrderedDict()
        self._by_tag: dict[str, set[CacheKey]] = {}
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: CacheKey) -> tuple[CacheEntry | None, bool]:
        """(entry, True) if fresh; (entry, False) if expired but still usable as STALE; else (None, False)."""
        entry = self._entries.get(key)
        if entry is None:
            return None, False
        now = self.clock()
        if now < entry.expires:
            self._entries.move_to_end(key)
            return entry, True
        if now < entry.stale_until:
            return entry, False
        self._drop(key)
        return None, False

    def store(self, key: CacheKey, entry: CacheEntry, ttl: float) -> None:
        """Keep `entry` fresh for `ttl` seconds from now (then stale for grace_factor * ttl)."""
        now = self.clock()
        entry.expires = now + ttl
        entry.stale_until = entry.expires + ttl * self.grace_factor
        size = entry.size
        if size > self.max_bytes:
            return
        self._drop(key)
        self._entries[key] = entry
        self.bytes += size
        for tag in entry.tags:
            self._by_tag.setdefault(tag, set()).add(key)
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def invalidate_path(self, prefix: str) -> int:
        keys = [key for key, entry in self._entries.items() if entry.path.startswith(prefix)]
        for key in keys:
            self._drop(key)
        return len(keys)

    def invalidate_tag(self, tag: str) -> int:
        keys = self._by_tag.pop(tag, set())
        for key in keys:
            self._drop(key)
        return len(keys)

    def clear(self) -> int:
        n = len(self._entries)
        self._entries.clear()
        self._by_tag.clear()
        self.bytes = 0
        return n

    def _drop(self, key: CacheKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self.bytes -= entry.size
        for tag in entry.tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]
