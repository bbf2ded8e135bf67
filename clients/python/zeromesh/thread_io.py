# SPDX-License-Identifier: MIT
"""Worker(pool="thread"): one I/O thread owns the DEALER; handler threads run the handlers.

Liveness must not depend on handlers: READY, receiving, HEARTBEAT every heartbeat_s,
EXTEND, and replacing a lost connection all happen in the I/O thread, while handlers
run in their own threads (a CPU-bound handler only costs the I/O thread a GIL switch
interval, a few ms). The protocol itself is WorkerSession's (worker_session.py).

Handler threads send their answers (with the ACKs of the same chunk) themselves, or leave
them to the thread holding the socket: waking the I/O thread for each was the largest cost
on a lone request's path (ACKs alone still go through it: _hand_over). ZeroMQ sockets are
not thread-safe, so the DEALER is used only under `lock`, a real lock (the memory barrier
ZeroMQ asks for), and never zmq_polled (a poll is a use): the I/O thread polls its ZMQ_FD,
which is edge-triggered and whose edge any use may take. So whoever used the socket last
reads ZMQ_EVENTS before letting go: a handler thread then rings the I/O thread if a message
waits, the I/O thread does not sleep.
"""

from __future__ import annotations

import logging
import os
import time
from time import monotonic
from typing import Any, cast

import zmq
from zmq import EVENTS, POLLIN

from zeromesh.protocol import defaults, wire
from zeromesh.protocol.fastio import NOBLOCK, recv_frames, send_frames

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
    """`count` real threads that take chunks of jobs from a queue and send their outcomes on the
    session (ThreadWorkerIO) each chunk came from: a worker of several brokers has one
    session per broker and one pool for all, so `concurrency` holds for the worker as a whole.

    They read two facts of a chunk's session: its current connection (jobs of an older one are
    skipped: the broker delivers them again) and whether it is stopping.
    """

    def __init__(self, count: int, run: Any) -> None:
        self.count = count
        self.run = run
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
        try:
            while True:
                item = self.work.get()
                if item is None:
                    return
                io, chunk = item
                # Results of a chunk leave together (one lock, one ACK, one REPLY), but
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
                    outcome = run(job)
                    if outcome is None:
                        acked.append(job)
                    else:
                        results.append(outcome)
                    now = monotonic()
                    if now - since >= _RESULT_HOLD_S:
                        if acked:
                            results.append(Acked(acked))
                            acked = []
                        _hand_over(io, results)
                        results = []
                        since = now
                if acked:
                    results.append(Acked(acked))
                if results:
                    _hand_over(io, results)
                if chunk:  # how long a job takes here, smoothed (a racy float write is harmless)
                    per_job = (monotonic() - started) / len(chunk)
                    self._job_cost_s += (per_job - self._job_cost_s) * 0.2
        finally:
            for session in self.sessions:
                session.outbox.put(HANDLER_EXITED)


def _waiting(sock: zmq.Socket) -> bool:
    """A message waits on `sock` (reading ZMQ_EVENTS also re-arms its ZMQ_FD)."""
    return bool(cast(int, sock.get(EVENTS)) & POLLIN)


def _hand_over(io: ThreadWorkerIO, results: list[ToIO]) -> None:
    """Answers, NACKs and ERRORs leave from the handler thread (a caller waits for an answer);
    ACKs alone go through the I/O thread, which merges every handler thread's into one ACK
    (sent from the handler threads, more and smaller ACKs measured slower pushes)."""
    if len(results) == 1 and type(results[0]) is Acked:
        io.outbox.put_many(results)
    else:
        io.send_results(results)


class ThreadWorkerIO(WorkerSession):
    """A session's I/O thread, and send_results() for its handler threads.

    `lock` owns the DEALER and the session's state: `sock`, `held`, `connection`, the
    credit split's reports and the message ids are read and changed only under it. The
    I/O thread holds it for all of each round and lets go only while it waits in poll;
    a handler thread holds it while it flushes its results.

    `pool`: the handler threads, shared by the worker's sessions (one per broker); the
    Worker starts it once every session has started.
    """

    outbox: Outbox[ToIO]

    def __init__(self, spec: WorkerSpec, pool: HandlerThreads) -> None:
        super().__init__(spec)
        self.outbox = Outbox(spec.context, f"inproc://zeromesh-worker-{id(self):x}-{os.urandom(4).hex()}")
        self.poller = zmq.Poller()
        self.lock = allocate_lock()
        self.sock_fd: int | None = None  # the DEALER's ZMQ_FD, in the poller instead of the socket
        self.unchecked = False  # the socket was used since ZMQ_EVENTS was last read (under the lock)
        self.results: list[ToIO] = []  # handler threads' results for the lock's holder to send
        self.results_lock = allocate_lock()
        self.pool = pool
        self.exited = 0
        self.inline_results: list[ToIO] = []  # from handlers run here (Worker.handler(inline=True))
        self.to_dispatch: list[list[Job]] = []  # for the handler threads once this round ends
        self._io_ready = make_event()

    def start(self) -> None:
        """Start the I/O thread and wait until it has connected (the Worker then starts the handler threads)."""
        RealThread(self._io_main, f"zeromesh-worker-io-{self.spec.index}")
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
            self.spec.done.set()
            if self.spec.own_context:
                # Handler threads may still be finishing a handler past grace; they
                # hold no sockets, so terminating the context cannot block on them.
                self.spec.context.term()

    # -- socket ------------------------------------------------------------

    def _send(self, frames: list[bytes]) -> None:
        """Under `lock` (the I/O thread's round, or send_results)."""
        assert self.sock is not None
        self.unchecked = True
        try:
            send_frames(self.sock, frames, NOBLOCK)
        except zmq.Again:
            # The broker has been unreachable long enough to fill the HWM; it
            # will redeliver what we could not answer, so dropping is safe.
            log.warning("send queue to %s full; dropping a message", self.spec.endpoint)

    def send_results(self, results: list[ToIO]) -> None:
        """A handler thread's results: sent from this thread if the lock is free, else left to
        whoever holds it, who sends them with its own before it sleeps (so the results of threads
        finishing together still leave as one ACK and one REPLY). _flush drops those of a
        connection left since (`connection` is checked under the lock: never sent on the new one).

        Nothing is left behind: results are added before the lock is tried, and every holder
        looks for results after letting go (here, and in run() before it polls)."""
        with self.results_lock:
            self.results.extend(results)
        lock = self.lock
        while self.results and lock.acquire(False):
            try:
                pending = self._take_results()
                if self.sock is None:
                    continue  # stopped: DISCONNECT has handed these back to the broker
                self._flush(pending, monotonic())
                if self.unchecked:
                    self.unchecked = False
                    if _waiting(self.sock):
                        self.outbox.wake()  # our send took the fd's edge for a message now waiting
            finally:
                lock.release()

    def _take_results(self) -> list[ToIO]:
        with self.results_lock:
            pending, self.results = self.results, []
        return pending

    def _replace_socket(self) -> None:
        if self.watch is not None:
            self.poller.unregister(self.watch.monitor)
            self._close_watch()  # before the socket: a lingering socket keeps sending its monitor events
        if self.sock is not None:
            self.poller.unregister(self.sock_fd)
            self.sock.close(linger=LEAVE_LINGER_MS)
        self.sock = self._open_socket()
        self.sock_fd = cast(int, self.sock.get(zmq.FD))
        self.poller.register(self.sock_fd, zmq.POLLIN)
        self.unchecked = True
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
        lock = self.lock
        lock.acquire()
        try:
            now = time.monotonic()
            self._connect(now)
            self.next_heartbeat = now + spec.heartbeat_s
            self._io_ready.set()
            liveness = spec.heartbeat_s * defaults.HEARTBEAT_LIVENESS
            more = False  # a message is waiting on the DEALER: poll without sleeping
            while True:
                now = time.monotonic()
                wake = min(self.next_heartbeat, self.last_recv + liveness, self.stop_deadline)
                if self.refused_since is not None:  # a refusal is reported once it has lasted connect_timeout
                    wake = min(wake, max(now + 0.05, self.refused_since + spec.connect_timeout))
                if self.unchecked:  # our own sends may have taken the fd's edge
                    self.unchecked = False
                    more = more or _waiting(self.sock)  # type: ignore[arg-type]
                timeout = 0 if more else max(0, int((wake - now) * 1000)) + 1
                # Hand jobs over as the lock is let go, not earlier: a handler thread that
                # finished before the round did would only wait for the lock (a futex pair).
                for jobs in self.to_dispatch:
                    self.pool.dispatch(self, jobs)
                self.to_dispatch = []
                lock.release()  # handler threads send while we wait
                if self.results:
                    timeout = 0  # left to us while we held the lock: send them now
                try:
                    events = dict(self.poller.poll(timeout))
                finally:
                    lock.acquire()
                if pull in events:
                    while True:  # drain the bell before take(): see outbox.py
                        try:
                            pull.recv(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                before, now = now, time.monotonic()
                if now - before > liveness + spec.heartbeat_s and not self.stopping:
                    # poll() was due back within a heartbeat: this process was frozen
                    # (SIGSTOP, a paused VM) long enough for the broker to drop us, and
                    # it answers a stranger's HEARTBEAT without saying so. Start afresh.
                    self._connect(now, f"this process stalled for {now - before:.1f}s")
                more = self._read(now)  # whatever woke us: reading ZMQ_EVENTS is what re-arms the fd
                if self.refused_since is not None or (self.watch is not None and self.watch.monitor in events):
                    self._check_handshake(now)
                results = self.outbox.take()
                if self.results:
                    results += self._take_results()
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
            lock.release()
            self.poller.unregister(pull)
            pull.close(linger=0)

    def _finish(self) -> None:
        leftover = self.inline_results + self.outbox.close() + self._take_results()
        self.inline_results = []
        self._flush(leftover, time.monotonic())
        unfinished = len(self.held)
        self._control(wire.DISCONNECT, reason="stopping")
        assert self.sock is not None
        if self.watch is not None:
            self.poller.unregister(self.watch.monitor)
        self._close_watch()
        self.poller.unregister(self.sock_fd)
        self.sock.close(linger=LEAVE_LINGER_MS)
        self.sock = None  # handler threads finishing later drop their results (send_results)
        log.info("worker stopped; %d job(s) handed back to the broker", unfinished)

    def _read(self, now: float) -> bool:
        """Handle what waits on the DEALER; True when DRAIN_MAX messages were read and more may wait."""
        assert self.sock is not None
        sock = self.sock
        for _ in range(DRAIN_MAX):
            try:
                frames = recv_frames(sock, NOBLOCK)
            except zmq.Again:
                # This recv, after every send of the _take()s before it, processed the socket's
                # commands: the fd signals the next message (a later send sets `unchecked`).
                self.unchecked = False
                return False
            self.last_recv = now
            self._take(frames, now)
            if self.sock is not sock:
                return False  # reconnected: the rest of the old socket's messages are moot
        return True

    # -- handlers ----------------------------------------------------------

    def _dispatch(self, jobs: list[Job]) -> None:
        """Run inline handlers' jobs now, the rest in the handler threads (handed over as the round ends)."""
        table = self.spec.handlers
        inline = table.inline
        if inline:
            pooled = []
            acked = []
            for job in jobs:
                if job.name in inline:
                    outcome: Outcome | None = table.run(job)
                    if outcome is None:
                        acked.append(job)
                    else:
                        self.inline_results.append(outcome)
                else:
                    pooled.append(job)
            if acked:
                self.inline_results.append(Acked(acked))
            jobs = pooled
        if jobs:
            self.to_dispatch.append(jobs)

    def _handler_exited(self) -> None:
        self.exited += 1

    def _begin_stop(self, now: float, grace: float) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.stop_deadline = now + grace
        self._control(wire.CREDIT, credit=0)
        self.pool.stop()
