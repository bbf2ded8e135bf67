# SPDX-License-Identifier: MIT
"""How a Client talks to the broker: one DEALER per thread, or one green DEALER.

Both transports offer the same five operations to the Client:
    new_event()             an event a Waiter sets on progress
    register(keys, waiter)  / unregister(keys)
    send(frames, deadline)  raises zeromesh.TimeoutError if it cannot be queued in time
    wait(waiter, until)     True once waiter.event is set, False at `until`
"""
from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Iterable
from typing import Any

import zmq

from zeromesh.protocol.fastio import NOBLOCK, recv_frames, send_frames
from zeromesh.protocol import codec, wire
from zeromesh.protocol.errors import ProtocolError

from . import errors
from .errors import ZeromeshError
from .liveness import Liveness, Reached, unreachable_message
from .sockets import new_dealer
from .waiters import PING_PREFIX, Flag, Waiter, dispatch

log = logging.getLogger("zeromesh.client")

_DRAIN_MAX = 1000
"""Green mode: messages handled per wake-up before letting other greenlets run."""

_F_REPLY = codec.command_frame(wire.REPLY)
_F_REQUEST = codec.command_frame(wire.REQUEST)
_BATCH_BODY_MAX = wire.MIN_BODY_LIMIT
"""Largest request body a green client sends together with others: within any broker's limit,
since a message with one body over the limit is refused whole (SPEC section 10)."""
_BATCH_RETRY_S = 0.005

_RECV_SLICE_S = 0.05
"""Thread mode: longest blocking recv before the waiting call looks at its deadline again."""

_LIVENESS_CHECK_S = 0.25
"""Green mode: how often a call that has waited `connect_timeout` looks at the connection again."""


def _decode(frames: list[bytes]) -> codec.Envelope | None:
    try:
        return codec.unpack(frames)
    except ProtocolError as exc:
        log.warning("dropping a malformed message from the broker: %s", exc)
        return None


class _ThreadState:
    __slots__ = ("sock", "waiters", "poller", "liveness", "connect_timeout")

    def __init__(self, sock: zmq.Socket, liveness: Liveness, connect_timeout: float) -> None:
        self.sock = sock
        self.liveness = liveness
        self.connect_timeout = connect_timeout
        self.waiters: dict[str, Waiter] = {}
        # One Poller per thread: Socket.poll() builds a new one per call (a third of a caller's CPU).
        self.poller = zmq.Poller()
        self.poller.register(sock, zmq.POLLIN)


def _recv_until(state: _ThreadState, until: float, started: float) -> list[bytes] | None:
    """The next message on this thread's socket, or None once `until` has passed.

    Raises UnreachableError once the call has waited `connect_timeout` (since `started`)
    and the socket has had no live connection for as long.
    """
    while True:
        now = time.monotonic()
        remaining = until - now
        if remaining <= 0:
            return None
        if now - started >= state.connect_timeout:
            _check_live(state.liveness, state.connect_timeout)
        if remaining < _RECV_SLICE_S and not state.poller.poll(max(1, int(remaining * 1000))):
            continue
        # Block in recv itself, as a plain DEALER caller does: no poll, and no zmq.Again
        # ending a drain loop (a third of a caller's CPU went to those two). The socket's
        # RCVTIMEO bounds each wait to one slice; the loop checks the deadline between.
        try:
            frames = recv_frames(state.sock)
        except zmq.Again:
            continue
        state.liveness.reached.ever = True  # an answer: this client has reached its broker
        return frames


def _check_live(liveness: Liveness, connect_timeout: float) -> None:
    down = liveness.unreachable_for(connect_timeout)
    if down is not None:
        raise errors.UnreachableError(unreachable_message(liveness.endpoint, down))


class ThreadTransport:
    """One DEALER per thread. zmq sockets are not thread-safe, and a call reads
    only its own thread's socket, so threads never steal each other's answers."""

    def __init__(self, ctx: zmq.Context, endpoint: str, connect_timeout: float) -> None:
        self._ctx = ctx
        self._endpoint = endpoint
        self._connect_timeout = connect_timeout
        self._reached = Reached()
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
                        other.liveness.close()
                        other.sock.close(linger=0)
                    else:
                        alive.append((ref, other))
                sock = new_dealer(self._ctx)
                sock.setsockopt(zmq.RCVTIMEO, int(_RECV_SLICE_S * 1000))
                liveness = Liveness(sock, self._endpoint, self._connect_timeout, self._reached)
                sock.connect(self._endpoint)
                state = _ThreadState(sock, liveness, self._connect_timeout)
                alive.append((weakref.ref(threading.current_thread()), state))
                self._sockets = alive
            self._local.state = state
        return state

    def new_event(self) -> Flag:
        return Flag()

    def register(self, keys: Iterable[str], waiter: Waiter) -> None:
        self._state().waiters.update(dict.fromkeys(keys, waiter))

    def unregister(self, keys: Iterable[str]) -> None:
        pop = self._state().waiters.pop
        for key in keys:
            pop(key, None)

    def send(self, frames: list[bytes], deadline: float) -> None:
        sock = self._state().sock
        while True:
            try:
                send_frames(sock, frames, NOBLOCK)
                return
            except zmq.Again:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise errors.TimeoutError(f"could not queue a message for {self._endpoint} "
                                              "(send queue full: is the broker down?)") from None
                sock.poll(max(1, int(remaining * 1000)), zmq.POLLOUT)

    def call(self, key: str, frames: list[bytes], waiter: Waiter, until: float, batch: bool = False) -> bool:
        """register + send + wait + unregister for one answer, with one look-up of the thread's state.

        batch is for GreenTransport's sake: a thread has one call at a time, nothing to batch with.
        """
        state = self._state()
        waiters = state.waiters
        waiters[key] = waiter
        try:
            try:
                send_frames(state.sock, frames, NOBLOCK)
            except zmq.Again:
                self.send(frames, until)
            return self.wait(waiter, until, state)
        finally:
            waiters.pop(key, None)

    def call_reply(self, rid: str, frames: list[bytes], until: float) -> tuple[dict, bytes, dict | None] | None:
        """Send a REQUEST (or ADMIN) and read this thread's socket for its answer: the short path.

        Returns (reply header, body, None), ({}, b"", error header), or None at `until`.
        A thread makes one call at a time, so an answer for another id is stale (its
        call gave up) unless a waiter of this thread is registered for it.
        """
        state = self._state()
        sock = state.sock
        try:
            send_frames(sock, frames, NOBLOCK)
        except zmq.Again:
            self.send(frames, until)
        waiters = state.waiters
        started = time.monotonic()
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
                env = _decode(answer)
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
            env = _decode(frames)
            if env is not None:
                dispatch(env, waiters)
        return True

    def close(self, linger: float = 0.0) -> None:
        """Close every thread's socket; each first delivers what it queued, within `linger` seconds
        (the wait happens when the context terminates)."""
        with self._lock:
            self._closed = True
            for _, state in self._sockets:
                state.liveness.close()
                state.sock.close(linger=int(linger * 1000))
            self._sockets = []


class GreenTransport:
    """One DEALER shared by all greenlets of one hub.

    pyzmq's green socket checks ZMQ_EVENTS after every frame it sends or
    receives and arms a gevent.Timeout for every blocking wait; on the edge's
    request path that was about a fifth of its CPU. Here the DEALER is a
    plain socket: a read watcher on its ZMQ_FD drains it in the hub and hands
    each answer to its waiter, sends go straight to libzmq without blocking
    (a 3-frame message is queued whole or not at all, so greenlets cannot
    interleave frames), and a waiter's event switches the waiting greenlet
    back in directly, with a plain loop timer for its deadline.

    Requests that greenlets make in one turn of the loop leave together, as one
    REQUEST message, when the loop next runs its callbacks: the greenlets woken
    by one batch of replies each ask again, and the broker then reads one
    message for all of them. Only requests the broker will surely accept are
    batched (the caller says so, and the body is small), since it refuses a
    message with one bad item whole. Any other message first sends the batch
    ahead of it, so a CANCEL never overtakes its REQUEST, and a call that gives
    up takes its request out of a batch that has not left yet.
    """

    class _Event:
        """What a call waits on: set() from the hub (dispatch) resumes the one greenlet waiting."""

        __slots__ = ("_set", "_waiter")

        def __init__(self) -> None:
            self._set = False
            self._waiter: Any = None

        def set(self) -> None:
            self._set = True
            waiter = self._waiter
            if waiter is not None:
                self._waiter = None
                waiter.switch(True)

        def clear(self) -> None:
            self._set = False

        def is_set(self) -> bool:
            return self._set

    _TIMED_OUT = object()

    def __init__(self, ctx: Any, endpoint: str, connect_timeout: float) -> None:
        import gevent
        import gevent.hub

        self._gevent = gevent
        self._waiter_cls = gevent.hub.Waiter
        self._endpoint = endpoint
        self._connect_timeout = connect_timeout
        # A plain socket on the (green) context: the green wrapper's per-frame bookkeeping is what this avoids.
        self._sock = new_dealer(zmq.Context.shadow(ctx.underlying))
        self._liveness = Liveness(self._sock, endpoint, connect_timeout)
        self._sock.connect(endpoint)
        self._waiters: dict[str, Waiter] = {}
        self._hub = gevent.get_hub()
        self._loop = self._hub.loop
        self._closed = False
        self._drain_pending = False
        self._requests: dict[str, tuple[bytes, bytes]] = {}  # the next batch: id -> (header, body) frames
        self._batch_pending = False  # a callback or retry timer will send it
        self._retry_timer: Any = None
        # ZMQ_FD is edge-triggered: it signals "ZMQ_EVENTS may have changed", and a send may consume that
        # signal while processing libzmq's commands. So the socket is drained to EAGAIN whenever the fd
        # is readable and once (coalesced) after any sends in a loop iteration.
        self._io = self._loop.io(self._sock.getsockopt(zmq.FD), 1)
        self._io.start(self._drain)

    def _drain(self) -> None:
        """Runs in the hub: route every waiting message to its waiter (never blocks)."""
        self._drain_pending = False
        if self._closed:
            return
        sock = self._sock
        waiters = self._waiters
        for _ in range(_DRAIN_MAX):
            try:
                frames = recv_frames(sock, NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError:
                return  # socket closed
            self._liveness.reached.ever = True
            env = _decode(frames)
            if env is not None:
                dispatch(env, waiters)
        self._schedule_drain()  # more than _DRAIN_MAX: let the loop run, then carry on

    def _schedule_drain(self) -> None:
        if not self._drain_pending:
            self._drain_pending = True
            self._loop.run_callback(self._drain)

    def new_event(self) -> Any:
        return self._Event()

    def register(self, keys: Iterable[str], waiter: Waiter) -> None:
        for key in keys:
            self._waiters[key] = waiter

    def unregister(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._waiters.pop(key, None)

    def _queue_request(self, key: str, frames: list[bytes]) -> None:
        requests = self._requests
        requests[key] = (frames[1], frames[2])
        if len(requests) >= wire.MAX_ITEMS_PER_MESSAGE:
            self._send_requests()
        elif not self._batch_pending:
            self._batch_pending = True
            self._loop.run_callback(self._send_requests)

    def _send_requests(self) -> None:
        """Send the batch of requests as one REQUEST message (from the hub's callbacks, or before any other send)."""
        self._batch_pending = False
        if self._retry_timer is not None:
            self._retry_timer.close()
            self._retry_timer = None
        requests = self._requests
        if not requests or self._closed:
            return
        # At most MAX_ITEMS_PER_MESSAGE a message: more pile up while the broker is away.
        items = list(requests.items())
        step = wire.MAX_ITEMS_PER_MESSAGE
        for start in range(0, len(items), step):
            chunk = items[start:start + step]
            frames = [_F_REQUEST]
            for _, pair in chunk:
                frames += pair
            try:
                send_frames(self._sock, frames, NOBLOCK)
            except zmq.Again:
                # Send queue full (the broker is away): try again soon. Each caller's own deadline
                # still bounds its wait, and a caller that gives up takes its request out.
                self._batch_pending = True
                self._retry_timer = self._loop.timer(_BATCH_RETRY_S)
                self._retry_timer.start(self._send_requests)
                break
            except zmq.ZMQError:
                return  # socket closed under us
            for key, _ in chunk:
                del requests[key]
        self._schedule_drain()

    def send(self, frames: list[bytes], deadline: float) -> None:
        if self._closed:
            raise ZeromeshError("the client is closed")
        if self._requests:
            self._send_requests()  # what was asked first leaves first
        while True:
            try:
                send_frames(self._sock, frames, NOBLOCK)
                break
            except zmq.Again:
                # Send queue full (the broker is away): rare, so poll rather than track writability.
                if time.monotonic() >= deadline:
                    raise errors.TimeoutError(f"could not queue a message for {self._endpoint} "
                                              "(send queue full: is the broker down?)") from None
                self._gevent.sleep(0.005)
        self._schedule_drain()

    def call(self, key: str, frames: list[bytes], waiter: Waiter, until: float, batch: bool = False) -> bool:
        """register + send + wait + unregister for one answer.

        batch: frames are one REQUEST item whose header the broker will surely accept; it
        may then leave together with other greenlets' requests (see the class docstring).
        """
        self._waiters[key] = waiter
        try:
            if batch and not self._closed and len(frames[2]) <= _BATCH_BODY_MAX:
                self._queue_request(key, frames)
            else:
                self.send(frames, until)
            return self.wait(waiter, until)
        finally:
            self._waiters.pop(key, None)
            if self._requests:
                self._requests.pop(key, None)  # gave up before the batch left: it never will

    def wait(self, waiter: Waiter, until: float) -> bool:
        """True once the waiter's event is set, False at `until`; UnreachableError when the
        socket has had no live connection for `connect_timeout` while we waited that long."""
        event = waiter.event
        if event._set:
            return True
        started = time.monotonic()
        check_at = started + self._connect_timeout
        while True:
            now = time.monotonic()
            if until - now <= 0:
                return False
            if now >= check_at:
                _check_live(self._liveness, self._connect_timeout)
                check_at = now + _LIVENESS_CHECK_S
            switch = self._waiter_cls(self._hub)
            timer = self._loop.timer(max(0.0, min(until, check_at) - now))
            timer.start(switch.switch, self._TIMED_OUT)
            event._waiter = switch
            try:
                switch.get()
            finally:
                event._waiter = None
                timer.close()
            if event._set:
                return True

    def close(self, linger: float = 0.0) -> None:
        """Close the socket; it first delivers what it queued, within `linger` seconds."""
        self._closed = True
        self._requests.clear()
        if self._retry_timer is not None:
            self._retry_timer.close()
            self._retry_timer = None
        self._io.stop()
        self._io.close()
        self._liveness.close()
        self._sock.close(linger=int(linger * 1000))
