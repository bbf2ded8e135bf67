# SPDX-License-Identifier: MIT
"""What a handler receives: one job (from a queue) or one request (for a service)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple


class DeadLetter(Exception):
    """Raise from a job handler to dead-letter the job now (NACK with retry=false)."""


class Retry(Exception):
    """Raise from a job handler to retry the job after `in_` seconds, instead of the queue's
    backoff (NACK retry_in_ms): `raise Retry(in_=30)`, or `raise Retry("rate limited", in_=30)`."""

    def __init__(self, message: str = "", *, in_: float) -> None:
        if not isinstance(in_, (int, float)) or isinstance(in_, bool) or not 0 <= in_ < 1e9:
            raise ValueError(f"Retry(in_=) is a number of seconds, 0 or more, got {in_!r}")
        super().__init__(message or f"retry in {in_:g}s")
        self.in_ = float(in_)


class ExtendLease(NamedTuple):
    """What Job.extend() sends to the worker's I/O side: keep `job` leased for lease_ms from now."""

    job: Job
    lease_ms: int


class Job:
    """A unit of work handed to a handler.

    kind is "job" (a queue: return to ACK, raise to NACK) or "request" (a
    service: the return value is the reply body, an exception the remote
    error). `cancelled` is set when the broker cancels a request (the client
    gave up or its deadline passed); a long handler may check it and stop.
    `connection` numbers the worker's connection it came on: a worker that
    replaces its connection abandons what came on the old one.
    """

    __slots__ = (
        "kind",
        "name",
        "id",
        "body",
        "headers",
        "attempt",
        "trace",
        "error",
        "received_at",
        "lease_s",
        "timeout_s",
        "cancelled",
        "connection",
        "_send",
    )

    def __init__(
        self,
        kind: str,
        name: str,
        header: dict,
        body: bytes,
        cancelled: Any,
        send: Callable[[ExtendLease], None],
        connection: int = 0,
    ) -> None:
        self.kind = kind
        self.name = name
        self.id: str = header["id"]
        self.body = body
        self.headers: dict[str, Any] = header.get("headers") or {}
        self.attempt: int = header.get("attempt", 1)
        self.trace: str = header.get("trace") or self.id
        self.error: str | None = header.get("error")
        self.received_at = time.monotonic()
        # Jobs have a lease, requests a deadline; both in seconds from receipt.
        self.lease_s: float | None = header["lease_ms"] / 1000 if "lease_ms" in header else None
        self.timeout_s: float | None = header["timeout_ms"] / 1000 if "timeout_ms" in header else None
        self.cancelled = cancelled
        self.connection = connection
        self._send = send

    @classmethod
    def first_deliveries(
        cls,
        name: str,
        ids: list[str],
        bodies: list[bytes],
        headers: dict | None,
        lease_ms: int,
        cancelled: Any,
        send: Callable[[ExtendLease], None],
        connection: int = 0,
    ) -> list[Job]:
        """The jobs of one JOB_PACKED or JOB_BATCH: attempt 1, their own id as trace, no error, shared fields."""
        now = time.monotonic()
        lease_s = lease_ms / 1000
        new = cls.__new__
        jobs = []
        for jid, body in zip(ids, bodies):
            job = new(cls)
            job.kind = "job"
            job.name = name
            job.id = job.trace = jid
            job.body = body
            job.headers = dict(headers) if headers else {}  # each job its own: handlers may change it
            job.attempt = 1
            job.error = None
            job.received_at = now
            job.lease_s = lease_s
            job.timeout_s = None
            job.cancelled = cancelled
            job.connection = connection
            job._send = send
            jobs.append(job)
        return jobs

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def extend(self, seconds: float) -> None:
        """Ask the broker to keep this job leased to us for `seconds` from now."""
        self._send(ExtendLease(self, max(1, int(seconds * 1000))))

    def __repr__(self) -> str:
        return f"Job({self.kind} {self.name!r} id={self.id!r} attempt={self.attempt})"
