# SPDX-License-Identifier: MIT
"""Routing state: work items and the channels (queues and services) that hold them.

A name is one channel whether producers push jobs to it or callers send requests:
workers register for names, and a channel hands both kinds to its workers.
"""

from __future__ import annotations

from collections import deque

from .config import QueueConfig, ServiceConfig
from .limits import Gate, needs_gate
from .service_stats import ServiceStats
from .workers import WorkerRecord

JOB = 1
REQUEST = 2


class Item:
    """A job or a request, owned by the broker until acked or answered."""

    __slots__ = (
        "kind",
        "id",
        "channel",
        "body",
        "headers",
        "trace",
        "attempt",
        "error",
        "client",
        "worker",
        "since",
        "deadline",
        "done",
        "enqueued_at",
        "elem",
        "outcome",
        "unique",
    )

    def __init__(
        self,
        kind: int,
        id: str,
        channel: Channel,
        body: bytes,
        headers: dict | None,
        trace: str,
        client: bytes | None,
        now: float,
        deadline: float = 0.0,
    ) -> None:
        self.kind = kind
        self.id = id
        self.channel = channel
        self.body = body
        self.headers = headers
        self.trace = trace
        self.attempt = 0  # deliveries so far; the next one is attempt + 1
        self.error = ""  # last error, carried to the next worker and to dead letters
        self.client = client  # requests: the caller's routing id
        self.worker: WorkerRecord | None = None  # the worker holding it, if in flight
        self.since = now  # when it entered its current state
        self.deadline = deadline  # requests: absolute deadline; jobs in flight: lease expiry
        self.done = False  # requests: answered, timed out or cancelled
        self.enqueued_at = now
        self.elem: bytes | None = None  # its element in our Redis in-flight list, if it has one
        self.outcome = ""  # once finished: "done" or "dead_letter" (kept for `trace`)
        self.unique: str | None = None  # a unique key it holds until done (from its Redis element)


class Channel:
    """One name: its pending jobs and requests, dead letters, workers and counters."""

    __slots__ = (
        "name",
        "qconf",
        "sconf",
        "jobs",
        "requests",
        "dead",
        "workers",
        "rr",
        "enqueued",
        "acked",
        "nacked",
        "dead_lettered",
        "requested",
        "answered",
        "in_flight",
        "rate_marks",
        "backlog",
        "fetching",
        "poll_at",
        "redis_depth",
        "redis_dead",
        "gate",
        "paused_at",
        "waiting",
        "svc",
        "scheduled",
    )

    def __init__(self, name: str, qconf: QueueConfig, sconf: ServiceConfig) -> None:
        self.name = name
        self.qconf = qconf
        self.sconf = sconf
        self.jobs: deque[Item] = deque()
        self.requests: deque[Item] = deque()  # may hold done items, skipped at dispatch
        self.dead: deque[Item] = deque(maxlen=qconf.dead_letter_max)
        self.workers: list = []  # WorkerRecords registered for this name
        self.rr = 0  # round-robin start for fair dispatch
        self.in_flight = 0
        self.enqueued = self.acked = self.nacked = self.dead_lettered = 0
        self.requested = self.answered = 0
        self.rate_marks: deque[tuple[float, int, int]] = deque(maxlen=11)
        self.backlog = False  # Redis may hold jobs for this queue (spilled, fed from outside)
        self.fetching = False  # a fetch from Redis is under way
        self.poll_at = 0.0  # when to look in Redis again for jobs fed from outside
        self.redis_depth = 0  # last known LLEN of zeromesh:queue:<name>
        self.redis_dead = 0  # last known LLEN of zeromesh:dead:<name>
        # Pause and limits; None: neither (the dispatch's fast path).
        self.gate: Gate | None = (
            Gate(qconf.max_per_second, qconf.max_in_flight)
            if needs_gate(qconf.max_per_second, qconf.max_in_flight)
            else None
        )
        self.paused_at = -1e9  # when an ADMIN here last paused or resumed it (Redis reports lag behind)
        self.waiting = 0  # jobs waiting out a retry delay (in the ledger's RetryWaits)
        self.svc = ServiceStats()  # as a service: answers' latency, errors by code (metrics)
        self.scheduled = 0  # its jobs scheduled for later, in Redis (last known ZCARD)

    @property
    def paused(self) -> bool:
        return self.gate is not None and self.gate.paused

    def set_paused(self, paused: bool) -> None:
        if self.gate is None:
            if not paused:
                return
            self.gate = Gate(0.0, 0)
        self.gate.paused = paused

    @property
    def has_pending(self) -> bool:
        return bool(self.jobs or self.requests)

    def credit(self) -> int:
        return sum(w.credit for w in self.workers)

    def pending_requests(self) -> int:
        return sum(1 for item in self.requests if not item.done)

    def rates(self) -> tuple[float, float]:
        """Jobs in and out per second over the last ~10 s of ticks."""
        if len(self.rate_marks) < 2:
            return 0.0, 0.0
        t0, in0, out0 = self.rate_marks[0]
        t1, in1, out1 = self.rate_marks[-1]
        span = t1 - t0
        if span <= 0:
            return 0.0, 0.0
        return (in1 - in0) / span, (out1 - out0) / span
