# SPDX-License-Identifier: MIT
"""Worker(pool="gevent"): handlers as greenlets in the hub of the thread that started the worker.

The I/O thread stays a real OS thread (heartbeats never wait for a greenlet to
yield). It hands jobs over with put(), which may be called from any thread:
a list under a real lock plus an async watcher of the hub's loop, the one
thread-safe way to wake a gevent hub. In the hub, a feeder greenlet spawns
each job into a Pool of `concurrency` greenlets; results go back through the
worker's Outbox exactly as from handler threads.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .job import Job
from .realthreads import allocate_lock, gevent_patched

log = logging.getLogger("zeromesh.worker")

NOT_PATCHED = ("Worker(pool='gevent') needs a gevent-patched process: call gevent.monkey.patch_all() "
               "first thing in the program's entry point, before importing anything else "
               "(handlers would otherwise block the whole hub on ordinary I/O)")


def require_patched() -> None:
    """Fail fast, as bottle's GeventServer does, rather than run greenlets that never yield."""
    missing = [m for m in ("socket", "time", "threading", "select") if not gevent_patched(m)]
    if missing:
        raise RuntimeError(f"{NOT_PATCHED}; not patched: {', '.join(missing)}")


class GreenCancelled(Exception):
    """Thrown into a handler greenlet when the broker cancels its request."""


class GreenRunner:
    """The worker's `work` sink in gevent mode: put(job) from the I/O thread, run in a Pool.

    put(None) ends it: no new job starts (queued requests still run, as in
    thread mode, queued jobs are handed back by DISCONNECT), running greenlets
    finish, then ("exited",) goes to the outbox once.
    """

    def __init__(self, concurrency: int, run: Callable[[Job], tuple], send: Callable[[tuple], None],
                 stopping: Any, kill_on_cancel: bool = True) -> None:
        import gevent
        import gevent.event
        import gevent.pool

        self._gevent = gevent
        self._run = run
        self._send = send
        self._stopping = stopping
        self._kill_on_cancel = kill_on_cancel
        self._lock = allocate_lock()
        self._items: list[Any] = []
        self.pool = gevent.pool.Pool(concurrency)
        self._running: dict[str, Any] = {}  # job id -> its greenlet
        self._wake = gevent.event.Event()
        self._hub = gevent.get_hub()
        self._async = self._hub.loop.async_()
        self._async.start(self._wake.set)  # runs in the hub: only set an event there
        self._feeder = gevent.spawn(self._feed)

    # -- any thread --------------------------------------------------------

    def put(self, item: Job | None) -> None:
        with self._lock:
            self._items.append(item)
        self._async.send()  # thread-safe; several sends before the hub runs coalesce

    def cancel(self, job: Job) -> None:
        """The broker cancelled a request (any thread): stop its greenlet if it runs."""
        if self._kill_on_cancel:
            self.put(_Cancel(job))

    # -- the hub's thread --------------------------------------------------

    def _feed(self) -> None:
        try:
            while True:
                self._wake.wait()
                self._wake.clear()  # before taking, so a put() after this wakes us again
                with self._lock:
                    items, self._items = self._items, []
                for item in items:
                    if item is None:
                        self.pool.join()
                        return
                    if isinstance(item, _Cancel):
                        greenlet = self._running.get(item.job.id)
                        if greenlet is not None:
                            greenlet.kill(GreenCancelled("cancelled by the broker"), block=False)
                        continue
                    if self._stopping.is_set() and item.kind == "job":
                        continue  # not started: handed back by DISCONNECT
                    self.pool.spawn(self._one, item)  # waits while the pool is full
        except BaseException:
            log.exception("gevent job feeder failed")
            raise
        finally:
            self._async.stop()
            self._async.close()
            self._send(("exited",))

    def _one(self, job: Job) -> None:
        self._running[job.id] = self._gevent.getcurrent()
        try:
            result = self._run(job)
        finally:
            self._running.pop(job.id, None)
        self._send(result)


class _Cancel:
    __slots__ = ("job",)

    def __init__(self, job: Job) -> None:
        self.job = job
