# SPDX-License-Identifier: MIT
"""The worker's results on their way to the broker: one flush turns what handlers finished
(ACKs, REPLYs, NACKs, ERRORs, lease extensions) and the I/O side's own records into as few
messages as it can, and drops the results of a connection the worker has left."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from zeromesh.protocol import codec, wire

from .job import ExtendLease, Job
from .worker_messages import (
    Acked,
    Answered,
    CreditChanged,
    Failed,
    HandlerExited,
    Nacked,
    NamesChanged,
    StopRequested,
    ToIO,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from .worker_spec import WorkerSpec

log = logging.getLogger("zeromesh.worker")


def _chunks(seq: list, size: int) -> list[list]:
    return [seq[i : i + size] for i in range(0, len(seq), size)]


class ResultFlush:
    """WorkerSession's flush, on its own: the session supplies what it uses."""

    if TYPE_CHECKING:
        held: dict[str, Job]
        connection: int
        spec: WorkerSpec
        ids: Callable[[], str]

        def _control(self, command: int, **fields: Any) -> str: ...
        def _send(self, frames: list[bytes]) -> None: ...
        def _ready(self) -> None: ...
        def _credit_changed(self, credit: int, lower: bool) -> None: ...
        def _begin_stop(self, now: float, grace: float) -> None: ...
        def _handler_exited(self) -> None: ...

    def _flush(self, items: list[ToIO], now: float) -> None:
        acks: list[str] = []
        replies: list[tuple[dict, bytes]] = []
        extends: dict[int, list[str]] = {}
        held_pop = self.held.pop
        current = self.connection
        dropped = 0
        for item in items:
            # type() is, not isinstance: the records are final, and this runs once per result.
            if type(item) is Acked:
                # One record is one handler's share of one delivery, so its jobs share a connection.
                jobs = item.jobs
                if jobs[0].connection != current:
                    dropped += len(jobs)
                    continue
                for job in jobs:
                    acks.append(job.id)
                    held_pop(job.id, None)
            elif type(item) is Answered:
                job = item.job
                if job.connection != current:
                    dropped += 1  # answers a connection we left: never sent on this one
                    continue
                held_pop(job.id, None)
                header: dict[str, Any] = {"id": self.ids(), "re": job.id}
                if item.headers:
                    header["headers"] = item.headers
                replies.append((header, item.body))
            elif type(item) is Nacked:
                job = item.job
                if job.connection != current:
                    dropped += 1
                    continue
                held_pop(job.id, None)
                header = {"re": job.id, "error": item.error[:4096]}
                if not item.retry:
                    header["retry"] = False
                elif item.retry_in_ms is not None:
                    header["retry_in_ms"] = item.retry_in_ms
                self._control(wire.NACK, **header)
            elif type(item) is Failed:
                job = item.job
                if job.connection != current:
                    dropped += 1
                    continue
                held_pop(job.id, None)
                self._control(wire.ERROR, re=job.id, **item.fields)
            elif type(item) is ExtendLease:
                job = item.job
                if job.connection != current:
                    dropped += 1
                elif job.id in self.held:
                    extends.setdefault(item.lease_ms, []).append(job.id)
            elif type(item) is NamesChanged:
                self._ready()
            elif type(item) is CreditChanged:
                self._credit_changed(item.credit, item.lower)
            elif type(item) is StopRequested:
                self._begin_stop(now, item.grace)
            elif type(item) is HandlerExited:
                self._handler_exited()
        if dropped:
            log.debug("dropped %d result(s) of work abandoned with a replaced connection", dropped)
        split = self.spec.split
        if split is not None:
            # Before the ACKs: a lowered credit must reach the broker before the ACK that frees a slot.
            change = split.report(self.spec.index, len(self.held))
            if change is not None:
                self._credit_changed(change.credit, change.lower)
        # One ACK (and one REPLY) message per flush, however many results.
        for chunk in _chunks(acks, wire.MAX_ITEMS_PER_MESSAGE):
            self._control(wire.ACK, ids=chunk)
        for chunk in _chunks(replies, wire.MAX_ITEMS_PER_MESSAGE):
            self._send(codec.pack_items(wire.REPLY, chunk))
        for lease_ms, ids in extends.items():
            self._control(wire.EXTEND, ids=ids, lease_ms=lease_ms)
