# SPDX-License-Identifier: MIT
"""The thread-mode Transport: one DEALER per calling thread."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Iterable

import zmq

from zeromesh.protocol import codec, wire
from zeromesh.protocol.curve_certs import ClientCurve
from zeromesh.protocol.errors import ProtocolError
from zeromesh.protocol.fastio import NOBLOCK, recv_frames, send_frames

from . import errors
from .endpoints import BrokerMoved, BrokerRing
from .errors import ZeromeshError
from .liveness import Liveness, Reached
from .sockets import new_dealer
from .transport import Answer, Transport, check_broker, check_refused, check_refused_send, decode
from .waiters import PING_PREFIX, Flag, Waiter, dispatch

log = logging.getLogger("zeromesh.client")

_F_REPLY = codec.command_frame(wire.REPLY)

_RECV_SLICE_S = 0.05
"""Longest blocking recv before the waiting call looks at its deadline again."""


class _ThreadState:
    __slots__ = ("sock", "waiters", "poller", "liveness", "connect_timeout", "ring", "generation")

    def __init__(
        self, sock: zmq.Socket, liveness: Liveness, connect_timeout: float, ring: BrokerRing, generation: int
    ) -> None:
        self.connect_timeout = connect_timeout
        self.ring = ring
        self.waiters: dict[str, Waiter] = {}
        self._use(sock, liveness, generation)

    def _use(self, sock: zmq.Socket, liveness: Liveness, generation: int) -> None:
        self.sock = sock
        self.liveness = liveness
        self.generation = generation  # the ring's generation the socket was made for
        # One Poller per thread: Socket.poll() builds a new one per call (a third of a caller's CPU).
        self.poller = zmq.Poller()
        self.poller.register(sock, zmq.POLLIN)

    def close(self, linger_ms: int = 0) -> None:
        self.liveness.close()
        self.sock.close(linger=linger_ms)


def _recv_until(state: _ThreadState, until: float, started: float) -> list[bytes] | None:
    """The next message on this thread's socket, or None once `until` has passed.

    Raises UnreachableError once the call has waited `connect_timeout` (since `started`)
    and the socket has had no live connection for as long; AuthenticationError as soon as a
    slice passes with nothing read and the broker has refused the socket's handshake.
    """
    ring = state.ring
    while True:
        now = time.monotonic()
        remaining = until - now
        if remaining <= 0:
            return None
        if state.generation != ring.generation:  # another thread moved the client to another broker
            raise BrokerMoved(ring.endpoint_of(state.generation), ring.current, state.liveness.had_connection())
        if now - started >= state.connect_timeout:
            check_broker(ring, state.liveness, state.generation, state.connect_timeout)
        if remaining < _RECV_SLICE_S and not state.poller.poll(max(1, int(remaining * 1000))):
            continue
        # Block in recv itself, as a plain DEALER caller does: no poll, and no zmq.Again
        # ending a drain loop (a third of a caller's CPU went to those two). The socket's
        # RCVTIMEO bounds each wait to one slice; the loop checks the deadline between.
        try:
            frames = recv_frames(state.sock)
        except zmq.Again:
            # A slice with nothing read: only now look for a refused handshake (the fast path never does).
            check_refused(ring, state.liveness, state.generation)
            continue
        state.liveness.reached.ever = True  # an answer: this client has reached its broker
        ring.failed = 0
        return frames


class ThreadTransport(Transport):
    """One DEALER per thread. zmq sockets are not thread-safe, and a call reads
    only its own thread's socket, so threads never steal each other's answers.
    A thread makes one call at a time: there is nothing to batch with."""

    def __init__(
        self, ctx: zmq.Context, ring: BrokerRing, connect_timeout: float, curve: ClientCurve | None = None
    ) -> None:
        self._ctx = ctx
        self.ring = ring
        self._curve = curve
        self._connect_timeout = connect_timeout
        self._reached = Reached()  # shared by this client's sockets (liveness.py says why)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sockets: list[tuple[weakref.ref, _ThreadState]] = []
        self._closed = False

    def _state(self) -> _ThreadState:
        state = getattr(self._local, "state", None)
        if state is None:
            with self._lock:
                if self._closed:
                    raise ZeromeshError("the client is closed")
                # Sockets of threads that have ended are nobody's now: close them here.
                alive = []
                for ref, other in self._sockets:
                    thread = ref()
                    if thread is None or not thread.is_alive():
                        other.close()
                    else:
                        alive.append((ref, other))
                generation = self.ring.generation
                sock, liveness = self._connect(self.ring.current)
                state = _ThreadState(sock, liveness, self._connect_timeout, self.ring, generation)
                alive.append((weakref.ref(threading.current_thread()), state))
                self._sockets = alive
            self._local.state = state
        elif state.generation != self.ring.generation:
            # The client moved to another broker: this thread's socket follows, keeping its waiters
            # (a push_many's unconfirmed jobs are resent on the new socket under the same ids).
            with self._lock:
                if self._closed:
                    raise ZeromeshError("the client is closed")
                generation = self.ring.generation
                state.close()
                state._use(*self._connect(self.ring.current), generation)
        return state

    def _connect(self, endpoint: str) -> tuple[zmq.Socket, Liveness]:
        sock = new_dealer(self._ctx, self._curve, self.ring.endpoints.index(endpoint))
        sock.setsockopt(zmq.RCVTIMEO, int(_RECV_SLICE_S * 1000))
        liveness = Liveness(sock, endpoint, self._connect_timeout, self._reached)
        sock.connect(endpoint)  # after the monitor: it must see the first handshake
        return sock, liveness

    def new_event(self) -> Flag:
        return Flag()

    def register(self, keys: Iterable[str], waiter: Waiter) -> None:
        self._state().waiters.update(dict.fromkeys(keys, waiter))

    def unregister(self, keys: Iterable[str]) -> None:
        pop = self._state().waiters.pop
        for key in keys:
            pop(key, None)

    def send(self, frames: list[bytes], deadline: float) -> None:
        while True:
            state = self._state()  # after a move (a refused broker of several): the new broker's socket
            try:
                send_frames(state.sock, frames, NOBLOCK)
                return
            except zmq.Again:
                check_refused_send(self.ring, state.liveness, state.generation)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise errors.TimeoutError(
                        f"could not queue a message for {self.ring.current} (send queue full: is the broker down?)"
                    ) from None
                state.sock.poll(max(1, int(min(remaining, _RECV_SLICE_S) * 1000)), zmq.POLLOUT)

    def call_reply(self, rid: str, frames: list[bytes], until: float, batch: bool = False) -> Answer | None:
        """Send, then read this thread's socket for the answer: no waiter, no event.

        A thread makes one call at a time, so an answer for another id is stale (its
        call gave up) unless a waiter of this thread (a push_many) is registered for it.
        """
        state = self._state()
        sock = state.sock
        try:
            send_frames(sock, frames, NOBLOCK)
        except zmq.Again:
            self.send(frames, until)
        waiters = state.waiters
        started = time.monotonic()
        env: codec.Envelope | None
        while True:
            answer = _recv_until(state, until, started)
            if answer is None:
                return None
            if len(answer) == 3 and answer[0] == _F_REPLY:  # the usual answer: one REPLY item
                try:
                    header = codec.unpack_header(answer[1], wire.REPLY)
                except ProtocolError as exc:
                    log.warning("dropping a malformed message from the broker: %s", exc)
                    continue
                if header["re"] == rid:
                    return header, answer[2], None
                env = codec.Envelope(wire.REPLY, header, [(header, answer[2])])
            else:
                env = decode(answer)
                if env is None:
                    continue
                if env.command == wire.REPLY:
                    for header, body in env.items:
                        if header["re"] == rid:
                            return header, body, None
                elif env.command == wire.ERROR and env.header.get("re") == rid:
                    return {}, b"", env.header
                elif env.command == wire.HEARTBEAT and rid.startswith(PING_PREFIX):
                    return env.header, b"", None  # a ping's answer names no call (see waiters.dispatch)
            dispatch(env, waiters)

    def wait(self, waiter: Waiter, until: float, state: _ThreadState | None = None) -> bool:
        state = state or self._state()
        waiters = state.waiters
        event = waiter.event
        started = time.monotonic()
        while not event.is_set():
            frames = _recv_until(state, until, started)
            if frames is None:
                return False
            env = decode(frames)
            if env is not None:
                dispatch(env, waiters)
        return True

    def close(self, linger: float = 0.0) -> None:
        """Close every thread's socket; each first delivers what it queued, within `linger` seconds
        (the wait happens when the context terminates)."""
        with self._lock:
            self._closed = True
            for _, state in self._sockets:
                state.close(int(linger * 1000))
            self._sockets = []
