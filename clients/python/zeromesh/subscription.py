# SPDX-License-Identifier: MIT
"""Subscribing to the broker's PUB endpoint, with gap detection."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import zmq

from zeromesh.protocol import codec
from zeromesh.protocol.curve_certs import CertificateError, ClientCurve
from zeromesh.protocol.errors import ProtocolError

from . import endpoints as endpoint_lists
from .errors import AuthenticationError
from .handshake import HandshakeWatch
from .messages import Event
from .sockets import connect_sub, new_sub

log = logging.getLogger("zeromesh.client")

_REFUSAL_CHECK_MS = 100
"""How often a waiting next() looks for a refused handshake."""


class _BrokerSeen:
    __slots__ = ("epoch", "last")

    def __init__(self, epoch: str) -> None:
        self.epoch = epoch
        self.last: dict[str, int] = {}


class GapTracker:
    """Decides whether an event proves that earlier ones were missed (SPEC 7), per broker.

    Within one broker epoch each topic counts 1, 2, 3...: a jump means loss.
    A new epoch means that broker restarted; if this subscriber had seen
    anything from it before, it cannot know what the old broker published
    last, so the first event of the new epoch is a gap too. The first event
    of a topic, and the first from a broker, is not a gap: earlier events
    predate the subscription. Events name their broker (`broker`, "" from
    brokers that do not), since a subscriber hears every broker of a mesh.
    """

    def __init__(self) -> None:
        self.brokers: dict[str, _BrokerSeen] = {}

    def observe(self, topic: str, seq: int, epoch: str, broker: str = "") -> bool:
        seen = self.brokers.get(broker)
        if seen is None:
            seen = self.brokers[broker] = _BrokerSeen(epoch)
            gap = False
        elif epoch != seen.epoch:
            gap = True
            seen.epoch = epoch
            seen.last = {}
        else:
            last = seen.last.get(topic)
            gap = last is not None and seq != last + 1
        seen.last[topic] = seq
        return gap


class Subscription:
    """Events whose topic starts with one of the prefixes ("" = every topic), from every PUB
    endpoint of `endpoint` (a list, or a comma-separated string): one SUB socket connected to
    each, so a mesh of several brokers is heard whole, gaps judged per broker.

    Iterate it, or call next(timeout). ZeroMQ PUB/SUB drops rather than
    blocks, and a new SUB misses what is published before its subscription
    reaches the broker (the slow joiner): watch Event.gap.

    `curve`: the client's CURVE settings (Client passes its own); their server keys are one
    for every endpoint or one per endpoint, in order. A PUB endpoint that refuses the
    handshake (no key, a key without the subscriber role, a wrong server key) is logged at
    ERROR and raised (AuthenticationError) from the next call of next(), once; libzmq keeps
    trying it, and a later refusal after a handshake that succeeded is raised again.
    """

    def __init__(
        self,
        ctx: Any,
        endpoint: str | Sequence[str],
        prefixes: tuple[str, ...] = (),
        *,
        curve: ClientCurve | None = None,
    ) -> None:
        self.endpoints = endpoint_lists.parse(endpoint)
        self.endpoint = endpoint_lists.joined(self.endpoints)
        if curve is not None and len(curve.server_keys) not in (1, len(self.endpoints)):
            raise CertificateError(
                f"ZEROMESH_CURVE_SERVER lists {len(curve.server_keys)} keys for {len(self.endpoints)} PUB "
                "endpoints: give one key for every broker, or one per endpoint in the same order"
            )
        self._sock = new_sub(ctx)
        self._watch = HandshakeWatch(self._sock)  # before connect: it must see the first handshakes
        self._logged: set[str] = set()  # refused endpoints already logged (once per refusal)
        connect_sub(self._sock, self.endpoints, curve)
        self._gaps = GapTracker()
        self.closed = False
        for prefix in prefixes or ("",):
            self.subscribe(prefix)

    def subscribe(self, prefix: str) -> None:
        self._sock.setsockopt(zmq.SUBSCRIBE, prefix.encode("utf-8"))

    def unsubscribe(self, prefix: str) -> None:
        self._sock.setsockopt(zmq.UNSUBSCRIBE, prefix.encode("utf-8"))

    def next(self, timeout: float | None = None) -> Event | None:
        """The next event, or None if none arrives within `timeout` seconds.

        Raises AuthenticationError once when a PUB endpoint refuses this subscriber's handshake.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.closed:
                return None  # closed meanwhile (by another greenlet or thread)
            self._check_refused()
            # In slices, so a refusal that comes while waiting is raised within one.
            wait_ms = _REFUSAL_CHECK_MS
            if deadline is not None:
                wait_ms = min(wait_ms, max(0, int((deadline - time.monotonic()) * 1000)))
            try:
                ready = self._sock.poll(wait_ms)
            except zmq.ZMQError:
                if self.closed:
                    return None  # closed while we waited
                raise
            if not ready:
                if deadline is not None and time.monotonic() >= deadline:
                    self._check_refused()
                    return None
                continue
            frames = self._sock.recv_multipart(zmq.NOBLOCK)
            try:
                topic, header, body = codec.unpack_event(frames)
            except ProtocolError as exc:
                log.warning("dropping a malformed event from %s: %s", self.endpoint, exc)
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                continue
            seq = header.get("seq", 0)
            epoch = header.get("epoch", "")
            broker = header.get("broker") or ""
            return Event(
                topic=topic,
                body=body,
                headers=header.get("headers") or {},
                seq=seq,
                epoch=epoch,
                id=header["id"],
                gap=self._gaps.observe(topic, seq, epoch, broker),
                broker=broker,
            )

    def _check_refused(self) -> None:
        """Log and raise a refusal once per endpoint (until a handshake with it succeeds again):
        the caller hears of it, and then goes on receiving from the other endpoints."""
        refused = self._watch.read()
        self._logged &= refused.keys()  # an endpoint that got in since: its next refusal is news
        news = [message for endpoint, message in refused.items() if endpoint not in self._logged]
        if not news:
            return
        for message in news:
            log.error("subscription: %s", message)
        self._logged.update(refused.keys())
        raise AuthenticationError(news[0])

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        if self.closed:
            raise StopIteration
        event = self.next()
        if event is None:  # pragma: no cover - next(None) only returns events
            raise StopIteration
        return event

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._watch.close()
            self._sock.close(linger=0)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
