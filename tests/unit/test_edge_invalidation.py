# SPDX-License-Identifier: MIT
"""The Invalidator: applying events, gaps replayed from the stream or flushed, epochs, catching up."""

from __future__ import annotations

import pytest

from zeromesh.nodes.edge.cache import CacheEntry, PageCache
from zeromesh.nodes.edge.invalidation import START, Invalidator, StreamEntry, StreamUnavailable
from zeromesh.nodes.edge.metrics import EdgeMetrics

pytestmark = pytest.mark.unit

PATH, TAG, ALL = "zeromesh.invalidate.path", "zeromesh.invalidate.tag", "zeromesh.invalidate.all"


class FakeStream:
    def __init__(self) -> None:
        self.entries: list[StreamEntry] = []
        self.down = False
        self.n = 0

    def add(self, topic: str, body: str, seq: int, epoch: str = "E1") -> StreamEntry:
        self.n += 1
        entry = StreamEntry(f"{self.n}-0", topic, body.encode(), seq, epoch)
        self.entries.append(entry)
        return entry

    def _check(self) -> None:
        if self.down:
            raise StreamUnavailable("down")

    def last_id(self) -> str:
        self._check()
        return self.entries[-1].id if self.entries else START

    def contains(self, entry_id: str) -> bool:
        self._check()
        return any(e.id == entry_id for e in self.entries)

    def entries_after(self, entry_id: str) -> list[StreamEntry]:
        self._check()
        n = int(entry_id.split("-")[0])
        return [e for e in self.entries if int(e.id.split("-")[0]) > n]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


@pytest.fixture
def world():
    clock = Clock()
    cache = PageCache(clock=clock)
    stream = FakeStream()
    metrics = EdgeMetrics()
    inv = Invalidator(cache, stream, metrics, sleep=clock.sleep, clock=clock, replay_wait_s=0.5)
    return cache, stream, metrics, inv


def fill(cache: PageCache, *paths: str) -> None:
    for path in paths:
        cache.store(path, CacheEntry("200 OK", [], b"", path, frozenset({"tag" + path})), ttl=60)


def count(metrics: EdgeMetrics, kind: str) -> float:
    return metrics.registry.get_sample_value("zeromesh_edge_invalidations_total", {"kind": kind}) or 0.0


def publish(
    stream: FakeStream, inv: Invalidator, topic: str, body: str, seq: int, epoch: str = "E1", delivered: bool = True
) -> None:
    """What the broker does: record in the stream, send on pub/sub (which may lose it)."""
    stream.add(topic, body, seq, epoch)
    if delivered:
        inv.on_event(topic, body.encode(), seq, epoch)


def test_events_apply_by_path_tag_and_all(world):
    cache, stream, metrics, inv = world
    inv.start()
    fill(cache, "/a/1", "/a/2", "/b")
    publish(stream, inv, PATH, "/a", 1)
    assert len(cache) == 1
    publish(stream, inv, TAG, "tag/b", 1)
    assert len(cache) == 0
    fill(cache, "/c")
    publish(stream, inv, ALL, "", 1)
    assert len(cache) == 0
    publish(stream, inv, PATH, "", 2)  # an empty prefix is ignored, not a flush
    assert [count(metrics, k) for k in ("path", "tag", "all", "flush_gap")] == [1, 1, 1, 0]


def test_a_gap_is_replayed_from_the_stream(world):
    cache, stream, metrics, inv = world
    inv.start()
    publish(stream, inv, PATH, "/x", 1)
    fill(cache, "/a", "/b")
    publish(stream, inv, PATH, "/a", 2, delivered=False)  # lost on the wire
    publish(stream, inv, PATH, "/x", 3)  # seq 3 after 1: the edge replays 2 from the stream
    assert cache.lookup("/a") == (None, False) and cache.lookup("/b")[1]
    # Seq 3 itself was in the stream too: applied from there, then skipped when it came by pub/sub.
    assert count(metrics, "replayed") == 2 and count(metrics, "flush_gap") == 0
    assert count(metrics, "path") == 3
    publish(stream, inv, PATH, "/x", 4)
    assert count(metrics, "replayed") == 2  # in order again: nothing to replay


def test_a_gap_the_stream_cannot_cover_flushes(world):
    cache, stream, metrics, inv = world
    inv.start()
    publish(stream, inv, PATH, "/x", 1)
    fill(cache, "/a", "/b")
    publish(stream, inv, PATH, "/a", 2, delivered=False)
    stream.entries.clear()  # trimmed or cleared
    publish(stream, inv, PATH, "/x", 3)
    assert len(cache) == 0 and count(metrics, "flush_gap") == 1
    fill(cache, "/a")
    publish(stream, inv, PATH, "/x", 4)  # and then carries on normally
    assert len(cache) == 1 and count(metrics, "flush_gap") == 1


def test_a_gap_with_redis_down_flushes_after_waiting_for_the_write(world):
    cache, stream, metrics, inv = world
    inv.start()
    publish(stream, inv, PATH, "/x", 1)
    fill(cache, "/a")
    stream.down = True
    inv.on_event(PATH, b"/x", 3, "E1")
    assert len(cache) == 0 and count(metrics, "flush_gap") == 1


def test_waits_briefly_for_the_brokers_asynchronous_stream_write(world):
    cache, stream, metrics, inv = world
    inv.start()
    publish(stream, inv, PATH, "/x", 1)
    fill(cache, "/a", "/b")
    sleeps = []

    def late_write(s: float) -> None:
        sleeps.append(s)
        if len(sleeps) == 2:  # seq 2 shows up in Redis a little after seq 3 arrived by pub/sub
            stream.add(PATH, "/a", 2)
        inv.clock.now += s  # type: ignore[attr-defined]

    inv.sleep = late_write
    inv.on_event(PATH, b"/x", 3, "E1")
    assert cache.lookup("/a") == (None, False) and cache.lookup("/b")[1]
    assert count(metrics, "flush_gap") == 0 and len(sleeps) == 2


def test_new_epoch_flushes_and_old_stragglers_are_ignored(world):
    cache, stream, metrics, inv = world
    inv.start()
    publish(stream, inv, PATH, "/x", 5, epoch="E1")
    fill(cache, "/a")
    publish(stream, inv, PATH, "/x", 1, epoch="E2")
    assert len(cache) == 0 and count(metrics, "flush_epoch") == 1
    fill(cache, "/a")
    inv.on_event(PATH, b"/a", 6, "E1")  # a late event of the old broker: covered by the flush
    assert len(cache) == 1
    publish(stream, inv, PATH, "/y", 2, epoch="E2")
    assert count(metrics, "flush_epoch") == 1 and count(metrics, "flush_gap") == 0


def test_catch_up_applies_what_pubsub_never_delivered(world):
    cache, stream, metrics, inv = world
    stream.add(PATH, "/a", 1)  # before this edge started: not applied
    inv.start()
    fill(cache, "/a", "/b", "/c")
    inv.catch_up()
    assert len(cache) == 3
    publish(stream, inv, TAG, "tag/b", 1, delivered=False)  # the last event before a quiet spell, lost
    inv.catch_up()
    assert cache.lookup("/b") == (None, False) and len(cache) == 2
    publish(stream, inv, TAG, "tag/c", 2)  # delivered later, no gap: it was replayed already
    assert len(cache) == 1 and count(metrics, "flush_gap") == 0
    inv.on_event(TAG, b"tag/b", 1, "E1")  # a late duplicate is ignored
    assert count(metrics, "tag") == 2


def test_catch_up_flushes_when_its_position_was_trimmed_away(world):
    cache, stream, metrics, inv = world
    publish(stream, inv, PATH, "/x", 1)
    inv.start()
    fill(cache, "/a")
    stream.entries.clear()
    stream.add(PATH, "/z", 7)
    inv.catch_up()
    assert len(cache) == 0 and count(metrics, "flush_gap") == 1
    fill(cache, "/a")
    inv.catch_up()
    assert len(cache) == 1


def test_redis_down_at_start_then_up_flushes_once(world):
    cache, stream, metrics, inv = world
    stream.down = True
    inv.start()
    assert inv.position is None
    fill(cache, "/a")
    inv.catch_up()  # still down: nothing to do
    assert len(cache) == 1
    stream.down = False
    inv.catch_up()  # what happened meanwhile is unknowable
    assert len(cache) == 0 and count(metrics, "flush_gap") == 1
    fill(cache, "/a")
    inv.catch_up()
    assert len(cache) == 1


def test_no_stream_at_all_flushes_on_a_gap():
    cache = PageCache()
    inv = Invalidator(cache, None, EdgeMetrics())
    inv.start()
    inv.on_event(PATH, b"/x", 1, "E1")
    fill(cache, "/a")
    inv.on_event(PATH, b"/x", 2, "E1")
    assert len(cache) == 1
    inv.on_event(PATH, b"/x", 5, "E1")
    assert len(cache) == 0
