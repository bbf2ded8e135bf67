# SPDX-License-Identifier: MIT
"""The edge's Prometheus metrics, in a registry of its own (so tests can build many edges in one process).

Each edge process reports its own figures; with --workers N a scrape reaches
one of them (label the targets per process, or sum across scrapes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

ERROR_KINDS = (
    "bad_request",
    "not_found",
    "method_not_allowed",
    "too_large",
    "no_workers",
    "timeout",
    "remote",
    "bad_reply",
    "unavailable",
    "client_gone",
    "feature_off",
    "internal",
)
"""Values of the `kind` label of zeromesh_edge_errors_total."""

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class EdgeMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "zeromesh_edge_requests", "HTTP requests answered, by route and status", ("route", "status"), registry=r
        )
        self.latency = Histogram(
            "zeromesh_edge_request_duration_seconds",
            "Time to answer, by route",
            ("route",),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.cache = Counter(
            "zeromesh_edge_cache", "Cacheable requests by outcome: hit, miss or stale", ("result",), registry=r
        )
        self.invalidations = Counter(
            "zeromesh_edge_invalidations",
            "Invalidations applied: path, tag, all; replayed from the stream; "
            "flush_gap and flush_epoch when the edge dropped everything",
            ("kind",),
            registry=r,
        )
        self.errors = Counter("zeromesh_edge_errors", "Failed requests by kind", ("kind",), registry=r)
        self.cache_entries = Gauge("zeromesh_edge_cache_entries", "Pages in the cache", registry=r)
        self.cache_bytes = Gauge("zeromesh_edge_cache_bytes", "Bytes of pages in the cache", registry=r)
        self.sse_streams = Gauge("zeromesh_edge_sse_streams", "Open server-sent event streams", registry=r)
        # labels() takes a lock and builds a key every call: keep the children on the hot path.
        self._req: dict[tuple[str, int], Any] = {}
        self._lat: dict[str, Any] = {}
        self._cache = {name: self.cache.labels(name) for name in ("hit", "miss", "stale")}
        self._errors = {kind: self.errors.labels(kind) for kind in ERROR_KINDS}
        for kind in ERROR_KINDS:
            self._errors[kind].inc(0)  # every kind is listed, at 0, from the start

    def observe(self, route: str, status: int, seconds: float) -> None:
        child = self._req.get((route, status))
        if child is None:
            child = self._req[(route, status)] = self.requests.labels(route, str(status))
        child.inc()
        hist = self._lat.get(route)
        if hist is None:
            hist = self._lat[route] = self.latency.labels(route)
        hist.observe(seconds)

    def cache_result(self, result: str) -> None:
        self._cache[result].inc()

    def error(self, kind: str) -> None:
        self._errors[kind].inc()

    def invalidated(self, kind: str, n: int = 1) -> None:
        self.invalidations.labels(kind).inc(n)

    def track_cache(self, entries: Callable[[], float], size: Callable[[], float]) -> None:
        self.cache_entries.set_function(entries)
        self.cache_bytes.set_function(size)

    def render(self) -> bytes:
        return generate_latest(self.registry)
