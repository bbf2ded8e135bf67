# SPDX-License-Identifier: MIT
"""Worker(pool="thread"): one I/O thread owns the DEALER; handler threads run the handlers.

Liveness must not depend on handlers: READY, receiving, batched ACKs and REPLYs,
HEARTBEAT every heartbeat_s, EXTEND, and replacing a lost connection all happen in
the I/O thread, while handlers run in their own threads (a CPU-bound handler only
costs the I/O thread a GIL switch interval, a few ms). The protocol itself is
WorkerSession's (worker_session.py).
"""

from __future__ import annotations

import logging
import os
import time
from time import monotonic
from typing import Any

import zmq

from zeromesh.protocol import defaults, wire
from zeromesh.protocol.fastio import NOBLOCK, recv_frames_nowait, send_frames

from .inline_choice import InlineChoice
from .job import Job
from .outbox import Outbox
from .realthreads import RealThread, allocate_lock, make_event, simple_queue
from .worker_messages import HANDLER_EXITED, Acked, Outcome, ToIO
from .worker_session import DRAIN_MAX, LEAVE_LINGER_MS, WorkerSession
from .worker_spec import WorkerSpec

log = logging.getLogger("zeromesh.worker")

_RESULT_HOLD_S = 0.002
"""A handler thread sends its results on at least this often while working through a chunk."""

_SPREAD_ABOVE_S = 0.0005
"""A batch of jobs whose expected run time is below this goes to one handler thread, not split."""


class HandlerThreads:
    """`count` real threads that take chunks of jobs from a queue and put outcomes in the outbox
    of the session (ThreadWorkerIO) each chunk came from: a worker of several brokers has one
    session per broker and one pool for all, so `concurrency` holds for the worker as a whole.

    They read two facts of a chunk's session: its current connection (jobs of an older one are
    skipped: the broker delivers them again) and whether it is stopping.
    """

    def __init__(self, count: int, run: Any, choice: InlineChoice | None = None) -> None:
        self.count = count
        self.run = run
        self.choice = choice if choice is not None else InlineChoice()  # told how long watched handlers take
        self.sessions: list[ThreadWorkerIO] = []  # told when a handler thread ends
        self.work = simple_queue()  # (session, list of jobs), or None to stop a thread
        self._job_cost_s = 0.001  # a handler's time per job, learned; until then assume slow ones
        self._stopped = False

    def start(self) -> None:
        for i in range(self.count):
            RealThread(self._handler_main, f"zeromesh-handler-{i}")

    def dispatch(self, io: ThreadWorkerIO, jobs: list[Job]) -> None:
        """Hand jobs over in chunks, one per handler thread at most: a queue hand-off per job
        costs a GIL round trip between threads, and one message from the broker often carries
        a hundred jobs."""
        n = len(jobs)
        if n * self._job_cost_s < _SPREAD_ABOVE_S:
            # Quick handlers: one thread runs the lot sooner than waking several would.
            self.work.put((io, jobs))
            return
        size = -(-n // self.count)
        for i in range(0, n, size):
            self.work.put((io, jobs[i : i + size]))

    def stop(self) -> None:
        """Each thread ends after the chunk it is on (HandlerExited tells every session's I/O thread).
        The first session to stop stops the pool: a worker stops all its sessions together."""
        if self._stopped:
            return
        self._stopped = True
        for _ in range(self.count):
            self.work.put(None)

    def _handler_main(self) -> None:
        run = self.run
        watched = self.choice.watched
        ran_pooled = self.choice.ran_pooled
        try:
            while True:
                item = self.work.get()
                if item is None:
                    return
                io, chunk = item
                outbox = io.outbox
                # Results of a chunk go to the I/O thread together (one lock, one ring), but
                # never held back longer than _RESULT_HOLD_S behind a slow handler.
                # Jobs done travel as one Acked record: the common case costs nothing per job.
                results: list[ToIO] = []
                acked: list[Job] = []
                since = started = monotonic()
                for job in chunk:
                    if job.connection != io.connection:
                        continue  # came on a connection since replaced: the broker delivers it again
                    if io.stopping and job.kind == "job":
                        continue  # not started: handed back by DISCONNECT
                    before = monotonic()
                    outcome = run(job)
                    now = monotonic()
                    if watched and job.name in watched:
                        ran_pooled(job.name, now - before)
                    if outcome is None:
                        acked.append(job)
                    else:
                        results.append(outcome)
                    if now - since >= _RESULT_HOLD_S:
                        if acked:
                            results.append(Acked(acked))
                            acked = []
                        outbox.put_many(results)
                        results = []
                        since = now
                if acked:
                    results.append(Acked(acked))
                outbox.put_many(results)
                if chunk:  # how long a job takes here, smoothed (a racy float write is harmless)
                    per_job = (monotonic() - started) / len(chunk)
                    self._job_cost_s += (per_job - self._job_cost_s) * 0.2
        finally:
            for session in self.sessions:
                session.outbox.put(HANDLER_EXITED)


class ThreadWorkerIO(WorkerSession):
    """A session's I/O thread: the only code that touches the session's DEALER.

    `pool`: the handler threads, shared by the worker's sessions (one per broker); the
    Worker starts it once every session has started.
    """

    outbox: Outbox[ToIO]

    def __init__(self, spec: WorkerSpec, pool: HandlerThreads) -> None:
        super().__init__(spec)
        self.outbox = Outbox(spec.context, f"inproc://zeromesh-worker-{id(self):x}-{os.urandom(4).hex()}")
        self.poller = zmq.Poller()
        self.pool = pool
        self.exited = 0
        self.inline_results: list[ToIO] = []  # from handlers run here (inline_choice.py)
        self._io_ready = make_event()
        # While handlers run on this thread, the cover thread (_cover_main) may use the socket for
        # HEARTBEATs: `_inline_since` (when the run began; None otherwise) changes under this lock.
        self._cover_lock = allocate_lock()
        self._inline_since: float | None = None
        self._io_ended = make_event()  # ends the cover's thread

    def start(self) -> None:
        """Start the I/O thread and wait until it has connected (the Worker then starts the handler threads)."""
        RealThread(self._io_main, f"zeromesh-worker-io-{self.spec.index}")
        RealThread(self._cover_main, f"zeromesh-worker-cover-{self.spec.index}")
        if not self._io_ready.wait(10):
            raise RuntimeError("worker I/O thread did not start")

    def _io_main(self) -> None:
        try:
            self.run()
        except Exception:
            log.exception("worker I/O thread failed")
        finally:
            self.stopping = True
            self._io_ready.set()
            self._io_ended.set()
            self.spec.done.set()
            if self.spec.own_context:
                # Handler threads may still be finishing a handler past grace; they
                # hold no sockets, so terminating the context cannot block on them.
                self.spec.context.term()

    # -- socket ------------------------------------------------------------

    def _send(self, frames: list[bytes]) -> None:
        assert self.sock is not None
        try:
            send_frames(self.sock, frames, NOBLOCK)
        except zmq.Again:
            # The broker has been unreachable long enough to fill the HWM; it
            # will redeliver what we could not answer, so dropping is safe.
            log.warning("send queue to %s full; dropping a message", self.spec.endpoint)

    def _replace_socket(self) -> None:
        if self.watch is not None:
            self.poller.unregister(self.watch.monitor)
            self._close_watch()  # before the socket: a lingering socket keeps sending its monitor events
        if self.sock is not None:
            self.poller.unregister(self.sock)
            self.sock.close(linger=LEAVE_LINGER_MS)
        self.sock = self._open_socket()
        self.poller.register(self.sock, zmq.POLLIN)
        assert self.watch is not None  # made with the socket
        self.poller.register(self.watch.monitor, zmq.POLLIN)  # handshake outcomes wake the loop

    def _abandon_waiting(self) -> None:
        """Jobs waiting in the work queue are skipped there (HandlerThreads compares connections)."""

    def _cancel(self, job: Job) -> None:
        """A thread cannot be stopped: a long handler may look at job.cancelled."""

    # -- main loop ---------------------------------------------------------

    def run(self) -> None:
        spec = self.spec
        pull = self.outbox.open()
        self.poller.register(pull, zmq.POLLIN)
        now = time.monotonic()
        self._connect(now)
        self.next_heartbeat = now + spec.heartbeat_s
        self._io_ready.set()
        liveness = spec.heartbeat_s * defaults.HEARTBEAT_LIVENESS
        try:
            while True:
                now = time.monotonic()
                wake = min(self.next_heartbeat, self.last_recv + liveness, self.stop_deadline)
                if self.refused_since is not None:  # a refusal is reported once it has lasted connect_timeout
                    wake = min(wake, max(now + 0.05, self.refused_since + spec.connect_timeout))
                events = dict(self.poller.poll(max(0, int((wake - now) * 1000)) + 1))
                if pull in events:
                    while recv_frames_nowait(pull) is not None:  # drain the bell before take(): see outbox.py
                        pass
                before, now = now, time.monotonic()
                if now - before > liveness + spec.heartbeat_s and not self.stopping:
                    # poll() was due back within a heartbeat: this process was frozen
                    # (SIGSTOP, a paused VM) long enough for the broker to drop us, and
                    # it answers a stranger's HEARTBEAT without saying so. Start afresh.
                    self._connect(now, f"this process stalled for {now - before:.1f}s")
                if self.sock in events:
                    self._read(now)
                if self.refused_since is not None or (self.watch is not None and self.watch.monitor in events):
                    self._check_handshake(now)
                results = self.outbox.take()
                if self.inline_results:
                    results = self.inline_results + results
                    self.inline_results = []
                self._flush(results, now)
                if self.stopping and (self.exited >= self.pool.count or now >= self.stop_deadline):
                    break
                if now >= self.next_heartbeat:
                    if self.registered:
                        self._control(wire.HEARTBEAT)
                    else:
                        self._ready()
                    self.next_heartbeat = now + spec.heartbeat_s
                if now - self.last_recv > liveness:
                    self._connect(now, f"nothing heard for {now - self.last_recv:.1f}s")
            self._finish()
        finally:
            self.poller.unregister(pull)
            pull.close(linger=0)

    def _finish(self) -> None:
        leftover = self.inline_results + self.outbox.close()
        self.inline_results = []
        self._flush(leftover, time.monotonic())
        unfinished = len(self.held)
        self._control(wire.DISCONNECT, reason="stopping")
        assert self.sock is not None
        if self.watch is not None:
            self.poller.unregister(self.watch.monitor)
        self._close_watch()
        self.sock.close(linger=LEAVE_LINGER_MS)
        self.sock = None
        log.info("worker stopped; %d job(s) handed back to the broker", unfinished)

    def _read(self, now: float) -> None:
        assert self.sock is not None
        sock = self.sock
        for _ in range(DRAIN_MAX):
            frames = recv_frames_nowait(sock)
            if frames is None:
                return
            if self.last_recv > now:  # a long run of inline handlers moved it on (_dispatch)
                now = self.last_recv
            self.last_recv = now
            self._take(frames, now)
            if self.sock is not sock:
                return  # reconnected: the rest of the old socket's messages are moot

    # -- handlers ----------------------------------------------------------

    def _dispatch(self, jobs: list[Job]) -> None:
        """Run inline handlers' jobs now, hand the rest to the handler threads."""
        table = self.spec.handlers
        inline = table.inline
        if inline:
            pooled = []
            acked = []
            ran_inline = table.choice.ran_inline
            with self._cover_lock:
                self._inline_since = started = before = monotonic()
            try:
                for job in jobs:
                    if job.name in inline:
                        outcome: Outcome | None = table.run(job)
                        now = monotonic()
                        ran_inline(job.name, now - before)
                        before = now
                        if outcome is None:
                            acked.append(job)
                        else:
                            self.inline_results.append(outcome)
                    else:
                        pooled.append(job)
            finally:
                with self._cover_lock:
                    self._inline_since = None
            if before - started > self.spec.heartbeat_s:
                # The broker's messages waited in the socket meanwhile: its silence is ours, not its.
                self.last_recv = max(self.last_recv, before)
            if acked:
                self.inline_results.append(Acked(acked))
            jobs = pooled
        if jobs:
            self.pool.dispatch(self, jobs)

    def _cover_main(self) -> None:
        """The cover thread: while handlers run on the I/O thread for more than half a heartbeat
        interval, send the worker's HEARTBEATs from here, so that the broker does not take a
        worker busy with a slow inline handler for a dead one. The socket is the I/O thread's
        except while `_inline_since` is set, which changes only under `_cover_lock`."""
        spec = self.spec
        half = spec.heartbeat_s / 2
        last_beat = 0.0
        while not self._io_ended.wait(half):
            with self._cover_lock:
                since = self._inline_since
                if since is None or self.sock is None or not self.registered or self.stopping:
                    continue
                now = monotonic()
                if now - since >= half and now - last_beat >= half:
                    self._control(wire.HEARTBEAT)
                    last_beat = now

    def _handler_exited(self) -> None:
        self.exited += 1

    def _begin_stop(self, now: float, grace: float) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.stop_deadline = now + grace
        self._control(wire.CREDIT, credit=0)
        self.pool.stop()
