# SPDX-License-Identifier: MIT
"""Feature switches: the Redis hash `zeromesh:features` at start, `zeromesh.feature` events at once.

A feature nobody switched is on. Values in the hash are "on" or "off"
("1"/"0", "true"/"false", "yes"/"no" are read too, for hand-edited hashes).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .names import FEATURES_KEY

log = logging.getLogger("zeromesh.nodes.features")

_ON = {"on", "1", "true", "yes"}
_OFF = {"off", "0", "false", "no"}


def parse_switch(value: Any) -> bool | None:
    """True/False for a recognised value, None otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).strip().lower()
    if text in _ON:
        return True
    if text in _OFF:
        return False
    return None


def parse_event(body: bytes) -> tuple[str, bool] | None:
    """(name, on) from a `zeromesh.feature` body, or None if it is not one."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"]:
        return None
    on = parse_switch(data.get("on"))
    return None if on is None else (data["name"], on)


def event_body(name: str, on: bool) -> bytes:
    return json.dumps({"name": name, "on": on}, separators=(",", ":")).encode()


class FeatureSwitches:
    """Which features are on. Read from anywhere (a dict lookup); written by the subscriber."""

    def __init__(self, initial: dict[str, bool] | None = None) -> None:
        self._state: dict[str, bool] = dict(initial or {})
        self.loaded = False  # the Redis hash has been read at least once

    def is_on(self, name: str) -> bool:
        return self._state.get(name, True)

    __call__ = is_on  # templates call feature("recommendations")

    def set(self, name: str, on: bool) -> None:
        if self._state.get(name, True) != on:
            log.info("feature %s switched %s", name, "on" if on else "off")
        self._state[name] = on

    def apply_event(self, body: bytes) -> tuple[str, bool] | None:
        parsed = parse_event(body)
        if parsed is None:
            log.warning("ignoring a malformed feature event: %r", body[:200])
            return None
        self.set(*parsed)
        return parsed

    def load(self, redis: Any) -> None:
        """Replace the state with the hash (raises the client's error if Redis is down)."""
        raw = redis.hgetall(FEATURES_KEY)
        state: dict[str, bool] = {}
        for key, value in raw.items():
            name = key.decode() if isinstance(key, bytes) else str(key)
            on = parse_switch(value)
            if on is None:
                log.warning("feature %s has unreadable value %r in %s; treating it as on", name, value, FEATURES_KEY)
                continue
            state[name] = on
        for name in set(self._state) | set(state):
            self.set(name, state.get(name, True))
        self.loaded = True

    def snapshot(self) -> dict[str, bool]:
        return dict(self._state)
