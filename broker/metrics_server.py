# SPDX-License-Identifier: MIT
"""`zeromesh broker --metrics HOST:PORT`: Prometheus metrics over HTTP, from the last snapshot.

prometheus_client's HTTP server runs in its own thread; its collector turns the snapshot the
routing loop swapped in (metrics_snapshot.py) into metric families. Every metric carries the
broker's name, so several brokers' figures stay apart. docs/METRICS.md lists them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from .metrics_snapshot import Snapshot
from .service_stats import LATENCY_BOUNDS_S


class SnapshotHolder:
    """The last snapshot: written by the routing loop only, read by the metrics thread."""

    def __init__(self) -> None:
        self.current: Snapshot | None = None


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def _counter(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=labels)


class SnapshotCollector:
    def __init__(self, holder: SnapshotHolder) -> None:
        self.holder = holder

    def collect(self) -> Iterator[Any]:
        snap = self.holder.current
        if snap is None:
            return
        b = snap.broker
        q = ["broker", "queue"]
        queue_gauges = {
            "in_memory": _gauge("zeromesh_queue_depth_memory", "Jobs waiting in the broker's memory.", q),
            "in_redis": _gauge("zeromesh_queue_depth_redis", "Jobs waiting in the queue's Redis list.", q),
            "in_flight": _gauge("zeromesh_queue_in_flight", "Jobs held by workers.", q),
            "retry_waiting": _gauge("zeromesh_queue_retry_waiting", "NACKed jobs waiting out their backoff.", q),
            "scheduled": _gauge("zeromesh_queue_scheduled", "Jobs scheduled for later (in Redis).", q),
            "dead": _gauge("zeromesh_queue_dead_letters", "Dead letters (memory and Redis).", q),
            "paused": _gauge("zeromesh_queue_paused", "1 while the queue is paused.", q),
            "oldest_age_s": _gauge("zeromesh_queue_oldest_age_seconds", "Age of the oldest job in memory.", q),
        }
        queue_counters = {
            "enqueued": _counter("zeromesh_queue_enqueued", "Jobs accepted.", q),
            "acked": _counter("zeromesh_queue_acked", "Jobs acknowledged.", q),
            "nacked": _counter("zeromesh_queue_nacked", "Jobs NACKed by workers.", q),
            "dead_lettered": _counter("zeromesh_queue_dead_lettered", "Jobs dead-lettered.", q),
        }
        for fig in snap.queues:
            values = fig._asdict()
            for field, family in queue_gauges.items():
                family.add_metric([b, fig.name], float(values[field]))
            for field, counter in queue_counters.items():
                counter.add_metric([b, fig.name], float(values[field]))
        yield from queue_gauges.values()
        yield from queue_counters.values()
        yield from self._services(snap)
        yield from self._rest(snap)

    def _services(self, snap: Snapshot) -> Iterator[Any]:
        b, s = snap.broker, ["broker", "service"]
        requests = _counter("zeromesh_service_requests", "Requests accepted.", s)
        answered = _counter("zeromesh_service_answered", "Requests answered (reply or error).", s)
        pending = _gauge("zeromesh_service_pending", "Requests waiting for a worker.", s)
        in_flight = _gauge("zeromesh_service_in_flight", "Requests held by workers.", s)
        workers = _gauge("zeromesh_service_workers", "Workers serving it.", s)
        errors = _counter("zeromesh_service_errors", "Requests answered with an error, by code.", [*s, "code"])
        latency = HistogramMetricFamily(
            "zeromesh_service_latency_seconds", "From a request's arrival to its answer.", labels=s
        )
        bounds = [str(x) for x in LATENCY_BOUNDS_S] + ["+Inf"]
        for fig in snap.services:
            labels = [b, fig.name]
            requests.add_metric(labels, fig.requested)
            answered.add_metric(labels, fig.answered)
            pending.add_metric(labels, fig.pending)
            in_flight.add_metric(labels, fig.in_flight)
            workers.add_metric(labels, fig.workers)
            for code, n in fig.errors:
                errors.add_metric([*labels, code], n)
            latency.add_metric(labels, list(zip(bounds, fig.buckets)), fig.total_s)
        yield from (requests, answered, pending, in_flight, workers, errors, latency)

    def _rest(self, snap: Snapshot) -> Iterator[Any]:
        b = snap.broker
        by = ["broker", "lang", "host"]
        workers = _gauge("zeromesh_workers", "Workers connected, by language and host.", by)
        credit = _gauge("zeromesh_worker_credit", "Credit offered by the workers, by language and host.", by)
        held = _gauge("zeromesh_worker_held", "Items the workers hold, by language and host.", by)
        by_lang: dict[tuple[str, str], list[int]] = {}
        for w in snap.workers:
            row = by_lang.setdefault((w.lang, w.host), [0, 0, 0])
            row[0] += 1
            row[1] += w.credit
            row[2] += w.held
        for (lang, host), (count, cr, hd) in sorted(by_lang.items()):
            workers.add_metric([b, lang, host], count)
            credit.add_metric([b, lang, host], cr)
            held.add_metric([b, lang, host], hd)
        yield from (workers, credit, held)
        up = _gauge("zeromesh_redis_up", "1 while the broker's Redis link is up (0 without Redis).", ["broker"])
        up.add_metric([b], 1.0 if snap.redis_up else 0.0)
        yield up
        if snap.redis_rtt_ms is not None:
            rtt = _gauge("zeromesh_redis_rtt_seconds", "The last PING's round trip to Redis.", ["broker"])
            rtt.add_metric([b], snap.redis_rtt_ms / 1000.0)
            yield rtt
        brokers = _gauge("zeromesh_brokers_registered", "Brokers in the registry, as this one sees it.", ["broker"])
        brokers.add_metric([b], snap.brokers_seen)
        yield brokers
        bad = _counter("zeromesh_bad_input", "Messages refused as bad input, by error code.", ["broker", "code"])
        events = _counter("zeromesh_broker_events", "Other counted events (status counters).", ["broker", "event"])
        for name, n in snap.counters:
            if name.startswith("bad_input."):
                bad.add_metric([b, name.split(".", 1)[1]], n)
            else:
                events.add_metric([b, name], n)
        yield from (bad, events)


def serve(address: str, holder: SnapshotHolder) -> Any:
    """Start the HTTP server on HOST:PORT; returns it (prometheus_client runs it in a daemon thread)."""
    host, _, port = address.rpartition(":")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(holder))
    server, _thread = start_http_server(int(port), addr=host or "127.0.0.1", registry=registry)
    return server
