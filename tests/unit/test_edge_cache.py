# SPDX-License-Identifier: MIT
"""The edge's page cache: fresh, stale and gone; LRU bounds; invalidation by path prefix, tag and all."""

from __future__ import annotations

import pytest

from zeromesh.nodes.edge.cache import CacheEntry, PageCache, cache_key

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def page(path: str = "/a", body: bytes = b"x", tags=()) -> CacheEntry:
    return CacheEntry("200 OK", [("Content-Type", "text/html")], body, path, frozenset(tags))


def test_fresh_then_stale_for_the_grace_period_then_gone():
    clock = Clock()
    cache = PageCache(clock=clock, grace_factor=10)
    assert cache.lookup("k") == (None, False)
    entry = page()
    cache.store("k", entry, ttl=5)
    assert cache.lookup("k") == (entry, True)
    clock.now += 5
    assert cache.lookup("k") == (entry, False)  # expired: usable only as STALE
    clock.now += 49
    assert cache.lookup("k") == (entry, False)
    clock.now += 1
    assert cache.lookup("k") == (None, False)
    assert len(cache) == 0 and cache.bytes == 0


def test_lru_bounded_by_entries_and_by_bytes():
    cache = PageCache(max_entries=3, clock=Clock())
    for key in "abc":
        cache.store(key, page(), ttl=60)
    cache.lookup("a")  # a is now the most recently used
    cache.store("d", page(), ttl=60)
    assert [cache.lookup(k)[0] is not None for k in "abcd"] == [True, False, True, True]

    size = page(body=b"x" * 1000).size
    cache = PageCache(max_bytes=size * 2, clock=Clock())
    cache.store("a", page(body=b"x" * 1000), ttl=60)
    cache.store("b", page(body=b"x" * 1000), ttl=60)
    cache.store("c", page(body=b"x" * 1000), ttl=60)
    assert [cache.lookup(k)[0] is not None for k in "abc"] == [False, True, True]
    assert cache.bytes == size * 2
    cache.store("huge", page(body=b"x" * 10_000), ttl=60)  # bigger than the whole cache: not kept
    assert cache.lookup("huge") == (None, False) and len(cache) == 2


def test_store_replaces_and_keeps_the_accounting_right():
    cache = PageCache(clock=Clock())
    cache.store("k", page(body=b"a" * 100, tags=["t1"]), ttl=60)
    cache.store("k", page(body=b"b" * 10, tags=["t2"]), ttl=60)
    assert len(cache) == 1 and cache.bytes == page(body=b"b" * 10).size
    assert cache.invalidate_tag("t1") == 0
    assert cache.invalidate_tag("t2") == 1 and len(cache) == 0


def test_invalidate_by_path_prefix_tag_and_all():
    cache = PageCache(clock=Clock())
    cache.store(cache_key("h", "/cards/1", ""), page("/cards/1", tags=["card:1", "cards"]), ttl=60)
    cache.store(cache_key("h", "/cards/1", "x=1"), page("/cards/1", tags=["card:1", "cards"]), ttl=60)
    cache.store(cache_key("h2", "/cards/2", ""), page("/cards/2", tags=["card:2", "cards"]), ttl=60)
    cache.store(cache_key("h", "/", ""), page("/", tags=["home"]), ttl=60)
    assert cache.invalidate_path("/cards/1") == 2  # every query and host of that path
    assert cache.invalidate_path("/nothing") == 0
    assert cache.invalidate_tag("cards") == 1
    assert cache.invalidate_tag("card:2") == 0
    assert len(cache) == 1
    assert cache.clear() == 1 and cache.bytes == 0
    assert cache.invalidate_tag("home") == 0


def test_expired_pages_still_invalidated():
    clock = Clock()
    cache = PageCache(clock=clock)
    cache.store("k", page("/a", tags=["t"]), ttl=1)
    clock.now += 2
    assert cache.invalidate_tag("t") == 1
    assert cache.lookup("k") == (None, False)  # not even as STALE: it is known to be wrong


def test_cache_key_keeps_its_parts_apart():
    assert cache_key("h", "/a", "b") != cache_key("h", "/a?b", "")
    assert cache_key("h", "/a", "", ["fr"]) != cache_key("h", "/a", "", ["de"])
    assert cache_key("h", "/a", "", [""]) != cache_key("h", "/a", "")
