# SPDX-License-Identifier: MIT
"""How a Client talks to the broker: the Transport interface and what its two kinds share.

ThreadTransport (thread_transport.py) keeps one DEALER per calling thread, and each call
reads its own thread's socket. GreenTransport (green_transport.py) shares one DEALER
between the greenlets of a hub, read by a watcher in the hub. The Client sees only this
interface, and picks one by its `green` flag.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, NoReturn

from zeromesh.protocol import codec
from zeromesh.protocol.errors import ProtocolError

from . import errors
from .endpoints import BrokerMoved, BrokerRing
from .liveness import Liveness, unreachable_message
from .waiters import Waiter

log = logging.getLogger("zeromesh.client")

Answer = tuple[dict, bytes, "dict | None"]
"""What call_reply returns: (REPLY header, body, None), or ({}, b"", ERROR header).
A plain tuple, not a record: it is made once per request on the thread caller's fast path."""


class Transport(ABC):
    """The operations a Client needs from the socket(s) that reach its broker."""

    ring: BrokerRing
    """The client's endpoints and which one it uses now (endpoints.py)."""

    batches: bool = False
    """True when call_reply(batch=True) may send a REQUEST together with other callers' ones
    (green mode); the Client then says which requests the broker will surely accept."""

    @property
    def generation(self) -> int:
        """Counts the client's moves to another broker: a message sent under an older
        generation went to a broker the client has left."""
        return self.ring.generation

    @property
    def endpoint(self) -> str:
        """The broker the client uses now."""
        return self.ring.current

    @abstractmethod
    def new_event(self) -> Any:
        """An event (set, clear, is_set) a Waiter sets on progress, of the kind wait() can wait on."""

    @abstractmethod
    def register(self, keys: Iterable[str], waiter: Waiter) -> None:
        """Route answers whose `re` (or confirmed ids) is one of `keys` to `waiter`."""

    @abstractmethod
    def unregister(self, keys: Iterable[str]) -> None:
        """Forget `keys`: their answers, if any come, are stale and dropped."""

    @abstractmethod
    def send(self, frames: list[bytes], deadline: float) -> None:
        """Queue one message; raises zeromesh.TimeoutError if it cannot be queued by `deadline`."""

    @abstractmethod
    def wait(self, waiter: Waiter, until: float) -> bool:
        """True once waiter.event is set, False at `until`; UnreachableError when the socket has had
        no live connection for connect_timeout while the call waited that long (one endpoint), or
        when no endpoint of the list had one (several); BrokerMoved when the client moved to
        another broker meanwhile."""

    @abstractmethod
    def call_reply(self, rid: str, frames: list[bytes], until: float, batch: bool = False) -> Answer | None:
        """Send a REQUEST, ADMIN or ping (HEARTBEAT) and wait for the answer whose `re` is `rid`
        (a ping's answer names no call: rid then starts with PING_PREFIX). None at `until`.
        BrokerMoved when the client moved to another broker before the answer came.

        batch: the frames are one REQUEST item the broker will surely accept (see `batches`).
        """

    @abstractmethod
    def close(self, linger: float = 0.0) -> None:
        """Let go of the socket(s); each first delivers what it queued, within `linger` seconds."""


def decode(frames: list[bytes]) -> codec.Envelope | None:
    """The message, or None (logged) when the broker sent something malformed."""
    try:
        return codec.unpack(frames)
    except ProtocolError as exc:
        log.warning("dropping a malformed message from the broker: %s", exc)
        return None


def check_live(liveness: Liveness, connect_timeout: float) -> None:
    """Raise UnreachableError when the socket has had no live connection for `connect_timeout`."""
    down = liveness.unreachable_for(connect_timeout)
    if down is not None:
        raise errors.UnreachableError(unreachable_message(liveness.endpoint, down))


def check_refused(ring: BrokerRing, liveness: Liveness, generation: int) -> None:
    """Raise AuthenticationError at once when the broker refused the socket's handshake (one
    endpoint); with several, leave that broker at once (BrokerMoved), and raise once every
    endpoint of the list has been given up in a row."""
    refused = liveness.refusal()
    if refused is None:
        return
    if not ring.several:
        raise errors.AuthenticationError(refused)
    if generation != ring.generation:
        raise BrokerMoved(ring.endpoint_of(generation), ring.current, liveness.had_connection())
    exhausted, old, new = ring.move(generation, liveness.down_for(), refused)
    if exhausted:
        _raise_exhausted(ring, old, liveness.down_for())
    raise BrokerMoved(old, new, liveness.ever_live)


def check_refused_send(ring: BrokerRing, liveness: Liveness, generation: int) -> None:
    """For a send that cannot be queued: libzmq drops the connection of a refused handshake, so
    nothing can be queued on it. Raise AuthenticationError (one endpoint, or every one refused);
    with several, move the client to the next broker (if no other socket did) and return, for the
    caller to send on the new socket."""
    refused = liveness.refusal()
    if refused is None:
        return
    if not ring.several:
        raise errors.AuthenticationError(refused)
    if generation == ring.generation:
        exhausted, old, _new = ring.move(generation, liveness.down_for(), refused)
        if exhausted:
            _raise_exhausted(ring, old, liveness.down_for())


def _raise_exhausted(ring: BrokerRing, old: str, down: float) -> NoReturn:
    refused = ring.refusal()
    ring.refused.clear()
    if refused is not None:
        raise errors.AuthenticationError(f"{refused} (and no other broker of {ring.describe()} was usable)")
    raise errors.UnreachableError(
        f"cannot reach any broker of {ring.describe()} "
        f"(no connection to {old} for {down:.1f}s, nor to the others before it)"
    )


def check_broker(ring: BrokerRing, liveness: Liveness, generation: int, connect_timeout: float) -> None:
    """check_live for a list of endpoints; with one endpoint, exactly check_live.

    With several: BrokerMoved when the client has moved since `generation` (the socket is to a
    broker it left), or moves it now when the socket has had no live connection for
    failover_s (connect_timeout while the client never reached any broker); UnreachableError
    once every endpoint of the list has been given up in a row.
    """
    check_refused(ring, liveness, generation)
    if not ring.several:
        check_live(liveness, connect_timeout)
        return
    if generation != ring.generation:
        raise BrokerMoved(ring.endpoint_of(generation), ring.current, liveness.had_connection())
    down = liveness.down_for()
    if down == 0.0:
        ring.live()
        return
    limit = ring.failover_s if liveness.reached.ever else connect_timeout
    if down < limit:
        return
    exhausted, old, new = ring.move(generation, down)
    if exhausted:
        _raise_exhausted(ring, old, down)
    raise BrokerMoved(old, new, liveness.ever_live)
