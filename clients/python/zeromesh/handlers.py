# SPDX-License-Identifier: MIT
"""A worker's handlers by name, and what running one turns into."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from zeromesh.protocol import wire

from .current import enter as enter_handler, leave as leave_handler
from .inline_choice import InlineChoice
from .job import DeadLetter, Job, Retry
from .messages import Reply, to_bytes
from .worker_messages import Answered, Failed, Nacked, Outcome

log = logging.getLogger("zeromesh.worker")

Handler = Callable[[Job], Any]

_MAX_TEXT = 16 * 1024
"""Error messages and tracebacks are cut to this, so an ERROR header stays well under 64 KiB."""


def describe(exc: BaseException) -> str:
    """ "ExcType: message", the form a NACK's error takes."""
    return f"{type(exc).__name__}: {exc}"[:_MAX_TEXT]


class HandlerTable:
    """Queue and service names (one name space) -> handler; `inline` names run in the I/O thread
    (chosen by `choice`: inline_choice.py).

    The Worker registers, the I/O side reads (names for READY, inline) and runs.
    """

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.choice = InlineChoice()
        self.inline: set[str] = self.choice.inline

    def names(self) -> list[str]:
        return sorted(self.handlers)

    def run(self, job: Job) -> Outcome | None:
        """Run the job's handler; None when a job is done (ACK it), else what to answer.

        Never raises: a handler must never kill the thread or greenlet that runs it.
        """
        if job.kind == "request" and job.cancelled.is_set():
            return Failed(job, {"code": wire.E_CANCELLED, "message": "cancelled before it started"})
        fn = self.handlers.get(job.name)
        try:
            if fn is None:
                raise LookupError(f"this worker has no handler for {job.name!r}")
            token = enter_handler(job)  # what the handler sends carries its trace and id (as parent)
            try:
                value = fn(job)
            finally:
                leave_handler(token)
            if job.kind == "job":
                return None
            if job.cancelled.is_set():
                return Failed(job, {"code": wire.E_CANCELLED, "message": "cancelled"})
            if isinstance(value, Reply):
                return Answered(job, value.body, value.headers)
            return Answered(job, to_bytes(value), None)
        except BaseException as exc:
            if job.kind == "request" and job.cancelled.is_set():
                return Failed(job, {"code": wire.E_CANCELLED, "message": f"cancelled ({describe(exc)})"})
            if job.kind == "job":
                retry = not isinstance(exc, DeadLetter)
                log.warning("%r failed%s: %s", job, "" if retry else " (dead letter)", describe(exc))
                retry_in_ms = int(exc.in_ * 1000) if isinstance(exc, Retry) else None
                return Nacked(job, describe(exc), retry, retry_in_ms)
            log.info("%r failed: %s", job, describe(exc))
            return Failed(
                job,
                {
                    "code": wire.E_REMOTE,
                    "name": type(exc).__name__,
                    "message": str(exc)[:_MAX_TEXT] or type(exc).__name__,
                    "traceback": traceback.format_exc()[-_MAX_TEXT:],
                },
            )
