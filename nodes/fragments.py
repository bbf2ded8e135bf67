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

Rendered = str | tuple[str, Iterable[str]]
"""What a render function returns: the value, or (value, more tags)."""

MAX_ENTRIES = 10_000
"""Entries kept; the least recently used goes first past this."""


@dataclass
class _Entry:
    value: str
    tags: frozenset[str]
    expires: float


class FragmentCache:
    """Single-threaded (one gevent hub), so no locks: nothing here yields."""

    def __init__(
        self,
        max_entries: int = MAX_ENTRIES,
        default_ttl: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.default_ttl = default_ttl
        self.clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._by_tag: dict[str, set[str]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: str) -> tuple[str, frozenset[str]] | None:
        """(value, tags) of a live entry, else None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self.clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.value, entry.tags

    def get(self, key: str) -> str | None:
        found = self.lookup(key)
        return None if found is None else found[0]

    def put(self, key: str, value: str, tags: Iterable[str] = (), ttl: float | None = None) -> None:
        if key in self._entries:
            self._drop(key)
        entry = _Entry(value, frozenset(tags), self.clock() + (self.default_ttl if ttl is None else ttl))
        self._entries[key] = entry
        for tag in entry.tags:
            self._by_tag.setdefault(tag, set()).add(key)
        while len(self._entries) > self.max_entries:
            self._drop(next(iter(self._entries)))

    def get_or_render(self, key: str, tags: Iterable[str], fn: Callable[[], Rendered], ttl: float | None = None) -> str:
        """The cached value of `key`, or fn()'s result, cached under `tags` for `ttl` seconds."""
        return self.get_or_render_tagged(key, tags, fn, ttl)[0]

    def get_or_render_tagged(
        self, key: str, tags: Iterable[str], fn: Callable[[], Rendered], ttl: float | None = None
    ) -> tuple[str, frozenset[str]]:
        """Like get_or_render, and also the entry's tags.

        fn() returns the value, or (value, more_tags) when the tags depend on
        what it fetched (a list of cards tagged by each card's id): then a hit
        skips the fetch too. Two greenlets missing the same key at once both
        render; the later put wins. That costs a render, never correctness.
        """
        found = self.lookup(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        out = fn()
        value, more = out if isinstance(out, tuple) else (out, ())
        all_tags = frozenset(tags) | frozenset(more)
        self.put(key, str(value), all_tags, ttl)
        return str(value), all_tags

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
