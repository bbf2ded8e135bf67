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
from zeromesh.protocol import codec
from zeromesh.protocol.errors import ProtocolError

from . import errors
from .errors import ZeromeshError
from .sockets import connect_dealer
from .waiters import Flag, Waiter, dispatch

log = logging.getLogger("zeromesh.client")

_DRAIN_MAX = 1000
"""Messages handled per wake-up before checking the caller's waiter again."""


def _decode(frames: list[bytes]) -> codec.Envelope | None:
    try:
        return codec.unpack(frames)
    except ProtocolError as exc:
        log.warning("dropping a malformed message from the broker: %s", exc)
        return None


class _ThreadState:
    __slots__ = ("sock", "waiters", "poller")

    def __init__(self, sock: zmq.Socket) -> None:
        self.sock = sock
        self.waiters: dict[str, Waiter] = {}
        # One Poller per thread: Socket.poll() builds a new one per call (a third of a caller's CPU).
        self.poller = zmq.Poller()
        self.poller.register(sock, zmq.POLLIN)


class ThreadTransport:
    """One DEALER per thread. zmq sockets are not thread-safe, and a call reads
    only its own thread's socket, so threads never steal each other's answers."""

    def __init__(self, ctx: zmq.Context, endpoint: str) -> None:
        self._ctx = ctx
        self._endpoint = endpoint
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sockets: list[tuple[weakref.ref, zmq.Socket]] = []
        self._closed = False

    def _state(self) -> _ThreadState:
        state = getattr(self._local, "state", None)
        if state is None:
            with self._lock:
                if self._closed:
                    raise ZeromeshError("the client is closed")
                # Sockets of threads that have ended are nobody's now: close them here.
                alive = []
                for ref, sock in self._sockets:
                    thread = ref()
                    if thread is None or not thread.is_alive():
                        sock.close(linger=0)
                    else:
                        alive.append((ref, sock))
                state = _ThreadState(connect_dealer(self._ctx, self._endpoint))
                alive.append((weakref.ref(threading.current_thread()), state.sock))
                self._sockets = alive
            self._local.state = state
        return state

    def new_event(self) -> Flag:
        return Flag()

    def register(self, keys: Iterable[str], waiter: Waiter) -> None:
        waiters = self._state().waiters
        for key in keys:
            waiters[key] = waiter

    def unregister(self, keys: Iterable[str]) -> None:
        waiters = self._state().waiters
        for key in keys:
            waiters.pop(key, None)

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

    def wait(self, waiter: Waiter, until: float) -> bool:
        state = self._state()
        sock = state.sock
        while not waiter.event.is_set():
            remaining = until - time.monotonic()
            if remaining <= 0:
                return False
            if state.poller.poll(max(1, int(remaining * 1000))):
                for _ in range(_DRAIN_MAX):
                    try:
                        frames = recv_frames(sock, NOBLOCK)
                    except zmq.Again:
                        break
                    env = _decode(frames)
                    if env is not None:
                        dispatch(env, state.waiters)
        return True

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for _, sock in self._sockets:
                sock.close(linger=0)
            self._sockets = []


class GreenTransport:
    """One zmq.green DEALER shared by all greenlets. A reader greenlet routes each
    answer to its waiter; a lock keeps one greenlet's multipart send whole."""

    def __init__(self, ctx: Any, endpoint: str) -> None:
        import gevent
        import gevent.event
        import gevent.lock

        self._gevent = gevent
        self._event_cls = gevent.event.Event
        self._endpoint = endpoint
        self._sock = connect_dealer(ctx, endpoint)
        self._waiters: dict[str, Waiter] = {}
        self._send_lock = gevent.lock.Semaphore()
        self._reader = gevent.spawn(self._read_loop)

    def _read_loop(self) -> None:
        sock = self._sock
        while True:
            try:
                try:
                    # Drain what is there without the green machinery; block (cooperatively) only when empty.
                    frames = recv_frames(sock, NOBLOCK)
                except zmq.Again:
                    frames = sock.recv_multipart()
            except zmq.ZMQError:
                return  # socket closed
            env = _decode(frames)
            if env is not None:
                dispatch(env, self._waiters)

    def new_event(self) -> Any:
        return self._event_cls()

    def register(self, keys: Iterable[str], waiter: Waiter) -> None:
        for key in keys:
            self._waiters[key] = waiter

    def unregister(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._waiters.pop(key, None)

    def send(self, frames: list[bytes], deadline: float) -> None:
        with self._send_lock:
            try:  # the usual case: room in the queue, so no Timeout object and no green wait
                send_frames(self._sock, frames, NOBLOCK)
                return
            except zmq.Again:
                pass
        remaining = max(0.0, deadline - time.monotonic())
        timeout = self._gevent.Timeout(remaining)
        timeout.start()
        try:
            with self._send_lock:
                self._sock.send_multipart(frames)
        except self._gevent.Timeout as exc:
            if exc is not timeout:
                raise
            raise errors.TimeoutError(f"could not queue a message for {self._endpoint} "
                                      "(send queue full: is the broker down?)") from None
        finally:
            timeout.close()

    def wait(self, waiter: Waiter, until: float) -> bool:
        return bool(waiter.event.wait(max(0.0, until - time.monotonic())))

    def close(self) -> None:
        self._reader.kill(block=False)
        self._sock.close(linger=0)
