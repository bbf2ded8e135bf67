# SPDX-License-Identifier: MIT
"""Unique jobs in Redis, run in the link's thread (SPEC 16.6): a push that carries a unique key
is queued (or scheduled) only while no other job holds the key; done jobs free their keys."""

from __future__ import annotations

import logging
from typing import Any

from zeromesh.protocol import envelope, redis_keys as keys

from .redis_records import ReleaseUnique, UniqueJobs, UniqueWritten
from .redis_scripts import evalsha

log = logging.getLogger("zeromesh.broker.redis")


def queue_unique(link: Any, pipe: Any, cmd: UniqueJobs) -> int:
    queue = cmd.queue
    link.known_queues.add(queue)
    targets = [keys.queue_key(queue), keys.scheduled_key(queue), keys.scheduled_jobs_key(queue), keys.SCHEDULED_QUEUES]
    for jid, body, headers, trace, due_ms, key, ttl_ms in cmd.items:
        # "until done" keys travel in the element, so whoever settles the job can free them.
        element = body if cmd.raw else envelope.encode(jid, body, headers, trace, unique=None if ttl_ms else key)
        args = [jid, element, ttl_ms, "" if due_ms is None else due_ms, queue]
        evalsha(pipe, link._unique, [keys.unique_key(key), *targets], args)
        if due_ms is not None:
            link.scheduled_queues.add(queue)
    return len(cmd.items)


def done_unique(link: Any, cmd: UniqueJobs, part: list) -> None:
    firsts = [(f.decode() if isinstance(f, bytes) else str(f or "")) for f in part]
    short = ""
    if link._acked_by < link.wait_replicas:
        link.short_writes += 1
        short = f"stored on {link._acked_by} of {link.wait_replicas} replicas within {link.wait_ms} ms"
        log.warning("queue %s: %d unique job(s) %s; answered unavailable", cmd.queue, len(cmd.items), short)
    link._post(UniqueWritten(cmd.token, firsts, "", short))


def queue_release(link: Any, pipe: Any, cmd: ReleaseUnique) -> int:
    for key, jid in cmd.pairs:
        evalsha(pipe, link._release_unique, [keys.unique_key(key)], [jid])
    return len(cmd.pairs)
