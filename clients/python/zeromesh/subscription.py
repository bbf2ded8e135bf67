# SPDX-License-Identifier: MIT
"""Subscribing to the broker's PUB endpoint, with gap detection."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import zmq

from zeromesh.protocol import codec
from zeromesh.protocol.errors import ProtocolError

from . import endpoints as endpoint_lists
from .messages import Event
from .sockets import connect_sub

log = logging.getLogger("zeromesh.client")


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
    """

    def __init__(self, ctx: Any, endpoint: str | Sequence[str], prefixes: tuple[str, ...] = ()) -> None:
        self.endpoints = endpoint_lists.parse(endpoint)
        self.endpoint = endpoint_lists.joined(self.endpoints)
        self._sock = connect_sub(ctx, self.endpoints)
        self._gaps = GapTracker()
        self.closed = False
        for prefix in prefixes or ("",):
            self.subscribe(prefix)

    def subscribe(self, prefix: str) -> None:
        self._sock.setsockopt(zmq.SUBSCRIBE, prefix.encode("utf-8"))

    def unsubscribe(self, prefix: str) -> None:
        self._sock.setsockopt(zmq.UNSUBSCRIBE, prefix.encode("utf-8"))

    def next(self, timeout: float | None = None) -> Event | None:
        """The next event, or None if none arrives within `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if deadline is None:
                ready = self._sock.poll(None)
            else:
                ready = self._sock.poll(max(0, int((deadline - time.monotonic()) * 1000)))
            if not ready:
                return None
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
            self._sock.close(linger=0)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
