# SPDX-License-Identifier: MIT
"""Handler threads -> I/O thread: a list under a real lock and an inproc doorbell.

The bell is rung only when the list was empty, so under load one wake-up of
the I/O thread serves many results. The I/O thread must drain the bell before
take()-ing the list; then no result is ever left without a bell after it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Generic, TypeVar

import zmq

from zeromesh.protocol.fastio import NOBLOCK, send_frames

from .realthreads import allocate_lock

_EMPTY = [b""]

T = TypeVar("T")


class ResultList(ABC, Generic[T]):
    """Items for the socket's owner, put from any thread: a list under a real lock.

    `_ring` wakes the owner and is called only when the list was empty, under
    the lock; the owner take()s everything there is, so one wake-up serves every
    item put before it runs.
    """

    def __init__(self) -> None:
        self._items: list[T] = []
        self._lock = allocate_lock()
        self._closed = False

    def put(self, item: T) -> None:
        self.put_many([item])

    def put_many(self, items: list[T]) -> None:
        """Add results; one lock and at most one ring however many."""
        if not items:
            return
        with self._lock:
            if self._closed:
                return
            was_empty = not self._items
            self._items.extend(items)
            if was_empty:
                self._ring()

    def take(self) -> list[T]:
        with self._lock:
            items, self._items = self._items, []
        return items

    @abstractmethod
    def _ring(self) -> None:
        """Wake the owner (called under the lock, only when the list was empty)."""

    @abstractmethod
    def close(self) -> list[T]:
        """Refuse further puts; returns what was never taken."""


class Outbox(ResultList[T]):
    """Thread mode: the I/O thread polls the PULL end of an inproc doorbell."""

    def __init__(self, ctx: zmq.Context, address: str) -> None:
        super().__init__()
        self._ctx = ctx
        self._address = address
        self._bell: zmq.Socket | None = None

    def open(self) -> zmq.Socket:
        """Create both ends (in the I/O thread); returns the PULL end to poll."""
        pull = self._ctx.socket(zmq.PULL)
        pull.setsockopt(zmq.LINGER, 0)
        pull.bind(self._address)
        bell = self._ctx.socket(zmq.PUSH)
        bell.setsockopt(zmq.LINGER, 0)
        bell.setsockopt(zmq.SNDHWM, 1)
        bell.connect(self._address)
        self._bell = bell
        return pull

    def _ring(self) -> None:
        # One PUSH shared by every thread, used only under the lock: the lock is
        # the full memory barrier ZeroMQ asks for when a socket changes threads.
        if self._bell is not None:
            try:
                send_frames(self._bell, _EMPTY, NOBLOCK)
            except zmq.Again:
                pass

    def close(self) -> list[T]:
        """Refuse further puts; returns what was never taken."""
        with self._lock:
            self._closed = True
            if self._bell is not None:
                self._bell.close(linger=0)
                self._bell = None
            items, self._items = self._items, []
        return items
