# SPDX-License-Identifier: MIT
"""gather(): the parts of a page fetched in parallel from other services, under one deadline.

    got = gather(meta=Part("cards", {"op": "get", "id": "42"}),
                 reco=Part("reco", b"42", optional=True, default=[], feature="recommendations"))

Each part is one request through the broker, in its own greenlet (requests made in one
turn of the loop leave as one REQUEST message, see the green client). All parts
share one deadline (the page's, minus a margin for rendering). A required
part that fails or is late fails the whole gather at once (PartFailed); an
optional one takes its default and is listed in `degraded`. A part whose
feature is switched off is not requested at all: it takes its default.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .features import FeatureSwitches

log = logging.getLogger("zeromesh.nodes.gather")

Decoder = Callable[[bytes], Any]

_DECODERS: dict[str, Decoder] = {
    "json": lambda body: json.loads(body) if body else None,
    "text": lambda body: body.decode("utf-8"),
    "bytes": lambda body: body,
}


@dataclass
class Part:
    """One request of a gather.

    `body`: bytes or str as they are; anything else (dict, list, number) is sent
    as JSON. `decode`: "json" (default), "text", "bytes" or a function of the
    reply body. `timeout`: a tighter limit than the gather's deadline, in
    seconds (never a looser one).
    """

    service: str
    body: Any = b""
    optional: bool = False
    default: Any = None
    feature: str | None = None
    headers: dict[str, Any] | None = None
    decode: str | Decoder = "json"
    timeout: float | None = None

    def encoded_body(self) -> bytes | str:
        if isinstance(self.body, (bytes, str)):
            return self.body
        return json.dumps(self.body, separators=(",", ":"))

    def decoder(self) -> Decoder:
        if callable(self.decode):
            return self.decode
        try:
            return _DECODERS[self.decode]
        except KeyError:
            raise ValueError(f"decode must be one of {sorted(_DECODERS)} or a function, not {self.decode!r}") from None


class PartFailed(Exception):
    """A required part failed or was late; the page cannot be rendered."""

    def __init__(self, name: str, service: str, reason: str) -> None:
        self.name = name
        self.service = service
        self.reason = reason
        super().__init__(f"required part {name!r} (service {service!r}) failed: {reason}")


@dataclass
class Gathered:
    """The values by part name, and what happened to the parts that did not answer."""

    values: dict[str, Any] = field(default_factory=dict)
    degraded: dict[str, str] = field(default_factory=dict)  # name -> why it took its default
    skipped: list[str] = field(default_factory=list)  # feature off: never requested
    features: set[str] = field(default_factory=set)  # features consulted (on or off)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def gather(
    client: Any,
    parts: dict[str, Part],
    deadline: float,
    features: FeatureSwitches | None = None,
    trace: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    parent: str | None = None,
) -> Gathered:
    """Fetch `parts` in parallel through `client` (a green zeromesh Client) by `deadline` (clock time).

    `trace` and `parent` (the page request's trace and id) go on every part's REQUEST explicitly:
    the parts run in greenlets of their own, which do not inherit the handler's context (SPEC 12.1)."""
    import gevent
    from gevent.event import Event

    result = Gathered()
    started: list[tuple[str, Part, Any]] = []  # (name, part, greenlet) in the order given
    finished: dict[str, tuple[bool, Any]] = {}  # name -> outcome, in the order the parts finished
    wake = Event()  # set once every part finished, or a required one failed

    def call(name: str, part: Part, timeout: float) -> None:
        # Outcomes, not exceptions: a raw greenlet dying with an exception is printed by the hub.
        try:
            reply = client.request_full(
                part.service, part.encoded_body(), timeout=timeout, headers=part.headers, trace=trace, parent=parent
            )
            outcome: tuple[bool, Any] = (True, part.decoder()(reply.body))
        except Exception as exc:
            outcome = (False, _describe(exc))
        finished[name] = outcome
        if len(finished) == len(started) or not (outcome[0] or part.optional):
            wake.set()

    def settle(name: str, part: Part, reason: str) -> None:
        if not part.optional:
            raise PartFailed(name, part.service, reason)
        log.info("optional part %r (service %r) takes its default: %s", name, part.service, reason)
        result.values[name] = part.default
        result.degraded[name] = reason

    try:
        for name, part in parts.items():
            if part.feature:
                result.features.add(part.feature)
                if features is not None and not features.is_on(part.feature):
                    result.values[name] = part.default
                    result.skipped.append(name)
                    continue
            remaining = deadline - clock()
            if part.timeout is not None:
                remaining = min(remaining, part.timeout)
            if remaining <= 0:
                settle(name, part, "no time left before the deadline")
                continue
            # Raw greenlets and one event: the handler wakes once for the whole gather (not once
            # per part), and no Greenlet objects, links or multi-waits are made for each part.
            started.append((name, part, gevent.spawn_raw(call, name, part, remaining)))
        if started:
            wake.wait(timeout=max(0.0, deadline - clock()))
        # Outcomes in the order they came, so a required part that failed first is the one named.
        by_name = {name: part for name, part, _ in started}
        for name, (ok, value) in list(finished.items()):
            if ok:
                result.values[name] = value
            else:
                settle(name, by_name[name], value)
        for name, part, _ in started:
            if name not in finished:
                settle(name, part, "late: no answer by the deadline")
        return result
    finally:
        # Late parts, or all of them when one failed or the page was cancelled: stop waiting.
        # Their requests carried the same deadline, so the broker expires them too.
        for name, _, greenlet in started:
            if name not in finished and not greenlet.dead:
                gevent.kill(greenlet)
