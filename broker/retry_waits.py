# SPDX-License-Identifier: MIT
"""Jobs waiting out a retry delay after a NACK (SPEC 8.1, backoff): the ledger's, ordered by
when each may run again. A waiting job is still queued for every other purpose (known by id,
counted in its queue's depth, purged with it); it just does not block the jobs behind it."""

from __future__ import annotations

import heapq
import itertools
import random

from .channels import Channel, Item
from .config import QueueConfig


def backoff_s(qconf: QueueConfig, attempt: int, uniform=random.uniform) -> float:
    """The wait before the next attempt of a job whose `attempt`-th delivery failed: exponential
    from `retry_base_s` by `retry_factor`, capped at `retry_max_s`, with +-`retry_jitter`
    spread so that jobs that failed together do not all come back together."""
    if qconf.retry_base_s <= 0:
        return 0.0
    delay = min(qconf.retry_max_s, qconf.retry_base_s * qconf.retry_factor ** max(attempt - 1, 0))
    return delay * uniform(1.0 - qconf.retry_jitter, 1.0 + qconf.retry_jitter)


class RetryWaits:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Item]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, item: Item, due: float) -> None:
        item.deadline = due
        item.channel.waiting += 1
        heapq.heappush(self._heap, (due, next(self._seq), item))

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def release(self, now: float) -> set[Channel]:
        """Jobs whose wait is over go back to the head of their queues; returns those queues."""
        woken: set[Channel] = set()
        heap = self._heap
        while heap and heap[0][0] <= now:
            item = heapq.heappop(heap)[2]
            chan = item.channel
            chan.waiting -= 1
            chan.jobs.appendleft(item)
            woken.add(chan)
        return woken

    def take(self, chan: Channel) -> list[Item]:
        """Every job of `chan` that waits, out of here (purge, shutdown)."""
        taken = [entry[2] for entry in self._heap if entry[2].channel is chan]
        if taken:
            self._heap = [entry for entry in self._heap if entry[2].channel is not chan]
            heapq.heapify(self._heap)
            chan.waiting = 0
        return taken

    def of(self, chan: Channel) -> list[Item]:
        return [entry[2] for entry in self._heap if entry[2].channel is chan]
