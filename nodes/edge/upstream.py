# SPDX-License-Identifier: MIT
"""Calling the mesh for a page: flights shared by concurrent misses, and giving up when the browser leaves.

A Flight is one REQUEST in a greenlet of its own. Browsers that miss the same
cached page at once wait on the same flight (one render, not fifty). Each
waiter also watches its socket: when every browser waiting on a flight has
hung up, the flight's greenlet is killed, and the client, interrupted while
waiting, sends CANCEL so the worker holding the request can stop.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event
from gevent import get_hub

from zeromesh import errors
from zeromesh.protocol import wire

log = logging.getLogger("zeromesh.edge.upstream")

# Outcome kinds, also the `kind` label of the error metric.
OK = "ok"
NO_WORKERS = "no_workers"
TIMEOUT = "timeout"
REMOTE = "remote"
UNAVAILABLE = "unavailable"
CLIENT_GONE = "client_gone"
INTERNAL = "internal"

# Broker errors that say "the mesh cannot serve this right now" rather than "the handler failed":
# the browser may retry, so they answer 503 like no_responders.
_UNAVAILABLE_CODES = frozenset({wire.E_QUEUE_FULL, "worker_lost", "shutting_down", "unavailable"})


def classify(exc: BaseException) -> str:
    """The outcome kind of a failed call."""
    if isinstance(exc, errors.NoRespondersError):
        return NO_WORKERS
    if isinstance(exc, errors.TimeoutError):
        return TIMEOUT
    if isinstance(exc, errors.RemoteError) and exc.code in _UNAVAILABLE_CODES:
        return UNAVAILABLE
    if isinstance(exc, ConnectionError):  # the client's "cannot reach the broker": try again later
        return UNAVAILABLE
    return REMOTE


class ClientGone(BaseException):
    """Thrown into a greenlet waiting on the mesh when its browser hung up (see `call_watched`).

    A BaseException, like gevent.Timeout, so no `except Exception` on the way swallows it; the
    client, interrupted while waiting, sends CANCEL before it goes on.
    """


class DisconnectWatch:
    """Notices the peer closing its end of `sock` (EOF or reset), without reading any data.

    Then `on_gone` runs in the hub, or, without one, the event `gone` is set.
    Only watches while nothing else reads the socket (the request body is read
    first). Bytes of a pipelined next request mean the browser is still there:
    the watch then stops, as it cannot see past them without reading.
    """

    def __init__(self, sock: Any, on_gone: Callable[[], Any] | None = None) -> None:
        if on_gone is None:
            self.gone = gevent.event.Event()
            on_gone = self.gone.set
        self._on_gone = on_gone
        self._raw = getattr(sock, "_sock", sock)  # the non-blocking socket under gevent's wrapper
        self._io = get_hub().loop.io(sock.fileno(), 1)
        self._io.start(self._readable)

    def _readable(self) -> None:
        # Runs in the hub: must not block, hence MSG_DONTWAIT on the raw socket.
        try:
            data = self._raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        self._io.stop()
        if not data:
            self._on_gone()

    def close(self) -> None:
        self._io.stop()
        self._io.close()


def call_watched(call: Callable[[], Any], sock: Any) -> tuple[str, Any]:
    """call() in this greenlet, as (kind, value); (CLIENT_GONE, None) if the browser at `sock` left first.

    The cheap path for a request nobody else shares: no greenlet, no result
    object, no multi-wait. The watch throws ClientGone into this greenlet from
    the hub, the way gevent.Timeout throws itself; it can only fire while the
    greenlet is blocked inside call(), since it is closed before call_watched
    returns.
    """
    watch = None
    if sock is not None:
        greenlet = gevent.getcurrent()
        watch = DisconnectWatch(sock, lambda: greenlet.throw(ClientGone()))
    try:
        return OK, call()
    except ClientGone:
        return CLIENT_GONE, None
    except errors.ZeromeshError as exc:
        return classify(exc), exc
    except Exception as exc:  # the caller logs it and answers an error
        return INTERNAL, exc
    finally:
        if watch is not None:
            watch.close()


class Flight:
    """One call in its own greenlet; `result` gets (kind, value) once, whatever happens."""

    def __init__(self, call: Callable[[], Any], on_done: Callable[[Flight], None] | None = None) -> None:
        self.result: gevent.event.AsyncResult = gevent.event.AsyncResult()
        self.waiters = 0
        self._on_done = on_done
        self.greenlet = gevent.spawn(self._run, call)

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            value = call()
        except gevent.GreenletExit:
            self.result.set((CLIENT_GONE, None))
            raise
        except errors.ZeromeshError as exc:
            self.result.set((classify(exc), exc))
        except Exception as exc:  # handed to the waiters, who log it and answer an error
            self.result.set((INTERNAL, exc))
        else:
            self.result.set((OK, value))
        finally:
            if not self.result.ready():  # never leave a waiter hanging, whatever ended the call
                self.result.set((INTERNAL, None))
            if self._on_done is not None:
                self._on_done(self)

    def wait(self, watch: DisconnectWatch | None) -> tuple[str, Any]:
        """The flight's (kind, value), or (CLIENT_GONE, None) if the browser left first."""
        self.waiters += 1
        try:
            if watch is None:
                return self.result.get()
            gevent.wait([self.result, watch.gone], count=1)
            if self.result.ready():
                return self.result.get()
            return CLIENT_GONE, None
        finally:
            self.waiters -= 1
            if self.waiters == 0 and not self.result.ready():
                self.cancel()

    def cancel(self) -> None:
        """Nobody waits any more: interrupt the call (the client then sends CANCEL)."""
        if self._on_done is not None:
            self._on_done(self)  # leave the shared table now, so nobody joins a dying flight
            self._on_done = None
        self.greenlet.kill(block=False)
