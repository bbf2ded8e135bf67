# SPDX-License-Identifier: MIT
"""This broker as a Redis consumer (SPEC 16.3), run in the link's thread.

At the first connect it takes back what it held in Redis before a restart; every period it
beats in each queue's consumer set, recovers the jobs of consumers whose beat stopped, and
measures the queues; at a clean stop it leaves the sets where it holds nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis

from zeromesh.protocol import redis_keys as keys

log = logging.getLogger("zeromesh.broker.redis")


def recover_own(r: redis.Redis, recover: Callable, consumer: str) -> None:
    """After a restart, jobs we held but never saw acked go back to their queue heads."""
    suffix = ":" + consumer
    recovered = 0
    for key in r.scan_iter(match=f"{keys.PREFIX}inflight:*", count=1000):
        key = key.decode()
        if not key.endswith(suffix):
            continue
        queue = key[len(keys.PREFIX) + len("inflight:") : -len(suffix)]
        recovered += recover(keys=[keys.queue_key(queue), key])
    if recovered:
        log.warning("recovered %d job(s) this broker held in Redis before it stopped", recovered)


def queues_in_redis(r: redis.Redis) -> list[str]:
    """Every queue that has a list in Redis: each may hold jobs for us."""
    return [
        key.decode()[len(keys.PREFIX) + len("queue:") :]
        for key in r.scan_iter(match=f"{keys.PREFIX}queue:*", count=1000)
    ]


def beat_and_measure(
    r: redis.Redis,
    recover_dead: Callable,
    consumer: str,
    queues: list[str],
    recovery_s: float,
    queue_policy: Callable[[str], tuple[bool, int]],
) -> dict[str, tuple[int, int]]:
    """Per queue, its lengths, our beat and the names of its dead consumers in one pipeline; then
    one recovery script per dead consumer in a second (the script takes every key it touches in
    KEYS, and re-checks the beat, so a consumer that beat in between keeps its jobs).
    Returns {queue: (pending, dead)}; connection errors are the caller's to handle."""
    now = time.time()
    cutoff = now - recovery_s
    with r.pipeline(transaction=False) as pipe:
        for q in queues:
            pipe.llen(keys.queue_key(q))
            pipe.llen(keys.dead_key(q))
            pipe.zadd(keys.consumers_key(q), {consumer: now})
            pipe.zrangebyscore(keys.consumers_key(q), "-inf", cutoff)
        results = pipe.execute(raise_on_error=False)
    depths = {}
    dead_consumers: dict[str, list[str]] = {}
    for i, q in enumerate(queues):
        pending, dead, _, silent = results[4 * i : 4 * i + 4]
        if isinstance(pending, int):
            depths[q] = (pending, dead if isinstance(dead, int) else 0)
        if isinstance(silent, list) and silent:
            # Names are UTF-8 text (SPEC 16.1); one that is not would be misspelled here, and
            # the script, finding no such member, would move nothing.
            dead_consumers[q] = [name.decode(errors="replace") for name in silent]
    if dead_consumers:
        recover_dead_consumers(r, recover_dead, dead_consumers, cutoff, queue_policy)
    return depths


def recover_dead_consumers(
    r: redis.Redis,
    recover_dead: Callable,
    dead_consumers: dict[str, list[str]],
    cutoff: float,
    queue_policy: Callable[[str], tuple[bool, int]],
) -> None:
    calls = []
    with r.pipeline(transaction=False) as pipe:
        for q, names in dead_consumers.items():
            raw, max_attempts = queue_policy(q)
            for name in names:
                script_keys, args = keys.recover_dead_call(q, name, cutoff, raw, max_attempts)
                recover_dead(keys=script_keys, args=args, client=pipe)
                calls.append(q)
        results = pipe.execute(raise_on_error=False)
    moved: dict[str, list[int]] = {}
    for q, result in zip(calls, results):
        if isinstance(result, Exception):
            log.error("queue %s: recovering a dead consumer's jobs failed: %s", q, result)
        elif isinstance(result, list) and any(result):
            total = moved.setdefault(q, [0, 0])
            total[0] += result[0]
            total[1] += result[1]
    for q, (requeued, buried) in moved.items():
        log.warning(
            "queue %s: %d job(s) of dead Redis consumers back in the queue, %d dead-lettered "
            "(each counted as a failed attempt)",
            q,
            requeued,
            buried,
        )


def leave_consumer_sets(r: redis.Redis, consumer: str, queues: list[str]) -> None:
    """A graceful stop: leave the consumer sets of queues whose in-flight list we left empty.
    Where jobs remain (held by workers at the stop), our name stays, so that whoever sees our
    heartbeat age recovers them."""
    try:
        with r.pipeline(transaction=False) as pipe:
            for q in queues:
                pipe.llen(keys.inflight_key(q, consumer))
            lengths = pipe.execute()
        with r.pipeline(transaction=False) as pipe:
            for q, n in zip(queues, lengths):
                if n == 0:
                    pipe.zrem(keys.consumers_key(q), consumer)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not remove this broker from the consumer sets at stop: %s", exc)
