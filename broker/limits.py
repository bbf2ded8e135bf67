# SPDX-License-Identifier: MIT
"""How many of a queue's jobs may go to workers now: pause, a rate, a cap on jobs in flight.

A queue with none of these has no Gate (the dispatch's fast path). Limits are per mesh: with
several brokers each enforces its share, the configured figure divided by the number of
brokers registered in Redis (a rate of 10/s over two brokers is 5/s each; a cap of 7 in
flight is 3 and 4... rounded down, at least 1), so the mesh as a whole stays within it.
"""

from __future__ import annotations


class Gate:
    __slots__ = ("max_per_second", "max_in_flight", "paused", "brokers", "tokens", "stamp")

    def __init__(self, max_per_second: float, max_in_flight: int) -> None:
        self.max_per_second = max_per_second  # 0: no rate limit
        self.max_in_flight = max_in_flight  # 0: no cap
        self.paused = False
        self.brokers = 1  # brokers sharing the limits
        self.tokens = 0.0
        self.stamp: float | None = None

    @property
    def rate(self) -> float:
        return self.max_per_second / self.brokers

    @property
    def cap(self) -> int:
        return max(1, self.max_in_flight // self.brokers) if self.max_in_flight else 0

    def allowance(self, now: float, in_flight: int) -> int:
        """Jobs that may be dispatched now (a large number when unlimited)."""
        if self.paused:
            return 0
        allowed = 1 << 30
        if self.max_in_flight:
            allowed = max(0, self.cap - in_flight)
        if self.max_per_second:
            self._refill(now)
            allowed = min(allowed, int(self.tokens))
        return allowed

    def spend(self, count: int) -> None:
        if self.max_per_second:
            self.tokens -= count

    def next_token_at(self, now: float) -> float | None:
        """When the rate allows one more job (None: the rate is not what holds it back)."""
        if self.paused or not self.max_per_second or self.tokens >= 1:
            return None
        return now + (1 - self.tokens) / self.rate

    def _refill(self, now: float) -> None:
        # A bucket of one second's worth: a queue idle for a while may send a second's jobs at once, no more.
        burst = max(1.0, self.rate)
        if self.stamp is None:
            self.tokens = burst
        else:
            self.tokens = min(burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now


def needs_gate(max_per_second: float, max_in_flight: int) -> bool:
    return bool(max_per_second) or bool(max_in_flight)


def share_count(brokers: list[dict]) -> int:
    """How many brokers share a queue's limits: those registered, at least this one."""
    return max(1, len(brokers))
