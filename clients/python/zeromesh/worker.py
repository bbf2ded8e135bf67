# SPDX-License-Identifier: MIT
"""The consumer side: handlers for queues and services, run in real threads or gevent greenlets."""
from __future__ import annotations

import logging
import os
import signal
import traceback
from time import monotonic
from collections.abc import Callable
from typing import Any

import zmq

from zeromesh.protocol import defaults, wire

from .job import DeadLetter, Job
from .messages import Reply, to_bytes
from .outbox import Outbox
from .realthreads import RealThread, make_event, simple_queue, wait_event
from .worker_io import WorkerIO

log = logging.getLogger("zeromesh.worker")

Handler = Callable[[Job], Any]

_RESULT_HOLD_S = 0.002
"""A handler thread sends its results on at least this often while working through a chunk."""

_SPREAD_ABOVE_S = 0.0005
"""A batch of jobs whose expected run time is below this goes to one handler thread, not split."""

_MAX_TEXT = 16 * 1024
"""Error messages and tracebacks are cut to this, so an ERROR header stays well under 64 KiB."""


def describe(exc: BaseException) -> str:
    """"ExcType: message", the form a NACK's error takes."""
    return f"{type(exc).__name__}: {exc}"[:_MAX_TEXT]


class Worker:
    """Serves queues and services by name (one name space) with `concurrency` handlers at once.

        worker = Worker()

        @worker.handler("resize")
        def resize(job): ...

        worker.run()

    `endpoint` None means ZEROMESH_BROKER, else the default (only the
    constructor reads the environment). `credit` (default 4 * concurrency) is
    how many jobs and requests the broker may have outstanding on this worker,
    so it pipelines a few per handler thread.

    `pool="thread"` (the default) runs handlers in `concurrency` real threads.
    `pool="gevent"` runs each handler as a greenlet in the gevent hub of the
    thread that calls start() (or run()), at most `concurrency` at once; the
    process must be monkey-patched first (start() raises RuntimeError if not),
    and that thread must let its hub run (run() does). Credit then defaults to
    `concurrency`: a greenlet starts at once, so there is nothing to pipeline.
    A cancelled request's greenlet is killed (unless `kill_on_cancel=False`).
    In thread mode one I/O thread owns the socket; in gevent mode the hub reads
    and writes it (green_io.py). Heartbeats come from a real OS thread in both,
    so a handler that never yields cannot get the worker declared dead.
    """

    def __init__(self, endpoint: str | None = None, concurrency: int = 4, credit: int | None = None,
                 heartbeat_s: float = defaults.HEARTBEAT_S, label: str | None = None, *,
                 context: zmq.Context | None = None, pool: str = "thread", kill_on_cancel: bool = True) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if pool not in ("thread", "gevent"):
            raise ValueError(f"pool must be 'thread' or 'gevent', not {pool!r}")
        self.pool = pool
        self.kill_on_cancel = kill_on_cancel
        self.endpoint = endpoint or os.environ.get("ZEROMESH_BROKER") or defaults.BROKER_ENDPOINT
        self.concurrency = concurrency
        self.credit = credit if credit is not None else (concurrency if pool == "gevent" else 4 * concurrency)
        self.heartbeat_s = heartbeat_s
        self.label = label
        self.handlers: dict[str, Handler] = {}
        self.inline: set[str] = set()  # names whose handlers run in the I/O thread
        self._own_context = context is None
        self.context: zmq.Context = context if context is not None else zmq.Context()
        self.outbox = Outbox(self.context, f"inproc://zeromesh-worker-{id(self):x}-{os.urandom(4).hex()}")
        self.work: Any = simple_queue()  # Job, or None to stop a handler thread (the GreenWorkerIO in gevent mode)
        self.runners = concurrency  # how many ("exited",) the I/O thread waits for when stopping
        self.stopping = make_event()
        self.io_ready = make_event()
        self.registered = make_event()  # the broker answered our first READY
        # Which connection to the broker is current: the I/O side counts up each time it replaces one
        # (Job.connection says where a job came from; handler threads skip jobs of an old one).
        self.connection = 0
        self.done = make_event()
        self._io_thread: RealThread | None = None
        self._threads: list[RealThread] = []
        self._signalled = False
        self._job_cost_s = 0.001  # a handler's time per job, learned; until then assume slow ones

    def handler(self, name: str, *, inline: bool = False) -> Callable[[Handler], Handler]:
        """Register fn(job) for queue or service `name`.

        `inline=True` runs fn in the worker's I/O thread as each job or request
        arrives, sparing two thread hand-offs (about a third of a worker's CPU per
        request, measured). Only for handlers that return within a few
        milliseconds and never block: while one runs, this worker neither reads
        nor heartbeats, so a slow inline handler can get it declared dead and its
        work sent elsewhere. Thread pool only; under pool="gevent" it is ignored.
        """
        if not name or len(name.encode()) > wire.MAX_NAME_BYTES:
            raise ValueError(f"a name must be 1..{wire.MAX_NAME_BYTES} bytes")

        def register(fn: Handler) -> Handler:
            self.handlers[name] = fn
            if inline and self.pool == "thread":
                self.inline.add(name)
            else:
                self.inline.discard(name)
            if self._io_thread is not None:
                self.outbox.put(("ready",))  # a later READY replaces the names
            return fn

        return register

    # -- lifetime ----------------------------------------------------------

    def start(self) -> Worker:
        """Run in background threads; returns self."""
        if self._io_thread is not None:
            raise RuntimeError("worker already started")
        if not self.handlers:
            raise ValueError("register at least one handler before starting")
        if self.pool == "gevent":
            from .green_io import GreenWorkerIO
            from .green_pool import require_patched

            require_patched()
            # No I/O thread: the hub reads and writes the socket; a real thread keeps the heartbeats.
            io = GreenWorkerIO(self)
            io.start()
            self._io_thread = io.beat_thread
            return self
        self._io_thread = RealThread(self._io_main, "zeromesh-worker-io")
        if not self.io_ready.wait(10):
            raise RuntimeError("worker I/O thread did not start")
        self._threads = [RealThread(self._handler_main, f"zeromesh-handler-{i}") for i in range(self.concurrency)]
        return self

    def wait_ready(self, timeout: float = 5.0) -> bool:
        """True once the broker has answered this worker's READY (so requests find it)."""
        return wait_event(self.registered, timeout)

    def _io_main(self) -> None:
        try:
            WorkerIO(self).run()
        except Exception:
            log.exception("worker I/O thread failed")
        finally:
            self.stopping.set()
            self.io_ready.set()
            self.done.set()
            if self._own_context:
                # Handler threads may still be finishing a handler past grace; they
                # hold no sockets, so terminating the context cannot block on them.
                self.context.term()

    def run(self, grace: float = 10.0) -> None:
        """Serve until stop(); in the main thread, SIGTERM and SIGINT stop it with `grace`."""
        if self._io_thread is None:
            self.start()
        previous = {}
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                previous[signum] = signal.signal(signum, self._on_signal)
            except ValueError:
                break  # not the main thread: the caller stops us
        try:
            while not wait_event(self.done, 0.2):
                if self._signalled:
                    self._signalled = False
                    log.info("signalled: stopping (grace %gs)", grace)
                    self.request_stop(grace)
        finally:
            for signum, old in previous.items():
                signal.signal(signum, old)

    def _on_signal(self, signum: int, frame: Any) -> None:
        # Only set a flag: the handler may interrupt this thread anywhere (even inside logging).
        self._signalled = True

    def request_stop(self, grace: float = 10.0) -> None:
        """Begin stop() without waiting for it."""
        self.outbox.put(("stop", grace))

    def stop(self, grace: float = 10.0) -> None:
        """Take no new work (CREDIT 0), let running handlers finish for up to `grace`
        seconds, then DISCONNECT (the broker hands back unacked jobs) and return."""
        if self._io_thread is None or self.done.is_set():
            return
        self.request_stop(grace)
        if not wait_event(self.done, grace + 5):
            log.warning("worker did not stop within %.1fs", grace + 5)

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- handler threads ---------------------------------------------------

    def dispatch(self, jobs: list[Job]) -> None:
        """From the I/O thread: hand jobs to the handlers.

        Thread mode hands them over in chunks, one per handler thread at most:
        a queue hand-off per job costs a GIL round trip between threads, and
        one message from the broker often carries a hundred jobs.
        """
        n = len(jobs)
        if n * self._job_cost_s < _SPREAD_ABOVE_S:
            # Quick handlers: one thread runs the lot sooner than waking several would.
            self.work.put(jobs)
            return
        size = -(-n // self.concurrency)
        for i in range(0, n, size):
            self.work.put(jobs[i:i + size])

    def _handler_main(self) -> None:
        try:
            while True:
                chunk = self.work.get()
                if chunk is None:
                    return
                # Results of a chunk go to the I/O thread together (one lock, one ring), but
                # never held back longer than _RESULT_HOLD_S behind a slow handler.
                # Plain acks travel as one ("acks", jobs) entry: the common case costs no tuple per job.
                results: list[tuple] = []
                acked: list[Job] = []
                since = started = monotonic()
                for job in chunk:
                    if job.connection != self.connection:
                        continue  # came on a connection since replaced: the broker delivers it again
                    if self.stopping.is_set() and job.kind == "job":
                        continue  # not started: handed back by DISCONNECT
                    result = self._run(job)
                    if result[0] == "ack":
                        acked.append(job)
                    else:
                        results.append(result)
                    now = monotonic()
                    if now - since >= _RESULT_HOLD_S:
                        if acked:
                            results.append(("acks", acked))
                            acked = []
                        self.outbox.put_many(results)
                        results = []
                        since = now
                if acked:
                    results.append(("acks", acked))
                self.outbox.put_many(results)
                if chunk:  # how long a job takes here, smoothed (a racy float write is harmless)
                    per_job = (monotonic() - started) / len(chunk)
                    self._job_cost_s += (per_job - self._job_cost_s) * 0.2
        finally:
            self.outbox.put(("exited",))

    def _run(self, job: Job) -> tuple:
        if job.kind == "request" and job.cancelled.is_set():
            return ("error", job, {"code": wire.E_CANCELLED, "message": "cancelled before it started"})
        fn = self.handlers.get(job.name)
        try:
            if fn is None:
                raise LookupError(f"this worker has no handler for {job.name!r}")
            value = fn(job)
            if job.kind == "job":
                return ("ack", job)
            if job.cancelled.is_set():
                return ("error", job, {"code": wire.E_CANCELLED, "message": "cancelled"})
            if isinstance(value, Reply):
                return ("reply", job, value.body, value.headers)
            return ("reply", job, to_bytes(value), None)
        except BaseException as exc:  # a handler must never kill its thread
            if job.kind == "request" and job.cancelled.is_set():
                return ("error", job, {"code": wire.E_CANCELLED, "message": f"cancelled ({describe(exc)})"})
            if job.kind == "job":
                retry = not isinstance(exc, DeadLetter)
                log.warning("%r failed%s: %s", job, "" if retry else " (dead letter)", describe(exc))
                return ("nack", job, describe(exc), retry)
            log.info("%r failed: %s", job, describe(exc))
            return ("error", job, {"code": wire.E_REMOTE, "name": type(exc).__name__,
                                   "message": str(exc)[:_MAX_TEXT] or type(exc).__name__,
                                   "traceback": traceback.format_exc()[-_MAX_TEXT:]})
