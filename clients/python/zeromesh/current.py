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

from contextvars import ContextVar, Token

_current: ContextVar[tuple[str, str] | None] = ContextVar("zeromesh_current", default=None)


def enter(trace: str, mid: str) -> Token:
    """A handler for message `mid` of trace `trace` starts; hand the token to `leave`."""
    return _current.set((trace, mid))


def leave(token: Token) -> None:
    _current.reset(token)


def current() -> tuple[str, str] | None:
    """(trace, message id) of the handler running in this context, or None outside handlers."""
    return _current.get()


def trace_fields(trace: str | None, parent: str | None) -> dict[str, str]:
    """The `trace`/`parent` header fields of a message about to be sent: an explicit trace wins
    (with the parent given, if any); else, inside a handler, the handler's trace and id."""
    if trace:
        return {"trace": trace, "parent": parent} if parent else {"trace": trace}
    running = _current.get()
    if running is not None:
        return {"trace": running[0], "parent": parent or running[1]}
    return {"parent": parent} if parent else {}
