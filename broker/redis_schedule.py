# SPDX-License-Identifier: MIT
"""Scheduled jobs in Redis, run in the link's thread: storing them, moving due ones to their
queues, and the admin ops that list, find and cancel them (SPEC 16.5).

A scheduled job waits in two keys of its queue: a sorted set of ids by due time (unix ms) and
a hash of ids to elements, the element being exactly what the queue will hold. Any broker
moves due jobs (due.lua is atomic, so each moves once); the queue then delivers them like
jobs fed from outside.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, cast

import redis

from zeromesh.protocol import envelope, redis_keys as keys

from .redis_records import ScheduleJobs, Written
from .redis_scripts import evalsha

log = logging.getLogger("zeromesh.broker.redis")

MOVE_BATCH = 500  # due jobs moved per script call: Redis is never busy long in one call
MOVE_ROUNDS = 40  # calls per queue per look: 20,000 due at once move in one look, the rest next time


def element_of(item: tuple, raw: bool) -> bytes:
    jid, body, headers, trace, _due = item
    return body if raw else envelope.encode(jid, body, headers, trace)


def queue_schedule(link: Any, pipe: Any, cmd: ScheduleJobs) -> int:
    link.scheduled_queues.add(cmd.queue)
    zset, jobs = keys.scheduled_key(cmd.queue), keys.scheduled_jobs_key(cmd.queue)
    for item in cmd.items:
        args = [item[4], item[0], element_of(item, cmd.raw), cmd.queue]
        evalsha(pipe, link._schedule, [zset, jobs, keys.SCHEDULED_QUEUES], args)
    return len(cmd.items)


def done_schedule(link: Any, cmd: ScheduleJobs, part: list) -> None:
    short = ""
    if link._acked_by < link.wait_replicas:
        link.short_writes += 1
        short = f"stored on {link._acked_by} of {link.wait_replicas} replicas within {link.wait_ms} ms"
        log.warning("queue %s: %d scheduled job(s) %s; answered unavailable", cmd.queue, len(cmd.items), short)
    link._post(Written(cmd.token, [b""] * len(cmd.items), "", short))


def move_due(
    r: redis.Redis,
    script: Any,
    queues: set[str],
    first_lot: Callable[[str], None],
    released: dict[str, list[str]] | None = None,
) -> dict[str, int]:
    """Due jobs of every queue to its tail; {queue: how many moved} for those that got some.
    `first_lot(queue)` is called as soon as a queue's first jobs are in it; `released` gets the
    ids moved, by queue (the trace log's `released` events)."""
    moved: dict[str, int] = {}
    now_ms = int(time.time() * 1000)
    for queue in sorted(queues):
        zset, jobs, target = keys.scheduled_key(queue), keys.scheduled_jobs_key(queue), keys.queue_key(queue)
        for _ in range(MOVE_ROUNDS):
            count, looked, ids = script(keys=[zset, jobs, target], args=[now_ms, MOVE_BATCH], client=r)
            if released is not None and ids:
                released.setdefault(queue, []).extend(i.decode() for i in ids)
            if count:
                if queue not in moved:
                    first_lot(queue)
                moved[queue] = moved.get(queue, 0) + int(count)
            if looked < MOVE_BATCH:
                break
    return moved


def scheduled_queues(r: redis.Redis) -> set[str]:
    return {m.decode() for m in cast("set[bytes]", r.smembers(keys.SCHEDULED_QUEUES))}


# -- admin ops (redis_admin.OPS) -------------------------------------------------------------


def _describe(queue: str, jid: bytes, due_ms: float, element: bytes | None) -> dict:
    out: dict[str, Any] = {"id": jid.decode(), "queue": queue, "due_ms": int(due_ms), "state": "scheduled"}
    out["due"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(due_ms / 1000)) + f".{int(due_ms) % 1000:03d}Z"
    if element is not None:
        out["size"] = len(element)
        try:
            el = envelope.decode(element)
        except Exception:  # a raw queue's element is the body itself
            return out
        out.update(size=len(el.body), trace=el.trace or el.id)
    return out


def scheduled(r: redis.Redis, args: dict) -> dict:
    queue, limit = args["queue"], args.get("limit", 100)
    zset, jobs = keys.scheduled_key(queue), keys.scheduled_jobs_key(queue)
    total = r.zcard(zset)
    entries = cast("list[tuple[bytes, float]]", r.zrange(zset, 0, max(limit, 1) - 1, withscores=True)) if limit else []
    elements = cast("list[bytes | None]", r.hmget(jobs, [jid for jid, _ in entries])) if entries else []
    items = [_describe(queue, jid, due, el) for (jid, due), el in zip(entries, elements)]
    return {"queue": queue, "total": total, "items": items}


def find(r: redis.Redis, wanted: str) -> dict | None:
    """A scheduled job by id, in whichever queue holds it."""
    for queue in sorted(scheduled_queues(r)):
        due = r.zscore(keys.scheduled_key(queue), wanted)
        if due is not None:
            element = cast("bytes | None", r.hget(keys.scheduled_jobs_key(queue), wanted))
            return _describe(queue, wanted.encode(), due, element)
    return None


def cancel(r: redis.Redis, args: dict) -> dict:
    wanted = args["id"]
    queues = [args["queue"]] if args.get("queue") else sorted(scheduled_queues(r))
    for queue in queues:
        with r.pipeline(transaction=True) as pipe:  # atomic against a mover: it runs all or none
            pipe.hdel(keys.scheduled_jobs_key(queue), wanted)
            pipe.zrem(keys.scheduled_key(queue), wanted)
            removed, _ = pipe.execute()
        if removed:
            log.info("queue %s: scheduled job %s cancelled", queue, wanted)
            return {"id": wanted, "queue": queue, "cancelled": True}
    raise LookupError(f"no scheduled job '{wanted}' (it may have run already)")
