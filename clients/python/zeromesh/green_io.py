# SPDX-License-Identifier: MIT
"""Worker(pool="gevent"): the worker's DEALER is read and written in the gevent hub.

Handing every job from an I/O thread to the hub and every result back cost a
render node about 100 us per request (two cross-thread wake-ups and GIL
hand-overs, measured with py-spy and /proc). So in gevent mode the hub owns
the socket, as GreenTransport does for clients: a watcher on its ZMQ_FD
drains it, handlers start as greenlets straight from there, and results are
sent in one batch per loop iteration.

Liveness must still not depend on handlers yielding: a CPU-bound greenlet
blocks the hub. A real OS thread sends HEARTBEAT every heartbeat_s on the
same socket. The socket is only ever used under `sock_lock`, a real lock,
which is the full memory barrier ZeroMQ asks for when a socket changes
threads, and a send from that thread can swallow the ZMQ_FD's edge, so the
beat thread then wakes the hub to drain. The beat thread also notices a
frozen process (SIGSTOP, a paused VM) and asks the hub to start afresh.
Everything else (READY, reading, liveness of the broker, stopping) happens
in the hub, reading before judging: a hub that was busy for a while first
drains the broker's queued heartbeats, then decides whether the broker is gone.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

import zmq

from zeromesh.protocol import codec, defaults, wire
from zeromesh.protocol.fastio import NOBLOCK, recv_frames_nowait, send_frames

from .green_pool import GreenCancelled
from .job import Job
from .outbox import ResultList
from .realthreads import RealEvent, RealThread, allocate_lock, real_get_ident
from .worker_messages import Acked, ToIO
from .worker_session import DRAIN_MAX, LEAVE_LINGER_MS, WorkerSession
from .worker_spec import WorkerSpec

log = logging.getLogger("zeromesh.worker")


class GreenOutbox(ResultList[ToIO]):
    """The Outbox of gevent mode: results and control items for the hub, from any thread.

    From the hub's own thread (greenlets) a ring is a loop callback, so one flush
    serves every result of a loop iteration. From another thread it is the hub
    loop's async watcher, the one thread-safe way to wake a gevent hub.
    """

    def __init__(self, hub: Any, on_items: Any) -> None:
        super().__init__()
        self._loop = hub.loop
        self._get_ident = real_get_ident()  # looked up once: gevent patches it
        self._hub_thread = self._get_ident()
        self._on_items = on_items
        self._async = self._loop.async_()
        self._async.start(on_items)

    def _ring(self) -> None:
        if self._get_ident() == self._hub_thread:
            self._loop.run_callback(self._on_items)
        else:
            self._async.send()

    def close(self) -> list[ToIO]:
        """Refuse further puts; returns what was never taken."""
        with self._lock:
            self._closed = True
            items, self._items = self._items, []
        self._async.stop()
        self._async.close()
        return items


class GreenWorkerIO(WorkerSession):
    """The worker's session with the broker, with the socket in the hub and handlers as greenlets.

    Made in the thread whose hub it uses (the one that calls Worker.start()).
    """

    outbox: GreenOutbox

    def __init__(self, spec: WorkerSpec) -> None:
        super().__init__(spec)
        import gevent

        self._gevent = gevent
        self._hub = gevent.get_hub()
        self._loop = self._hub.loop
        self.outbox = GreenOutbox(self._hub, self._on_outbox)
        self.sock_lock = allocate_lock()
        self.running: dict[str, Any] = {}  # job id -> the greenlet running it
        self.pending: deque[Job] = deque()  # received beyond `concurrency`, not started yet
        self.free = spec.concurrency  # greenlets that may start now
        self._watcher: Any = None
        self._monitor_watcher: Any = None  # the handshake monitor's fd (worker_session.py _check_handshake)
        self._refusal_timer: Any = None
        self._drain_pending = False
        self._timer: Any = None
        self._grace_timer: Any = None
        self._wake = self._loop.async_()  # the beat thread's way to make the hub drain
        self._stalled = 0.0  # set by the beat thread: this process was frozen this long
        self._beat_stop = RealEvent()
        self.beat_thread: RealThread | None = None
        self.finished = False

    # -- lifetime (the hub's thread) ----------------------------------------

    def start(self) -> None:
        """Connect, send READY, start the beat thread; everything after runs from the hub's loop."""
        now = time.monotonic()
        self._wake.start(self._on_wake)
        self._connect(now)
        heartbeat_s = self.spec.heartbeat_s
        self.next_heartbeat = now + heartbeat_s
        self._timer_due = now + heartbeat_s
        self._judge_after = now
        self._timer = self._loop.timer(heartbeat_s, heartbeat_s)
        self._timer.start(self._on_timer)
        self.beat_thread = RealThread(self._beat_main, "zeromesh-worker-beat")

    def _replace_socket(self) -> None:
        """Close the current DEALER (if any) with a short linger, open a new one, and watch it."""
        with self.sock_lock:  # the beat thread sees either socket whole, never one being closed
            if self.sock is not None:
                self._watcher.stop()
                self._watcher.close()
                self._stop_monitor_watcher()
                self._close_watch()  # before the socket: a lingering socket keeps sending its monitor events
                self.sock.close(linger=LEAVE_LINGER_MS)
            self.sock = self._open_socket()
            self._watcher = self._loop.io(self.sock.getsockopt(zmq.FD), 1)
            self._watcher.start(self._drain)
            assert self.watch is not None  # made with the socket
            # Edge-triggered like the socket's: _check_handshake drains the monitor each time.
            self._monitor_watcher = self._loop.io(self.watch.monitor.getsockopt(zmq.FD), 1)
            self._monitor_watcher.start(self._on_handshake)
        self._on_handshake()  # events that came before the watcher started

    def _stop_monitor_watcher(self) -> None:
        if self._monitor_watcher is not None:
            self._monitor_watcher.stop()
            self._monitor_watcher.close()
            self._monitor_watcher = None

    def _on_handshake(self) -> None:
        """In the hub: the monitor has news, or a refusal has lasted connect_timeout."""
        if self.finished:
            return
        self._check_handshake(time.monotonic())
        if self.refused_since is not None and self._refusal_timer is None:
            # Look again once the refusal has lasted connect_timeout (and then it is reported).
            self._refusal_timer = self._loop.timer(self.spec.connect_timeout + 0.01, 0.25)
            self._refusal_timer.start(self._on_handshake)
        elif self.refused_since is None and self._refusal_timer is not None:
            self._refusal_timer.close()
            self._refusal_timer = None

    def _abandon_waiting(self) -> None:
        """Jobs and requests of the old connection waiting for a greenlet never start."""
        self.pending.clear()  # in place: running _serve greenlets hold this deque

    def _send(self, frames: list[bytes]) -> None:
        with self.sock_lock:
            assert self.sock is not None  # made by _connect before anything is sent
            try:
                send_frames(self.sock, frames, NOBLOCK)
            except zmq.Again:
                # The broker has been unreachable long enough to fill the HWM; it
                # will redeliver what we could not answer, so dropping is safe.
                log.warning("send queue to %s full; dropping a message", self.spec.endpoint)
        self._schedule_drain()  # a send may have taken the fd's edge for messages now waiting

    # -- reading -------------------------------------------------------------

    def _schedule_drain(self) -> None:
        if not self._drain_pending:
            self._drain_pending = True
            self._loop.run_callback(self._drain)

    def _drain(self) -> None:
        """Runs in the hub: handle every message waiting (never blocks)."""
        self._drain_pending = False
        if self.finished:
            return
        sock = self.sock
        assert sock is not None  # made by _connect before the hub reads
        messages = []
        with self.sock_lock:
            for _ in range(DRAIN_MAX):
                frames = recv_frames_nowait(sock)
                if frames is None:
                    break
                messages.append(frames)
        if not messages:
            return
        now = time.monotonic()
        self.last_recv = now
        for frames in messages:
            self._take(frames, now)
            if self.sock is not sock:
                return  # reconnected: the rest of the old socket's messages are moot
        if len(messages) == DRAIN_MAX:
            self._schedule_drain()  # more waiting: let the loop run, then carry on

    # -- handlers --------------------------------------------------------------

    def _dispatch(self, jobs: list[Job]) -> None:
        for job in jobs:
            if self.free > 0:
                self.free -= 1
                self._gevent.spawn_raw(self._serve, job)
            else:
                self.pending.append(job)

    def _serve(self, job: Job | None) -> None:
        """A handler greenlet: runs `job`, then whatever waits for a greenlet, then ends."""
        running, results, pending = self.running, self.outbox, self.pending
        run = self.spec.handlers.run
        current = self._gevent.getcurrent()
        try:
            while job is not None:
                running[job.id] = current
                try:
                    outcome = run(job)  # catches everything, GreenCancelled included
                finally:
                    # A new connection may have brought the same id to another greenlet meanwhile.
                    if running.get(job.id) is current:
                        del running[job.id]
                results.put(Acked((job,)) if outcome is None else outcome)
                job = None
                while pending:
                    candidate = pending.popleft()
                    if candidate.connection != self.connection:
                        continue  # came on a connection since replaced: the broker delivers it again
                    if not (self.stopping and candidate.kind == "job"):  # DISCONNECT hands those back
                        job = candidate
                        break
        finally:
            self.free += 1
            if self.stopping:
                self._loop.run_callback(self._check_done)

    def _cancel(self, job: Job) -> None:
        """The broker cancelled a request (its event is already set): stop its greenlet if it runs."""
        if self.spec.kill_on_cancel:
            self._loop.run_callback(self._throw_cancel, job)

    def _throw_cancel(self, job: Job) -> None:
        # At throw time, so a greenlet that has moved on to another job is left alone.
        greenlet = self.running.get(job.id)
        if greenlet is not None:
            greenlet.throw(GreenCancelled("cancelled by the broker"))

    # -- writing ---------------------------------------------------------------

    def _on_outbox(self) -> None:
        if not self.finished:
            self._flush(self.outbox.take(), time.monotonic())
            if self.stopping:
                self._check_done()

    # -- time --------------------------------------------------------------------

    def _on_timer(self) -> None:
        """Every heartbeat_s, in the hub: READY until registered, and is the broker still there?"""
        now = time.monotonic()
        if self.finished:
            return
        if self._stalled:
            stalled, self._stalled = self._stalled, 0.0
            if not self.stopping:
                self._timer_due = now + self.spec.heartbeat_s
                self._connect(now, f"this process stalled for {stalled:.1f}s")
                return
        if now - self._timer_due > self.spec.heartbeat_s:
            # The hub stalled (a greenlet that never yielded, or a frozen process): the broker's beats may
            # still be on their way through libzmq's I/O thread, so judge the broker a beat from now (libev
            # fires an overdue repeating timer twice in a row). A frozen process is the beat thread's to notice.
            self._judge_after = now + self.spec.heartbeat_s
        self._timer_due = now + self.spec.heartbeat_s
        self._drain()  # read first: a hub busy in a long handler has the broker's beats waiting
        if not self.registered:
            self._ready()
        silent = now - self.last_recv
        if now >= self._judge_after and silent > self.spec.heartbeat_s * defaults.HEARTBEAT_LIVENESS:
            self._connect(now, f"nothing heard for {silent:.1f}s")
        if self.stopping:
            self._check_done()

    def _on_wake(self) -> None:
        if not self.finished:
            self._drain()
            if self._stalled:
                self._on_timer()

    # -- stopping ------------------------------------------------------------------

    def _begin_stop(self, now: float, grace: float) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.stop_deadline = now + grace
        self._control(wire.CREDIT, credit=0)
        # Jobs not started stay with the broker (DISCONNECT hands them back); requests still run.
        # In place: running _serve greenlets take from this deque.
        requests = [job for job in self.pending if job.kind != "job"]
        self.pending.clear()
        self.pending.extend(requests)
        self._grace_timer = self._loop.timer(grace)
        self._grace_timer.start(self._check_done)
        self._check_done()

    def _check_done(self) -> None:
        if self.finished or not self.stopping:
            return
        if (self.running or self.pending) and time.monotonic() < self.stop_deadline:
            return
        self.finished = True
        self._timer.stop()
        if self._grace_timer is not None:
            self._grace_timer.stop()
        leftover = self.outbox.close()
        self._flush(leftover, time.monotonic())
        unfinished = len(self.held)
        self._control(wire.DISCONNECT, reason="stopping")
        with self.sock_lock:
            # Under the lock: the beat thread sees the stop before it touches the socket or the wake-up again.
            self._beat_stop.set()
            self._watcher.stop()
            self._watcher.close()
            self._stop_monitor_watcher()
            if self._refusal_timer is not None:
                self._refusal_timer.close()
                self._refusal_timer = None
            self._close_watch()
            self._wake.stop()
            self._wake.close()
        log.info("worker stopped; %d job(s) handed back to the broker", unfinished)
        # The beat thread closes the socket (with linger, off the hub), then says done.

    # -- the beat thread (a real OS thread) ------------------------------------------

    def _beat_main(self) -> None:
        interval = self.spec.heartbeat_s
        limit = interval * defaults.HEARTBEAT_LIVENESS
        beat = codec.IdGenerator()
        try:
            while True:
                before = time.monotonic()
                if self._beat_stop.wait(interval):
                    break
                late = time.monotonic() - before - interval
                frames = codec.pack_control(wire.HEARTBEAT, {"id": beat()})
                with self.sock_lock:
                    if self._beat_stop.is_set():
                        break
                    if late > limit:
                        # We slept far past our time: the whole process was frozen long enough for
                        # the broker to drop us (it answers a stranger's HEARTBEAT without saying so).
                        self._stalled = late + interval
                    elif self.registered:
                        assert self.sock is not None  # registered: connected
                        try:
                            send_frames(self.sock, frames, NOBLOCK)
                        except zmq.Again:
                            pass  # the send queue is full: the broker is away, beats would not help
                    self._wake.send()  # the send may have taken the fd's edge: let the hub read
        except Exception:
            log.exception("worker heartbeat thread failed")
        finally:
            with self.sock_lock:
                if self.sock is not None:
                    self.sock.close(linger=LEAVE_LINGER_MS)
                    self.sock = None
            if self.spec.own_context:
                self.spec.context.term()
            self.spec.done.set()
