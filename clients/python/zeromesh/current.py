# SPDX-License-Identifier: MIT
"""The message whose handler is running, for trace propagation (SPEC 12.1).

The worker sets it around each handler call; push, push_many and request read it, so a
job or request sent from a handler carries the handler's trace and, as `parent`, the id
of the message it handles. A ContextVar: each thread has its own, and each gevent
greenlet too (greenlet keeps a context per greenlet), so concurrent handlers never see
each other's. A greenlet spawned inside a handler starts with an empty context unless
the code copies it (contextvars.copy_context().run); the render node passes trace and
parent explicitly instead.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

_current: ContextVar[Any] = ContextVar("zeromesh_current", default=None)
"""The Job being handled (anything with `trace` and `id`), or None outside handlers."""

enter = _current.set
"""enter(job) -> a Token for `leave`: a handler for `job` starts. The ContextVar's own methods, bound
once: they run for every job a worker handles, where two Python calls and a tuple a job were
measured at about 7% of a worker's time under push."""

leave = _current.reset


def current() -> tuple[str, str] | None:
    """(trace, message id) of the handler running in this context, or None outside handlers."""
    job = _current.get()
    return None if job is None else (job.trace, job.id)


def trace_fields(trace: str | None, parent: str | None) -> dict[str, str]:
    """The `trace`/`parent` header fields of a message about to be sent: an explicit trace wins
    (with the parent given, if any); else, inside a handler, the handler's trace and id."""
    if trace:
        return {"trace": trace, "parent": parent} if parent else {"trace": trace}
    job = _current.get()
    if job is not None:
        return {"trace": job.trace, "parent": parent or job.id}
    return {"parent": parent} if parent else {}
