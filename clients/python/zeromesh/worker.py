# SPDX-License-Identifier: MIT
"""The consumer side: handlers for queues and services, run in real threads or gevent greenlets.

The Worker is the public face: it registers handlers and hands a WorkerSpec to its I/O
side (thread_io.py or green_io.py), which owns the socket and runs the handlers.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import signal
from collections.abc import Callable, Sequence
from typing import Any

import zmq

from zeromesh.protocol import defaults, wire
from zeromesh.protocol.curve_certs import client_curve

from . import endpoints as endpoint_lists
from .credit_split import CreditSplit
from .handlers import Handler, HandlerTable
from .job import DeadLetter, Job
from .liveness import CONNECT_TIMEOUT_S
from .realthreads import allocate_lock, make_event, wait_event
from .thread_io import HandlerThreads, ThreadWorkerIO
from .worker_failure import WorkerFailure
from .worker_messages import CreditChanged
from .worker_session import WorkerSession
from .worker_spec import WorkerSpec

log = logging.getLogger("zeromesh.worker")

__all__ = ["DeadLetter", "Handler", "Job", "Worker"]


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

    `endpoint` may list several brokers (a list, or a comma-separated string): the worker
    then keeps one session with each (READY, heartbeats, reconnection, as with one broker),
    answers each job on the session it came from, and splits its credit between the brokers
    it is registered with (credit_split.py has the rule), so it never holds more than `credit`
    in all. Handlers are shared: `concurrency` holds for the worker as a whole.

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

    `curve_server` / `curve_secret` (else ZEROMESH_CURVE_SERVER / ZEROMESH_CURVE_SECRET; both
    unset: no encryption) are the broker's public key (one, or one per endpoint) and this
    worker's secret certificate, as for Client. A broker that refuses the handshake is logged
    at ERROR once and retried (a key may be added); once every broker has refused it for
    `connect_timeout`, run() raises AuthenticationError. A READY the broker forbids (the key
    lacks the worker role for a name) is logged at ERROR and run() raises ForbiddenError.
    """

    def __init__(
        self,
        endpoint: str | Sequence[str] | None = None,
        concurrency: int = 4,
        credit: int | None = None,
        heartbeat_s: float = defaults.HEARTBEAT_S,
        label: str | None = None,
        *,
        context: zmq.Context | None = None,
        pool: str = "thread",
        kill_on_cancel: bool = True,
        curve_server: str | None = None,
        curve_secret: str | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if pool not in ("thread", "gevent"):
            raise ValueError(f"pool must be 'thread' or 'gevent', not {pool!r}")
        self.pool = pool
        self.kill_on_cancel = kill_on_cancel
        self.endpoints = endpoint_lists.parse(endpoint or os.environ.get("ZEROMESH_BROKER") or defaults.BROKER_ENDPOINT)
        self.endpoint = endpoint_lists.joined(self.endpoints)
        self.curve = client_curve(curve_server, curve_secret, len(self.endpoints))
        self.connect_timeout = connect_timeout
        self.failure = WorkerFailure(len(self.endpoints))
        self.concurrency = concurrency
        self.credit = credit if credit is not None else (concurrency if pool == "gevent" else 4 * concurrency)
        self.heartbeat_s = heartbeat_s
        self.label = label
        self._table = HandlerTable()
        self.handlers = self._table.handlers  # name -> handler
        self.inline = self._table.inline  # names whose handlers run in the I/O thread
        self._own_context = context is None
        self.context: zmq.Context = context if context is not None else zmq.Context()
        self.registered = make_event()  # the broker answered our first READY
        self.done = make_event()  # the I/O side has stopped
        self._io: WorkerSession | None = None  # the first session (the only one with one broker)
        self._sessions: list[WorkerSession] = []
        self._signalled = False

    def handler(self, name: str, *, inline: bool | None = None) -> Callable[[Handler], Handler]:
        """Register fn(job) for queue or service `name`.

        Where it runs (thread pool; under pool="gevent" every handler runs in a greenlet):
        `inline=None`, the default, lets the worker choose. It starts on the handler threads and
        moves to the worker's I/O thread once it has returned within 0.2 ms 50 times in a row,
        sparing two thread hand-offs a job (about a third of a worker's CPU a request, and a
        fifth of a lone request's latency, measured); one run there over 5 ms sends it back to
        the handler threads for good (logged). With concurrency=1 the worker never moves one
        itself: one handler at a time stays true. `inline=True` runs it on the I/O thread
        always, `inline=False` never. While a handler runs on the I/O thread the worker reads nothing
        else, but its heartbeats go on, so a slow one delays this worker's other jobs without
        getting it declared dead (inline_choice.py).
        """
        if not name or len(name.encode()) > wire.MAX_NAME_BYTES:
            raise ValueError(f"a name must be 1..{wire.MAX_NAME_BYTES} bytes")

        def register(fn: Handler) -> Handler:
            self.handlers[name] = fn
            self._table.choice.register(name, self._where(inline))
            for session in self._sessions:
                session.names_changed()  # a later READY replaces the names
            return fn

        return register

    # -- lifetime ----------------------------------------------------------

    def start(self) -> Worker:
        """Run in background threads; returns self."""
        if self._io is not None:
            raise RuntimeError("worker already started")
        if not self.handlers:
            raise ValueError("register at least one handler before starting")
        n = len(self.endpoints)
        spec = WorkerSpec(
            endpoint=self.endpoints[0],
            context=self.context,
            own_context=self._own_context,
            concurrency=self.concurrency,
            credit=self.credit,
            heartbeat_s=self.heartbeat_s,
            label=self.label,
            kill_on_cancel=self.kill_on_cancel,
            handlers=self._table,
            registered=self.registered,
            done=self.done,
            curve=self.curve,
            connect_timeout=self.connect_timeout,
            failure=self.failure,
        )
        if n > 1:
            # One session per broker; the last one to stop says the worker is done (and ends the context).
            done = _AllDone(n, self.done, self.context if self._own_context else None)
            split = CreditSplit(self.credit, n)
            specs = [
                dataclasses.replace(spec, endpoint=endpoint, index=i, split=split, own_context=False, done=done)
                for i, endpoint in enumerate(self.endpoints)
            ]
        else:
            split, specs = None, [spec]
        sessions: list[WorkerSession] = []
        if self.pool == "gevent":
            from .green_io import GreenWorkerIO
            from .green_pool import require_patched

            require_patched()
            # No I/O thread: the hub reads and writes the sockets; a real thread per session keeps its heartbeats.
            # Each session starts at most `concurrency` greenlets; in all they run at most what the
            # worker holds, which the credit split keeps within `credit` (by default `concurrency`).
            sessions = [GreenWorkerIO(s) for s in specs]
            pool = None
        else:
            pool = HandlerThreads(self.concurrency, self._table.run, self._table.choice)
            threads = [ThreadWorkerIO(s, pool) for s in specs]
            pool.sessions = threads
            sessions = list(threads)
        if split is not None:
            for i, session in enumerate(sessions):
                split.attach(i, functools.partial(_give_credit, session))
        self._sessions = sessions
        self._io = sessions[0]
        for session in sessions:
            session.start()
        if pool is not None:
            pool.start()
        return self

    def _where(self, inline: bool | None) -> bool | None:
        """What the handler table is told: gevent pools run every handler in a greenlet, and with
        concurrency=1 the worker never moves one to its I/O thread itself, since that would let a
        second handler run beside one on the handler thread."""
        if self.pool != "thread":
            return False
        if inline is None and self.concurrency == 1:
            return False
        return inline

    def wait_ready(self, timeout: float = 5.0) -> bool:
        """True once the broker has answered this worker's READY (so requests find it)."""
        return wait_event(self.registered, timeout)

    def run(self, grace: float = 10.0) -> None:
        """Serve until stop(); in the main thread, SIGTERM and SIGINT stop it with `grace`.
        Raises AuthenticationError or ForbiddenError when the broker(s) will not have this worker."""
        if self._io is None:
            self.start()
        previous = {}
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                previous[signum] = signal.signal(signum, self._on_signal)
            except ValueError:
                break  # not the main thread: the caller stops us
        try:
            while not wait_event(self.done, 0.2):
                error = self.failure.error()
                if error is not None:
                    # Already logged at ERROR by the session that met it; stop serving, then say why.
                    self.request_stop(0)
                    wait_event(self.done, 5)
                    raise error
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
        """Begin stop() without waiting for it (a worker not started has nothing to stop)."""
        for session in self._sessions:
            session.request_stop(grace)

    def stop(self, grace: float = 10.0) -> None:
        """Take no new work (CREDIT 0), let running handlers finish for up to `grace`
        seconds, then DISCONNECT (the broker hands back unacked jobs) and return."""
        if self._io is None or self.done.is_set():
            return
        self.request_stop(grace)
        if not wait_event(self.done, grace + 5):
            log.warning("worker did not stop within %.1fs", grace + 5)

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _AllDone:
    """The `done` of a worker's sessions: sets the worker's done once each session has set it."""

    def __init__(self, count: int, done: Any, context: zmq.Context | None) -> None:
        self._left = count
        self._done = done
        self._context = context  # terminated once every session has closed its socket
        self._lock = allocate_lock()  # set() comes from real threads, also in a patched process

    def set(self) -> None:
        with self._lock:
            self._left -= 1
            last = self._left == 0
        if last:
            self._done.set()
            if self._context is not None:
                self._context.term()


def _give_credit(session: WorkerSession, credit: int, lower: bool) -> None:
    """The credit split's callback: the session's I/O side sends READY (lower) or CREDIT."""
    session.outbox.put(CreditChanged(credit, lower))
