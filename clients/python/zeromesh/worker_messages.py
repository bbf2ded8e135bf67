# SPDX-License-Identifier: MIT
"""What reaches a worker's I/O side from other threads and greenlets: typed records.

Handlers' outcomes (Acked, Nacked, Answered, Failed), a Job's ExtendLease (job.py), and
the Worker's own requests (NamesChanged, StopRequested), all through the I/O side's
outbox; a handler thread says HandlerExited as it ends. The I/O side tells them apart by
type. NamedTuples: one is made per handled request, and they cost no more than the
tuples they replace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from .job import ExtendLease, Job


class Acked(NamedTuple):
    """Jobs whose handlers returned: ACK them. One handler's share of one delivery, so one connection."""

    jobs: Sequence[Job]


class Nacked(NamedTuple):
    """A job whose handler raised: NACK it, for a retry or (retry False) the dead letters."""

    job: Job
    error: str
    retry: bool
    retry_in_ms: int | None = None  # the handler's own wait (Retry), else the queue's backoff


class Answered(NamedTuple):
    """A request's reply."""

    job: Job
    body: bytes
    headers: dict | None


class Failed(NamedTuple):
    """A request answered with an ERROR: its header fields (code, message, name, traceback)."""

    job: Job
    fields: dict


class NamesChanged(NamedTuple):
    """A handler was registered after start: send READY again with the names."""


class StopRequested(NamedTuple):
    """Stop taking work; finish what runs within `grace` seconds."""

    grace: float


class CreditChanged(NamedTuple):
    """The worker's credit split changed: tell this session's broker `credit`, with READY when
    `lower` (its answer says the broker applies it, credit_split.py), else with CREDIT."""

    credit: int
    lower: bool


class HandlerExited(NamedTuple):
    """A handler thread has ended (thread mode: stopping waits for all of them)."""


Outcome = Nacked | Answered | Failed
"""What running a handler yields, besides None (a job done: ACK it)."""

ToIO = Acked | Nacked | Answered | Failed | ExtendLease | NamesChanged | StopRequested | CreditChanged | HandlerExited

NAMES_CHANGED = NamesChanged()
HANDLER_EXITED = HandlerExited()

__all__ = [
    "HANDLER_EXITED",
    "NAMES_CHANGED",
    "Acked",
    "Answered",
    "CreditChanged",
    "ExtendLease",
    "Failed",
    "HandlerExited",
    "NamesChanged",
    "Nacked",
    "Outcome",
    "StopRequested",
    "ToIO",
]
