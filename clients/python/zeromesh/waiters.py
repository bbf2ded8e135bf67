# SPDX-License-Identifier: MIT
"""Who is waiting for which answer, and routing each answer to its waiter.

A call registers a Waiter under every id it expects an answer for (a request
id, or job ids of pushes). `dispatch` hands each decoded message from the
broker to the waiter registered under its `re` (REPLY, ERROR) or `ids`
(CONFIRM). Answers nobody waits for any more are stale and dropped.
"""

from __future__ import annotations

import logging
from typing import Any

from zeromesh.protocol import wire
from zeromesh.protocol.codec import Envelope

log = logging.getLogger("zeromesh.client")


PING_PREFIX = "ping:"
"""Waiters for a HEARTBEAT answer are registered under keys with this prefix."""


class Flag:
    """A non-blocking event for thread mode, where the waiting thread pumps its own socket."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set


class Waiter:
    """Base: ignores everything. `event` is set whenever the waiter made progress."""

    def __init__(self, event: Any) -> None:
        self.event = event

    def on_confirm(self, job_id: str) -> None:
        pass

    def on_confirm_batch(self, message_id: str) -> None:
        pass

    def on_duplicate(self, job_id: str, holder: str) -> None:
        pass

    def on_reply(self, header: dict, body: bytes) -> None:
        pass

    def on_error(self, header: dict) -> None:
        pass


class ReplyWaiter(Waiter):
    """One request or admin call: the first REPLY or ERROR for its id wins."""

    def __init__(self, event: Any) -> None:
        super().__init__(event)
        self.header: dict | None = None
        self.body = b""
        self.error: dict | None = None

    def on_reply(self, header: dict, body: bytes) -> None:
        if not self.event.is_set():
            self.header, self.body = header, body
            self.event.set()

    def on_error(self, header: dict) -> None:
        if not self.event.is_set():
            self.error = header
            self.event.set()


def dispatch(env: Envelope, waiters: dict[str, Waiter]) -> None:
    """Route one message from the broker to the waiters it answers."""
    command = env.command
    if command == wire.CONFIRM:
        header = env.header
        # A unique push whose key another job holds: confirmed, not queued (SPEC 16.6).
        for job_id, holder in (header.get("duplicates") or {}).items():
            waiter = waiters.get(job_id)
            if waiter is not None and isinstance(holder, str):
                waiter.on_duplicate(job_id, holder)
        for job_id in header["ids"]:
            waiter = waiters.get(job_id)
            if waiter is not None:
                waiter.on_confirm(job_id)
        for message_id in header.get("batches") or ():
            waiter = waiters.get(message_id)
            if waiter is not None:
                waiter.on_confirm_batch(message_id)
    elif command == wire.REPLY:
        for header, body in env.items:
            waiter = waiters.get(header["re"])
            if waiter is not None:
                waiter.on_reply(header, body)
    elif command == wire.ERROR:
        re = env.header.get("re")
        waiter = waiters.get(re) if re else None
        if waiter is not None:
            waiter.on_error(env.header)
        elif not re:
            # Not tied to a call (e.g. a frame the broker could not read): nobody to tell.
            log.warning("broker error %s: %s", env.header.get("code"), env.header.get("message"))
    elif command == wire.HEARTBEAT:
        # A HEARTBEAT answers a client's ping; it names no call, so wake every ping.
        for key in [k for k in waiters if k.startswith(PING_PREFIX)]:
            waiters[key].on_reply(env.header, b"")
    else:
        log.debug("ignoring unexpected %s from the broker", env.name)
