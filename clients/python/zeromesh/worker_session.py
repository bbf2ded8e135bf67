# SPDX-License-Identifier: MIT
"""A worker's session with the broker: the protocol both I/O sides share.

READY, receiving JOB/REQUEST, batched ACKs and REPLYs, EXTEND, noticing a dead or
restarted broker and registering again. ThreadWorkerIO (thread_io.py) runs it in one
OS thread with handler threads; GreenWorkerIO (green_io.py) runs it in the gevent hub
with handler greenlets. Each owns its socket, its outbox (results and requests from
other threads, as worker_messages records) and its way of running handlers.

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
import socket
from abc import ABC, abstractmethod
from typing import Any

import zmq

from zeromesh.protocol import codec, wire
from zeromesh.protocol.errors import ProtocolError

from .errors import error_from_header
from .handshake import HandshakeWatch
from .job import Job
from .outbox import ResultList
from .realthreads import LazyEvent, make_event
from .sockets import new_dealer
from .worker_failure import check_handshake
from .worker_flush import ResultFlush
from .worker_messages import (
    NAMES_CHANGED,
    StopRequested,
    ToIO,
)
from .worker_spec import WorkerSpec

log = logging.getLogger("zeromesh.worker")

DRAIN_MAX = 1000
"""Messages read per wake-up before flushing results (so ACKs never wait on a flood of jobs)."""

LEAVE_LINGER_MS = 200
"""A connection being left (replaced, or closed on stop) gives its last messages and DISCONNECT this long."""

_NEVER_CANCELLED = make_event()
"""The `cancelled` of every job: only requests can be cancelled (a LazyEvent each)."""


class WorkerSession(ResultFlush, ABC):
    """The protocol with the broker; subclasses own the socket, the outbox and the handlers' runner."""

    outbox: ResultList[ToIO]
    """Where other threads and greenlets put ToIO records; made by the subclass."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.ids = codec.IdGenerator()
        self.sock: zmq.Socket | None = None
        self.held: dict[str, Job] = {}
        self.epoch: str | None = None
        # Until the broker shows it knows us, each beat is a READY, not a HEARTBEAT:
        # a READY can be lost (sent to a broker that was exiting), and the broker
        # answers a HEARTBEAT from a stranger just as it answers a READY.
        self._registered = False
        # Which connection to the broker is current: counts up each time one is replaced
        # (Job.connection says where a job came from; runners skip jobs of an old one).
        self.connection = 0
        self.last_recv = 0.0
        self.next_heartbeat = 0.0
        self.stopping = False
        self.stop_deadline = float("inf")
        # The READY that lowered our credit and that credit, until the broker answers it (credit_split.py).
        self._lowering: tuple[str, int] | None = None
        # Handshakes of the current socket, and since when the broker has refused them (None: it has not).
        self.watch: HandshakeWatch | None = None
        self.refused_since: float | None = None
        self._ready_pending = False  # a new connection's READY waits for its handshake
        self._ready_ids: set[str] = set()  # READYs sent on this connection: a forbidden answer to one ends the worker

    @property
    def registered(self) -> bool:
        return self._registered

    @registered.setter
    def registered(self, value: bool) -> None:
        # A session registering or lost changes the worker's credit split (credit_split.py).
        if value != self._registered:
            self._registered = value
            split = self.spec.split
            if split is not None:
                if value:
                    split.registered(self.spec.index)
                else:
                    split.lost(self.spec.index)

    # -- from the Worker (any thread) ----------------------------------------

    def names_changed(self) -> None:
        """A handler was added after start: READY again with the names."""
        self.outbox.put(NAMES_CHANGED)

    def request_stop(self, grace: float) -> None:
        self.outbox.put(StopRequested(grace))

    # -- what each I/O side does its own way ------------------------------------

    @abstractmethod
    def start(self) -> None:
        """Connect and begin serving (an I/O thread, or greenlets on the hub)."""

    @abstractmethod
    def _replace_socket(self) -> None:
        """Close the current DEALER (if any) with a short linger, and open and connect a new one."""

    @abstractmethod
    def _send(self, frames: list[bytes]) -> None:
        """Send without blocking; drop the message (logged) when the send queue is full."""

    @abstractmethod
    def _dispatch(self, jobs: list[Job]) -> None:
        """Hand jobs and requests to the handlers."""

    @abstractmethod
    def _abandon_waiting(self) -> None:
        """Drop jobs of the connection just left that wait for a handler."""

    @abstractmethod
    def _cancel(self, job: Job) -> None:
        """The broker cancelled a request (its event is already set): stop its handler if the runner can."""

    @abstractmethod
    def _begin_stop(self, now: float, grace: float) -> None:
        """Take no new work (CREDIT 0) and let what runs finish within `grace`."""

    # -- to the broker -------------------------------------------------------

    def _control(self, command: int, **fields: Any) -> str:
        message_id = self.ids()
        self._send(codec.pack_control(command, {"id": message_id, **fields}))
        return message_id

    def _ready(self) -> None:
        if self._ready_pending:
            return  # the connection's first READY goes once its handshake succeeds (_check_handshake)
        spec = self.spec
        if self.stopping:
            credit = 0
        else:
            credit = spec.credit if spec.split is None else spec.split.ready_credit(spec.index)
        header: dict[str, Any] = {
            "names": spec.handlers.names(),
            "credit": credit,
            "lang": "python",
            "host": socket.gethostname() or "unknown",
            "batch": True,
            "packed": True,
        }
        if spec.label:
            header["label"] = spec.label
        message_id = self._control(wire.READY, **header)
        self._ready_ids.add(message_id)
        if self._lowering is not None:
            self._lowering = (message_id, credit)  # this READY says the same credit: its answer confirms it

    def _credit_changed(self, credit: int, lower: bool) -> None:
        """Tell the broker a new share: a lower one with READY, whose answer confirms it."""
        if not self._registered or self.stopping:
            return  # unregistered, the next READY carries the share; stopping, the credit stays 0
        if lower:
            self._lowering = ("", credit)
            self._ready()
        else:
            self._control(wire.CREDIT, credit=credit)

    def _connect(self, now: float, why: str = "") -> None:
        """A fresh DEALER and READY: the broker will see us as a new peer."""
        if self.sock is not None:
            log.warning("reconnecting to %s (%s)", self.spec.endpoint, why)
            self._control(wire.DISCONNECT, reason=f"reconnecting: {why}")
            self._replace_socket()
            self._abandon()
        else:
            self._replace_socket()
        self.epoch = None
        self.registered = False
        self._lowering = None
        self._ready_ids.clear()
        self.last_recv = now
        # READY waits for the handshake: a READY queued to a broker that is down (or refuses us)
        # would claim a share of the credit that the live brokers then could not have.
        self._ready_pending = True
        self._check_handshake(now)

    def _open_socket(self) -> zmq.Socket:
        """A new DEALER to the session's broker (a CURVE client when the worker has keys), watched
        for refused handshakes from before it connects."""
        spec = self.spec
        self._close_watch()
        sock = new_dealer(spec.context, spec.curve, spec.index)
        self.watch = HandshakeWatch(sock)
        sock.connect(spec.endpoint)
        return sock

    def _close_watch(self) -> None:
        if self.watch is not None:
            self.watch.close()
            self.watch = None

    def _check_handshake(self, now: float) -> None:
        """Read the socket's handshake outcomes (worker_failure.check_handshake says what follows)."""
        if self.watch is not None:
            self.refused_since = check_handshake(self.watch, self.spec, self.refused_since, now)
            if self._ready_pending and self.watch.ever_succeeded:
                self._ready_pending = False
                self._ready()

    def _abandon(self) -> None:
        """Forget what came on the connection just left; later results of it are dropped in _flush."""
        held, self.held = self.held, {}
        self.connection += 1  # runners skip the old connection's jobs they have not started
        self._abandon_waiting()
        if not held:
            return
        requests = [job for job in held.values() if job.kind == "request"]
        for job in requests:
            job.cancelled.set()  # a long handler that checks it can stop: its answer would be dropped
        log.info(
            "abandoned %d job(s) and %d request(s) received on the replaced connection (the broker "
            "delivers them again): those not started will not run, results of the others are dropped",
            len(held) - len(requests),
            len(requests),
        )

    # -- from the broker ---------------------------------------------------

    def _take(self, frames: list[bytes], now: float) -> None:
        """Decode one message from the broker and act on it; a malformed one is logged and dropped."""
        try:
            env = codec.unpack(frames)
        except ProtocolError as exc:
            log.warning("dropping a malformed message from the broker: %s", exc)
            return
        self._handle(env, now)

    def _handle(self, env: codec.Envelope, now: float) -> None:
        command = env.command
        if command == wire.JOB_PACKED or command == wire.JOB_BATCH:  # decoded alike: header, bodies
            self.registered = True
            header = env.header
            jobs = Job.first_deliveries(
                header["queue"],
                header["ids"],
                env.items,
                header.get("headers"),
                header["lease_ms"],
                _NEVER_CANCELLED,
                self.outbox.put,
                self.connection,
            )
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
                job = Job(kind, header[field], header, body, cancelled, self.outbox.put, self.connection)
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
                self._cancel(held)
        elif command == wire.HEARTBEAT:
            epoch = env.header.get("epoch")
            if epoch and self.epoch and epoch != self.epoch:
                self._connect(now, f"broker epoch changed {self.epoch} -> {epoch}")
            else:
                # We sent no HEARTBEAT since our READY, so this answers the READY
                # (or is the broker's beat to its registered workers).
                self.epoch = epoch or self.epoch
                self.registered = True
                self.spec.registered.set()
                lowering = self._lowering
                if lowering is not None and env.header.get("re") == lowering[0]:
                    self._lowering = None
                    self.spec.split.confirmed(self.spec.index, lowering[1], len(self.held))
        elif command == wire.ERROR:
            code = env.header.get("code")
            if code == wire.E_UNKNOWN_PEER:
                if self.registered and not self.stopping:
                    # A restarted broker (our socket reconnected to it on its own) or one that dropped us:
                    # what we hold is its to deliver again, and this connection must not register again.
                    self._connect(now, "the broker does not know this connection")
                # Else it answers something sent before our READY, which is repeated until answered.
            elif code == wire.E_FORBIDDEN:
                log.error("the broker at %s refused: %s", self.spec.endpoint, env.header.get("message"))
                if env.header.get("re") in self._ready_ids and self.spec.failure is not None:
                    self.spec.failure.fatal(error_from_header(env.header))  # no READY of this key will do
            else:
                log.warning("broker error %s: %s", code, env.header.get("message"))
        elif command == wire.DISCONNECT:
            if not self.stopping:
                self._connect(now, f"broker said DISCONNECT ({env.header.get('reason', '')})")
        else:
            log.debug("ignoring unexpected %s from the broker", env.name)

    # -- from the handlers, the Worker and jobs ------------------------------------

    def _handler_exited(self) -> None:  # noqa: B027 - a hook, not abstract: green mode has no handler threads
        """A handler thread ended (only thread mode has them)."""
