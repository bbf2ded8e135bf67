# SPDX-License-Identifier: MIT
"""Per service: answers' latency as histogram buckets, and errors by code (for metrics)."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter

LATENCY_BOUNDS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Histogram upper bounds, seconds (Prometheus `le`); one more bucket counts everything above."""


class ServiceStats:
    __slots__ = ("buckets", "total_s", "count", "errors")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BOUNDS_S) + 1)
        self.total_s = 0.0
        self.count = 0
        self.errors: Counter[str] = Counter()  # error code -> answers with it

    def observe(self, seconds: float) -> None:
        """One answered request, from its arrival at the broker to its reply's."""
        self.buckets[bisect_left(LATENCY_BOUNDS_S, seconds)] += 1
        self.total_s += seconds
        self.count += 1

    def cumulative(self) -> list[int]:
        """Counts of observations <= each bound, then the total (Prometheus buckets)."""
        out, running = [], 0
        for n in self.buckets:
            running += n
            out.append(running)
        return out
