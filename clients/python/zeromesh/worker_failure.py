# SPDX-License-Identifier: MIT
"""Why a worker cannot serve: what its sessions report and Worker.run() raises.

A session whose broker refuses its handshake keeps retrying (a key may be added), and
reports the refusal once it has lasted `connect_timeout`; the worker gives up when every
session is refused. A READY the broker forbids (the key lacks the worker role, or a name
outside its patterns) ends the worker at once: retrying cannot change the key's roles.
"""

from __future__ import annotations

import logging
from typing import Any

from .errors import AuthenticationError, ZeromeshError
from .handshake import HandshakeWatch
from .realthreads import allocate_lock

log = logging.getLogger("zeromesh.worker")


class WorkerFailure:
    """Shared by a worker's sessions (set from their I/O threads or hub, read by run())."""

    def __init__(self, sessions: int) -> None:
        self._sessions = sessions
        self._lock = allocate_lock()  # a real lock: sessions report from real threads in a patched process
        self._refused: dict[int, str] = {}  # session index -> why its broker refuses it
        self._fatal: ZeromeshError | None = None

    def refused(self, index: int, message: str) -> None:
        with self._lock:
            self._refused[index] = message

    def admitted(self, index: int) -> None:
        with self._lock:
            self._refused.pop(index, None)

    def fatal(self, error: ZeromeshError) -> None:
        with self._lock:
            if self._fatal is None:
                self._fatal = error

    def error(self) -> ZeromeshError | None:
        """What run() raises now: a fatal error, or a refusal once every session is refused."""
        with self._lock:
            if self._fatal is not None:
                return self._fatal
            if self._refused and len(self._refused) >= self._sessions:
                messages = [self._refused[i] for i in sorted(self._refused)]
                return AuthenticationError("; ".join(messages))
            return None


def check_handshake(watch: HandshakeWatch, spec: Any, refused_since: float | None, now: float) -> float | None:
    """Read a session's handshake outcomes; returns since when its broker refuses it (None: it does not).

    A refusal is logged at ERROR once (until a handshake succeeds again) and, once it has lasted
    `spec.connect_timeout`, reported to the worker's failure; libzmq keeps retrying meanwhile,
    since a key may be added to the broker.
    """
    refused = watch.read()
    failure: WorkerFailure | None = spec.failure
    if refused:
        message = next(iter(refused.values()))
        if refused_since is None:
            refused_since = now
            log.error("%s (retrying)", message)
        if now - refused_since >= spec.connect_timeout and failure is not None:
            failure.refused(spec.index, message)
        return refused_since
    if watch.ever_succeeded and refused_since is not None:
        log.info("the broker at %s accepted this worker's handshake", spec.endpoint)
        if failure is not None:
            failure.admitted(spec.index)
        return None
    return refused_since
