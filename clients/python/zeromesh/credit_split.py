# SPDX-License-Identifier: MIT
"""How a worker connected to several brokers splits its credit between them (SPEC 2.4).

The total a worker holds never exceeds its configured credit C. Over the brokers it is
registered with now (live sessions: READY answered, not lost), in list order rotated by a
per-worker random offset (so workers with C < n do not all favour the first broker), broker
i of n has the target share C // n + (1 if i < C % n else 0). One broker: the share is C.

A broker may send up to the credit it was last told, and a lowered credit takes nothing
back, so each session counts as `max(bound, held)`: `held` what it holds now (its I/O side
reports it after each flush), `bound` the highest credit its broker may still be applying.
What is free is C minus the sum of those counts, and only what is free is ever given:

* A session above its target is lowered to max(target, held), at once, with READY (the
  broker answers a READY, and a CREDIT not), so the session learns when the broker has
  taken the lower figure; until that answer its bound stays the old credit.
* A session below its target (a joining broker's READY, or a share that grew) gets
  min(target, what it counts + what is free), and the rest later, with CREDIT, as jobs
  finish elsewhere and lowered sessions are answered.

Sessions run in their own threads; this object is shared by them, so it holds a lock, and
it tells a session through that session's `notify(credit, lower)` (its outbox), never by
touching it. The session that reports is told its own change in the return value instead,
so it sends that READY before the ACKs of the same flush: its broker then cannot refill
the freed slot under the old credit.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import NamedTuple


def shares(credit: int, live: list[int]) -> dict[int, int]:
    """Session index -> share, for the live sessions in `live` (already in rotated order)."""
    n = len(live)
    if n == 0:
        return {}
    base, extra = divmod(credit, n)
    return {index: base + (1 if position < extra else 0) for position, index in enumerate(live)}


class Change(NamedTuple):
    """Tell the broker the new credit: with READY if `lower` (its answer confirms), else CREDIT."""

    credit: int
    lower: bool


class CreditSplit:
    def __init__(self, credit: int, count: int, offset: int | None = None, rng: random.Random | None = None) -> None:
        if count < 1:
            raise ValueError("a worker has at least one broker")
        self.credit = credit
        self.count = count
        self.offset = (rng or random).randrange(count) if offset is None else offset % count
        self.live: set[int] = set()
        self.sent: dict[int, int] = {}  # session -> the credit it last told its broker (READY or CREDIT)
        self.bound: dict[int, int] = {}  # session -> the most its broker may still apply (>= sent)
        self.held: dict[int, int] = {}  # session -> what it holds, as it last reported
        self._notify: dict[int, Callable[[int, bool], None]] = {}
        self._lock = threading.Lock()

    def attach(self, index: int, notify: Callable[[int, bool], None]) -> None:
        """`notify(credit, lower)` tells session `index` (from any thread) to send that credit."""
        self._notify[index] = notify

    def counted(self) -> int:
        """What the sessions hold or may be sent: never more than the credit."""
        with self._lock:
            return self._counted()

    def _counted(self) -> int:
        return sum(max(self.bound.get(i, 0), self.held.get(i, 0)) for i in set(self.bound) | set(self.held))

    def _order(self, live: set[int]) -> list[int]:
        return sorted(live, key=lambda i: (i - self.offset) % self.count)

    def ready_credit(self, index: int) -> int:
        """The credit session `index` puts in a READY. Unregistered: its share once registered, but
        only out of what is free (never less than an earlier READY of this connection offered).
        Registered (a READY that changes the names): what it was last told."""
        with self._lock:
            if index in self.live:
                return self.sent.get(index, 0)
            target = shares(self.credit, self._order(self.live | {index}))[index]
            self._raise(index, target, self.credit - self._counted())
            return self.sent[index]

    def registered(self, index: int) -> None:
        with self._lock:
            if index in self.live:
                return
            self.live.add(index)
            changes = self._rebalance()
        self._tell(changes)

    def lost(self, index: int) -> None:
        """Its connection was left: what it held is abandoned, its broker will send nothing more on it."""
        with self._lock:
            self.live.discard(index)
            for table in (self.sent, self.bound, self.held):
                table.pop(index, None)
            changes = self._rebalance()
        self._tell(changes)

    def report(self, index: int, held: int) -> Change | None:
        """Session `index` holds `held` now. Returns its own change (to send before its ACKs)."""
        with self._lock:
            if self.held.get(index) == held:
                return None
            self.held[index] = held
            changes = self._rebalance()
        mine = changes.pop(index, None)
        self._tell(changes)
        return mine

    def confirmed(self, index: int, credit: int, held: int) -> None:
        """The broker answered the READY that lowered session `index` to `credit`; it holds `held`
        (every job sent before that answer has arrived, and none since can pass `credit`)."""
        with self._lock:
            if index not in self.live or self.sent.get(index) != credit:
                return  # raised again since, or lost: that later message counts, not this one
            self.bound[index] = credit
            self.held[index] = held
            changes = self._rebalance()
        self._tell(changes)

    def _raise(self, index: int, target: int, free: int) -> int:
        """Raise session `index` toward `target` out of `free`; returns what is left free."""
        sent, bound, held = self.sent.get(index, 0), self.bound.get(index, 0), self.held.get(index, 0)
        counts = max(bound, held)
        credit = max(sent, min(target, counts + max(free, 0)))
        self.sent[index] = credit
        self.bound[index] = max(bound, credit)
        return free - (max(counts, credit) - counts)

    def _rebalance(self) -> dict[int, Change]:
        targets = shares(self.credit, self._order(self.live))
        changes: dict[int, Change] = {}
        for index, target in targets.items():
            lower = max(target, self.held.get(index, 0))
            if self.sent.get(index, 0) > lower:
                self.sent[index] = lower  # the bound stays until the broker answers the READY
                changes[index] = Change(lower, True)
        free = self.credit - self._counted()
        for index in self._order(self.live):
            before = self.sent.get(index, 0)
            if before < targets[index]:  # a raise up to its bound is free: the broker may apply that already
                free = self._raise(index, targets[index], free)
                if self.sent[index] > before:
                    changes[index] = Change(self.sent[index], False)
        return changes

    def _tell(self, changes: dict[int, Change]) -> None:
        for index, change in changes.items():
            notify = self._notify.get(index)
            if notify is not None:
                notify(change.credit, change.lower)
