# SPDX-License-Identifier: MIT
"""The worker's I/O thread: the only code that touches the worker's DEALER.

Liveness must not depend on handlers: READY, receiving JOB/REQUEST, batched
ACKs and REPLYs, HEARTBEAT every heartbeat_s, EXTEND, noticing a dead or
restarted broker and registering again all happen here, in one OS thread,
while handlers run in their own threads (a CPU-bound handler only costs this
thread a GIL switch interval, a few ms).

A connection is replaced (a new DEALER, a new READY) when the broker's epoch
changes, when it is silent too long, when it says DISCONNECT or does not know
us any more (ERROR unknown_peer). The old connection is left for good: it gets
DISCONNECT, so a broker that still registers it (a restarted broker that our
old socket reconnected to) hands its jobs back at once, without counting an
attempt, rather than holding them until it declares that registration lost.
What came on it is abandoned: jobs not started never run, results of running
ones are dropped, since the broker delivers all of them again.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import zmq

from zeromesh.protocol.fastio import NOBLOCK, recv_frames, send_frames
from zeromesh.protocol import codec, defaults, wire
from zeromesh.protocol.errors import ProtocolError

from .job import Job
from .realthreads import LazyEvent, make_event

_NEVER_CANCELLED = make_event()
from .sockets import connect_dealer

if TYPE_CHECKING:
    from .worker import Worker

log = logging.getLogger("zeromesh.worker")

_DRAIN_MAX = 1000
"""Messages read per poll before flushing results (so ACKs never wait on a flood of jobs)."""

LEAVE_LINGER_MS = 200
"""A connection being left (replaced, or closed on stop) gives its last messages and DISCONNECT this long."""

_ABOUT_ONE_JOB = frozenset(("ack", "nack", "reply", "error", "extend"))
"""Results whose second element is the Job they answer."""


def _chunks(seq: list, size: int) -> list[list]:
    return [seq[i:i + size] for i in range(0, len(seq), size)]


class WorkerIO:
    def __init__(self, worker: Worker) -> None:
        self.w = worker
        self.ids = codec.IdGenerator()
        self.sock: zmq.Socket | None = None
        self.poller = zmq.Poller()
        self.held: dict[str, Job] = {}
        self.epoch: str | None = None
        # Until the broker shows it knows us, each beat is a READY, not a HEARTBEAT:
        # a READY can be lost (sent to a broker that was exiting), and the broker
        # answers a HEARTBEAT from a stranger just as it answers a READY.
        self.registered = False
        self.last_recv = 0.0
        self.next_heartbeat = 0.0
        self.stopping = False
        self.stop_deadline = float("inf")
        self.exited = 0
        self.inline_results: list[tuple] = []  # from handlers run here (Worker.handler(inline=True))

    # -- socket ------------------------------------------------------------

    def _send(self, frames: list[bytes]) -> None:
        assert self.sock is not None
        try:
            send_frames(self.sock, frames, NOBLOCK)
        except zmq.Again:
            # The broker has been unreachable long enough to fill the HWM; it
            # will redeliver what we could not answer, so dropping is safe.
            log.warning("send queue to %s full; dropping a message", self.w.endpoint)

    def _control(self, command: int, **fields: Any) -> None:
        self._send(codec.pack_control(command, {"id": self.ids(), **fields}))

    def _ready(self) -> None:
        header: dict[str, Any] = {"names": sorted(self.w.handlers), "credit": 0 if self.stopping else self.w.credit,
                                  "lang": "python", "batch": True, "packed": True}
        if self.w.label:
            header["label"] = self.w.label
        self._control(wire.READY, **header)

    def _connect(self, now: float, why: str = "") -> None:
        """A fresh DEALER and READY: the broker will see us as a new peer."""
        if self.sock is not None:
            log.warning("reconnecting to %s (%s)", self.w.endpoint, why)
            self._control(wire.DISCONNECT, reason=f"reconnecting: {why}")
            self._replace_socket()
            self._abandon()
        else:
            self._replace_socket()
        self.epoch = None
        self.registered = False
        self.last_recv = now
        self._ready()

    def _replace_socket(self) -> None:
        """Close the current DEALER (if any) with a short linger, and open and connect a new one."""
        if self.sock is not None:
            self.poller.unregister(self.sock)
            self.sock.close(linger=LEAVE_LINGER_MS)
        self.sock = connect_dealer(self.w.context, self.w.endpoint)
        self.poller.register(self.sock, zmq.POLLIN)

    def _abandon(self) -> None:
        """Forget what came on the connection just left; later results of it are dropped in _flush."""
        held, self.held = self.held, {}
        self.w.connection += 1  # handlers skip the old connection's jobs they have not started
        self._abandon_waiting()
        if not held:
            return
        requests = [job for job in held.values() if job.kind == "request"]
        for job in requests:
            job.cancelled.set()  # a long handler that checks it can stop: its answer would be dropped
        log.info("abandoned %d job(s) and %d request(s) received on the replaced connection (the broker "
                 "delivers them again): those not started will not run, results of the others are dropped",
                 len(held) - len(requests), len(requests))

    def _abandon_waiting(self) -> None:
        """Drop jobs waiting for a handler: in thread mode they wait in the work queue, skipped there."""

    # -- main loop ---------------------------------------------------------

    def run(self) -> None:
        pull = self.w.outbox.open()
        self.poller.register(pull, zmq.POLLIN)
        now = time.monotonic()
        self._connect(now)
        self.next_heartbeat = now + self.w.heartbeat_s
        self.w.io_ready.set()
        liveness = self.w.heartbeat_s * defaults.HEARTBEAT_LIVENESS
        try:
            while True:
                now = time.monotonic()
                wake = min(self.next_heartbeat, self.last_recv + liveness, self.stop_deadline)
                events = dict(self.poller.poll(max(0, int((wake - now) * 1000)) + 1))
                if pull in events:
                    while True:  # drain the bell before take(): see outbox.py
                        try:
                            pull.recv(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                before, now = now, time.monotonic()
                if now - before > liveness + self.w.heartbeat_s and not self.stopping:
                    # poll() was due back within a heartbeat: this process was frozen
                    # (SIGSTOP, a paused VM) long enough for the broker to drop us, and
                    # it answers a stranger's HEARTBEAT without saying so. Start afresh.
                    self._connect(now, f"this process stalled for {now - before:.1f}s")
                if self.sock in events:
                    self._read(now)
                results = self.w.outbox.take()
                if self.inline_results:
                    results = self.inline_results + results
                    self.inline_results = []
                self._flush(results, now)
                if self.stopping and (self.exited >= self.w.runners or now >= self.stop_deadline):
                    break
                if now >= self.next_heartbeat:
                    if self.registered:
                        self._control(wire.HEARTBEAT)
                    else:
                        self._ready()
                    self.next_heartbeat = now + self.w.heartbeat_s
                if now - self.last_recv > liveness:
                    self._connect(now, f"nothing heard for {now - self.last_recv:.1f}s")
            self._finish()
        finally:
            self.poller.unregister(pull)
            pull.close(linger=0)

    def _finish(self) -> None:
        leftover = self.inline_results + self.w.outbox.close()
        self.inline_results = []
        self._flush(leftover, time.monotonic())
        unfinished = len(self.held)
        self._control(wire.DISCONNECT, reason="stopping")
        assert self.sock is not None
        self.sock.close(linger=LEAVE_LINGER_MS)
        self.sock = None
        log.info("worker stopped; %d job(s) handed back to the broker", unfinished)

    # -- from the broker ---------------------------------------------------

    def _read(self, now: float) -> None:
        assert self.sock is not None
        sock = self.sock
        for _ in range(_DRAIN_MAX):
            try:
                frames = recv_frames(sock, NOBLOCK)
            except zmq.Again:
                return
            self.last_recv = now
            self._take(frames, now)
            if self.sock is not sock:
                return  # reconnected: the rest of the old socket's messages are moot

    def _take(self, frames: list[bytes], now: float) -> None:
        """Decode one message from the broker and act on it; a malformed one is logged and dropped."""
        try:
            env = codec.unpack(frames)
        except ProtocolError as exc:
            log.warning("dropping a malformed message from the broker: %s", exc)
            return
        self._handle(env, now)

    def _dispatch(self, jobs: list[Job]) -> None:
        """Run inline handlers' jobs now, hand the rest to the pool."""
        inline = self.w.inline
        if inline:
            pooled = []
            for job in jobs:
                if job.name in inline:
                    self.inline_results.append(self.w._run(job))
                else:
                    pooled.append(job)
            jobs = pooled
        if jobs:
            self.w.dispatch(jobs)

    def _handle(self, env: codec.Envelope, now: float) -> None:
        command = env.command
        if command == wire.JOB_PACKED or command == wire.JOB_BATCH:  # decoded alike: header, bodies
            self.registered = True
            header = env.header
            jobs = Job.first_deliveries(header["queue"], header["ids"], env.items, header.get("headers"),
                                        header["lease_ms"], _NEVER_CANCELLED, self.w.outbox.put, self.w.connection)
            self.held.update(zip(header["ids"], jobs))
            if not self.stopping:  # while stopping, jobs stay unstarted: DISCONNECT hands them back
                self._dispatch(jobs)
        elif command in (wire.JOB, wire.REQUEST):
            self.registered = True
            kind = "job" if command == wire.JOB else "request"
            field = "queue" if command == wire.JOB else "service"
            batch = []
            for header, body in env.items:
                # Only requests can be cancelled; jobs share one event that is never set,
                # sparing a Condition and a Lock per job (measured: a fifth of the I/O thread).
                cancelled = LazyEvent() if command == wire.REQUEST else _NEVER_CANCELLED
                job = Job(kind, header[field], header, body, cancelled, self.w.outbox.put, self.w.connection)
                self.held[job.id] = job
                # While stopping, jobs stay unstarted: DISCONNECT hands them back.
                if not (self.stopping and kind == "job"):
                    batch.append(job)
            if batch:
                self._dispatch(batch)
        elif command == wire.CANCEL:
            held = self.held.get(env.header["re"])
            if held is not None and held.kind == "request":
                held.cancelled.set()
                cancel = getattr(self.w.work, "cancel", None)
                if cancel is not None:  # gevent mode can stop the handler's greenlet
                    cancel(held)
        elif command == wire.HEARTBEAT:
            epoch = env.header.get("epoch")
            if epoch and self.epoch and epoch != self.epoch:
                self._connect(now, f"broker epoch changed {self.epoch} -> {epoch}")
            else:
                # We sent no HEARTBEAT since our READY, so this answers the READY
                # (or is the broker's beat to its registered workers).
                self.epoch = epoch or self.epoch
                self.registered = True
                self.w.registered.set()
        elif command == wire.ERROR:
            code = env.header.get("code")
            if code == wire.E_UNKNOWN_PEER:
                if self.registered and not self.stopping:
                    # A restarted broker (our socket reconnected to it on its own) or one that dropped us:
                    # what we hold is its to deliver again, and this connection must not register again.
                    self._connect(now, "the broker does not know this connection")
                # Else it answers something sent before our READY, which is repeated until answered.
            else:
                log.warning("broker error %s: %s", code, env.header.get("message"))
        elif command == wire.DISCONNECT:
            if not self.stopping:
                self._connect(now, f"broker said DISCONNECT ({env.header.get('reason', '')})")
        else:
            log.debug("ignoring unexpected %s from the broker", env.name)

    # -- from the handlers -------------------------------------------------

    def _flush(self, items: list[tuple], now: float) -> None:
        acks: list[str] = []
        replies: list[tuple[dict, bytes]] = []
        extends: dict[int, list[str]] = {}
        held_pop = self.held.pop
        current = self.w.connection
        dropped = 0
        for item in items:
            what = item[0]
            if what == "acks":
                # One entry is one handler's share of one dispatch, so its jobs share a connection.
                if item[1][0].connection != current:
                    dropped += len(item[1])
                    continue
                for job in item[1]:
                    acks.append(job.id)
                    held_pop(job.id, None)
            elif what in _ABOUT_ONE_JOB and item[1].connection != current:
                dropped += 1  # answers a connection we left: never sent on this one
            elif what == "ack":
                acks.append(item[1].id)
                held_pop(item[1].id, None)
            elif what == "nack":
                job, error, retry = item[1], item[2], item[3]
                self.held.pop(job.id, None)
                header = {"re": job.id, "error": error[:4096]}
                if not retry:
                    header["retry"] = False
                self._control(wire.NACK, **header)
            elif what == "reply":
                job, body, headers = item[1], item[2], item[3]
                self.held.pop(job.id, None)
                header = {"id": self.ids(), "re": job.id}
                if headers:
                    header["headers"] = headers
                replies.append((header, body))
            elif what == "error":
                job, fields = item[1], item[2]
                self.held.pop(job.id, None)
                self._control(wire.ERROR, re=job.id, **fields)
            elif what == "extend":
                job, lease_ms = item[1], item[2]
                if job.id in self.held:
                    extends.setdefault(lease_ms, []).append(job.id)
            elif what == "ready":
                self._ready()
            elif what == "stop":
                self._begin_stop(now, item[1])
            elif what == "exited":
                self.exited += 1
        if dropped:
            log.debug("dropped %d result(s) of work abandoned with a replaced connection", dropped)
        # One ACK (and one REPLY) message per loop iteration, however many results.
        for chunk in _chunks(acks, wire.MAX_ITEMS_PER_MESSAGE):
            self._control(wire.ACK, ids=chunk)
        for chunk in _chunks(replies, wire.MAX_ITEMS_PER_MESSAGE):
            self._send(codec.pack_items(wire.REPLY, chunk))
        for lease_ms, ids in extends.items():
            self._control(wire.EXTEND, ids=ids, lease_ms=lease_ms)

    def _begin_stop(self, now: float, grace: float) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.w.stopping.set()
        self.stop_deadline = now + grace
        self._control(wire.CREDIT, credit=0)
        for _ in range(self.w.runners):
            self.w.work.put(None)
