# SPDX-License-Identifier: MIT
"""Real OS threads, locks and queues, even when gevent has monkey-patched the process.

The worker's I/O thread and handler threads must be real threads: a handler
that burns CPU inside a greenlet would starve the heartbeats. gevent patches
`threading`, `_thread` and `queue.SimpleQueue`, so we take the originals from
`gevent.monkey.get_original` when (and only when) gevent is loaded and patched.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any


def gevent_patched(module: str = "socket") -> bool:
    """True when gevent has monkey-patched `module`. Never imports gevent itself."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched(module))


def _original(module: str, name: str) -> Any:
    if gevent_patched(module):
        return sys.modules["gevent.monkey"].get_original(module, name)
    return getattr(sys.modules.get(module) or __import__(module), name)


def allocate_lock() -> Any:
    return _original("_thread", "allocate_lock")()


def get_ident() -> int:
    return _original("_thread", "get_ident")()


def real_get_ident() -> Callable[[], int]:
    """The OS thread's get_ident itself, for callers on a hot path (the lookup costs more than the call)."""
    return _original("_thread", "get_ident")


def simple_queue() -> queue.SimpleQueue:
    """An unbounded FIFO that blocks the calling OS thread, not a greenlet."""
    return _original("queue", "SimpleQueue")()


def monotonic_sleep(seconds: float) -> None:
    """Sleep the OS thread (time.sleep may be gevent's when patched)."""
    _original("time", "sleep")(seconds)


class RealEvent:
    """threading.Event's set/is_set/wait on an unpatched lock.

    `_gate` is held while the event is clear; a waiter acquires and at once
    releases it, so every waiter passes once set() releases it.
    """

    def __init__(self) -> None:
        self._flag = False
        self._mutex = allocate_lock()
        self._gate = allocate_lock()
        self._gate.acquire()

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        with self._mutex:
            if not self._flag:
                self._flag = True
                self._gate.release()

    def wait(self, timeout: float | None = None) -> bool:
        if self._flag:
            return True
        if self._gate.acquire(True, -1 if timeout is None else max(timeout, 0.0)):
            self._gate.release()
        return self._flag


def make_event() -> Any:
    """A threading.Event, or a RealEvent when gevent patched threading."""
    return RealEvent() if gevent_patched("threading") else threading.Event()


class LazyEvent:
    """An Event whose lock and condition exist only once somebody waits on it.

    Every request carries one for cancellation, and almost none is ever
    waited on: is_set() and set() are a plain flag, wait() makes the real
    event on demand (a threading.Event per request cost a tenth of a worker).
    """

    __slots__ = ("_flag", "_event")
    _creating: Any = None  # a real lock (_thread.LockType), made at first use

    def __init__(self) -> None:
        self._flag = False
        self._event: Any = None

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        self._flag = True
        event = self._event
        if event is not None:
            event.set()

    def wait(self, timeout: float | None = None) -> bool:
        if self._flag:
            return True
        if self._event is None:
            if LazyEvent._creating is None:
                LazyEvent._creating = allocate_lock()
            with LazyEvent._creating:
                if self._event is None:
                    self._event = make_event()
        if self._flag:  # set() ran before it could see the event: pass it on
            self._event.set()
        return bool(self._event.wait(timeout))


class RealThread:
    """A started OS thread with join(timeout); daemon-like (never blocks exit)."""

    def __init__(self, target: Callable[[], None], name: str) -> None:
        self.name = name
        self._done = RealEvent()

        def main() -> None:
            try:
                target()
            finally:
                self._done.set()

        _original("_thread", "start_new_thread")(main, ())

    def join(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def is_alive(self) -> bool:
        return not self._done.is_set()


def wait_event(event: Any, timeout: float | None) -> bool:
    """Wait in short slices so the main thread still runs signal handlers."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not event.is_set():
        remaining = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
        if remaining <= 0:
            return False
        if gevent_patched("time"):
            # Blocking a real lock here would freeze the hub and every greenlet.
            time.sleep(remaining)
        else:
            event.wait(remaining)
    return True


__all__ = [
    "RealEvent",
    "RealThread",
    "allocate_lock",
    "gevent_patched",
    "get_ident",
    "make_event",
    "real_get_ident",
    "monotonic_sleep",
    "simple_queue",
    "wait_event",
]
