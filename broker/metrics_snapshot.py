# SPDX-License-Identifier: MIT
"""What the broker's metrics say, taken once a second by the routing loop as plain values.

The metrics thread never reads the router: it reads the last snapshot, a tuple of tuples the
loop swaps in whole (one reference assignment), so a scrape costs the loop nothing and sees one
consistent moment. Pure: `take()` reads the router's state and builds values.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .channels import JOB


class QueueFigures(NamedTuple):
    name: str
    in_memory: int
    in_redis: int
    in_flight: int
    retry_waiting: int
    scheduled: int
    dead: int
    paused: bool
    enqueued: int
    acked: int
    nacked: int
    dead_lettered: int
    oldest_age_s: float


class ServiceFigures(NamedTuple):
    name: str
    requested: int
    answered: int
    pending: int
    in_flight: int
    workers: int
    errors: tuple[tuple[str, int], ...]
    buckets: tuple[int, ...]  # cumulative, per LATENCY_BOUNDS_S, then +Inf
    total_s: float
    observed: int


class WorkerFigures(NamedTuple):
    lang: str
    label: str
    credit: int
    held: int
    host: str


class Snapshot(NamedTuple):
    broker: str
    taken_at: float
    queues: tuple[QueueFigures, ...]
    services: tuple[ServiceFigures, ...]
    workers: tuple[WorkerFigures, ...]
    redis_up: bool
    redis_enabled: bool
    redis_rtt_ms: float | None
    counters: tuple[tuple[str, int], ...]
    brokers_seen: int


def take(router: Any, now: float) -> Snapshot:
    state = router.state
    workers = list(router.registry.workers.values())
    held_by_channel: dict[str, list[Any]] = {}
    for w in workers:
        for item in w.held.values():
            held_by_channel.setdefault(item.channel.name, []).append(item)
    queues, services = [], []
    for name, chan in sorted(state.channels.items()):
        held = held_by_channel.get(name, [])
        jobs_held = sum(1 for i in held if i.kind == JOB)
        if chan.enqueued or chan.jobs or chan.redis_depth or chan.dead or chan.redis_dead or chan.scheduled:
            oldest = now - chan.jobs[0].enqueued_at if chan.jobs else 0.0
            queues.append(
                QueueFigures(
                    name,
                    len(chan.jobs),
                    chan.redis_depth,
                    jobs_held,
                    chan.waiting,
                    chan.scheduled,
                    len(chan.dead) + chan.redis_dead,
                    chan.paused,
                    chan.enqueued,
                    chan.acked,
                    chan.nacked,
                    chan.dead_lettered,
                    round(oldest, 3),
                )  # fmt: skip
            )
        if chan.requested or chan.requests or chan.svc.count or chan.svc.errors:
            svc = chan.svc
            services.append(
                ServiceFigures(
                    name,
                    chan.requested,
                    chan.answered,
                    chan.pending_requests(),
                    len(held) - jobs_held,
                    len(chan.workers),
                    tuple(sorted(svc.errors.items())),
                    tuple(svc.cumulative()),
                    svc.total_s,
                    svc.count,
                )  # fmt: skip
            )
    return Snapshot(
        state.config.name,
        now,
        tuple(queues),
        tuple(services),
        tuple(WorkerFigures(w.lang or "unknown", w.label, w.credit, len(w.held), w.host or "unknown") for w in workers),
        state.redis_up,
        state.redis_enabled,
        state.redis_rtt_ms,
        tuple(sorted(state.counters.items())),
        len(state.brokers),
    )
