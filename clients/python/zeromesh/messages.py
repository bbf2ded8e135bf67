# SPDX-License-Identifier: MIT
"""Plain values handed to users: replies, events, and the one body coercion rule."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Body = bytes | bytearray | memoryview | str


def to_bytes(body: Body | None) -> bytes:
    """Bodies travel as one opaque frame: bytes as they are, str as UTF-8, None as empty."""
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    raise TypeError(f"a body must be bytes or str, not {type(body).__name__}")


@dataclass(frozen=True)
class Reply:
    """A reply body with the headers the handler attached. A handler may return one."""

    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


@dataclass(frozen=True)
class Event:
    """One message from the PUB endpoint.

    `gap` is True when this subscriber has certainly missed events before this
    one: the topic's seq jumped within an epoch, or the broker restarted (new
    epoch) after this subscriber had already seen events.
    """

    topic: str
    body: bytes
    headers: dict[str, Any]
    seq: int
    epoch: str
    id: str
    gap: bool = False
    broker: str = ""
    """The broker that published it (its name; "" from brokers that do not say): sequence
    numbers and epochs are per broker."""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")
