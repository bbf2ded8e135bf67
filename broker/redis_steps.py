# SPDX-License-Identifier: MIT
"""The Redis link's per-command steps: what each command queues into the pipeline, and how its
results are read. Mixed into RedisLink, whose state (its scripts, its consumer name, the writes
in progress, the retry list, `_post`) they use; only the link's thread runs them."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import redis

from zeromesh.protocol import envelope, redis_keys as keys, wire
from zeromesh.protocol.errors import ProtocolError

from . import redis_admin, redis_schedule, redis_unique
from .redis_records import (
    AckJobs,
    AdminAnswer,
    AdminQuery,
    Backlog,
    CheckInflight,
    DeadLetter,
    Fetched,
    FetchJobs,
    InflightUnsure,
    RecordEvent,
    ReleaseUnique,
    Requeue,
    ScheduleJobs,
    SetPaused,
    UniqueJobs,
    WriteJobs,
    Written,
)
from .redis_scripts import evalsha

log = logging.getLogger("zeromesh.broker.redis")

INVALIDATIONS_STREAM = "zeromesh:invalidations"
_STREAM_MAXLEN = 10_000


class CommandSteps:
    # What the steps use of RedisLink's state (RedisLink sets each in __init__ or at connect).
    consumer: str
    known_queues: set[str]
    retry: list[Any]
    wait_ms: int
    wait_replicas: int
    short_writes: int
    handed_back: int
    _acked_by: int
    _beating: set[str]
    _raw_ids: int
    _raw_prefix: str
    _written: dict[int, list[bytes]]
    _fetch: Any
    _ack_many: Any
    _take_back: Any
    _move_if_held: Any
    _dead_once: Any
    _lost: set[str]
    _unsure: dict[str, tuple[int, list[bytes]]]
    _check_round: int
    taken_back: int

    if TYPE_CHECKING:  # RedisLink's, for the type checker only

        @property
        def _client(self) -> redis.Redis: ...

        def _post(self, result: Any) -> None: ...

        def _set_up(self, up: bool, message: str) -> None: ...

    def _queue_write(self, pipe, cmd: WriteJobs) -> int:
        self.known_queues.add(cmd.queue)
        if cmd.raw:
            elements = [body for (_id, body, _headers, _trace) in cmd.items]
        else:
            elements = [envelope.encode(id_, body, headers, trace) for (id_, body, headers, trace) in cmd.items]
        pipe.rpush(cmd.key, *elements)
        self._written[cmd.token] = elements
        return 1 + (self._beat_once(pipe, cmd.queue) if cmd.key != keys.queue_key(cmd.queue) else 0)

    def _done_write(self, cmd: WriteJobs, part: list) -> None:
        elements = self._written.pop(cmd.token)
        short = ""
        if cmd.durable and self._acked_by < self.wait_replicas:
            # Stored on the primary, where it stays (and may yet run); not confirmed: a failover now could lose it.
            self.short_writes += 1
            short = f"stored on {self._acked_by} of {self.wait_replicas} replicas within {self.wait_ms} ms"
            log.warning(
                "queue %s: %d durable job(s) %s; answered unavailable (they stay in Redis)",
                cmd.queue,
                len(elements),
                short,
            )
        if cmd.key != keys.queue_key(cmd.queue):
            self._track_inflight(cmd.queue, elements)
        self._post(Written(cmd.token, elements, "", short))

    def _queue_fetch(self, pipe, cmd: FetchJobs) -> int:
        queue = cmd.queue
        self.known_queues.add(queue)
        evalsha(pipe, self._fetch, [keys.queue_key(queue), keys.inflight_key(queue, self.consumer)], [cmd.count])
        return 1 + self._beat_once(pipe, queue)

    def _beat_once(self, pipe, queue: str) -> int:
        """Our first in-flight job of a queue: beat in its consumer set with it, not at the next period,
        so that if we die within the second the other brokers know whose list to recover."""
        if queue in self._beating:
            return 0
        self._beating.add(queue)
        pipe.zadd(keys.consumers_key(queue), {self.consumer: time.time()})
        return 1

    def _done_fetch(self, cmd: FetchJobs, part: list) -> None:
        queue, raw = cmd.queue, cmd.raw
        jobs = []
        bad = []
        self._track_inflight(queue, part[0] or [])
        for element in part[0] or []:
            if raw:
                self._raw_ids += 1
                jobs.append((element, envelope.Element(f"{self._raw_prefix}-{self._raw_ids:x}", element)))
                continue
            try:
                jobs.append((element, envelope.decode(element)))
            except ProtocolError as exc:
                bad.append((element, exc.message))
        for element, message in bad:
            log.warning("queue %s: malformed element moved to dead letters: %s", queue, message)
            dead = envelope.encode(None, element, error=message, queue=queue, dead_ms=int(time.time() * 1000))
            self.retry.append(DeadLetter(queue, element, dead))
        self._post(Fetched(queue, cmd.count, jobs))

    def _queue_ack(self, pipe, cmd: AckJobs) -> int:
        elements = cmd.elements
        key = keys.inflight_key(cmd.queue, self.consumer)
        step = 500  # elements per script call: bounded, so Redis is never busy long in one call
        calls = 0
        for i in range(0, len(elements), step):
            evalsha(pipe, self._ack_many, [key], elements[i : i + step])
            calls += 1
        return calls

    def _queue_dead(self, pipe, cmd: DeadLetter) -> int:
        if cmd.element is None:
            # A job held only in memory: a retry after a lost answer must not write it twice.
            evalsha(pipe, self._dead_once, [keys.dead_key(cmd.queue)], [cmd.dead, keys.DEAD_ONCE_LOOKBACK])
        else:
            # Only if still ours: a retry after a lost answer must not write a second dead letter,
            # and a job taken back to its queue meanwhile runs again rather than being dead too.
            held = keys.inflight_key(cmd.queue, self.consumer)
            evalsha(pipe, self._move_if_held, [held, keys.dead_key(cmd.queue)], [cmd.element, cmd.dead])
        return 1

    def _queue_requeue(self, pipe, cmd: Requeue) -> int:
        if not cmd.elements:
            return 0
        pipe.lpush(keys.queue_key(cmd.queue), *reversed(cmd.elements))  # reversed: the first ends at the head
        return 1

    def _done_requeue(self, cmd: Requeue, part: list) -> None:
        self.handed_back += len(cmd.elements)
        log.info("queue %s: %d job(s) handed back to Redis", cmd.queue, len(cmd.elements))

    def _queue_xadd(self, pipe, cmd: RecordEvent) -> int:
        pipe.xadd(
            INVALIDATIONS_STREAM,
            {"topic": cmd.topic, "body": cmd.body, "seq": cmd.seq, "epoch": cmd.epoch, "broker": cmd.broker},
            maxlen=_STREAM_MAXLEN,
            approximate=True,
        )
        return 1

    def _queue_paused(self, pipe, cmd: SetPaused) -> int:
        (pipe.sadd if cmd.paused else pipe.srem)(keys.PAUSED, cmd.queue)
        return 1

    # -- answers lost with the connection ----------------------------------------
    # A fetch or durable write that Redis ran but whose answer died with the connection left
    # jobs in our in-flight list that the router never heard of: held by nobody, and (our
    # name being alive) recovered by nobody until we restart. At the next connect the router
    # says which of that list's elements it holds; the rest go back to the queue head.

    def _lost_answers(self, cmds: Iterable[Any]) -> None:
        """The connection died under these commands: Redis may have run them unheard."""
        for cmd in cmds:
            kind = type(cmd)
            if kind is FetchJobs:
                self._lost.add(cmd.queue)
            elif kind is WriteJobs and cmd.key != keys.queue_key(cmd.queue):
                self._lost.add(cmd.queue)

    def _report_lost(self) -> None:
        """Connected again: ask the router what it holds of each queue an answer was lost for."""
        if not self._lost:
            return
        self._check_round += 1
        queues = sorted(self._lost)
        self._lost.clear()
        for queue in queues:
            self._unsure[queue] = (self._check_round, [])
        log.info("answers lost with the connection for in-flight lists of %s: checking them", ", ".join(queues))
        self._post(InflightUnsure(queues, self._check_round))

    def _track_inflight(self, queue: str, elements: list[bytes]) -> None:
        """Elements we added to a list being checked, after the router was asked: it may not know them yet."""
        unsure = self._unsure.get(queue)
        if unsure is not None:
            unsure[1].extend(elements)

    def _queue_check(self, pipe, cmd: CheckInflight) -> int:
        unsure = self._unsure.get(cmd.queue)
        if unsure is None or unsure[0] != cmd.round:
            return 0  # an older round's answer: the newer round's is on its way
        pipe.lrange(keys.inflight_key(cmd.queue, self.consumer), 0, -1)
        return 1

    def _done_check(self, cmd: CheckInflight, part: list) -> None:
        if not part:
            return
        queue = cmd.queue
        _round, added = self._unsure.pop(queue)
        keep = Counter(cmd.keep)
        keep.update(added)
        orphans = []
        for element in part[0]:
            if keep[element] > 0:
                keep[element] -= 1
            else:
                orphans.append(element)
        if not orphans:
            log.info("queue %s: every job in our in-flight list is held here", queue)
            return
        try:
            # The script skips an element acked since the LRANGE: nothing is queued twice.
            moved = self._take_back(keys=[keys.queue_key(queue), keys.inflight_key(queue, self.consumer)], args=orphans)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            self._lost.add(queue)  # checked again at the next connect
            self._set_up(False, str(exc))
            return
        except redis.RedisError as exc:
            log.error("queue %s: could not take back %d job(s) from our in-flight list: %s", queue, len(orphans), exc)
            return
        self.taken_back += moved
        log.warning(
            "queue %s: %d job(s) taken back from our in-flight list to the queue head: a command that moved "
            "them there lost its answer with the connection, so nobody here held them",
            queue,
            moved,
        )
        self._post(Backlog([queue]))

    def _queue_admin(self, pipe, cmd: AdminQuery) -> int:
        # Admin reads need their answers before they can act, so they run outside the pipeline.
        try:
            result = redis_admin.OPS[cmd.op](self._client, cmd.args)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            raise
        except redis.RedisError as exc:
            self._post(AdminAnswer(cmd.token, None, (wire.E_UNAVAILABLE, str(exc))))
            return 0
        except LookupError as exc:
            self._post(AdminAnswer(cmd.token, None, (wire.E_NOT_FOUND, str(exc.args[0]))))
            return 0
        self._post(AdminAnswer(cmd.token, result, None))
        return 0


# Per command type: the step that queues its Redis calls into the pipeline (returning how many
# results they give) and the step that digests those results (None: nothing to report).
STEPS: dict[type, tuple[Callable, Callable | None]] = {
    WriteJobs: (CommandSteps._queue_write, CommandSteps._done_write),
    ScheduleJobs: (redis_schedule.queue_schedule, redis_schedule.done_schedule),
    UniqueJobs: (redis_unique.queue_unique, redis_unique.done_unique),
    ReleaseUnique: (redis_unique.queue_release, None),
    FetchJobs: (CommandSteps._queue_fetch, CommandSteps._done_fetch),
    AckJobs: (CommandSteps._queue_ack, None),
    DeadLetter: (CommandSteps._queue_dead, None),
    Requeue: (CommandSteps._queue_requeue, CommandSteps._done_requeue),
    RecordEvent: (CommandSteps._queue_xadd, None),
    AdminQuery: (CommandSteps._queue_admin, None),
    SetPaused: (CommandSteps._queue_paused, None),
    CheckInflight: (CommandSteps._queue_check, CommandSteps._done_check),
}
