# SPDX-License-Identifier: MIT
"""Endpoint lists (`tcp://h1:5555,tcp://h2:5555`) and which broker of a list a client uses now.

`parse` is the one parser of a list: the CLI's env module, Client, Worker and Subscription all
call it. `BrokerRing` is a producer's or caller's position in its list (SPEC, several brokers):
one broker at a time, a random start to spread load, and a move to the next endpoint (round
robin) once the current one has had no live connection for `failover_s`.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Sequence

log = logging.getLogger("zeromesh.client")

FAILOVER_S = 3.0
"""How long a client's broker may have no live connection before the client moves to the next one."""


def parse(value: str | Sequence[str]) -> list[str]:
    """A list of endpoints from a comma-separated string or a sequence of strings.

    Whitespace around items is ignored; an empty item (or an empty list) is a ValueError naming the list.
    """
    if isinstance(value, str):
        items = value.split(",")
        shown = value
    else:
        items = list(value)
        shown = ",".join(str(item) for item in items)
    out = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"an endpoint is a str, got {item!r} in {shown!r}")
        item = item.strip()
        if not item:
            raise ValueError(f"empty endpoint in {shown!r}")
        out.append(item)
    if not out:
        raise ValueError("empty endpoint list")
    return out


def joined(endpoints: Sequence[str]) -> str:
    """The list as it is written in ZEROMESH_BROKER (for messages)."""
    return ",".join(endpoints)


class BrokerMoved(Exception):
    """Internal: the client moved to another broker while a call waited (its socket is new).

    `delivered` False: the socket left never had a live connection, so what the call sent
    never reached a broker and may go to the new one whatever it was.
    """

    def __init__(self, old: str, new: str, delivered: bool = True) -> None:
        super().__init__(f"moved from {old} to {new}")
        self.old = old
        self.new = new
        self.delivered = delivered


class BrokerRing:
    """Which endpoint a client uses now, shared by all its sockets (thread-safe).

    `generation` counts moves: a socket made for an older generation is to a broker the
    client has left. `failed` counts endpoints given up in a row without a live connection;
    once every endpoint of the list has been (`exhausted`), a call reports none reachable.
    """

    def __init__(
        self, endpoints: Sequence[str], failover_s: float = FAILOVER_S, rng: random.Random | None = None
    ) -> None:
        if failover_s <= 0:
            raise ValueError(f"failover_s must be positive, got {failover_s!r}")
        self.endpoints = list(endpoints)
        self.failover_s = failover_s
        self.index = (rng or random).randrange(len(self.endpoints))
        self.generation = 0
        self.failed = 0
        self._used = [self.current]  # generation -> the endpoint used in it (one entry per move)
        self._lock = threading.Lock()
        # Endpoints left because the broker refused the handshake, since the last live connection:
        # when the list is exhausted, that (not "unreachable") is what the caller hears.
        self.refused: dict[str, str] = {}

    @property
    def several(self) -> bool:
        return len(self.endpoints) > 1

    @property
    def current(self) -> str:
        return self.endpoints[self.index]

    def endpoint_of(self, generation: int) -> str:
        """The endpoint the client used in `generation`."""
        return self._used[generation]

    def describe(self) -> str:
        return joined(self.endpoints)

    def live(self) -> None:
        """A socket of the current generation has a live connection: the count of failures starts again."""
        self.failed = 0
        if self.refused:
            self.refused.clear()

    def refusal(self) -> str | None:
        """Why a broker of the list refused this client, if one did since the last live connection."""
        refused = self.refused
        return next(reversed(refused.values())) if refused else None

    def move(self, generation: int, down_for: float, refused: str | None = None) -> tuple[bool, str, str]:
        """Leave the current endpoint, if `generation` is still current (else another socket moved
        first). Returns (every endpoint now failed in a row, old endpoint, new endpoint).
        `refused`: the broker refused the handshake (handshake.py), so it is left at once."""
        with self._lock:
            old = self.endpoints[self.index]
            if generation != self.generation:
                return False, old, self.current
            self.index = (self.index + 1) % len(self.endpoints)
            self.generation += 1
            self.failed += 1
            if refused is not None:
                self.refused[old] = refused
            exhausted = self.failed >= len(self.endpoints)
            if exhausted:
                self.failed = 0  # the next call tries the whole list again
            new = self.endpoints[self.index]
            self._used.append(new)
        if refused is not None:
            log.warning("%s; using %s", refused, new)
        else:
            log.warning("broker %s unreachable for %.1fs; using %s", old, down_for, new)
        return exhausted, old, new
