# SPDX-License-Identifier: MIT
"""The gevent-mode Transport: one DEALER shared by the greenlets of one hub."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import zmq

from zeromesh.protocol import codec, wire
from zeromesh.protocol.curve_certs import ClientCurve
from zeromesh.protocol.fastio import NOBLOCK, recv_frames_nowait, send_frames

from . import errors
from .endpoints import BrokerMoved, BrokerRing
from .errors import ZeromeshError
from .liveness import Liveness, Reached
from .sockets import new_dealer
from .transport import Answer, Transport, check_broker, check_refused, check_refused_send, decode
from .waiters import ReplyWaiter, Waiter, dispatch

_DRAIN_MAX = 1000
"""Messages handled per wake-up before letting other greenlets run."""

_F_REQUEST = codec.command_frame(wire.REQUEST)
_BATCH_BODY_MAX = wire.MIN_BODY_LIMIT
"""Largest request body a green client sends together with others: within any broker's limit,
since a message with one body over the limit is refused whole (SPEC section 10)."""
_BATCH_RETRY_S = 0.005

_LIVENESS_CHECK_S = 0.25
"""How often a call that has waited `connect_timeout` looks at the connection again."""

_REFUSAL_CHECK_S = 0.1
"""How often a waiting call looks for a refused handshake (handshake.py), from its start."""


class GreenTransport(Transport):
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
    batches = True

    def __init__(self, ctx: Any, ring: BrokerRing, connect_timeout: float, curve: ClientCurve | None = None) -> None:
        import gevent
        import gevent.hub

        self._gevent = gevent
        self._waiter_cls = gevent.hub.Waiter
        self.ring = ring
        self._connect_timeout = connect_timeout
        self._curve = curve
        # A plain socket on the (green) context: the green wrapper's per-frame bookkeeping is what this avoids.
        self._plain_ctx: zmq.Context = zmq.Context.shadow(ctx.underlying)
        self._reached = Reached()
        self._waiters: dict[str, Waiter] = {}
        self._hub = gevent.get_hub()
        self._loop = self._hub.loop
        self._closed = False
        self._drain_pending = False
        self._requests: dict[str, tuple[bytes, bytes]] = {}  # the next batch: id -> (header, body) frames
        self._batch_pending = False  # a callback or retry timer will send it
        self._retry_timer: Any = None
        self._connect()

    def _connect(self) -> None:
        """A socket to the ring's current broker, read by a watcher in the hub."""
        self._sock_generation = self.ring.generation
        endpoint = self.ring.current
        self._sock = new_dealer(self._plain_ctx, self._curve, self.ring.index)
        self._liveness = Liveness(self._sock, endpoint, self._connect_timeout, self._reached)
        self._sock.connect(endpoint)  # after the monitor: it must see the first handshake
        # ZMQ_FD is edge-triggered: it signals "ZMQ_EVENTS may have changed", and a send may consume that
        # signal while processing libzmq's commands. So the socket is drained to EAGAIN whenever the fd
        # is readable and once (coalesced) after any sends in a loop iteration.
        self._io = self._loop.io(self._sock.getsockopt(zmq.FD), 1)
        self._io.start(self._drain)

    def _follow_ring(self) -> None:
        """The client moved to another broker: leave the old socket (what it queued is for a broker
        the client gave up) and connect to the new one. Waiters stay: a push_many resends on it."""
        if self._sock_generation == self.ring.generation or self._closed:
            return
        self._io.stop()
        self._io.close()
        self._liveness.close()
        self._sock.close(linger=0)
        self._connect()

    def _drain(self) -> None:
        """Runs in the hub: route every waiting message to its waiter (never blocks)."""
        self._drain_pending = False
        if self._closed:
            return
        sock = self._sock
        waiters = self._waiters
        for _ in range(_DRAIN_MAX):
            try:
                frames = recv_frames_nowait(sock)
            except zmq.ZMQError:
                return  # socket closed
            if frames is None:
                return
            self._reached.ever = True
            self.ring.failed = 0
            env = decode(frames)
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
            chunk = items[start : start + step]
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
        self._follow_ring()
        if self._requests:
            self._send_requests()  # what was asked first leaves first
        while True:
            try:
                send_frames(self._sock, frames, NOBLOCK)
                break
            except zmq.Again:
                # Send queue full (the broker is away, or refused the handshake so libzmq dropped the
                # connection): rare, so poll rather than track writability.
                check_refused_send(self.ring, self._liveness, self._sock_generation)
                self._follow_ring()  # moved on from a refusing broker: send to the next one
                if time.monotonic() >= deadline:
                    raise errors.TimeoutError(
                        f"could not queue a message for {self.ring.current} (send queue full: is the broker down?)"
                    ) from None
                self._gevent.sleep(0.005)
        self._schedule_drain()

    def call_reply(self, rid: str, frames: list[bytes], until: float, batch: bool = False) -> Answer | None:
        waiter = ReplyWaiter(self._Event())
        if not self._call(rid, frames, waiter, until, batch):
            return None
        if waiter.error is not None:
            return {}, b"", waiter.error
        assert waiter.header is not None  # the event is set by a reply or an error
        return waiter.header, waiter.body, None

    def _call(self, key: str, frames: list[bytes], waiter: Waiter, until: float, batch: bool) -> bool:
        """register + send + wait + unregister for one answer.

        batch: frames are one REQUEST item whose header the broker will surely accept; it
        may then leave together with other greenlets' requests (see the class docstring).
        """
        self._waiters[key] = waiter
        try:
            self._follow_ring()
            generation = self._sock_generation
            if batch and not self._closed and len(frames[2]) <= _BATCH_BODY_MAX:
                self._queue_request(key, frames)
            else:
                self.send(frames, until)
            return self.wait(waiter, until, generation)
        finally:
            self._waiters.pop(key, None)
            if self._requests:
                self._requests.pop(key, None)  # gave up before the batch left: it never will

    def wait(self, waiter: Waiter, until: float, generation: int | None = None) -> bool:
        """True once the waiter's event is set, False at `until`; UnreachableError when the
        socket has had no live connection for `connect_timeout` while we waited that long (or,
        with several endpoints, none had one); BrokerMoved when the client moved to another
        broker after `generation` (default: since the wait began)."""
        event = waiter.event
        if event._set:
            return True
        started = time.monotonic()
        live_at = started + self._connect_timeout
        check_at = started + min(_REFUSAL_CHECK_S, self._connect_timeout)
        if generation is None:
            generation = self._sock_generation
        ring = self.ring
        while True:
            now = time.monotonic()
            if until - now <= 0:
                return False
            if ring.generation != generation:
                delivered = self._liveness.had_connection() if self._sock_generation == generation else True
                self._follow_ring()
                raise BrokerMoved(ring.endpoint_of(generation), ring.current, delivered)
            if now >= check_at:
                try:
                    if now >= live_at:
                        check_broker(ring, self._liveness, generation, self._connect_timeout)
                    else:
                        check_refused(ring, self._liveness, generation)
                finally:
                    self._follow_ring()  # after a move (or giving up on the list) the socket follows at once
                if now < live_at:
                    check_at = min(now + _REFUSAL_CHECK_S, live_at)
                else:
                    check_at = now + (_LIVENESS_CHECK_S if not ring.several else min(_LIVENESS_CHECK_S, 0.1))
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
