# SPDX-License-Identifier: MIT
"""A node's fragment cache: rendered pieces of pages, dropped by tag, by age, or all at once.

Fragments are data, not URLs: tag invalidations (`zeromesh.invalidate.tag`)
and `zeromesh.invalidate.all` drop them; path invalidations do not (a
fragment may appear on many paths). Publishers that change data should
invalidate its tag. Every entry also has a TTL, so a missed invalidation
cannot leave a fragment stale forever.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

DEFAULT_TTL_S = 300.0
"""Seconds a fragment lives when the caller names no TTL."""

MAX_ENTRIES = 10_000
"""Entries kept; the least recently used goes first past this."""


@dataclass
class _Entry:
    value: str
    tags: frozenset[str]
    expires: float


class FragmentCache:
    """Single-threaded (one gevent hub), so no locks: nothing here yields."""

    def __init__(self, max_entries: int = MAX_ENTRIES, default_ttl: float = DEFAULT_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.default_ttl = default_ttl
        self.clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._by_tag: dict[str, set[str]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> str | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self.clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.value

    def put(self, key: str, value: str, tags: Iterable[str] = (), ttl: float | None = None) -> None:
        if key in self._entries:
            self._drop(key)
        entry = _Entry(value, frozenset(tags), self.clock() + (self.default_ttl if ttl is None else ttl))
        self._entries[key] = entry
        for tag in entry.tags:
            self._by_tag.setdefault(tag, set()).add(key)
        while len(self._entries) > self.max_entries:
            self._drop(next(iter(self._entries)))

    def get_or_render(self, key: str, tags: Iterable[str], fn: Callable[[], str], ttl: float | None = None) -> str:
        """The cached value of `key`, or fn()'s result, cached under `tags` for `ttl` seconds.

        Two greenlets missing the same key at once both render; the later put wins.
        That costs a render, never correctness.
        """
        value = self.get(key)
        if value is not None:
            self.hits += 1
            return value
        self.misses += 1
        value = fn()
        self.put(key, value, tags, ttl)
        return value

    def invalidate_tag(self, tag: str) -> int:
        keys = self._by_tag.pop(tag, set())
        for key in keys:
            self._drop(key)
        return len(keys)

    def clear(self) -> int:
        n = len(self._entries)
        self._entries.clear()
        self._by_tag.clear()
        return n

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        for tag in entry.tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]
