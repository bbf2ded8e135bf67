# SPDX-License-Identifier: MIT
"""The Redis link's work on a clock, mixed into RedisLink and run in its thread: every second
the upkeep (registry, heartbeats, depths, dead consumers' jobs, paused queues, replicas to wait
for); every 20 ms due scheduled jobs; every 50 ms periodic schedules' ticks."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, cast

import redis

from zeromesh.protocol import redis_keys as keys

from . import redis_registry, redis_upkeep
from .redis_records import Backlog, Brokers, Depths, Paused, RedisStats, Released
from .redis_registry import NameTaken
from .redis_schedule import move_due, scheduled_queues

log = logging.getLogger("zeromesh.broker.redis")


class TimedWork:
    # What these use of RedisLink's state.
    min_replicas: int
    wait_replicas: int
    wait_ms: int
    known_queues: set[str]
    scheduled_queues: set[str]
    periodic: Any
    registration: Any
    consumer: str
    recovery_s: float
    queue_policy: Any
    _recovered: bool
    _tick: Any
    _due: Any
    _recover_dead: Any

    if TYPE_CHECKING:  # RedisLink's, for the type checker only

        @property
        def _client(self) -> redis.Redis: ...

        def _post(self, result: Any) -> None: ...

        def _set_up(self, up: bool, message: str) -> None: ...

        def _refuse(self, message: str) -> None: ...

    def _decide_wait(self) -> None:
        """How many replicas a durable write waits for: as configured, or 1 when the primary has any."""
        wanted = self.min_replicas
        if wanted < 0:
            connected = int(self._client.info("replication").get("connected_slaves", 0))
            wanted = 1 if connected > 0 else 0
        if wanted != self.wait_replicas or not self._recovered:
            auto = "auto: 1 while the primary has a replica, checked every second"
            how = "min_replicas" if self.min_replicas >= 0 else auto
            if wanted:
                log.info(
                    "durable writes are confirmed once %d replica(s) have them (WAIT, up to %d ms; %s)",
                    wanted,
                    self.wait_ms,
                    how,
                )
            else:
                log.info("durable writes are confirmed without waiting for replicas (%s)", how)
        self.wait_replicas = wanted

    def _fire_periodic(self) -> None:
        assert self.periodic is not None
        try:
            fed = self.periodic.fire_due(self._client, self._tick)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            self._set_up(False, str(exc))
            return
        except redis.RedisError as exc:
            log.error("periodic schedules: %s", exc)
            return
        if fed:
            self.known_queues.update(fed)
            self._post(Backlog(sorted(set(fed))))

    def _move_due(self) -> None:
        """Due scheduled jobs to their queues; the router fetches from those at once."""
        try:
            # Each queue's first moved lot is announced at once: workers start while the rest moves.
            released: dict[str, list[str]] = {}
            moved = move_due(
                self._client, self._due, self.scheduled_queues, lambda q: self._post(Backlog([q])), released
            )
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            self._set_up(False, str(exc))
            return
        except redis.RedisError as exc:
            log.error("moving due scheduled jobs failed: %s", exc)
            return
        self.known_queues.update(moved)
        if released:
            self._post(Released(released))

    def _periodic(self) -> None:
        try:
            self.scheduled_queues |= scheduled_queues(self._client)  # other brokers' too: any broker moves them
            self._post(measure(self._client, sorted(self.scheduled_queues)))
            paused = cast("set[bytes]", self._client.smembers(keys.PAUSED))
            self._post(Paused(frozenset(q.decode() for q in paused)))
            if self.min_replicas < 0:
                # Auto follows the primary: after a failover the new one has no replicas at first,
                # and waiting starts again once one has attached (until then a push waits for none).
                self._decide_wait()
            redis_registry.claim(self._client, self.registration, starting=False)
            self._post(Brokers(redis_registry.listing(self._client)))
            depths = redis_upkeep.beat_and_measure(
                self._client,
                self._recover_dead,
                self.consumer,
                sorted(self.known_queues),
                self.recovery_s,
                self.queue_policy,
            )
            self._post(Depths(depths))
        except NameTaken as exc:
            self._refuse(str(exc))
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            self._set_up(False, str(exc))
        except redis.RedisError as exc:  # a refused script or command must not end the link's thread
            log.error("redis periodic work failed: %s", exc)


def measure(r: redis.Redis, scheduled: list[str]) -> RedisStats:
    """A PING's round trip, and the scheduled jobs of each queue that has some (for metrics)."""
    started = time.perf_counter()
    r.ping()
    rtt_ms = (time.perf_counter() - started) * 1000.0
    counts: dict[str, int] = {}
    if scheduled:
        with r.pipeline(transaction=False) as pipe:
            for q in scheduled:
                pipe.zcard(keys.scheduled_key(q))
            counts = {q: int(n) for q, n in zip(scheduled, pipe.execute())}
    return RedisStats(rtt_ms, counts)
