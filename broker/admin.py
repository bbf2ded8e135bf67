# SPDX-License-Identifier: MIT
"""ADMIN: status, trace, dead letters, scheduled jobs. The ops read the router's parts and change only dead letters
(through the ledger); with Redis, dead letters and what memory does not know are answered by the
link thread (AdminQuery -> AdminAnswer).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from zeromesh.protocol import codec, frames, wire

from .admin_parts import Parts
from .admin_status import status
from .channels import JOB
from .previews import preview
from .redis_records import AdminAnswer, AdminQuery, SetPaused
from .workers import WorkerRecord


class AdminError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Deferred(Exception):
    """This op is answered from Redis, by the link thread."""

    def __init__(self, op: str, args: dict) -> None:
        super().__init__(op)
        self.op = op
        self.params = args  # not `args`: Exception.args would turn it into a tuple


class AdminDesk:
    """ADMIN messages in, REPLY or ERROR out; ops deferred to Redis wait here for their answer."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.pending: dict[int, tuple[bytes, str]] = {}  # token -> (peer, ADMIN id) of deferred ops
        self.next_token = 1

    def on_admin(
        self, peer: bytes, env: codec.Envelope, received: list[bytes], worker: WorkerRecord | None, now: float
    ) -> None:
        state = self.parts.state
        header = env.header
        try:
            result = run_admin(self.parts, header["op"], header.get("args") or {}, now)
        except AdminError as exc:
            state.error(peer, header["id"], exc.code, str(exc))
            return
        except Deferred as deferred:  # answered from Redis by the link thread
            token = self.next_token
            self.next_token += 1
            self.pending[token] = (peer, header["id"])
            state.redis_commands.append(AdminQuery(token, deferred.op, deferred.params))
            return
        state.outbox.append(frames.reply(peer, state.next_id(), header["id"], result))

    def on_answer(self, answer: AdminAnswer, now: float) -> None:
        state = self.parts.state
        peer, re = self.pending.pop(answer.token)
        if answer.error is not None:
            state.error(peer, re, answer.error[0], answer.error[1])
            return
        result = answer.result
        assert result is not None  # an AdminAnswer holds a result or an error
        if result.get("replayed"):
            chan = state.channel(result["queue"])
            chan.backlog = True
            state.dirty.add(chan)
        if state.trace is not None:
            for jid in result.get("ids") or () if result.get("replayed") else ():
                state.trace.record(now, "replayed", jid)
            if result.get("cancelled"):
                state.trace.record(now, "cancelled", result["id"])
        if "in_redis" in result and result["queue"] in state.channels:  # purge_queue emptied the Redis list
            state.channels[result["queue"]].redis_depth = 0
        state.outbox.append(frames.reply(peer, state.next_id(), re, result))


def run_admin(router: Parts, op: str, args: dict, now: float) -> dict:
    fn = _OPS.get(op)
    if fn is None:
        raise AdminError(wire.E_UNKNOWN_OP, f"unknown admin op '{op}'; known: {', '.join(sorted(_OPS))}")
    return fn(router, args, now)


def _str_arg(args: dict, name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value:
        raise AdminError(wire.E_BAD_HEADER, f"admin args need '{name}' as a non-empty string")
    return value


def _queue(router: Parts, args: dict) -> Any:
    name = _str_arg(args, "queue")
    chan = router.state.channels.get(name)
    if chan is None:
        raise AdminError(wire.E_NOT_FOUND, f"no queue named '{name}'")
    return chan


def trace(router: Parts, args: dict, now: float) -> dict:
    wanted = _str_arg(args, "id")
    ledger = router.ledger
    item = ledger.jobs_by_id.get(wanted) or ledger.requests_by_id.get(wanted)
    if item is None:  # a trace id rather than a message id?
        item = next((i for i in ledger.jobs_by_id.values() if i.trace == wanted), None)
    if item is not None:
        out = _describe(item, now)
        if item.worker is not None:
            out.update(state="in_flight", worker=item.worker.tag)
            if item.kind == JOB:
                out["lease_left_s"] = round(item.deadline - now, 3)
        else:
            queue = item.channel.jobs if item.kind == JOB else item.channel.requests
            position = next((n for n, i in enumerate(queue) if i is item), None)
            if item.kind == JOB and position is None and item.deadline > now:  # NACKed, waiting to retry
                out.update(state="retry_wait", retry_in_s=round(item.deadline - now, 3))
            else:
                out.update(state="queued", position=position)
        return out
    for chan in router.state.channels.values():
        for dead in chan.dead:
            if wanted in (dead.id, dead.trace):
                return {**_describe(dead, now), "state": "dead_letter"}
    # Finished items, newest first: a scan, but trace is rare and the ring is bounded.
    done = next((i for i in reversed(ledger.finished) if wanted in (i.id, i.trace)), None)
    if done is not None:
        return {
            "id": done.id,
            "state": done.outcome,
            "queue": done.channel.name,
            "attempt": done.attempt,
            "error": done.error,
            "trace": done.trace,
            "since_s": round(now - done.since, 3),
        }
    if router.state.redis_enabled:
        raise Deferred("trace", {"id": wanted})
    raise AdminError(wire.E_NOT_FOUND, f"no job or request '{wanted}' known to this broker")


def trace_events(router: Parts, args: dict, now: float) -> dict:
    """This broker's trace log for one message (`id`) or every message of one trace (`trace`)."""
    given = [name for name in ("id", "trace") if args.get(name) is not None]
    if len(given) != 1:
        raise AdminError(wire.E_BAD_HEADER, "trace_events needs exactly one of 'id' and 'trace'")
    key = _str_arg(args, given[0])
    limit = args.get("limit", 500)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise AdminError(wire.E_BAD_HEADER, "'limit' must be a non-negative integer")
    state = router.state
    log = state.trace
    if log is None:
        events: list[dict] = []
    elif given[0] == "id":
        events = log.of_id(key, limit, now)
    else:
        events = log.of_trace(key, limit, now)
    return {"broker": state.config.name, "events": events}


def _describe(item, now: float) -> dict:
    return {
        "id": item.id,
        "kind": "job" if item.kind == JOB else "request",
        "queue": item.channel.name,
        "attempt": item.attempt,
        "error": item.error,
        "trace": item.trace,
        "since_s": round(now - item.since, 3),
        "size": len(item.body),
    }


def dead_letters(router: Parts, args: dict, now: float) -> dict:
    limit = args.get("limit", 100)
    if not isinstance(limit, int) or limit < 0:
        raise AdminError(wire.E_BAD_HEADER, "'limit' must be a non-negative integer")
    wanted = args.get("id")
    if wanted is not None and (not isinstance(wanted, str) or not wanted):
        raise AdminError(wire.E_BAD_HEADER, "'id', when given, must be a non-empty string")
    if router.state.redis_enabled:
        raise Deferred("dead_letters", {"queue": _str_arg(args, "queue"), "limit": limit, "id": wanted})
    chan = _queue(router, args)
    dead = [item for item in chan.dead if wanted is None or item.id == wanted]
    if wanted is not None and not dead:
        raise AdminError(wire.E_NOT_FOUND, f"no dead letter '{wanted}' in {chan.name}")
    wall_ms = time.time() * 1000  # `now` is the loop's monotonic clock; dead_ms is wall-clock
    items = [
        {**_describe(item, now), "preview": preview(item.body), "dead_ms": int(wall_ms - (now - item.since) * 1000)}
        for item in dead[:limit]
    ]
    return {"queue": chan.name, "total": len(chan.dead), "items": items}


def _ids_arg(args: dict) -> list[str] | None:
    ids = args.get("ids")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        raise AdminError(wire.E_BAD_HEADER, "'ids' must be a list of strings")
    return ids


def replay(router: Parts, args: dict, now: float) -> dict:
    ids = _ids_arg(args)
    if router.state.redis_enabled:
        raise Deferred("replay", {"queue": _str_arg(args, "queue"), "ids": ids})
    chan = _queue(router, args)
    moved = router.ledger.replay_dead(chan, ids, now)  # a replay is a fresh start: attempt 0
    router.state.dirty.add(chan)
    router.state.log.info("queue %s: %d dead letter(s) replayed", chan.name, moved)
    return {"queue": chan.name, "replayed": moved}


def purge(router: Parts, args: dict, now: float) -> dict:
    ids = _ids_arg(args)
    if router.state.redis_enabled:
        raise Deferred("purge", {"queue": _str_arg(args, "queue"), "ids": ids})
    chan = _queue(router, args)
    count = router.ledger.purge_dead(chan, ids, now)
    router.state.log.info("queue %s: %d dead letter(s) purged", chan.name, count)
    return {"queue": chan.name, "purged": count}


def scheduled(router: Parts, args: dict, now: float) -> dict:
    limit = args.get("limit", 100)
    if not isinstance(limit, int) or limit < 0:
        raise AdminError(wire.E_BAD_HEADER, "'limit' must be a non-negative integer")
    _need_redis(router, "scheduled jobs")
    raise Deferred("scheduled", {"queue": _str_arg(args, "queue"), "limit": limit})


def cancel(router: Parts, args: dict, now: float) -> dict:
    queue = args.get("queue")
    if queue is not None and (not isinstance(queue, str) or not queue):
        raise AdminError(wire.E_BAD_HEADER, "'queue', when given, must be a non-empty string")
    _need_redis(router, "scheduled jobs")
    raise Deferred("cancel", {"id": _str_arg(args, "id"), "queue": queue})


def pause(router: Parts, args: dict, now: float) -> dict:
    return _set_paused(router, args, now, True)


def resume(router: Parts, args: dict, now: float) -> dict:
    return _set_paused(router, args, now, False)


def _set_paused(router: Parts, args: dict, now: float, paused: bool) -> dict:
    """A paused queue takes pushes and dispatches nothing; mesh-wide through Redis when there is one."""
    state = router.state
    name = _str_arg(args, "queue")
    chan = state.channel(name)  # a queue may be paused before its first job
    chan.set_paused(paused)
    chan.paused_at = now
    if state.redis_enabled:
        state.redis_commands.append(SetPaused(name, paused))
    state.dirty.add(chan)
    state.log.info("queue %s %s by an administrator", name, "paused" if paused else "resumed")
    return {"queue": name, "paused": paused}


def purge_queue(router: Parts, args: dict, now: float) -> dict:
    """Drop the queue's waiting jobs, in memory and in Redis; jobs in flight finish."""
    state = router.state
    name = _str_arg(args, "queue")
    chan = state.channels.get(name)
    in_memory = router.ledger.purge_queued(chan, now) if chan is not None else 0
    state.log.info("queue %s: %d waiting job(s) purged from memory", name, in_memory)
    if state.redis_enabled:
        raise Deferred("purge_queue", {"queue": name, "in_memory": in_memory})
    if chan is None:
        raise AdminError(wire.E_NOT_FOUND, f"no queue named '{name}'")
    return {"queue": name, "purged": in_memory, "in_memory": in_memory, "in_redis": 0}


def schedules(router: Parts, args: dict, now: float) -> dict:
    configured = router.state.config.schedules
    if not configured:
        return {"schedules": []}
    _need_redis(router, "periodic schedules")
    raise Deferred("schedules", {"schedules": [asdict(s) for s in configured]})


def _need_redis(router: Parts, what: str) -> None:
    if not router.state.redis_enabled:
        raise AdminError(wire.E_UNAVAILABLE, f"{what} live in Redis, and this broker runs without it")


_OPS: dict[str, Any] = {
    "status": status,
    "trace": trace,
    "dead_letters": dead_letters,
    "replay": replay,
    "purge": purge,
    "scheduled": scheduled,
    "cancel": cancel,
    "pause": pause,
    "resume": resume,
    "purge_queue": purge_queue,
    "schedules": schedules,
    "trace_events": trace_events,
}
