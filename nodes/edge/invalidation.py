# SPDX-License-Identifier: MIT
"""Applying invalidations to the page cache, and never missing one for good.

Events arrive by pub/sub, which may lose some (section 8.3 of the SPEC). The
broker also appends every `zeromesh.invalidate.*` event to the capped Redis
stream `zeromesh:invalidations` with its topic, body, seq and epoch. So:

* Per topic the Invalidator remembers the last seq it applied. A seq jump
  within an epoch means events were lost: it replays the missing seqs from
  the stream, waiting briefly for the broker's asynchronous write; if the
  stream does not hold them (trimmed, cleared, Redis down) it flushes.
* A new epoch of a broker (it restarted) flushes everything: the old
  broker's last events are unknowable. All of this is per broker (events and
  stream entries name theirs): with several brokers, each counts its own seqs.
* `catch_up()` (run every few seconds, and after a gap) reads the stream from
  the last entry it processed, and applies what pub/sub never delivered, such
  as the last invalidation before a quiet spell. If that entry is gone from
  the stream (trimmed or cleared), entries after it may be gone too: flush.

Pure logic: the stream, the clock and the sleep are passed in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from zeromesh.nodes import names

from . import defaults
from .cache import PageCache
from .metrics import EdgeMetrics

log = logging.getLogger("zeromesh.edge.invalidation")

T = TypeVar("T")

START = "0-0"
"""Stream position before any entry."""


class StreamUnavailable(Exception):
    """Redis cannot be read (down, or not configured)."""


@dataclass(frozen=True)
class StreamEntry:
    id: str
    topic: str
    body: bytes
    seq: int
    epoch: str
    broker: str = ""


class _Seen:
    """What one broker's events told us: its epoch, the epochs it had before, the last seq per topic."""

    __slots__ = ("epoch", "old_epochs", "last")

    def __init__(self) -> None:
        self.epoch: str | None = None
        self.old_epochs: set[str] = set()
        self.last: dict[str, int] = {}


class InvalidationStream(Protocol):
    def last_id(self) -> str:
        """The newest entry's id, or START when the stream is empty."""

    def contains(self, entry_id: str) -> bool: ...

    def entries_after(self, entry_id: str) -> list[StreamEntry]:
        """Every entry newer than `entry_id`, oldest first."""


class Invalidator:
    def __init__(
        self,
        cache: PageCache,
        stream: InvalidationStream | None,
        metrics: EdgeMetrics,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        replay_wait_s: float = defaults.REPLAY_WAIT_S,
    ) -> None:
        self.cache = cache
        self.stream = stream
        self.metrics = metrics
        self.sleep = sleep
        self.clock = clock
        self.replay_wait_s = replay_wait_s
        self.brokers: dict[str, _Seen] = {}
        self.position: str | None = None  # the last stream entry processed; None: unknown
        self._stream_down_logged = False

    # -- start ---------------------------------------------------------------

    def start(self) -> None:
        """Note where the stream ends: what comes after happened while this edge runs."""
        self.position = self._read(lambda s: s.last_id())

    # -- events from pub/sub -------------------------------------------------

    def _seen(self, broker: str, epoch: str) -> _Seen | None:
        """That broker's state at this epoch, flushing on its restart; None for a straggler."""
        seen = self.brokers.get(broker)
        if seen is None:
            seen = self.brokers[broker] = _Seen()
        if epoch != seen.epoch:
            if epoch in seen.old_epochs:
                return None  # a straggler from before that broker restarted: the flush covered it
            if seen.epoch is not None:
                log.warning(
                    "broker %s epoch changed (%s -> %s): flushing the page cache",
                    broker or "(unnamed)",
                    seen.epoch,
                    epoch,
                )
                seen.old_epochs.add(seen.epoch)
                self._flush("flush_epoch")
                seen.last = {}
            seen.epoch = epoch
        return seen

    def on_event(self, topic: str, body: bytes, seq: int, epoch: str, broker: str = "") -> None:
        seen = self._seen(broker, epoch)
        if seen is None:
            return
        last = seen.last.get(topic)
        if last is not None:
            if seq <= last:
                return  # already applied, from the stream
            if seq > last + 1:
                log.info(
                    "gap on %s from %s: seq %d after %d; replaying from the stream",
                    topic,
                    broker or "(unnamed)",
                    seq,
                    last,
                )
                self.catch_up(need=(broker, topic, seq - 1))
                if seen.last.get(topic, 0) >= seq:
                    return
        self._apply(topic, body)
        seen.last[topic] = seq

    # -- the stream ------------------------------------------------------------

    def catch_up(self, need: tuple[str, str, int] | None = None) -> None:
        """Apply what the stream holds past our position. `need`: (broker, topic, seq) that must be reached."""
        deadline = self.clock() + self.replay_wait_s
        while True:
            ok = self._catch_up_once()
            if need is None:
                return
            broker, topic, seq = need
            last = self.brokers[broker].last
            if ok and last.get(topic, 0) >= seq:
                return
            if not ok or self.clock() >= deadline:
                log.warning(
                    "the invalidation stream does not cover %s up to seq %d: flushing the page cache", topic, seq
                )
                self._flush("flush_gap")
                last[topic] = max(seq, last.get(topic, 0))
                self.position = self._read(lambda s: s.last_id())
                return
            self.sleep(0.05)  # the broker writes the stream asynchronously

    def _catch_up_once(self) -> bool:
        """False when the stream cannot tell what we missed."""
        if self.stream is None:
            return False
        position = self.position
        if position is None:
            # Redis was down when we started (or since a failure): what happened meanwhile is unknowable.
            latest = self._read(lambda s: s.last_id())
            if latest is None:
                return False
            if any(seen.epoch is not None for seen in self.brokers.values()) or len(self.cache):
                self._flush("flush_gap")
            self.position = latest
            return True
        if position != START:
            held = self._read(lambda s: s.contains(position))
            if held is None:
                return False
            if not held:
                log.warning("stream entry %s is gone (trimmed or cleared): flushing the page cache", position)
                self._flush("flush_gap")
                self.position = self._read(lambda s: s.last_id())
                return self.position is not None
        entries = self._read(lambda s: s.entries_after(position))
        if entries is None:
            return False
        for entry in entries:
            self._replay(entry)
            self.position = entry.id
        return True

    def _replay(self, entry: StreamEntry) -> None:
        seen = self._seen(entry.broker, entry.epoch)
        if seen is None:
            return
        last = seen.last.get(entry.topic)
        if last is not None and entry.seq <= last:
            return
        if last is not None and entry.seq > last + 1:
            log.warning("stream lacks %s seqs %d..%d: flushing the page cache", entry.topic, last + 1, entry.seq - 1)
            self._flush("flush_gap")
        self._apply(entry.topic, entry.body)
        seen.last[entry.topic] = entry.seq
        self.metrics.invalidated("replayed")

    def _read(self, fn: Callable[[InvalidationStream], T]) -> T | None:
        if self.stream is None:
            return None
        try:
            result = fn(self.stream)
        except StreamUnavailable as exc:
            if not self._stream_down_logged:
                log.warning("invalidation stream unavailable (%s): a gap will flush the page cache", exc)
                self._stream_down_logged = True
            return None
        if self._stream_down_logged:
            log.info("invalidation stream available again")
            self._stream_down_logged = False
        return result

    # -- effects -------------------------------------------------------------

    def _apply(self, topic: str, body: bytes) -> None:
        text = body.decode("utf-8", "replace")
        if topic == names.INVALIDATE_PATH:
            if not text:
                return  # an empty prefix would be a flush: say so with .all instead
            n = self.cache.invalidate_path(text)
            self.metrics.invalidated("path")
        elif topic == names.INVALIDATE_TAG:
            n = self.cache.invalidate_tag(text)
            self.metrics.invalidated("tag")
        elif topic == names.INVALIDATE_ALL:
            n = self.cache.clear()
            self.metrics.invalidated("all")
        else:
            log.debug("ignoring unknown invalidation topic %s", topic)
            return
        log.debug("%s %r: dropped %d page(s)", topic, text, n)

    def _flush(self, kind: str) -> None:
        n = self.cache.clear()
        self.metrics.invalidated(kind)
        log.info("flushed %d page(s) (%s)", n, kind)
