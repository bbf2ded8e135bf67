# SPDX-License-Identifier: MIT
"""How a worker connected to several brokers splits its credit between them (SPEC, several brokers).

The total a worker may hold stays its configured credit C. Over the brokers it is registered
with now (live sessions: READY answered, not lost), in list order rotated by a per-worker
random offset (so workers with C < n do not all favour the first broker), broker i of n gets
C // n + (1 if i < C % n else 0). Every time a session registers or is lost the shares are
worked out again, and each session whose share changed is told (it sends CREDIT). A READY
carries the share the session will have once registered, within what the others were not
given. One broker: the share is C, always. A lowered share takes nothing back: the broker
only sees credit as a cap, so a session holding more than its new share just gets nothing
more until it holds less.

Sessions run in their own threads; this object is shared by them, so it holds a lock, and it
tells a session through that session's `notify` callable (its outbox), never by touching it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable


def shares(credit: int, live: list[int]) -> dict[int, int]:
    """Session index -> share, for the live sessions in `live` (already in rotated order)."""
    n = len(live)
    if n == 0:
        return {}
    base, extra = divmod(credit, n)
    return {index: base + (1 if position < extra else 0) for position, index in enumerate(live)}


class CreditSplit:
    def __init__(self, credit: int, count: int, offset: int | None = None, rng: random.Random | None = None) -> None:
        if count < 1:
            raise ValueError("a worker has at least one broker")
        self.credit = credit
        self.count = count
        self.offset = (rng or random).randrange(count) if offset is None else offset % count
        self.live: set[int] = set()
        self.sent: dict[int, int] = {}  # session -> the share it was last told (READY or CREDIT)
        self._notify: dict[int, Callable[[int], None]] = {}
        self._lock = threading.Lock()

    def attach(self, index: int, notify: Callable[[int], None]) -> None:
        """`notify(share)` tells session `index` (from any thread) to send CREDIT share."""
        self._notify[index] = notify

    def _order(self, live: set[int]) -> list[int]:
        return sorted(live, key=lambda i: (i - self.offset) % self.count)

    def ready_credit(self, index: int) -> int:
        """The credit session `index` puts in its READY: its share once it is registered, but no
        more than what the other sessions were not given (at start, the first READY takes the
        whole credit and the others 0 until the shares are worked out as each registers)."""
        with self._lock:
            share = shares(self.credit, self._order(self.live | {index}))[index]
            others = sum(given for other, given in self.sent.items() if other != index)
            share = max(0, min(share, self.credit - others))
            self.sent[index] = share
            return share

    def registered(self, index: int) -> None:
        self._change(index, True)

    def lost(self, index: int) -> None:
        self._change(index, False)

    def _change(self, index: int, live: bool) -> None:
        with self._lock:
            if (index in self.live) == live:
                return
            if live:
                self.live.add(index)
            else:
                self.live.discard(index)
                self.sent.pop(index, None)  # its next READY says its share again
            told = []
            for other, share in shares(self.credit, self._order(self.live)).items():
                if self.sent.get(other) != share:
                    self.sent[other] = share
                    told.append((other, share))
        for other, share in told:
            notify = self._notify.get(other)
            if notify is not None:
                notify(share)
