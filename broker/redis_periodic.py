# SPDX-License-Identifier: MIT
"""Periodic jobs in Redis, run in the link's thread: every broker computes each schedule's next
tick, and the first to claim a tick (tick.lua: SET NX of its claim key) enqueues its job, so each
tick runs once whatever the number of brokers (SPEC 16.7)."""

from __future__ import annotations

import datetime
import logging
import time
from dataclasses import asdict
from typing import Any, cast

import redis

from zeromesh.protocol import envelope, redis_keys as keys

from .schedules import Schedule

log = logging.getLogger("zeromesh.broker.redis")

_CATCH_UP = 100  # ticks one look may run for a schedule that fell behind (a stalled broker)


def _ms() -> int:
    return int(time.time() * 1000)


class PeriodicTicks:
    def __init__(self, schedules: tuple[Schedule, ...], is_raw) -> None:
        self.schedules = schedules
        self.is_raw = is_raw  # queue name -> whether its elements are raw bodies
        self.next: dict[str, int] = {}  # schedule -> its next tick (unix ms); empty until started

    def start(self, r: redis.Redis, script: Any) -> list[str]:
        """At the first connect: a tick missed while no broker ran is run once if the schedule
        says so; then every schedule waits for its next tick. Returns the queues fed."""
        now = _ms()
        last = {k.decode(): int(v) for k, v in cast("dict[bytes, bytes]", r.hgetall(keys.SCHEDULES)).items()}
        fed = []
        for s in self.schedules:
            previous = _previous_tick(s, now)
            if s.missed == "run_once" and s.name in last and previous > last[s.name]:
                if self._claim(r, script, s, previous):
                    log.info("schedule %s: ran the tick missed at %s once (missed = run_once)", s.name, previous)
                    fed.append(s.queue)
            self.next[s.name] = s.next_after(now)
        return fed

    def fire_due(self, r: redis.Redis, script: Any) -> list[str]:
        """Claim and enqueue every tick that is due; returns the queues that got a job from us."""
        now = _ms()
        fed = []
        for s in self.schedules:
            tick = self.next.get(s.name)
            runs = 0
            while tick is not None and tick <= now and runs < _CATCH_UP:
                if self._claim(r, script, s, tick):
                    fed.append(s.queue)
                tick = s.next_after(tick)
                runs += 1
            if tick is not None and tick <= now:  # far behind: skip to the future, and say so
                log.warning("schedule %s: fell more than %d ticks behind; skipping to the next", s.name, _CATCH_UP)
                tick = s.next_after(now)
            if tick is not None:
                self.next[s.name] = tick
        return fed

    def _claim(self, r: redis.Redis, script: Any, s: Schedule, tick: int) -> bool:
        jid = s.job_id(tick)
        body = s.body.encode()
        element = body if self.is_raw(s.queue) else envelope.encode(jid, body, s.headers or None)
        # The claim outlives any clock skew between brokers: three periods, a minute at least.
        keep_ms = max(60_000, 3 * (s.next_after(tick) - tick))
        claimed = script(
            keys=[keys.tick_key(s.name, tick), keys.queue_key(s.queue), keys.SCHEDULES],
            args=[element, s.name, tick, keep_ms],
            client=r,
        )
        return bool(claimed)


def _previous_tick(s: Schedule, now_ms: int) -> int:
    from croniter import croniter  # only a broker with schedules needs it (see schedules.parse_schedules)

    start = datetime.datetime.fromtimestamp(now_ms / 1000, tz=s.zone)
    return int(croniter(s.cron, start).get_prev(float) * 1000)


def listing(r: redis.Redis, args: dict) -> dict:
    """ADMIN `schedules`: each schedule with its last run (by any broker) and its next tick."""
    now = _ms()
    last = {k.decode(): int(v) for k, v in cast("dict[bytes, bytes]", r.hgetall(keys.SCHEDULES)).items()}
    items = []
    for raw in args["schedules"]:
        s = Schedule(**raw)
        entry = {k: v for k, v in asdict(s).items() if k != "body"}
        entry.update(last_ms=last.get(s.name), next_ms=s.next_after(now))
        entry["last"] = _iso(entry["last_ms"]) if entry["last_ms"] else None
        entry["next"] = _iso(entry["next_ms"])
        items.append(entry)
    return {"schedules": items}


def _iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).isoformat(timespec="milliseconds")
