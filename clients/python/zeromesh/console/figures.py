# SPDX-License-Identifier: MIT
"""Pure arithmetic over status answers: rates from counter deltas, percentiles from histogram
buckets, and the history the graphs and alarms read. No I/O; the poller feeds it."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

HISTORY_S = 600
"""Seconds of samples kept (the graphs' last 10 minutes)."""

LATENCY_WINDOW_S = 60
"""p50/p99 are computed over the answers of the last minute."""


@dataclass
class Sample:
    """One poll's figures, keyed by (broker, name)."""

    t: float
    totals: dict[str, int] = field(default_factory=dict)  # enqueued, acked, requested, answered
    depths: dict[tuple[str, str], int] = field(default_factory=dict)
    services: dict[tuple[str, str], dict] = field(default_factory=dict)  # {requested, timeouts, buckets}


def quantile(q: float, cumulative: list[int], bounds: list[float]) -> float | None:
    """The q-quantile (0..1) in seconds of a cumulative histogram (counts <= each bound, then all),
    interpolated linearly inside its bucket as Prometheus's histogram_quantile does; None without
    observations; math.inf when it falls in the last, unbounded bucket."""
    if not cumulative or cumulative[-1] <= 0:
        return None
    rank = q * cumulative[-1]
    below, lower = 0, 0.0
    for i, count in enumerate(cumulative):
        if count >= rank and count > below:
            if i >= len(bounds):
                return math.inf
            upper = bounds[i]
            return lower + (upper - lower) * (rank - below) / (count - below)
        below = count
        lower = bounds[i] if i < len(bounds) else lower
    return math.inf


def bucket_delta(now: list[int], then: list[int] | None) -> list[int]:
    """The observations between two cumulative histograms (a restarted broker's counts start over)."""
    if then is None or len(then) != len(now) or any(b > a for a, b in zip(now, then)):
        return list(now)
    return [a - b for a, b in zip(now, then)]


class History:
    """The last HISTORY_S seconds of samples, oldest first."""

    def __init__(self, keep_s: float = HISTORY_S) -> None:
        self.keep_s = keep_s
        self.samples: deque[Sample] = deque()

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)
        while self.samples and sample.t - self.samples[0].t > self.keep_s:
            self.samples.popleft()

    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    def at_or_before(self, t: float) -> Sample | None:
        """The newest sample taken at or before t (None when history does not reach back so far)."""
        found = None
        for s in self.samples:
            if s.t > t:
                break
            found = s
        return found

    def rates(self) -> dict[str, list]:
        """Per-second rates of each total between consecutive samples: {"t": [...], name: [...]}."""
        out: dict[str, list] = {"t": []}
        pairs = list(zip(self.samples, list(self.samples)[1:]))
        for a, b in pairs:
            dt = b.t - a.t
            if dt <= 0:
                continue
            out["t"].append(round(b.t, 3))
            for name, value in b.totals.items():
                prev = a.totals.get(name, value)
                out.setdefault(name, []).append(round(max(0, value - prev) / dt, 2))
        return out

    def last_rate(self, name: str) -> float:
        if len(self.samples) < 2:
            return 0.0
        a, b = self.samples[-2], self.samples[-1]
        dt = b.t - a.t
        return max(0.0, (b.totals.get(name, 0) - a.totals.get(name, 0)) / dt) if dt > 0 else 0.0

    def service_figures(self, key: tuple[str, str]) -> dict:
        """{rate, p50_ms, p99_ms} of a service over the last LATENCY_WINDOW_S seconds."""
        now = self.latest()
        if now is None or key not in now.services:
            return {"rate": 0.0, "p50_ms": None, "p99_ms": None}
        then = self.at_or_before(now.t - LATENCY_WINDOW_S) or self.samples[0]
        cur = now.services[key]
        # A service missing from the baseline appeared since: all its answers are in the window.
        old = cur if then is now else then.services.get(key)
        delta = bucket_delta(cur["buckets"], old["buckets"] if old else None)
        dt = now.t - then.t
        rate = (cur["requested"] - (old["requested"] if old else 0)) / dt if dt > 0 else 0.0
        return {
            "rate": round(max(0.0, rate), 2),
            "p50_ms": _ms(quantile(0.5, delta, cur["bounds"]), cur["bounds"]),
            "p99_ms": _ms(quantile(0.99, delta, cur["bounds"]), cur["bounds"]),
        }


def _ms(seconds: float | None, bounds: list[float]) -> float | str | None:
    """Milliseconds; past the last bound, a text saying so (JSON has no infinity)."""
    if seconds is None:
        return None
    if math.isinf(seconds):
        return f"> {bounds[-1] * 1000:g}" if bounds else "?"
    return round(seconds * 1000, 2)
