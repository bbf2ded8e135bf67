# SPDX-License-Identifier: MIT
"""Key names and Lua scripts of the Redis data layout (SPEC.md section 16).

Every language that consumes or feeds zeromesh queues through Redis uses these
same keys and, for atomic moves, these same scripts. Each script is one file,
protocol/redis/<name>.lua, the only copy: Python reads it from this package
(package data in pyproject.toml), and the other clients load the same file.
"""

from __future__ import annotations

from importlib import resources

PREFIX = "zeromesh:"


def queue_key(queue: str) -> str:
    """Pending jobs: producers RPUSH, consumers take from the left."""
    return f"{PREFIX}queue:{queue}"


def inflight_key(queue: str, consumer: str) -> str:
    """Jobs one consumer holds (reliable-queue pattern); LREM on completion."""
    return f"{PREFIX}inflight:{queue}:{consumer}"


def consumers_key(queue: str) -> str:
    """Sorted set: consumer name -> unix time of its last heartbeat."""
    return f"{PREFIX}consumers:{queue}"


def dead_key(queue: str) -> str:
    """Dead letters, envelopes with error and attempt set."""
    return f"{PREFIX}dead:{queue}"


def scheduled_key(queue: str) -> str:
    """Sorted set: scheduled job id -> due time (unix milliseconds, UTC)."""
    return f"{PREFIX}scheduled:{queue}"


def scheduled_jobs_key(queue: str) -> str:
    """Hash: scheduled job id -> its element, as it will be pushed to the queue when due."""
    return f"{PREFIX}scheduled-jobs:{queue}"


SCHEDULED_QUEUES = f"{PREFIX}scheduled-queues"
"""Set: the queues that have (or had) scheduled jobs: where the brokers look for due ones."""


def unique_key(key: str) -> str:
    """String: the id of the job that holds a unique key (SPEC 16.6), with its TTL."""
    return f"{PREFIX}unique:{key}"


SCHEDULES = f"{PREFIX}schedules"
"""Hash: periodic schedule name -> its last tick that ran (unix ms), whichever broker ran it."""


def tick_key(schedule: str, tick_ms: int) -> str:
    """String: the claim of one tick of a periodic schedule; the broker that sets it runs the tick."""
    return f"{PREFIX}tick:{schedule}:{tick_ms}"


PAUSED = f"{PREFIX}paused"
"""Set: the queues paused mesh-wide (every broker dispatches none of their jobs)."""


def broker_consumer(name: str) -> str:
    """The consumer name a broker uses for the jobs it holds."""
    return f"@broker:{name}"


def recover_dead_call(
    queue: str, consumer: str, cutoff: float, raw: bool, max_attempts: int
) -> tuple[list[str], list[str | float | int]]:
    """KEYS and ARGV of RECOVER_DEAD for one consumer of one queue (every key in KEYS, SPEC 16.3)."""
    keys = [consumers_key(queue), inflight_key(queue, consumer), queue_key(queue), dead_key(queue)]
    return keys, [cutoff, consumer, queue, "raw" if raw else "envelope", max_attempts]


def script(name: str) -> str:
    """The text of protocol/redis/<name>.lua, exactly as in the file."""
    return resources.files("zeromesh.protocol").joinpath("redis", f"{name}.lua").read_text(encoding="utf-8")


FETCH = script("fetch")
"""Move up to ARGV[1] jobs from the queue to an in-flight list, oldest first (the broker's batched take)."""

ACK_MANY = script("ack_many")
"""LREM each ARGV element from an in-flight list, in one call (the broker's batched acks)."""

RECOVER = script("recover")
"""Everything in an in-flight list back to the queue head, oldest first (a consumer taking back its own)."""

TAKE_BACK = script("take_back")
"""Move the given elements that are still in an in-flight list back to the queue head, oldest first
(the broker's jobs moved there by a command whose answer it lost)."""

RECOVER_DEAD = script("recover_dead")
"""One dead consumer's in-flight jobs back to the queue head, or to the dead letters, each a failed
attempt; nothing moves if its heartbeat is newer than the cutoff by the time the script runs."""

SCHEDULE = script("schedule")
"""Schedule one job (HSETNX its element, ZADD its due time, SADD its queue); a resend changes nothing."""

DUE = script("due")
"""Move up to ARGV[2] jobs due by ARGV[1] (unix ms) from a queue's schedule to its tail."""

UNIQUE = script("unique")
"""Queue (or schedule) a job unless its unique key holds another job's id; returns that id, or ''."""

RELEASE_UNIQUE = script("release_unique")
"""Free a unique key when the job it names is done."""

TICK = script("tick")
"""Claim one tick of a periodic schedule and enqueue its job, once across every broker."""

FAIL = script("fail")
"""LREM one element from an in-flight list and, only if it was there, RPUSH its replacement."""

DEAD_ONCE = script("dead_once")
"""RPUSH a dead letter unless it is already among the newest ARGV[2] (a retry after a lost answer)."""

DEAD_ONCE_LOOKBACK = 1000
"""How many of the newest dead letters DEAD_ONCE looks through: a retry comes within seconds."""
