# SPDX-License-Identifier: MIT
"""Flipping a feature switch, as `zeromesh feature` and the console both do it: write the Redis hash
`zeromesh:features`, announce it on `zeromesh.feature`, and invalidate the cached pages tagged
`feature:NAME`. Each half can fail alone; the caller is told which, never a success it did not see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .features import event_body
from .names import FEATURE_TAG_PREFIX, FEATURE_TOPIC, FEATURES_KEY, INVALIDATE_TAG


@dataclass(frozen=True)
class Flipped:
    """What happened: each field is None when that half was done, else why it was not."""

    not_kept: str | None  # the hash was not written
    not_announced: str | None  # the broker did not confirm the events

    @property
    def done(self) -> bool:
        return self.not_kept is None and self.not_announced is None


def flip(client: Any, redis: Any, name: str, on: bool, redis_where: str = "Redis") -> Flipped:
    """Switch `name` on or off through `redis` (None: no Redis) and `client`.

    The announcement counts as made once a ping sent after it is answered: one connection keeps
    order, so the broker has taken the events. When the ping fails, what is still queued is dropped
    at close (linger 0), so that it cannot reach a broker that comes up after we said it did not.
    """
    from zeromesh.errors import ZeromeshError

    not_kept = "Redis is off: ZEROMESH_REDIS_URL=none" if redis is None else None
    if redis is not None:
        try:
            redis.hset(FEATURES_KEY, name, "on" if on else "off")
        except Exception as exc:  # redis errors, OSError
            not_kept = f"{redis_where}: {exc}"
    not_announced = None
    try:
        client.publish(FEATURE_TOPIC, event_body(name, on))
        # Cached pages that used the feature carry this tag: they follow the switch.
        client.publish(INVALIDATE_TAG, FEATURE_TAG_PREFIX + name)
        client.ping()
    except ZeromeshError as exc:
        client.linger = 0
        not_announced = str(exc) or type(exc).__name__
    return Flipped(not_kept, not_announced)


def listing(redis: Any) -> dict[str, str]:
    """The hash as name -> value (as stored: "on", "off", or what someone wrote by hand)."""
    raw = redis.hgetall(FEATURES_KEY)
    out = {}
    for key, value in raw.items():
        k = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
        out[k] = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return dict(sorted(out.items()))


class Switchboard:
    """flip() and listing() bound to one Redis: what the console is handed by the CLI (the console,
    in the client's layer, does not import the nodes)."""

    def __init__(self, redis: Any, redis_where: str = "Redis") -> None:
        self.redis = redis
        self.redis_where = redis_where

    def flip(self, client: Any, name: str, on: bool) -> Flipped:
        return flip(client, self.redis, name, on, self.redis_where)

    def listing(self) -> dict[str, str]:
        """The switches; raises ValueError without Redis, the client's error when it is down."""
        if self.redis is None:
            raise ValueError("no Redis configured (ZEROMESH_REDIS_URL=none)")
        return listing(self.redis)
