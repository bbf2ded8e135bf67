# SPDX-License-Identifier: MIT
"""ADMIN ops answered from Redis, run in the link's thread: dead letters, replay, purge, trace.

Each takes the Redis client and the op's arguments and returns the answer's map; LookupError
means not found, a RedisError is reported as unavailable (RedisLink runs them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import redis

from zeromesh.protocol import envelope, redis_keys as keys
from zeromesh.protocol.errors import ProtocolError

from . import redis_periodic, redis_schedule
from .previews import preview


def _elements(r: redis.Redis, key: str | bytes, start: int, end: int) -> list[bytes]:
    """LRANGE of one of our lists. The client runs with decode_responses=False, so these are bytes;
    redis-py's annotations cannot tell and say bytes | str."""
    return cast("list[bytes]", r.lrange(key, start, end))


def dead_letters(r: redis.Redis, args: dict) -> dict:
    queue, limit, wanted = args["queue"], args.get("limit", 100), args.get("id")
    key = keys.dead_key(queue)
    total = r.llen(key)
    items = []
    if wanted is not None:  # one dead letter, looked for through the whole list
        found = [d for d in map(describe_element, _elements(r, key, 0, -1)) if d.get("id") == wanted]
        if not found:
            raise LookupError(f"no dead letter '{wanted}' in {queue}")
        return {"queue": queue, "total": total, "items": found[:1]}
    for raw in _elements(r, key, 0, max(limit, 0) - 1) if limit else []:
        items.append(describe_element(raw))
    return {"queue": queue, "total": total, "items": items}


def replay(r: redis.Redis, args: dict) -> dict:
    queue, ids = args["queue"], args.get("ids")
    key = keys.dead_key(queue)
    moved = 0
    replayed: list[str] = []  # their ids, for the trace log
    for raw in _elements(r, key, 0, -1):
        try:
            el = envelope.decode(raw)
        except ProtocolError:
            el = None
        if ids is not None and (el is None or el.id not in ids):
            continue
        fresh = raw if el is None else envelope.encode(el.id, el.body, el.headers, el.trace, 0, el.error)
        with r.pipeline(transaction=True) as pipe:
            pipe.lrem(key, 1, raw)  # type: ignore[arg-type]  # redis-py annotates the value str; bytes are fine
            pipe.rpush(keys.queue_key(queue), fresh)
            removed, _ = pipe.execute()
        moved += removed
        if removed and el is not None and el.id:
            replayed.append(el.id)
    return {"queue": queue, "replayed": moved, "ids": replayed}


def purge(r: redis.Redis, args: dict) -> dict:
    key = keys.dead_key(args["queue"])
    ids = args.get("ids")
    if ids is not None:  # those named only, each removed by its exact element
        wanted = set(ids)
        gone = 0
        for raw in _elements(r, key, 0, -1):
            if describe_element(raw).get("id") in wanted:
                gone += r.lrem(key, 1, raw)  # type: ignore[arg-type]  # bytes are fine
        return {"queue": args["queue"], "purged": gone}
    with r.pipeline(transaction=True) as pipe:
        pipe.llen(key)
        pipe.delete(key)
        count, _ = pipe.execute()
    return {"queue": args["queue"], "purged": count}


def purge_queue(r: redis.Redis, args: dict) -> dict:
    queue, in_memory = args["queue"], args.get("in_memory", 0)
    key = keys.queue_key(queue)
    with r.pipeline(transaction=True) as pipe:
        pipe.llen(key)
        pipe.delete(key)
        in_redis, _ = pipe.execute()
    return {"queue": queue, "purged": in_memory + in_redis, "in_memory": in_memory, "in_redis": in_redis}


def trace(r: redis.Redis, args: dict) -> dict:
    wanted = args["id"]
    found = redis_schedule.find(r, wanted)
    if found is not None:
        return found
    for state, pattern in (("dead_letter", "dead:*"), ("queued", "queue:*"), ("in_flight", "inflight:*")):
        for key in r.scan_iter(match=f"{keys.PREFIX}{pattern}", count=1000):
            for raw in _elements(r, key, 0, 9999):
                if wanted.encode() not in raw:
                    continue
                desc = describe_element(raw)
                if wanted in (desc.get("id"), desc.get("trace")):
                    name = key.decode()[len(keys.PREFIX) :]
                    queue = name.split(":", 1)[1]
                    if state == "in_flight":  # inflight:Q:CONSUMER, and Q may itself hold ':'
                        if ":@" in queue:
                            queue, consumer = queue.rsplit(":@", 1)
                            consumer = "@" + consumer
                        else:
                            queue, consumer = queue.rsplit(":", 1)
                        desc["consumer"] = consumer
                    desc.update(state=state, queue=queue, where=f"redis {name}")
                    return desc
    raise LookupError(f"no job '{wanted}' known to this broker or found in Redis")


def describe_element(raw: bytes) -> dict[str, Any]:
    try:
        el = envelope.decode(raw)
    except ProtocolError as exc:
        return {"id": None, "error": exc.message, "size": len(raw), "raw": True}
    return {
        "id": el.id,
        "attempt": el.attempt,
        "error": el.error,
        "trace": el.trace or el.id,
        "size": len(el.body),
        "preview": preview(el.body),
        **({"dead_ms": el.dead_ms} if el.dead_ms is not None else {}),
    }


OPS: dict[str, Callable[[redis.Redis, dict], dict]] = {
    "dead_letters": dead_letters,
    "replay": replay,
    "purge": purge,
    "trace": trace,
    "scheduled": redis_schedule.scheduled,
    "cancel": redis_schedule.cancel,
    "purge_queue": purge_queue,
    "schedules": redis_periodic.listing,
}
