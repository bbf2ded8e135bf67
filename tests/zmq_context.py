# SPDX-License-Identifier: MIT
"""A ZeroMQ context for one test that fails the test when a socket is left open.

The model is pyzmq's own test fixtures: remember every socket made on the context, and at the
end terminate the context in a thread with a deadline, because `term()` blocks for as long as
any socket stays open. A test that leaks a socket is told which one and where it was made.
"""

from __future__ import annotations

import os
import threading
import traceback
from typing import Any

import zmq

_ZMQ_DIR = os.path.dirname(zmq.__file__)


class SocketLeak(AssertionError):
    """A test left sockets open, or its context did not terminate in time."""


def _creation_site() -> str:
    """Where the socket was made: the innermost caller outside pyzmq and this module, and the test
    function above it when that caller is a helper."""
    frames = [
        f for f in traceback.extract_stack()[:-2] if f.filename != __file__ and not f.filename.startswith(_ZMQ_DIR)
    ]
    if not frames:
        return "unknown"
    maker = frames[-1]
    site = f"{os.path.relpath(maker.filename)}:{maker.lineno} ({maker.name})"
    test = next((f for f in reversed(frames) if f.name.startswith("test")), None)
    if test is not None and test is not maker:
        site += f", called from {os.path.relpath(test.filename)}:{test.lineno} ({test.name})"
    return site


class TrackedContext(zmq.Context):
    """A private context whose sockets are all remembered (strongly, so a leak cannot hide in gc)."""

    opened: list[tuple[zmq.Socket, str]]  # declared: pyzmq treats unknown attributes as socket options

    def __init__(self) -> None:
        super().__init__()
        self.opened = []

    def socket(self, socket_type: int, socket_class: Any = None, **kwargs: Any) -> zmq.Socket:
        sock = super().socket(socket_type, socket_class, **kwargs)
        sock.setsockopt(zmq.LINGER, 0)  # a closed socket never holds term() up with unsent messages
        self.opened.append((sock, _creation_site()))
        return sock

    def left_open(self) -> list[str]:
        """What is still open, as 'DEALER made at file:line'."""
        return [f"{zmq.SocketType(sock.type).name} made at {site}" for sock, site in self.opened if not sock.closed]

    def finish(self, timeout: float) -> None:
        """Close what the test left open, terminate within `timeout` seconds, and raise SocketLeak
        naming the leaks (the context is terminated either way, so later tests are unaffected)."""
        leaks = self.left_open()
        for sock, _site in self.opened:
            if not sock.closed:
                sock.close(linger=0)
        terminator = threading.Thread(target=self.term, name="zctx-term", daemon=True)
        terminator.start()
        terminator.join(timeout)
        problems = []
        if leaks:
            problems.append(
                f"{len(leaks)} ZeroMQ socket(s) left open by the test "
                "(close them, or make them with the zsocket fixture):\n  " + "\n  ".join(leaks)
            )
        if terminator.is_alive():
            problems.append(
                f"the context did not terminate within {timeout:g} s: a socket made on it without "
                "ctx.socket() (a shadow context, zmq.Socket(ctx, ...)) is still open"
            )
        if problems:
            raise SocketLeak("\n".join(problems))


__all__ = ["SocketLeak", "TrackedContext"]
