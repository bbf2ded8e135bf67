# SPDX-License-Identifier: MIT
"""The Redis side of the work queues: writes (spills and durable pushes), fetches, acks,
dead letters and the shutdown hand-back, as commands for the link thread; and what the
link reports back, as results it hands here (Router.on_redis).

Only this part writes the link's status into the shared state (`redis_up`, `redis_status`).
"""

from __future__ import annotations

import time

from zeromesh.protocol import envelope, frames, redis_keys as keys, wire

from .channels import JOB, Channel, Item
from .ledger import Ledger
from .limits import share_count
from .redis_records import (
    ANSWER_LOST,
    AckJobs,
    Backlog,
    Brokers,
    CheckInflight,
    DeadLetter,
    Depths,
    Fetched,
    FetchJobs,
    InflightUnsure,
    LinkState,
    NameRefused,
    Paused,
    RecordEvent,
    RedisStats,
    Released,
    ReleaseUnique,
    Requeue,
    ScheduleJobs,
    UniqueJobs,
    UniqueWritten,
    WriteJobs,
    Written,
)
from .state import RouterState
from .workers import WorkerRecord

# The two routes of a pushed job through Redis.
SPILL = "spill"  # to the queue in Redis: nobody can take it now, or older jobs wait there
INFLIGHT = "inflight"  # a durable queue's job: to our in-flight list first, then to memory
SCHEDULE = "schedule"  # a job for later: to its queue's schedule (SPEC 16.5)
UNIQUE = "unique"  # a job with a unique key: queued (or scheduled) in Redis unless the key is held (SPEC 16.6)

FETCH_MAX = 500  # jobs moved from Redis per fetch
POLL_S = 0.1  # how often idle workers' queues are checked for jobs fed to Redis from outside

SPILLED_ID_MEMORY_S = 3 * 10.0
"""How long the ids of jobs spilled to Redis are remembered, so a producer's resend (within its
PUSH_TIMEOUT_S of 10 s) is confirmed again rather than queued twice while the job waits there."""


class PendingWrite:
    """A write of pushed jobs on its way: who to confirm, and what to make of the jobs once written."""

    __slots__ = ("peer", "chan", "route", "ids", "items")

    def __init__(self, peer: bytes, chan: Channel, route: str, items: list[tuple]) -> None:
        self.peer = peer
        self.chan = chan
        self.route = route
        self.ids = [i[0] for i in items]
        # As pushed: (id, body, headers, trace[, when, unique key]). A durable write's jobs become
        # items with these bodies (no decoding of the stored elements); a unique write reads `when`.
        self.items = items


class RedisSpill:
    def __init__(self, state: RouterState, ledger: Ledger) -> None:
        self.state = state
        self.ledger = ledger
        self.pending_writes: dict[int, PendingWrite] = {}
        self.next_token = 1
        self.poll_channels: set[Channel] = set()  # idle queues to look at in Redis at the next poll
        self.next_poll = 0.0

    def token(self) -> int:
        token = self.next_token
        self.next_token += 1
        return token

    # -- commands ------------------------------------------------------------

    def write(self, peer: bytes, chan: Channel, route: str, items: list[tuple], now: float) -> None:
        """Store pushed jobs in Redis; they are confirmed when the link says they are written."""
        token = self.token()
        name = chan.name
        self.pending_writes[token] = PendingWrite(peer, chan, route, items)
        if route in (SCHEDULE, UNIQUE):
            command = ScheduleJobs if route == SCHEDULE else UniqueJobs
            self.state.redis_commands.append(command(token, name, items, chan.qconf.raw))
            return
        key = (
            keys.queue_key(name)
            if route == SPILL
            else keys.inflight_key(name, keys.broker_consumer(self.state.config.name))
        )
        self.state.redis_commands.append(WriteJobs(token, key, items, chan.qconf.raw, name, chan.qconf.durable))
        if route == SPILL:
            chan.backlog = True  # later pushes queue behind these, in Redis, to keep FIFO

    def after_dispatch(self, chan: Channel, avail: list[WorkerRecord], now: float) -> None:
        """Fetch from Redis when workers of the queue have room and memory holds too few jobs."""
        if not self.state.redis_up or chan.fetching:
            return
        jobs = chan.jobs
        room = min(FETCH_MAX, chan.qconf.max_depth - len(jobs))  # memory stays within the queue's limit
        if avail and not jobs:
            if chan.backlog or now >= chan.poll_at:
                free = sum(w.credit - len(w.held) for w in avail)
                chan.fetching = True
                self.state.redis_commands.append(
                    FetchJobs(chan.name, max(1, min(max(free, FETCH_MAX // 2), room)), chan.qconf.raw)
                )
            else:
                self.poll_channels.add(chan)
        elif chan.backlog and len(jobs) < FETCH_MAX // 2 and room >= FETCH_MAX // 2:
            # Draining a backlog: fetch the next lot while workers still have jobs in memory,
            # so they never wait out a Redis round trip.
            chan.fetching = True
            self.state.redis_commands.append(FetchJobs(chan.name, room, chan.qconf.raw))

    def poll_due(self, now: float) -> None:
        """Idle queues get another look in Redis, for jobs fed to it from outside."""
        if self.poll_channels and now >= self.next_poll:
            self.next_poll = now + POLL_S
            self.state.dirty.update(self.poll_channels)
            self.poll_channels.clear()

    def send_acks(self) -> None:
        """Acked jobs' elements leave our Redis in-flight list: one command per queue per flush."""
        for name, elements in self.ledger.take_acked_elements().items():
            self.state.redis_commands.append(AckJobs(name, elements))
        if self.ledger.done_unique:
            self.release_unique(self.ledger.done_unique)
            self.ledger.done_unique = []

    def dead_lettered(self, item: Item) -> None:
        """The ledger's hook, before the item's body is dropped: count, log, and store it in Redis."""
        state = self.state
        chan = item.channel
        if state.redis_enabled:  # the link retries until Redis takes it
            dead = envelope.encode(
                item.id,
                item.body,
                item.headers,
                item.trace,
                item.attempt,
                item.error,
                chan.name,
                dead_ms=int(time.time() * 1000),
            )
            state.redis_commands.append(DeadLetter(chan.name, item.elem, dead))
            self.release_unique([item])
        state.counters["dead_lettered"] += 1
        state.log.warning(
            "queue %s: job %s dead-lettered after %d attempt(s): %s", chan.name, item.id, item.attempt, item.error
        )

    def record_event(self, topic: str, seq: int, body: bytes) -> None:
        self.state.redis_commands.append(RecordEvent(topic, seq, self.state.epoch, body, self.state.config.name))

    def hand_back(self, workers: list[WorkerRecord]) -> None:
        """Jobs only in our memory go back to the head of their Redis queue, in order.

        Jobs with an element in our Redis in-flight list stay there: the next
        broker with our name recovers them at start, and direct consumers'
        recovery does after our heartbeat stops.
        """
        for chan in self.state.channels.values():
            held = self.ledger.held_jobs(chan, workers)
            waiting = self.ledger.waits.of(chan) if chan.waiting else []
            elements = [_element_of(i, chan) for i in held + waiting + list(chan.jobs) if i.elem is None]
            if elements:
                self.state.redis_commands.append(Requeue(chan.name, elements))

    # -- results ---------------------------------------------------------------

    def on_written(self, result: Written, now: float) -> None:
        state = self.state
        pending = self.pending_writes.pop(result.token)
        chan, ids = pending.chan, pending.ids
        self.ledger.end_writes(ids)
        if result.elements is None:
            state.counters["redis_write_failed"] += len(ids)
            why = _write_failed(result.error)
            for jid in ids:
                state.error(pending.peer, jid, wire.E_UNAVAILABLE, why)
            if pending.route == SPILL and not state.redis_up:
                chan.backlog = False  # nothing of ours went there; memory takes over
            return
        if result.short:
            # In Redis on the primary (where the jobs stay and will run), but on too few replicas for a
            # confirm: a failover now could lose them. A resend of one is confirmed as already held.
            state.counters["redis_replicas_short"] += len(ids)
            for jid in ids:
                state.error(
                    pending.peer, jid, wire.E_UNAVAILABLE, f"{result.short}; the job stays in Redis and may still run"
                )
        else:
            state.confirms.setdefault(pending.peer, []).extend(ids)
        if pending.route == SCHEDULE:
            state.counters["scheduled"] += len(ids)
            return
        if pending.route == INFLIGHT:
            items = []
            for (jid, body, headers, trace), element in zip(pending.items, result.elements):
                item = Item(JOB, jid, chan, body, headers, trace or jid, None, now)
                item.elem = element
                items.append(item)
            self.ledger.queue_jobs(chan, items)
        else:
            chan.backlog = True
            chan.redis_depth += len(ids)  # until the link's next LLEN report
            state.counters["spilled"] += len(ids)
            if state.trace is not None:
                state.trace.record(now, "spilled", ids)
            self.ledger.spilled(chan, ids, now)
        state.dirty.add(chan)

    def on_unique_written(self, result: UniqueWritten, now: float) -> None:
        """Each unique push: queued or scheduled now (confirmed), or not queued because another job
        holds its key (confirmed too, naming that job in CONFIRM `duplicates`)."""
        state = self.state
        pending = self.pending_writes.pop(result.token)
        chan, ids = pending.chan, pending.ids
        self.ledger.end_writes(ids)
        if result.firsts is None or result.short:
            why = result.short or _write_failed(result.error)
            state.counters["redis_write_failed" if result.firsts is None else "redis_replicas_short"] += len(ids)
            for jid in ids:
                state.error(pending.peer, jid, wire.E_UNAVAILABLE, why)
            return
        queued = []
        duplicates = {}
        tl = state.trace
        for job, first in zip(pending.items, result.firsts):
            jid, when = job[0], job[4]
            if first and first != jid:
                duplicates[jid] = first
                if tl is not None:
                    tl.record(now, "duplicate", jid, {"error": f"unique key held by job {first}"})
            elif when is None:
                queued.append(jid)
                if tl is not None:
                    tl.record(now, "spilled", jid)
            else:
                state.counters["scheduled"] += 1
                if tl is not None:
                    tl.record(now, "scheduled", jid)
        if duplicates:
            state.counters["duplicate_unique"] += len(duplicates)
            state.outbox.append(frames.confirm(pending.peer, state.next_id(), list(duplicates), None, duplicates))
        confirmed = [jid for jid in ids if jid not in duplicates]
        if confirmed:
            state.confirms.setdefault(pending.peer, []).extend(confirmed)
        if queued:  # in the queue's Redis list, as a spill
            chan.backlog = True
            chan.redis_depth += len(queued)
            self.ledger.spilled(chan, queued, now)
            state.dirty.add(chan)

    def release_unique(self, items: list[Item]) -> None:
        """Done jobs free the unique keys they held ("until done")."""
        pairs = [(i.unique, i.id) for i in items if i.unique]
        if pairs and self.state.redis_enabled:
            self.state.redis_commands.append(ReleaseUnique(pairs))

    def on_fetched(self, result: Fetched, now: float) -> None:
        state = self.state
        name = result.queue
        chan = state.channel(name)
        chan.fetching = False
        items = []
        for element, el in result.jobs:
            jid = el.id or state.next_id()
            item = Item(JOB, jid, chan, el.body, el.headers, el.trace or jid, None, now)
            item.attempt = el.attempt
            item.error = el.error
            item.elem = element
            item.unique = el.unique
            items.append(item)
        if state.trace is not None:
            state.trace.record(now, "drained", items)
        duplicates = self.ledger.fetched(chan, items)
        for item in duplicates:
            # One id, one job (SPEC 2.3): a second element with the id of a job we hold is
            # that job again (a resend stored twice), or an id reused against the rules.
            first = self.ledger.jobs_by_id[item.id]
            state.log.warning(
                "queue %s: dropped a second copy of job %s found in Redis while the first is %s",
                name,
                item.id,
                "in flight" if first.worker else "queued",
            )
        if duplicates:
            state.counters["duplicate_jobs_dropped"] += len(duplicates)
        state.counters["drained"] += len(result.jobs) - len(duplicates)
        chan.redis_depth = max(0, chan.redis_depth - len(result.jobs))
        if len(result.jobs) < result.asked:
            chan.backlog = False
            chan.poll_at = now + POLL_S
        state.dirty.add(chan)

    def on_inflight_unsure(self, result: InflightUnsure, now: float) -> None:
        """The link lost an answer that may have grown these queues' in-flight lists: tell it which
        elements there are ours to keep (acks so far go first, so they are not counted as orphans)."""
        self.send_acks()
        channels = self.state.channels
        for name in result.queues:
            chan = channels.get(name)
            keep = (
                []
                if chan is None
                else [i.elem for i in self.ledger.jobs_by_id.values() if i.channel is chan and i.elem is not None]
            )
            self.state.redis_commands.append(CheckInflight(name, keep, result.round))

    def on_link_state(self, result: LinkState, now: float) -> None:
        state = self.state
        state.redis_up = result.up
        state.redis_status = "up" if result.up else f"down: {result.message}"
        if result.up:
            state.dirty.update(c for c in state.channels.values() if c.workers)

    def on_backlog(self, result: Backlog, now: float) -> None:
        for name in result.queues:
            chan = self.state.channel(name)
            chan.backlog = True
            self.state.dirty.add(chan)

    def on_brokers(self, result: Brokers, now: float) -> None:
        self.state.brokers = result.brokers
        sharing = share_count(result.brokers)
        for chan in self.state.channels.values():
            if chan.gate is not None:
                chan.gate.brokers = sharing

    def on_redis_stats(self, result: RedisStats, now: float) -> None:
        self.state.redis_rtt_ms = result.rtt_ms
        for name, count in result.scheduled.items():
            self.state.channel(name).scheduled = count

    def on_released(self, result: Released, now: float) -> None:
        """Scheduled jobs the link moved to their queues: the trace log's `released` events."""
        if self.state.trace is not None:
            for ids in result.jobs.values():
                self.state.trace.record(now, "released", ids)

    def on_paused(self, result: Paused, now: float) -> None:
        """Follow the mesh-wide pauses, except where an ADMIN here changed one in the last 2 s
        (this report may have been read before that change reached Redis)."""
        for name, chan in self.state.channels.items():
            paused = name in result.queues
            if chan.paused != paused and now - chan.paused_at > 2.0:
                chan.set_paused(paused)
                self.state.log.info("queue %s %s (mesh-wide)", name, "paused" if paused else "resumed")
                self.state.dirty.add(chan)
        for name in result.queues - self.state.channels.keys():
            self.state.channel(name).set_paused(True)

    def on_name_refused(self, result: NameRefused, now: float) -> None:
        state = self.state
        state.refused = result.message
        state.redis_up = False
        state.redis_status = f"refused: {result.message}"

    def on_depths(self, result: Depths, now: float) -> None:
        for name, (pending, dead) in result.depths.items():
            chan = self.state.channels.get(name)
            if chan is not None:
                chan.redis_depth, chan.redis_dead = pending, dead


def _write_failed(error: str) -> str:
    """What a producer hears of a write that failed: not stored, or (answer lost) perhaps stored."""
    if error.startswith(ANSWER_LOST):
        return f"redis did not confirm storing the job, which may still be stored and run: {error}"
    return f"could not store the job in Redis: {error}"


def _element_of(item: Item, chan: Channel) -> bytes:
    if chan.qconf.raw:
        return item.body
    return envelope.encode(
        item.id,
        item.body,
        item.headers,
        item.trace,
        max(item.attempt - 1, 0) if item.worker else item.attempt,
        item.error,
        unique=item.unique,
    )
