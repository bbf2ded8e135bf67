# SPDX-License-Identifier: MIT
"""The registry of brokers in Redis, run in the link's thread: claim our name, refresh it every
period, list every broker for ADMIN status, and leave at a clean stop.

Each broker is a hash `zeromesh:broker:NAME` {name, epoch, endpoint, pub_endpoint, started,
last_seen} that expires TTL_S after its last refresh, and a member NAME of the set
`zeromesh:brokers`. The name owns the in-flight lists `zeromesh:inflight:Q:@broker:NAME`, so two
live brokers must never share it: a broker whose name is held by another epoch seen less than
TTL_S ago refuses to start (NameTaken), unless that other one registered the very endpoint we
have just bound (a restart on the same machine after a crash: it cannot still be listening there).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis

from zeromesh.protocol import redis_keys as keys

log = logging.getLogger("zeromesh.broker.redis")

BROKERS_SET = f"{keys.PREFIX}brokers"
TTL_S = 10
"""A registration not refreshed for this long is gone: its hash expires, and its name is free."""

_WILDCARD_HOSTS = ("0.0.0.0", "*", "[::]", "::")


def broker_key(name: str) -> str:
    return f"{keys.PREFIX}broker:{name}"


@dataclass(frozen=True)
class Registration:
    """What this broker writes about itself: its name and epoch, and the endpoints others use."""

    name: str
    epoch: str
    endpoint: str
    pub_endpoint: str
    started: float  # unix seconds

    def fields(self, now: float) -> dict[str, str]:
        return {
            "name": self.name,
            "epoch": self.epoch,
            "endpoint": self.endpoint,
            "pub_endpoint": self.pub_endpoint,
            "started": f"{self.started:.3f}",
            "last_seen": f"{now:.3f}",
        }

    def can_take_over(self, other_endpoint: str) -> bool:
        """The other registration names our own endpoint, on a definite TCP address that we have
        bound: whoever registered it is not listening there any more."""
        if not self.endpoint.startswith("tcp://") or other_endpoint != self.endpoint:
            return False
        host = self.endpoint[len("tcp://") :].rsplit(":", 1)[0]
        return host not in _WILDCARD_HOSTS


class NameTaken(Exception):
    """Another live broker holds our name."""


def _text(value: bytes | str) -> str:
    """The client returns bytes (no decode_responses); its stubs also allow str."""
    return value.decode() if isinstance(value, bytes) else value


def claim(r: redis.Redis, reg: Registration, starting: bool) -> None:
    """Write our registration, unless another live epoch holds the name (NameTaken).

    At the start (`starting`) a live holder at our own endpoint is taken over (a crashed
    predecessor); later, any other epoch means our name was taken while we were silent."""
    key = broker_key(reg.name)
    with r.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(key)
                other = {_text(k): _text(v) for k, v in pipe.hgetall(key).items()}
                now = time.time()
                if other and other.get("epoch") != reg.epoch:
                    age = now - _float(other.get("last_seen"))
                    if age < TTL_S:
                        where = other.get("endpoint") or "?"
                        if not (starting and reg.can_take_over(where)):
                            raise NameTaken(
                                f"broker name '{reg.name}' is held by another live broker at {where} "
                                f"(epoch {other.get('epoch')}, seen {max(age, 0.0):.1f}s ago); "
                                + (
                                    "give this one another --name"
                                    if starting
                                    else f"this broker was silent past the registry's {TTL_S}s and stops"
                                )
                            )
                        log.warning(
                            "broker name '%s' was held by epoch %s at %s, seen %.1fs ago: that process is "
                            "gone (this one has bound its endpoint); taking the name over",
                            reg.name,
                            other.get("epoch"),
                            where,
                            age,
                        )
                pipe.multi()
                pipe.hset(key, mapping=dict(reg.fields(now)))  # type: ignore[arg-type]  # redis-py wants a wider key type
                pipe.expire(key, TTL_S)
                pipe.sadd(BROKERS_SET, reg.name)
                pipe.execute()
                return
            except redis.WatchError:
                continue  # the hash changed under us: look again


def listing(r: redis.Redis) -> list[dict]:
    """Every registered broker's fields, by name; members whose hash expired leave the set."""
    names = sorted(_text(n) for n in r.smembers(BROKERS_SET))
    with r.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hgetall(broker_key(name))
        hashes = pipe.execute()
    brokers, gone = [], []
    for name, h in zip(names, hashes):
        if not h:
            gone.append(name)
            continue
        entry: dict = {k.decode(): v.decode() for k, v in h.items()}
        for field in ("started", "last_seen"):
            entry[field] = _float(entry.get(field))
        brokers.append(entry)
    if gone:
        r.srem(BROKERS_SET, *gone)
        log.info("broker(s) %s gone from the registry (no refresh for %ds)", ", ".join(gone), TTL_S)
    return brokers


def leave(r: redis.Redis, reg: Registration) -> None:
    """A clean stop: remove our registration, if it is still ours."""
    key = broker_key(reg.name)
    try:
        with r.pipeline(transaction=True) as pipe:
            pipe.watch(key)
            if pipe.hget(key, "epoch") not in (reg.epoch.encode(), None):
                return  # another broker holds the name now: its registration is not ours to remove
            pipe.multi()
            pipe.delete(key)
            pipe.srem(BROKERS_SET, reg.name)
            pipe.execute()
    except redis.RedisError as exc:  # WatchError included: it expires by itself within TTL_S
        log.warning("could not remove this broker from the registry at stop: %s", exc)


def _float(value: str | None) -> float:
    try:
        return float(value) if value else 0.0
    except ValueError:
        return 0.0
