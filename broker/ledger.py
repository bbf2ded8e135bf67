# SPDX-License-Identifier: MIT
"""The ledger: the one owner of every job's and request's life in the broker.

An item is in exactly one place at a time:

    queued       in its channel's `jobs` or `requests` deque
    held         in one worker's `held` (item.worker is that worker), counted in chan.in_flight
    dead         in its channel's `dead` deque (no Redis), or written to Redis's dead list
    finished     acked, answered, dead-lettered to Redis: in the `finished` ring for `trace`
    in Redis     being written (`writing_ids`), or spilled to a Redis queue (`spilled_ids`)

and the indexes follow it: `jobs_by_id` holds every queued and held job, `requests_by_id`
every request not yet answered, `deadlines` a heap entry per request (stale entries of
answered ones are dropped as they reach the top); `waits` holds NACKed jobs waiting out
their backoff. Only the methods below (and the operator actions of ledger_upkeep.py, mixed
in) change these structures, `worker.held` and `chan.in_flight`; the rest of the broker
reads them. Bulk forms (`queue_jobs`, `lease_jobs`, `ack_jobs`) keep the batched paths at
C speed.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Iterable
from operator import attrgetter
from typing import NamedTuple, cast

from .channels import JOB, Channel, Item
from .ledger_upkeep import LedgerUpkeep
from .retry_waits import RetryWaits
from .trace_log import TraceLog, since_of
from .workers import WorkerRecord


class Released(NamedTuple):
    """What a worker's departure did to the items it held."""

    held: int  # how many items it held
    failed: list[Item]  # requests that can go nowhere: their callers get worker_lost
    channels: set[Channel]  # channels that got items back at their head


_id_of = attrgetter("id")


def _no_dead_letter_hook(item: Item) -> None:
    return None


class Ledger(LedgerUpkeep):
    def __init__(
        self,
        trace_history: int,
        dead_in_redis: bool = False,
        on_dead: Callable[[Item], None] = _no_dead_letter_hook,
        trace: TraceLog | None = None,
    ) -> None:
        self.trace = trace  # the trace log, told of acks, retries, dead letters (None: off)
        self.jobs_by_id: dict[str, Item] = {}  # queued and held jobs
        self.requests_by_id: dict[str, Item] = {}  # requests not yet answered
        self.deadlines: list[tuple[float, int, Item]] = []
        self.finished: deque[Item] = deque(maxlen=trace_history)  # for `trace`, bodies dropped
        self.writing_ids: set[str] = set()  # pushes being written to Redis: confirmed once written
        self.spilled_ids: dict[str, float] = {}  # jobs we stored in a Redis queue -> when (oldest first)
        self.acked_elements: dict[str, list[bytes]] = {}  # queue -> acked jobs' elements in our Redis in-flight list
        self.done_unique: list[Item] = []  # settled jobs that hold a unique key until done
        self.waits = RetryWaits()  # NACKed jobs waiting out their retry delay
        self.dead_in_redis = dead_in_redis  # dead letters go to Redis (else to chan.dead)
        self.on_dead = on_dead  # told of each dead letter before its body is dropped
        self._seq = itertools.count()

    # -- jobs: queued ----------------------------------------------------------

    def knows_job(self, jid: str) -> bool:
        """Queued, held or spilled to Redis by us: a push with this id is a resend."""
        return jid in self.jobs_by_id or jid in self.spilled_ids

    def all_new(self, ids: list[str]) -> bool:
        """None of these ids is a job we hold, are writing or spilled."""
        return (
            self.jobs_by_id.keys().isdisjoint(ids)
            and (not self.writing_ids or self.writing_ids.isdisjoint(ids))
            and (not self.spilled_ids or self.spilled_ids.keys().isdisjoint(ids))
        )

    def queue_jobs(self, chan: Channel, items: list[Item], pushed: bool = True) -> None:
        """At the tail of the queue; `pushed` counts them as enqueued (not so for jobs fetched from Redis)."""
        chan.jobs.extend(items)
        if pushed:
            chan.enqueued += len(items)
        self.jobs_by_id.update(zip(map(_id_of, items), items))

    def queue_job(self, chan: Channel, item: Item, pushed: bool = True) -> None:
        chan.jobs.append(item)
        if pushed:
            chan.enqueued += 1
        self.jobs_by_id[item.id] = item

    # -- jobs: held ------------------------------------------------------------

    def lease_jobs(self, worker: WorkerRecord, chan: Channel, count: int, now: float) -> list[Item]:
        """Move `count` jobs from the head of the queue to the worker, leased for the queue's lease_s."""
        jobs = chan.jobs
        items = [jobs.popleft() for _ in range(count)]
        held = worker.held
        lease_until = now + chan.qconf.lease_s
        chan.in_flight += count
        for item in items:
            item.attempt += 1
            item.worker = worker
            item.since = now
            item.deadline = lease_until
            held[item.id] = item
        return items

    def extend_leases(self, worker: WorkerRecord, ids: Iterable[str], until: float) -> None:
        held = worker.held
        for jid in ids:
            item = held.get(jid)
            if item is not None and item.kind == JOB:
                item.deadline = until

    def ack_jobs(self, worker: WorkerRecord, ids: list[str], now: float) -> int:
        """Settle acked jobs (kept in `finished` without their bodies). Returns how many ids were
        not jobs this worker holds (late: a lease that expired, a repeat)."""
        held = worker.held
        items = [held.get(jid) for jid in ids]
        first = items[0] if items else None
        if (
            first is not None
            and first.kind == JOB
            and all(i is not None and i.kind == JOB and i.channel is first.channel and i.elem is None for i in items)
        ):
            # The usual ACK: jobs of one queue, none of them in Redis. In bulk: C-level pops and counts.
            settled = cast("list[Item]", items)  # all() above saw no None; mypy cannot follow it there
            for jid in ids:
                del held[jid]
            pop = self.jobs_by_id.pop
            for jid in ids:
                pop(jid)
            chan = first.channel
            chan.in_flight -= len(settled)
            chan.acked += len(settled)
            if self.trace is not None:  # one record for the lot: when each was delivered, read in C
                self.trace.record(now, "acked", settled, None, tuple(map(since_of, settled)))
            for job in settled:
                job.worker = None
                job.outcome = "done"
                job.since = now
                job.body = b""
            self.finished.extend(settled)
            return 0
        late = 0
        jobs_by_id = self.jobs_by_id
        finished = self.finished
        trace = self.trace
        acked: list[Item] = []  # one trace record for the lot, as above: one a job cost Redis-backed queues
        delivered: list[float] = []
        for jid in ids:
            item = held.get(jid)
            if item is None or item.kind != JOB:
                late += 1
                continue
            del held[jid]
            del jobs_by_id[jid]
            chan = item.channel
            chan.in_flight -= 1
            chan.acked += 1
            if trace is not None:
                acked.append(item)
                delivered.append(item.since)
            if item.elem is not None:
                self.acked_elements.setdefault(chan.name, []).append(item.elem)
                item.elem = None
                if item.unique:
                    self.done_unique.append(item)
            item.worker = None
            item.outcome = "done"
            item.since = now
            item.body = b""
            finished.append(item)
        if acked and trace is not None:
            trace.record(now, "acked", acked, None, tuple(delivered))
        return late

    def nack_job(
        self, worker: WorkerRecord, item: Item, error: str, retry: bool, now: float, delay: float = 0.0
    ) -> None:
        """A worker failed the job: back at the head of the queue after `delay` seconds, or dead-lettered."""
        self._release(worker, item)
        item.channel.nacked += 1
        self._retry_or_dead_letter(item, error, retry, now, delay)

    @staticmethod
    def expired_leases(worker: WorkerRecord, now: float) -> list[Item]:
        return [item for item in worker.held.values() if item.kind == JOB and item.deadline <= now]

    def expire_lease(self, worker: WorkerRecord, item: Item, error: str, now: float) -> None:
        """The job's lease ran out: back at the head of the queue (or dead-lettered), a failed attempt."""
        self._release(worker, item)
        if self.trace is not None:
            self.trace.record(now, "lease_expired", item, {"error": error, "attempt": item.attempt})
        self._retry_or_dead_letter(item, error, True, now)

    def _release(self, worker: WorkerRecord, item: Item) -> None:
        del worker.held[item.id]
        item.channel.in_flight -= 1
        item.worker = None

    def _retry_or_dead_letter(self, item: Item, error: str, retry: bool, now: float, delay: float = 0.0) -> None:
        item.error = error
        item.since = now
        if not retry or item.attempt >= item.channel.qconf.max_attempts:
            self._dead_letter(item, now)
        elif delay > 0:
            self.waits.add(item, now + delay)
            if self.trace is not None:
                self.trace.record(now, "retry_wait", item, {"retry_in_ms": int(delay * 1000)})
        else:
            item.channel.jobs.appendleft(item)

    def _dead_letter(self, item: Item, now: float) -> None:
        chan = item.channel
        if self.trace is not None:
            self.trace.record(now, "dead_lettered", item, {"error": item.error, "attempt": item.attempt})
        self.on_dead(item)
        self.jobs_by_id.pop(item.id, None)
        chan.dead_lettered += 1
        item.since = now
        if self.dead_in_redis:
            self.remember(item, "dead_letter", now)
        else:
            chan.dead.append(item)

    def remember(self, item: Item, outcome: str, now: float) -> None:
        """Keep a finished item for `trace`, without its payload; the ring forgets the oldest."""
        item.outcome = outcome
        item.since = now
        item.body = b""
        item.elem = None
        self.finished.append(item)

    # -- jobs in Redis -----------------------------------------------------------

    def begin_writes(self, ids: Iterable[str]) -> None:
        self.writing_ids.update(ids)

    def end_writes(self, ids: Iterable[str]) -> None:
        self.writing_ids.difference_update(ids)

    def spilled(self, chan: Channel, ids: list[str], now: float) -> None:
        """Jobs now waiting in the channel's Redis queue: their ids are remembered for resends."""
        chan.enqueued += len(ids)
        self.spilled_ids.update(dict.fromkeys(ids, now))

    def fetched(self, chan: Channel, items: list[Item]) -> list[Item]:
        """Jobs moved from Redis to our in-flight list, queued here. Returns those refused as a
        second copy of a job we hold (one id, one job: SPEC 2.3); their elements are acked."""
        duplicates = []
        jobs_by_id = self.jobs_by_id
        for item in items:
            self.spilled_ids.pop(item.id, None)
            if item.id in jobs_by_id:
                duplicates.append(item)
                continue
            chan.jobs.append(item)
            jobs_by_id[item.id] = item
        if duplicates:
            # Fetched items always carry their in-flight element.
            self.acked_elements.setdefault(chan.name, []).extend(i.elem for i in duplicates if i.elem is not None)
        return duplicates

    def forget_spilled(self, cutoff: float) -> None:
        """Forget the ids of jobs spilled before `cutoff`: a resend now would be a new job."""
        spilled = self.spilled_ids
        expired = []
        for jid, when in spilled.items():  # oldest first: stop at the first one still fresh
            if when > cutoff:
                break
            expired.append(jid)
        for jid in expired:
            del spilled[jid]

    def take_acked_elements(self) -> dict[str, list[bytes]]:
        taken, self.acked_elements = self.acked_elements, {}
        return taken

    @staticmethod
    def held_jobs(chan: Channel, workers: Iterable[WorkerRecord]) -> list[Item]:
        return [i for w in workers for i in w.held.values() if i.channel is chan and i.kind == JOB]

    # -- requests ----------------------------------------------------------------

    def queue_request(self, chan: Channel, item: Item) -> None:
        chan.requests.append(item)
        chan.requested += 1
        self.requests_by_id[item.id] = item
        heapq.heappush(self.deadlines, (item.deadline, next(self._seq), item))

    def lease_request(self, worker: WorkerRecord, chan: Channel, now: float) -> Item | None:
        """The next live request of the channel, now held by the worker (None when none is left)."""
        requests = chan.requests
        while requests:
            item = requests.popleft()
            if not item.done:  # answered ones (timed out, cancelled) are skipped here, not searched for
                item.attempt += 1
                item.worker = worker
                item.since = now
                worker.held[item.id] = item
                chan.in_flight += 1
                return item
        return None

    def settle_request(self, worker: WorkerRecord, item: Item) -> bool:
        """The worker answered: True when the answer goes to the caller (not when it came too late)."""
        del worker.held[item.id]  # _release, inlined: this runs per reply
        item.channel.in_flight -= 1
        item.worker = None
        if item.done:  # timed out or cancelled: the caller has its answer already
            return False
        item.done = True
        item.channel.answered += 1
        self.requests_by_id.pop(item.id, None)
        return True

    def cancel_request(self, item: Item) -> None:
        """Answered otherwise (cancelled by its caller): a worker holding it keeps it until it answers."""
        item.done = True
        self.requests_by_id.pop(item.id, None)

    def expire_requests(self, now: float) -> list[Item]:
        """Requests whose deadline has passed, now answered (done); the caller tells their callers."""
        heap = self.deadlines
        expired = []
        while heap and heap[0][0] <= now:
            item = heapq.heappop(heap)[2]
            if not item.done:
                self.cancel_request(item)
                expired.append(item)
        return expired

    def next_deadline(self) -> float | None:
        deadlines = self.deadlines
        # Answered requests leave their deadline in the heap; dropped here as they reach the top, they
        # never wake the loop. (They did: at 13k requests/s one came due every 77 us, so the loop
        # polled with no timeout at all, and it went on for a whole request timeout after the load.)
        while deadlines and deadlines[0][2].done:
            heapq.heappop(deadlines)
        return deadlines[0][0] if deadlines else None

    def fail_all_requests(self) -> list[Item]:
        """At shutdown: every unanswered request, now answered (done)."""
        left = [item for item in self.requests_by_id.values() if not item.done]
        for item in left:
            item.done = True
        self.requests_by_id.clear()
        return left

    @staticmethod
    def compact_requests(chan: Channel) -> None:
        """Drop answered requests from the queue once they are more than half of it."""
        if chan.requests and len(chan.requests) > 2 * chan.pending_requests() + 16:
            chan.requests = deque(item for item in chan.requests if not item.done)

    # -- a worker leaves -----------------------------------------------------------

    def release_worker(self, worker: WorkerRecord, now: float, handback: bool, reason: str) -> Released:
        """Put what the worker held back at the head of its queues, in order.

        `handback`: it gave them back unprocessed (DISCONNECT), so no attempt is counted.
        Otherwise each is a failed attempt: jobs out of attempts are dead-lettered, requests
        out of attempts or time fail.
        """
        items = list(worker.held.values())
        worker.held.clear()
        failed: list[Item] = []
        channels: set[Channel] = set()
        for item in reversed(items):
            chan = item.channel
            chan.in_flight -= 1
            item.worker = None
            item.since = now
            channels.add(chan)
            if item.kind == JOB:
                if handback:
                    item.attempt -= 1  # handed back unprocessed: not a failed attempt
                else:
                    item.error = reason
                    if self.trace is not None:
                        self.trace.record(now, "worker_lost", item, {"error": reason, "attempt": item.attempt})
                    if item.attempt >= chan.qconf.max_attempts:
                        self._dead_letter(item, now)
                        continue
                chan.jobs.appendleft(item)
            elif not item.done:
                if item.deadline > now and (handback or item.attempt < chan.sconf.max_attempts):
                    if handback:
                        item.attempt -= 1
                    item.error = reason
                    chan.requests.appendleft(item)
                else:
                    self.cancel_request(item)
                    failed.append(item)
        return Released(len(items), failed, channels)
