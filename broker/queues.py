# SPDX-License-Identifier: MIT
"""Work queues: PUSH in, JOB out, ACK/NACK/EXTEND back, and the producers' CONFIRMs.

A pushed job goes to memory, to Redis first (a durable queue, or a spill when no worker
can take it or older jobs wait there), or is refused; the ledger records each step.
"""

from __future__ import annotations

from zeromesh.protocol import codec, frames, wire

from .channels import JOB, REQUEST, Channel, Item
from .ledger import Ledger
from .retry_waits import backoff_s
from .spill import INFLIGHT, SCHEDULE, SPILL, UNIQUE, RedisSpill
from .state import RouterState
from .trace_log import attempts_of
from .workers import WorkerRecord

MAX_BATCH = 250  # jobs per JOB message: large enough to amortise, small enough to spread

# Where a pushed job goes, besides the two Redis routes of the spill.
_MEMORY, _FULL, _UNAVAILABLE = "memory", "full", "unavailable"


class WorkQueues:
    def __init__(self, state: RouterState, ledger: Ledger, spill: RedisSpill) -> None:
        self.state = state
        self.ledger = ledger
        self.spill = spill

    # -- producers -------------------------------------------------------------

    def on_push_batch(
        self, peer: bytes, env: codec.Envelope, received: list[bytes], worker: WorkerRecord | None, now: float
    ) -> None:
        state = self.state
        header = env.header
        ids = header["ids"]
        chan = state.channel(header["queue"])
        # The common case in one go: all of it to memory, nothing seen before.
        if (
            not state.draining
            and "at_ms" not in header
            and len(chan.jobs) + len(ids) <= chan.qconf.max_depth
            and (not state.redis_enabled or (not chan.backlog and not chan.qconf.durable and chan.credit()))
            and self.ledger.all_new(ids)
        ):
            headers = header.get("headers")
            trace = header.get("trace")
            items = [Item(JOB, jid, chan, body, headers, trace or jid, None, now) for jid, body in zip(ids, env.items)]
            self.ledger.queue_jobs(chan, items)
            if state.trace is not None:  # one record for the whole batch
                info = (self.pusher(peer, worker), header.get("parent"))
                state.trace.record(now, "accepted", items, info)
            state.confirm_batches.setdefault(peer, []).append(header["id"])
            state.dirty.add(chan)
            return
        # Otherwise job by job, exactly as if each had come in its own PUSH.
        shared = {"queue": header["queue"]}
        if header.get("headers"):
            shared["headers"] = header["headers"]
        if header.get("trace"):
            shared["trace"] = header["trace"]
        if header.get("parent"):
            shared["parent"] = header["parent"]
        if "at_ms" in header:
            shared["at_ms"] = header["at_ms"]
        self.push_items(peer, [({**shared, "id": jid}, body) for jid, body in zip(ids, env.items)], now, worker)

    def on_push(
        self, peer: bytes, env: codec.Envelope, received: list[bytes], worker: WorkerRecord | None, now: float
    ) -> None:
        self.push_items(peer, env.items, now, worker)

    def pusher(self, peer: bytes, worker: WorkerRecord | None) -> str | bytes:
        """Who pushed, for the trace log: the CURVE key's name, else the worker's label, else the
        routing id (bytes: turned into hex only when someone reads the log)."""
        key = self.state.pusher
        if key is not None:
            return key
        return worker.label if worker is not None and worker.label else peer

    def push_items(
        self, peer: bytes, pushed: list[tuple[dict, bytes]], now: float, worker: WorkerRecord | None = None
    ) -> None:
        state, ledger = self.state, self.ledger
        tl = state.trace
        who = self.pusher(peer, worker) if tl is not None else None
        # The trace log gets one `accepted` record per queue and parent, not one per job: a record
        # per job (and its eviction later) cost the Redis paths 15 to 28% of their rate.
        in_memory: dict[str | None, list[Item]] = {}  # parent -> jobs queued here
        by_id: dict[tuple[str, str | None], tuple[list[str], list[str]]] = {}  # (queue, parent) -> ids, traces
        due: list[tuple[str, int]] = []  # scheduled jobs: their `scheduled` events follow `accepted`
        confirms = state.confirms.setdefault(peer, [])
        chan = None
        writes: dict[tuple[str, str], list] = {}
        for header, body in pushed:
            jid = header["id"]
            if state.draining:
                state.error(peer, jid, wire.E_SHUTTING_DOWN, "broker is shutting down")
                continue
            name = header["queue"]
            if chan is None or chan.name != name:
                chan = state.channel(name)
                state.dirty.add(chan)
                credit = chan.credit() if state.redis_enabled else 1
            if ledger.knows_job(jid):
                # A resend of a push we hold, in memory or in a Redis queue: confirm again, enqueue once.
                state.counters["duplicate_pushes"] += 1
                confirms.append(jid)
                continue
            if jid in ledger.writing_ids:
                continue  # its confirm comes when the Redis write completes
            at_ms = header.get("at_ms")
            unique = header.get("unique_key")
            if unique is not None:
                route = UNIQUE if state.redis_up else _UNAVAILABLE
            else:
                route = self._route(chan, credit) if at_ms is None else self._schedule_route()
            if route == _MEMORY:
                item = Item(JOB, jid, chan, body, header.get("headers"), header.get("trace") or jid, None, now)
                ledger.queue_job(chan, item)
                confirms.append(jid)
                if tl is not None:
                    in_memory.setdefault(header.get("parent"), []).append(item)
                continue
            if route == _FULL:
                state.counters["queue_full"] += 1
                state.error(
                    peer, jid, wire.E_QUEUE_FULL, f"queue '{name}' is full ({chan.qconf.max_depth} jobs waiting)"
                )
            elif route == _UNAVAILABLE:
                state.counters["redis_unavailable"] += 1
                what = "a unique job" if unique else (f"durable queue '{name}'" if at_ms is None else "a scheduled job")
                status = state.redis_status if state.redis_enabled else "not configured"
                state.error(peer, jid, wire.E_UNAVAILABLE, f"{what} needs Redis, which is {status}")
            else:
                if tl is not None:  # on its way to Redis: no Item of it here, logged by id
                    ids, traces = by_id.setdefault((name, header.get("parent")), ([], []))
                    ids.append(jid)
                    traces.append(header.get("trace") or jid)
                job: tuple = (jid, body, header.get("headers"), header.get("trace"))
                if route == UNIQUE:
                    job = (*job, at_ms, unique, header.get("unique_ttl_ms") or 0)
                elif at_ms is not None:
                    job = (*job, at_ms)
                    if tl is not None:
                        due.append((jid, at_ms))
                writes.setdefault((name, route), []).append(job)
                ledger.begin_writes((jid,))
        if not confirms:
            del state.confirms[peer]
        if tl is not None:
            for parent, queued in in_memory.items():
                tl.record(now, "accepted", queued, (who, parent))
            for (name, parent), (ids, traces) in by_id.items():
                tl.record(now, "accepted", ids, (who, parent, None, JOB, name), tuple(traces))
            for jid, at_ms in due:
                tl.record(now, "scheduled", jid, {"due_ms": at_ms})
        for (name, route), items in writes.items():
            self.spill.write(peer, state.channels[name], route, items, now)

    def _schedule_route(self) -> str:
        """A job for later waits in Redis from its confirm on, whatever its queue's durability."""
        return SCHEDULE if self.state.redis_up else _UNAVAILABLE

    def _route(self, chan: Channel, credit: int) -> str:
        state = self.state
        qconf = chan.qconf
        room = len(chan.jobs) < qconf.max_depth
        if not state.redis_enabled:
            return _MEMORY if room else _FULL
        if chan.backlog or not credit or not room:
            # Spill: nobody to take it now, or memory is at its limit, or older jobs wait in Redis.
            if state.redis_up:
                return SPILL
            if qconf.durable:
                return _UNAVAILABLE
            return _MEMORY if room else _FULL
        if qconf.durable:
            return INFLIGHT if state.redis_up else _UNAVAILABLE
        return _MEMORY

    def send_confirms(self) -> None:
        state = self.state
        step = wire.MAX_IDS_PER_MESSAGE
        confirms, batches = state.confirms, state.confirm_batches
        state.confirms, state.confirm_batches = {}, {}
        outbox, next_id = state.outbox, state.next_id
        for peer, ids in confirms.items():
            whole = batches.pop(peer, None)
            for i in range(0, len(ids), step):
                message_ids = None
                if whole and i == 0:
                    message_ids = whole[:step]
                    del whole[:step]
                outbox.append(frames.confirm(peer, next_id(), ids[i : i + step], message_ids))
            if whole:
                batches[peer] = whole
        for peer, whole in batches.items():
            for i in range(0, len(whole), step):
                outbox.append(frames.confirm(peer, next_id(), [], whole[i : i + step]))

    # -- workers' answers ------------------------------------------------------

    def on_ack(
        self, peer: bytes, env: codec.Envelope, received: list[bytes], worker: WorkerRecord | None, now: float
    ) -> None:
        if worker is None:
            return self.state.unknown_peer(peer, env)
        late = self.ledger.ack_jobs(worker, env.header["ids"], now)
        if late:
            self.state.counters["late_acks"] += late
        self.state.wake(worker)

    def on_nack(
        self, peer: bytes, env: codec.Envelope, received: list[bytes], worker: WorkerRecord | None, now: float
    ) -> None:
        if worker is None:
            return self.state.unknown_peer(peer, env)
        header = env.header
        item = worker.held.get(header["re"])
        if item is None:
            self.state.counters["late_acks"] += 1
            return
        if item.kind == REQUEST:
            # A worker that nacks a request means it failed: answer the caller.
            if self.ledger.settle_request(worker, item):
                if self.state.trace is not None:
                    ms = round((now - item.enqueued_at) * 1000, 3)
                    self.state.trace.record(now, "error", item.id, {"code": wire.E_REMOTE, "ms": ms})
                self.state.outbox.append(
                    frames.error(item.client, self.state.next_id(), wire.E_REMOTE, header["error"], item.id)
                )
            else:
                self.state.counters["late_replies"] += 1
            return
        retry_in_ms = header.get("retry_in_ms")
        delay = retry_in_ms / 1000.0 if retry_in_ms is not None else backoff_s(item.channel.qconf, item.attempt)
        tl = self.state.trace
        if tl is not None:
            tl.record(now, "nacked", item, {"error": header["error"], "attempt": item.attempt})
        self.ledger.nack_job(worker, item, header["error"], header.get("retry", True) is not False, now, delay)
        self.state.wake(worker)

    def on_extend(
        self, peer: bytes, env: codec.Envelope, received: list[bytes], worker: WorkerRecord | None, now: float
    ) -> None:
        if worker is None:
            return self.state.unknown_peer(peer, env)
        self.ledger.extend_leases(worker, env.header["ids"], now + env.header["lease_ms"] / 1000.0)

    # -- dispatch ----------------------------------------------------------------

    def dispatch(self, chan: Channel, avail: list[WorkerRecord], now: float, limit: int = 1 << 30) -> int:
        """Spread the queued jobs (at most `limit`) over the workers with room, up to MAX_BATCH per
        message; returns how many were sent."""
        jobs = chan.jobs
        lease = self.ledger.lease_jobs
        tl = self.state.trace
        sent = 0
        while jobs and avail and sent < limit:
            share = -(-min(len(jobs), limit - sent) // len(avail))  # ceil: spread the backlog evenly
            for w in list(avail):
                take = min(w.credit - len(w.held), share, len(jobs), MAX_BATCH, limit - sent)
                if take <= 0:
                    avail.remove(w)
                    continue
                items = lease(w, chan, take, now)
                if tl is not None:  # one record per lease; the attempts read in C
                    tl.record(now, "delivered", items, w.who, tuple(map(attempts_of, items)))
                self._send_jobs(w, chan, items)
                sent += take
                if w.credit <= len(w.held):
                    avail.remove(w)
                if not jobs or sent >= limit:
                    break
        return sent

    def _send_jobs(self, worker: WorkerRecord, chan: Channel, items: list[Item]) -> None:
        lease_ms = int(chan.qconf.lease_s * 1000)
        if not (worker.batch or worker.packed):
            self._send_job_items(worker, chan, items, lease_ms)
            return
        # First deliveries go as JOB_PACKED or JOB_BATCH, one per run of shared headers; the rest as JOB.
        single = []
        run: list[Item] = []
        for item in items:
            if item.attempt != 1 or item.error or item.trace != item.id:
                single.append(item)
            elif run and item.headers is not run[0].headers:
                self._send_job_batch(worker, chan, run, lease_ms)
                run = [item]
            else:
                run.append(item)
        if single:
            self._send_job_items(worker, chan, single, lease_ms)
        if run:
            self._send_job_batch(worker, chan, run, lease_ms)

    def _send_job_batch(self, worker: WorkerRecord, chan: Channel, items: list[Item], lease_ms: int) -> None:
        bodies = [i.body for i in items]
        header = {"id": self.state.next_id(), "queue": chan.name, "lease_ms": lease_ms, "ids": [i.id for i in items]}
        if items[0].headers:
            header["headers"] = items[0].headers
        if worker.packed:
            # One frame for every body (SPEC 3.5): a frame costs each side as much as a small job's
            # other work. Bodies past the packed frame's 1 MiB go as JOB_BATCH or JOB.
            sizes = [len(b) for b in bodies]
            if sum(sizes) <= wire.MAX_PACKED_BYTES:
                header["sizes"] = sizes
                self.state.outbox.append(frames.job_packed(worker.peer, header, bodies))
                return
        if worker.batch:
            self.state.outbox.append(frames.job_batch(worker.peer, header, bodies))
        else:
            self._send_job_items(worker, chan, items, lease_ms)

    def _send_job_items(self, worker: WorkerRecord, chan: Channel, items: list[Item], lease_ms: int) -> None:
        name = chan.name
        headers = []
        for item in items:
            header = {"id": item.id, "queue": name, "attempt": item.attempt, "trace": item.trace, "lease_ms": lease_ms}
            if item.error:
                header["error"] = item.error
            if item.headers:
                header["headers"] = item.headers
            headers.append(header)
        self.state.outbox.append(frames.job(worker.peer, headers, [item.body for item in items]))
