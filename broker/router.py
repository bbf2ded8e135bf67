# SPDX-License-Identifier: MIT
"""The broker's routing state machine. Pure: no sockets, no clocks of its own.

`handle()` takes one message from a peer and the current time; `flush()`
dispatches what can be dispatched; `tick()` runs heartbeats and expiry. Every
frame to send is appended to `outbox` ([routing id, frames...]) or `events`
(PUB frames); only the server loop touches sockets.
"""
from __future__ import annotations

import heapq
import itertools
import logging
from collections import Counter, deque
from typing import Callable

from zeromesh.protocol import codec, envelope, wire
from zeromesh.protocol import redis_keys as keys
from zeromesh.protocol.errors import ProtocolError

from .channels import JOB, REQUEST, Channel, Item
from .config import BrokerConfig
from .workers import WorkerRecord

_pack = codec.pack_header
_F_JOB = codec.command_frame(wire.JOB)
_F_JOB_BATCH = codec.command_frame(wire.JOB_BATCH)
_F_JOB_PACKED = codec.command_frame(wire.JOB_PACKED)
_F_REQUEST = codec.command_frame(wire.REQUEST)
_F_REPLY = codec.command_frame(wire.REPLY)
_F_ERROR = codec.command_frame(wire.ERROR)
_F_CONFIRM = codec.command_frame(wire.CONFIRM)
_F_HEARTBEAT = codec.command_frame(wire.HEARTBEAT)
_F_CANCEL = codec.command_frame(wire.CANCEL)
_F_DISCONNECT = codec.command_frame(wire.DISCONNECT)
_MAX_BATCH = 250  # jobs per JOB message: large enough to amortise, small enough to spread
_FETCH_MAX = 500  # jobs moved from Redis per fetch
_POLL_S = 0.1     # how often idle workers' queues are checked for jobs fed to Redis from outside

_SPILLED_ID_MEMORY_S = 3 * 10.0
"""How long the ids of jobs spilled to Redis are remembered, so a producer's resend (within its
PUSH_TIMEOUT_S of 10 s) is confirmed again rather than queued twice while the job waits there."""

_RECORDED_TOPICS = "zeromesh.invalidate."  # published on these prefixes are also appended to a Redis stream

# Where a pushed job goes.
_MEMORY, _INFLIGHT, _SPILL, _FULL, _UNAVAILABLE = range(5)


class Router:
    def __init__(self, config: BrokerConfig, epoch: str, log: logging.Logger, now: float) -> None:
        self.config = config
        self.epoch = epoch
        self.log = log
        self.started = now
        self.next_id = codec.IdGenerator("broker-" + epoch)
        self.channels: dict[str, Channel] = {}
        self.workers: dict[bytes, WorkerRecord] = {}
        self.jobs_by_id: dict[str, Item] = {}       # queued and in-flight jobs
        self.requests_by_id: dict[str, Item] = {}   # requests not yet answered
        self.finished: deque[Item] = deque(maxlen=config.trace_history)  # for `trace`, bodies dropped
        self.deadlines: list[tuple[float, int, Item]] = []
        self.seq = itertools.count()
        self.topic_seq: dict[str, int] = {}
        self.outbox: list[list[bytes]] = []
        self.events: list[list[bytes]] = []
        self.confirms: dict[bytes, list[str]] = {}
        self.confirm_batches: dict[bytes, list[str]] = {}  # PUSH_BATCH message ids accepted whole
        self.dirty: set[Channel] = set()
        self.counters: Counter[str] = Counter()
        self.warned: dict[bytes, tuple[float, int]] = {}
        self.draining = False
        self.next_tick = now + config.heartbeat_s
        # Redis: commands for the link thread, and what we wait on from it.
        self.redis_enabled = bool(config.redis_url)
        self.redis_up = False
        self.redis_status = "starting" if self.redis_enabled else "not configured"
        self.redis_commands: list[tuple] = []
        self.redis_acks: dict[str, list[bytes]] = {}
        self.pending_writes: dict[int, tuple] = {}
        self.writing_ids: set[str] = set()
        self.spilled_ids: dict[str, float] = {}   # jobs we stored in a Redis queue -> when (oldest first)
        self.pending_admin: dict[int, tuple[bytes, str]] = {}
        self.tokens = itertools.count(1)
        self.poll_channels: set[Channel] = set()
        self.next_poll = now
        self.dropped: dict[bytes, float] = {}   # workers we dropped: their heartbeats get unknown_peer
        self.handlers: dict[int, Callable] = {
            wire.PUSH: self._on_push,
            wire.PUSH_BATCH: self._on_push_batch,
            wire.PUSH_PACKED: self._on_push_batch,  # decoded alike: one header, the list of bodies
            wire.REQUEST: self._on_request,
            wire.REPLY: self._on_reply,
            wire.ERROR: self._on_error,
            wire.ACK: self._on_ack,
            wire.NACK: self._on_nack,
            wire.PUBLISH: self._on_publish,
            wire.READY: self._on_ready,
            wire.CREDIT: self._on_credit,
            wire.HEARTBEAT: self._on_heartbeat,
            wire.DISCONNECT: self._on_disconnect,
            wire.EXTEND: self._on_extend,
            wire.CANCEL: self._on_cancel,
            wire.ADMIN: self._on_admin,
        }

    # -- entry points -------------------------------------------------------

    def handle(self, peer: bytes, frames: list[bytes], now: float) -> int:
        """Act on one message from a peer. Returns its weight for the server's read budget: its
        frames, with each body of a packed message counted as the frame it has in a batch."""
        try:
            env = codec.unpack(frames, self.config.max_message)
        except ProtocolError as exc:
            self.reject(peer, frames, exc.code, exc.message, now)
            return len(frames)
        worker = self.workers.get(peer)
        if worker is not None:
            worker.last_seen = now
        handler = self.handlers.get(env.command)
        if handler is None:
            self.reject(peer, frames, wire.E_UNKNOWN_COMMAND, f"{env.name} is not sent to the broker", now)
            return len(frames)
        handler(peer, env, frames, worker, now)
        if env.command in wire.PACKED_COMMANDS:
            return len(frames) + len(env.items) - 1
        return len(frames)

    def flush(self, now: float) -> None:
        """Dispatch to free workers, then send the batched confirms."""
        if self.dirty:
            dirty, self.dirty = self.dirty, set()
            if not self.draining:
                for chan in dirty:
                    self._dispatch(chan, now)
        if self.confirms or self.confirm_batches:
            self._send_confirms()
        if self.redis_acks:
            for name, elements in self.redis_acks.items():
                self.redis_commands.append(("ack", name, elements))
            self.redis_acks = {}

    def _send_confirms(self) -> None:
        step = wire.MAX_IDS_PER_MESSAGE
        confirms, batches = self.confirms, self.confirm_batches
        self.confirms, self.confirm_batches = {}, {}
        for peer, ids in confirms.items():
            whole = batches.pop(peer, None)
            for i in range(0, len(ids), step):
                header = {"id": self.next_id(), "ids": ids[i:i + step]}
                if whole and i == 0:
                    header["batches"] = whole[:step]
                    del whole[:step]
                self.outbox.append([peer, _F_CONFIRM, _pack(header)])
            if whole:
                batches[peer] = whole
        for peer, whole in batches.items():
            for i in range(0, len(whole), step):
                self.outbox.append([peer, _F_CONFIRM, _pack({"id": self.next_id(), "ids": [],
                                                             "batches": whole[i:i + step]})])

    def timeout(self, now: float) -> float:
        """Seconds until the next deadline or tick."""
        due = self.next_tick
        deadlines = self.deadlines
        # Answered requests leave their deadline in the heap; dropped here as they reach the top, they
        # never wake the loop. (They did: at 13k requests/s one came due every 77 us, so the loop
        # polled with no timeout at all, and it went on for a whole request timeout after the load.)
        while deadlines and deadlines[0][2].done:
            heapq.heappop(deadlines)
        if deadlines and deadlines[0][0] < due:
            due = deadlines[0][0]
        if self.poll_channels and self.next_poll < due:
            due = self.next_poll
        return max(0.0, due - now)

    def expire(self, now: float) -> None:
        """Answer requests whose deadline passed; run the periodic tick when due."""
        heap = self.deadlines
        while heap and heap[0][0] <= now:
            _, _, item = heapq.heappop(heap)
            if item.done:
                continue
            item.done = True
            self.requests_by_id.pop(item.id, None)
            self.counters["request_timeouts"] += 1
            where = f"in flight on {item.worker.tag}" if item.worker else "waiting for a worker"
            self._error(item.client, item.id, wire.E_TIMEOUT,
                        f"request to '{item.channel.name}' timed out ({where})")
            if item.worker is not None:
                self._send(item.worker.peer, _F_CANCEL, {"id": self.next_id(), "re": item.id})
        if self.poll_channels and now >= self.next_poll:
            self.next_poll = now + _POLL_S
            self.dirty.update(self.poll_channels)
            self.poll_channels.clear()
        if now >= self.next_tick:
            self.next_tick = now + self.config.heartbeat_s
            self._tick(now)

    # -- producers ----------------------------------------------------------

    def _on_push_batch(self, peer, env, frames, worker, now):
        header = env.header
        ids = header["ids"]
        bodies = env.items
        chan = self.channel(header["queue"])
        qconf = chan.qconf
        jobs_by_id = self.jobs_by_id
        # The common case in one go: all of it to memory, nothing seen before.
        if (not self.draining and len(chan.jobs) + len(ids) <= qconf.max_depth
                and (not self.redis_enabled or (not chan.backlog and not qconf.durable and chan.credit()))
                and jobs_by_id.keys().isdisjoint(ids) and (not self.writing_ids or self.writing_ids.isdisjoint(ids))
                and (not self.spilled_ids or self.spilled_ids.keys().isdisjoint(ids))):
            headers = header.get("headers")
            trace = header.get("trace")
            items = [Item(JOB, jid, chan, body, headers, trace or jid, None, now) for jid, body in zip(ids, bodies)]
            chan.jobs.extend(items)
            chan.enqueued += len(items)
            jobs_by_id.update(zip(ids, items))
            self.confirm_batches.setdefault(peer, []).append(header["id"])
            self.dirty.add(chan)
            return
        # Otherwise job by job, exactly as if each had come in its own PUSH.
        shared = {"queue": header["queue"]}
        if header.get("headers"):
            shared["headers"] = header["headers"]
        if header.get("trace"):
            shared["trace"] = header["trace"]
        self._push_items(peer, [({**shared, "id": jid}, body) for jid, body in zip(ids, bodies)], now)

    def _on_push(self, peer, env, frames, worker, now):
        self._push_items(peer, env.items, now)

    def _push_items(self, peer: bytes, pushed: list[tuple[dict, bytes]], now: float) -> None:
        confirms = self.confirms.setdefault(peer, [])
        chan = None
        writes: dict[tuple[str, int], list] = {}
        for header, body in pushed:
            jid = header["id"]
            if self.draining:
                self._error(peer, jid, wire.E_SHUTTING_DOWN, "broker is shutting down")
                continue
            name = header["queue"]
            if chan is None or chan.name != name:
                chan = self.channel(name)
                self.dirty.add(chan)
                credit = chan.credit() if self.redis_enabled else 1
            if jid in self.jobs_by_id or jid in self.spilled_ids:
                # A resend of a push we hold, in memory or in a Redis queue: confirm again, enqueue once.
                self.counters["duplicate_pushes"] += 1
                confirms.append(jid)
                continue
            if jid in self.writing_ids:
                continue  # its confirm comes when the Redis write completes
            route = self._route(chan, credit)
            if route == _MEMORY:
                item = Item(JOB, jid, chan, body, header.get("headers"), header.get("trace") or jid, None, now)
                chan.jobs.append(item)
                chan.enqueued += 1
                self.jobs_by_id[jid] = item
                confirms.append(jid)
            elif route == _FULL:
                self.counters["queue_full"] += 1
                self._error(peer, jid, wire.E_QUEUE_FULL,
                            f"queue '{name}' is full ({chan.qconf.max_depth} jobs waiting)")
            elif route == _UNAVAILABLE:
                self.counters["redis_unavailable"] += 1
                self._error(peer, jid, wire.E_UNAVAILABLE,
                            f"durable queue '{name}' needs Redis, which is down ({self.redis_status})")
            else:
                writes.setdefault((name, route), []).append((jid, body, header.get("headers"), header.get("trace")))
                self.writing_ids.add(jid)
        if not confirms:
            del self.confirms[peer]
        for (name, route), items in writes.items():
            token = next(self.tokens)
            chan = self.channels[name]
            key = keys.queue_key(name) if route == _SPILL else keys.inflight_key(name, keys.broker_consumer(self.config.name))
            self.pending_writes[token] = (peer, chan, route, [i[0] for i in items], [(i[2], i[3]) for i in items], now)
            self.redis_commands.append(("write", token, key, items, chan.qconf.raw, name))
            if route == _SPILL:
                chan.backlog = True  # later pushes queue behind these, in Redis, to keep FIFO

    def _route(self, chan: Channel, credit: int) -> int:
        qconf = chan.qconf
        room = len(chan.jobs) < qconf.max_depth
        if not self.redis_enabled:
            return _MEMORY if room else _FULL
        if chan.backlog or not credit or not room:
            # Spill: nobody to take it now, or memory is at its limit, or older jobs wait in Redis.
            if self.redis_up:
                return _SPILL
            if qconf.durable:
                return _UNAVAILABLE
            return _MEMORY if room else _FULL
        if qconf.durable:
            return _INFLIGHT if self.redis_up else _UNAVAILABLE
        return _MEMORY

    def _on_request(self, peer, env, frames, worker, now):
        for header, body in env.items:
            rid = header["id"]
            name = header["service"]
            if self.draining:
                self._error(peer, rid, wire.E_SHUTTING_DOWN, "broker is shutting down")
                continue
            chan = self.channel(name)
            if not chan.workers and not header.get("wait"):
                self.counters["no_responders"] += 1
                self._error(peer, rid, wire.E_NO_RESPONDERS, f"no worker serves '{name}'")
                continue
            if len(chan.requests) >= chan.sconf.max_pending:
                self.counters["queue_full"] += 1
                self._error(peer, rid, wire.E_QUEUE_FULL,
                            f"service '{name}' has {chan.sconf.max_pending} requests waiting")
                continue
            deadline = now + header["timeout_ms"] / 1000.0
            item = Item(REQUEST, rid, chan, body, header.get("headers"), header.get("trace") or rid,
                        peer, now, deadline)
            chan.requests.append(item)
            chan.requested += 1
            self.requests_by_id[rid] = item
            heapq.heappush(self.deadlines, (deadline, next(self.seq), item))
            self.dirty.add(chan)

    def _on_publish(self, peer, env, frames, worker, now):
        seqs = self.topic_seq
        for header, body in env.items:
            topic = header["topic"]
            seq = seqs.get(topic, 0) + 1
            seqs[topic] = seq
            event = {"id": header["id"], "topic": topic, "seq": seq, "epoch": self.epoch}
            if header.get("headers"):
                event["headers"] = header["headers"]
            self.events.append([topic.encode(), _pack(event), body])
            if self.redis_enabled and topic.startswith(_RECORDED_TOPICS):
                # Recorded so a subscriber that missed some (a gap) can replay them from Redis.
                self.redis_commands.append(("xadd", topic, seq, self.epoch, body))
        self.counters["published"] += len(env.items)

    def _on_cancel(self, peer, env, frames, worker, now):
        item = self.requests_by_id.get(env.header["re"])
        if item is None or item.client != peer or item.done:
            return
        item.done = True
        del self.requests_by_id[item.id]
        self.counters["cancelled"] += 1
        if item.worker is not None:
            self._send(item.worker.peer, _F_CANCEL, {"id": self.next_id(), "re": item.id})

    # -- workers ------------------------------------------------------------

    def _on_ready(self, peer, env, frames, worker, now):
        header = env.header
        if worker is None:
            worker = WorkerRecord(peer, now)
            self.workers[peer] = worker
            joined = True
        else:
            for chan in worker.channels:
                chan.workers.remove(worker)
            joined = False
        worker.label = header.get("label") or ""
        worker.lang = header.get("lang") or ""
        worker.names = tuple(dict.fromkeys(header["names"]))
        worker.batch = header.get("batch") is True
        worker.packed = header.get("packed") is True
        worker.credit = header["credit"]
        worker.channels = [self.channel(name) for name in worker.names]
        for chan in worker.channels:
            chan.workers.append(worker)
            self.dirty.add(chan)
        self.log.info("worker %s %s for %s with credit %d", worker.tag, "joined" if joined else "re-registered",
                      ",".join(worker.names), worker.credit)
        self.dropped.pop(peer, None)
        # The answer names the READY, so the worker knows it is registered.
        self._send(peer, _F_HEARTBEAT, {"id": self.next_id(), "epoch": self.epoch, "re": header["id"]})

    def _on_credit(self, peer, env, frames, worker, now):
        if worker is None:
            return self._unknown_peer(peer, env)
        worker.credit = env.header["credit"]
        self._mark_dirty(worker)

    def _on_ack(self, peer, env, frames, worker, now):
        if worker is None:
            return self._unknown_peer(peer, env)
        held = worker.held
        ids = env.header["ids"]
        # The usual ACK: jobs of one queue this worker holds, none of them in Redis.
        # Settled in bulk (C-level pops and counts); anything else goes job by job below.
        items = [held.get(jid) for jid in ids]
        first = items[0] if items else None
        if first is not None and first.kind == JOB and all(
                i is not None and i.kind == JOB and i.channel is first.channel and i.elem is None for i in items):
            for jid in ids:
                del held[jid]
            pop = self.jobs_by_id.pop
            for jid in ids:
                pop(jid)
            chan = first.channel
            chan.in_flight -= len(items)
            chan.acked += len(items)
            for item in items:  # kept for `trace` without its payload
                item.outcome = "done"
                item.since = now
                item.body = b""
            self.finished.extend(items)
            self._mark_dirty(worker)
            return
        jobs_by_id = self.jobs_by_id
        finished = self.finished
        for jid in ids:
            item = held.get(jid)
            if item is None or item.kind != JOB:
                self.counters["late_acks"] += 1
                continue
            del held[jid]
            del jobs_by_id[jid]
            chan = item.channel
            chan.in_flight -= 1
            chan.acked += 1
            if item.elem is not None:
                self.redis_acks.setdefault(chan.name, []).append(item.elem)
                item.elem = None
            # Kept for `trace` without its payload (inlined _remember: this runs per job).
            item.outcome = "done"
            item.since = now
            item.body = b""
            finished.append(item)
        self._mark_dirty(worker)

    def _on_nack(self, peer, env, frames, worker, now):
        if worker is None:
            return self._unknown_peer(peer, env)
        header = env.header
        item = worker.held.get(header["re"])
        if item is None:
            self.counters["late_acks"] += 1
            return
        if item.kind == REQUEST:
            # A worker that nacks a request means it failed: answer the caller.
            self._answer_request(worker, item, [_F_ERROR, _pack({
                "id": self.next_id(), "re": item.id, "code": wire.E_REMOTE, "message": header["error"]})])
            return
        del worker.held[item.id]
        chan = item.channel
        chan.in_flight -= 1
        chan.nacked += 1
        item.worker = None
        item.error = header["error"]
        if header.get("retry", True) is False or item.attempt >= chan.qconf.max_attempts:
            self._dead_letter(item, now)
        else:
            item.since = now
            chan.jobs.appendleft(item)
        self._mark_dirty(worker)

    def _on_reply(self, peer, env, frames, worker, now):
        if worker is None:
            return self._unknown_peer(peer, env)
        # The worker's own frames go on (the broker never re-encodes a reply), and the replies of
        # one message that go to one client leave as one REPLY message: greenlets of one process
        # share a DEALER, so this is one send here and one wake-up there for all of them.
        by_client: dict[bytes, list[bytes]] = {}
        for i, (header, _body) in enumerate(env.items):
            item = worker.held.get(header["re"])
            if item is None or item.kind != REQUEST:
                self.counters["late_replies"] += 1
                continue
            if self._settle_request(worker, item):
                message = by_client.get(item.client)
                if message is None:
                    by_client[item.client] = [item.client, _F_REPLY, frames[1 + 2 * i], frames[2 + 2 * i]]
                else:
                    message += (frames[1 + 2 * i], frames[2 + 2 * i])
        self.outbox.extend(by_client.values())
        self._mark_dirty(worker)

    def _on_error(self, peer, env, frames, worker, now):
        re = env.header.get("re")
        if worker is None or re is None:
            self.counters["errors_from_peers"] += 1
            self.log.debug("error from %s: %s %s", peer.hex(), env.header["code"], env.header["message"])
            return
        item = worker.held.get(re)
        if item is None:
            self.counters["late_replies"] += 1
            return
        if item.kind == JOB:
            # An ERROR about a job is a nack with retry.
            env.header["error"] = f"{env.header['code']}: {env.header['message']}"
            env.header["retry"] = True
            return self._on_nack(peer, codec.Envelope(wire.NACK, {**env.header, "re": re}, []), frames, worker, now)
        self._answer_request(worker, item, [_F_ERROR, frames[1]])
        self._mark_dirty(worker)

    def _on_extend(self, peer, env, frames, worker, now):
        if worker is None:
            return self._unknown_peer(peer, env)
        until = now + env.header["lease_ms"] / 1000.0
        for jid in env.header["ids"]:
            item = worker.held.get(jid)
            if item is not None and item.kind == JOB:
                item.deadline = until

    def _on_heartbeat(self, peer, env, frames, worker, now):
        if worker is not None:
            return
        if peer in self.dropped:  # a worker we gave up on still beats: tell it to register again
            return self._unknown_peer(peer, env)
        # a client's ping: answer with our epoch
        self._send(peer, _F_HEARTBEAT, {"id": self.next_id(), "epoch": self.epoch, "re": env.header["id"]})

    def _on_disconnect(self, peer, env, frames, worker, now):
        if worker is not None:
            self.drop_worker(worker, now, handback=True, reason=env.header.get("reason") or "disconnected")

    def _on_admin(self, peer, env, frames, worker, now):
        from .admin import AdminError, Deferred, run_admin  # admin is rare; keep it off the loop's import path

        header = env.header
        try:
            result = run_admin(self, header["op"], header.get("args") or {}, now)
        except AdminError as exc:
            self._error(peer, header["id"], exc.code, str(exc))
            return
        except Deferred as deferred:  # answered from Redis by the link thread
            token = next(self.tokens)
            self.pending_admin[token] = (peer, header["id"])
            self.redis_commands.append(("admin", token, deferred.op, deferred.params))
            return
        self._admin_reply(peer, header["id"], result)

    def _admin_reply(self, peer: bytes, re: str, result: dict) -> None:
        self.outbox.append([peer, _F_REPLY, _pack({"id": self.next_id(), "re": re}), _pack(result)])

    # -- results from the Redis link ------------------------------------------

    def on_redis(self, result: tuple, now: float) -> None:
        kind = result[0]
        if kind == "written":
            _, token, elements, error = result
            peer, chan, route, ids, extras, _since = self.pending_writes.pop(token)
            self.writing_ids.difference_update(ids)
            if elements is None:
                self.counters["redis_write_failed"] += len(ids)
                for jid in ids:
                    self._error(peer, jid, wire.E_UNAVAILABLE, f"could not store the job in Redis: {error}")
                if route == _SPILL and not self.redis_up:
                    chan.backlog = False  # nothing of ours went there; memory takes over
                return
            self.confirms.setdefault(peer, []).extend(ids)
            chan.enqueued += len(ids)
            if route == _INFLIGHT:
                for jid, element, (headers, trace) in zip(ids, elements, extras):
                    item = Item(JOB, jid, chan, _body_of(element, chan), headers, trace or jid, None, now)
                    item.elem = element
                    chan.jobs.append(item)
                    self.jobs_by_id[jid] = item
            else:
                chan.backlog = True
                chan.redis_depth += len(ids)  # until the link's next LLEN report
                self.counters["spilled"] += len(ids)
                self.spilled_ids.update(dict.fromkeys(ids, now))
            self.dirty.add(chan)
        elif kind == "fetched":
            _, name, asked, jobs = result
            chan = self.channel(name)
            chan.fetching = False
            duplicates = []
            for element, el in jobs:
                jid = el.id or self.next_id()
                self.spilled_ids.pop(jid, None)
                if jid in self.jobs_by_id:
                    # One id, one job (SPEC 2.3): a second element with the id of a job we hold is
                    # that job again (a resend stored twice), or an id reused against the rules.
                    duplicates.append(element)
                    self.log.warning("queue %s: dropped a second copy of job %s found in Redis while the "
                                     "first is %s", name, jid, "in flight" if self.jobs_by_id[jid].worker
                                     else "queued")
                    continue
                item = Item(JOB, jid, chan, el.body, el.headers, el.trace or jid, None, now)
                item.attempt = el.attempt
                item.error = el.error
                item.elem = element
                chan.jobs.append(item)
                self.jobs_by_id[jid] = item
            if duplicates:
                self.counters["duplicate_jobs_dropped"] += len(duplicates)
                self.redis_acks.setdefault(name, []).extend(duplicates)
            self.counters["drained"] += len(jobs) - len(duplicates)
            chan.redis_depth = max(0, chan.redis_depth - len(jobs))
            if len(jobs) < asked:
                chan.backlog = False
                chan.poll_at = now + _POLL_S
            self.dirty.add(chan)
        elif kind == "redis":
            _, up, message = result
            self.redis_up = up
            self.redis_status = "up" if up else f"down: {message}"
            if up:
                self.dirty.update(c for c in self.channels.values() if c.workers)
        elif kind == "backlog":
            for name in result[1]:
                chan = self.channel(name)
                chan.backlog = True
                self.dirty.add(chan)
        elif kind == "depths":
            for name, (pending, dead) in result[1].items():
                chan = self.channels.get(name)
                if chan is not None:
                    chan.redis_depth, chan.redis_dead = pending, dead
        elif kind == "admin":
            _, token, answer, error = result
            peer, re = self.pending_admin.pop(token)
            if error is not None:
                self._error(peer, re, error[0], error[1])
                return
            if "replayed" in answer and answer["replayed"]:
                chan = self.channel(answer["queue"])
                chan.backlog = True
                self.dirty.add(chan)
            self._admin_reply(peer, re, answer)

    # -- routing ------------------------------------------------------------

    def channel(self, name: str) -> Channel:
        chan = self.channels.get(name)
        if chan is None:
            chan = Channel(name, self.config.queue(name), self.config.service(name))
            self.channels[name] = chan
            self.log.debug("channel %s created", name)
        return chan

    def _mark_dirty(self, worker: WorkerRecord) -> None:
        if worker.free > 0:
            for chan in worker.channels:
                if chan.jobs or chan.requests or chan.backlog or self.redis_up:
                    self.dirty.add(chan)

    def _dispatch(self, chan: Channel, now: float) -> None:
        workers = chan.workers
        n = len(workers)
        if not n:
            return
        start = chan.rr % n
        chan.rr = start + 1
        avail = [w for w in workers[start:] + workers[:start] if w.credit > len(w.held)]
        reqs = chan.requests
        if reqs:
            # Round robin one at a time, but each worker's share leaves in one message:
            # one send here and one wake-up there for all the requests it gets this round.
            batches: dict[WorkerRecord, list] = {}
            while reqs and avail:
                for w in list(avail):
                    item = None
                    while reqs:
                        cand = reqs.popleft()
                        if not cand.done:
                            item = cand
                            break
                    if item is None:
                        break
                    batches.setdefault(w, []).append(self._request_item(w, item, now))
                    if w.credit <= len(w.held):
                        avail.remove(w)
            for w, items in batches.items():
                for i in range(0, len(items), _MAX_BATCH):
                    self.outbox.append([w.peer, _F_REQUEST, *[f for pair in items[i:i + _MAX_BATCH] for f in pair]])
        jobs = chan.jobs
        while jobs and avail:
            share = -(-len(jobs) // len(avail))  # ceil: spread the backlog evenly
            for w in list(avail):
                take = min(w.credit - len(w.held), share, len(jobs), _MAX_BATCH)
                if take <= 0:
                    avail.remove(w)
                    continue
                self._send_jobs(w, chan, [jobs.popleft() for _ in range(take)], now)
                if w.credit <= len(w.held):
                    avail.remove(w)
                if not jobs:
                    break
        if not self.redis_up or chan.fetching:
            return
        room = min(_FETCH_MAX, chan.qconf.max_depth - len(jobs))  # memory stays within the queue's limit
        if avail and not jobs:
            if chan.backlog or now >= chan.poll_at:
                free = sum(w.credit - len(w.held) for w in avail)
                chan.fetching = True
                self.redis_commands.append(("fetch", chan.name, max(1, min(max(free, _FETCH_MAX // 2), room)),
                                            chan.qconf.raw))
            else:
                self.poll_channels.add(chan)
        elif chan.backlog and len(jobs) < _FETCH_MAX // 2 and room >= _FETCH_MAX // 2:
            # Draining a backlog: fetch the next lot while workers still have jobs in memory,
            # so they never wait out a Redis round trip.
            chan.fetching = True
            self.redis_commands.append(("fetch", chan.name, room, chan.qconf.raw))

    def _send_jobs(self, worker: WorkerRecord, chan: Channel, items: list[Item], now: float) -> None:
        held = worker.held
        lease_ms = int(chan.qconf.lease_s * 1000)
        lease_until = now + chan.qconf.lease_s
        chan.in_flight += len(items)
        for item in items:
            item.attempt += 1
            item.worker = worker
            item.since = now
            item.deadline = lease_until
            held[item.id] = item
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
        header = {"id": self.next_id(), "queue": chan.name, "lease_ms": lease_ms, "ids": [i.id for i in items]}
        if items[0].headers:
            header["headers"] = items[0].headers
        if worker.packed:
            # One frame for every body (SPEC 3.5): a frame costs each side as much as a small job's
            # other work. Bodies past the packed frame's 1 MiB go as JOB_BATCH or JOB.
            sizes = [len(b) for b in bodies]
            if sum(sizes) <= wire.MAX_PACKED_BYTES:
                header["sizes"] = sizes
                self.outbox.append([worker.peer, _F_JOB_PACKED, _pack(header), b"".join(bodies)])
                return
        if worker.batch:
            self.outbox.append([worker.peer, _F_JOB_BATCH, _pack(header), *bodies])
        else:
            self._send_job_items(worker, chan, items, lease_ms)

    def _send_job_items(self, worker: WorkerRecord, chan: Channel, items: list[Item], lease_ms: int) -> None:
        frames = [worker.peer, _F_JOB]
        name = chan.name
        for item in items:
            header = {"id": item.id, "queue": name, "attempt": item.attempt, "trace": item.trace,
                      "lease_ms": lease_ms}
            if item.error:
                header["error"] = item.error
            if item.headers:
                header["headers"] = item.headers
            frames.append(_pack(header))
            frames.append(item.body)
        self.outbox.append(frames)

    def _request_item(self, worker: WorkerRecord, item: Item, now: float) -> tuple[bytes, bytes]:
        """Hand a request to a worker: its (header, body) frames for a REQUEST message."""
        remaining = int((item.deadline - now) * 1000)
        item.attempt += 1
        item.worker = worker
        item.since = now
        worker.held[item.id] = item
        item.channel.in_flight += 1
        header = {"id": item.id, "service": item.channel.name, "timeout_ms": max(remaining, 1),
                  "trace": item.trace, "attempt": item.attempt}
        if item.error:
            header["error"] = item.error
        if item.headers:
            header["headers"] = item.headers
        return _pack(header), item.body

    def _settle_request(self, worker: WorkerRecord, item: Item) -> bool:
        """The worker answered: True when the answer goes to the caller (not when it came too late)."""
        del worker.held[item.id]
        item.channel.in_flight -= 1
        item.worker = None
        if item.done:  # timed out or cancelled: the caller has its answer already
            self.counters["late_replies"] += 1
            return False
        item.done = True
        item.channel.answered += 1
        self.requests_by_id.pop(item.id, None)
        return True

    def _answer_request(self, worker: WorkerRecord, item: Item, frames: list[bytes]) -> None:
        if self._settle_request(worker, item):
            self.outbox.append([item.client, *frames])

    def _dead_letter(self, item: Item, now: float) -> None:
        chan = item.channel
        if self.redis_enabled:  # the link retries until Redis takes it
            dead = envelope.encode(item.id, item.body, item.headers, item.trace, item.attempt, item.error, chan.name)
            self.redis_commands.append(("dead", chan.name, item.elem, dead))
            self._remember(item, "dead_letter", now)
        else:
            chan.dead.append(item)
        chan.dead_lettered += 1
        self.jobs_by_id.pop(item.id, None)
        item.since = now
        self.counters["dead_lettered"] += 1
        self.log.warning("queue %s: job %s dead-lettered after %d attempt(s): %s",
                         chan.name, item.id, item.attempt, item.error)

    def _remember(self, item: Item, state: str, now: float) -> None:
        """Keep a finished item for `trace`, without its payload; the ring forgets the oldest."""
        item.outcome = state
        item.since = now
        item.body = b""
        item.elem = None
        self.finished.append(item)

    def drop_worker(self, worker: WorkerRecord, now: float, handback: bool, reason: str) -> None:
        """Forget a worker; put what it held back at the head of its queues, in order."""
        self.workers.pop(worker.peer, None)
        if not handback:
            self.dropped[worker.peer] = now
            if len(self.dropped) > 10_000:
                self.dropped.clear()
        for chan in worker.channels:
            if worker in chan.workers:
                chan.workers.remove(worker)
        items = list(worker.held.values())
        worker.held.clear()
        for item in reversed(items):
            chan = item.channel
            chan.in_flight -= 1
            item.worker = None
            item.since = now
            if item.kind == JOB:
                if handback:
                    item.attempt -= 1  # handed back unprocessed: not a failed attempt
                else:
                    item.error = reason
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
                    item.done = True
                    self.requests_by_id.pop(item.id, None)
                    self._error(item.client, item.id, wire.E_WORKER_LOST,
                                f"worker serving '{chan.name}' was lost: {reason}")
            self.dirty.add(chan)
        level = logging.INFO if handback else logging.WARNING
        self.log.log(level, "worker %s left (%s); %d item(s) back in their queues", worker.tag, reason, len(items))

    # -- periodic -----------------------------------------------------------

    def _tick(self, now: float) -> None:
        limit = self.config.heartbeat_s * self.config.liveness
        beat = _pack({"id": self.next_id(), "epoch": self.epoch})
        for worker in list(self.workers.values()):
            if now - worker.last_seen > limit:
                self.counters["workers_lost"] += 1
                self.drop_worker(worker, now, handback=False,
                                 reason=f"worker lost: no heartbeat for {now - worker.last_seen:.1f}s")
                continue
            self.outbox.append([worker.peer, _F_HEARTBEAT, beat])
            expired = [item for item in worker.held.values() if item.kind == JOB and item.deadline <= now]
            for item in expired:
                self._expire_lease(worker, item, now)
        spilled = self.spilled_ids
        if spilled:
            cutoff = now - _SPILLED_ID_MEMORY_S
            expired = []
            for jid, when in spilled.items():  # oldest first: stop at the first one still fresh
                if when > cutoff:
                    break
                expired.append(jid)
            for jid in expired:
                del spilled[jid]
        for chan in self.channels.values():
            chan.rate_marks.append((now, chan.enqueued, chan.acked))
            if chan.requests and len(chan.requests) > 2 * chan.pending_requests() + 16:
                chan.requests = deque(item for item in chan.requests if not item.done)

    def _expire_lease(self, worker: WorkerRecord, item: Item, now: float) -> None:
        del worker.held[item.id]
        chan = item.channel
        chan.in_flight -= 1
        item.worker = None
        item.error = f"lease expired after {chan.qconf.lease_s:g}s on {worker.tag}"
        self.counters["lease_expired"] += 1
        self.log.warning("queue %s: job %s %s", chan.name, item.id, item.error)
        if item.attempt >= chan.qconf.max_attempts:
            self._dead_letter(item, now)
        else:
            item.since = now
            chan.jobs.appendleft(item)
        self.dirty.add(chan)

    # -- shutdown -----------------------------------------------------------

    def begin_drain(self) -> None:
        self.draining = True

    def in_flight(self) -> int:
        return sum(len(w.held) for w in self.workers.values())

    def finish(self) -> int:
        """Fail every unanswered request, hand jobs back to Redis, tell workers we are gone.

        Returns how many jobs are lost with this process: those held only in memory when
        there is no Redis to hand them to (the link reports what it could not write).
        """
        lost = 0
        if self.redis_enabled:
            self._hand_back_to_redis()
        else:
            for chan in self.channels.values():
                held = sum(1 for w in self.workers.values() for i in w.held.values() if i.channel is chan and i.kind == JOB)
                if chan.jobs or held:
                    lost += len(chan.jobs) + held
                    self.log.error("queue %s: %d job(s) dropped: no Redis is configured to hand them back to",
                                   chan.name, len(chan.jobs) + held)
        for item in list(self.requests_by_id.values()):
            if not item.done:
                item.done = True
                self._error(item.client, item.id, wire.E_SHUTTING_DOWN, "broker is shutting down")
        self.requests_by_id.clear()
        for worker in self.workers.values():
            self._send(worker.peer, _F_DISCONNECT, {"id": self.next_id(), "reason": "shutting_down"})
        return lost

    def _hand_back_to_redis(self) -> None:
        """Jobs only in our memory go back to the head of their Redis queue, in order.

        Jobs with an element in our Redis in-flight list stay there: the next
        broker with our name recovers them at start, and direct consumers'
        recovery does after our heartbeat stops.
        """
        for chan in self.channels.values():
            held = [i for w in self.workers.values() for i in w.held.values() if i.channel is chan and i.kind == JOB]
            queued = list(chan.jobs)
            elements = [_element_of(i, chan) for i in held + queued if i.elem is None]
            if elements:
                self.redis_commands.append(("requeue", chan.name, elements))

    # -- errors -------------------------------------------------------------

    def _send(self, peer: bytes, frame0: bytes, header: dict) -> None:
        self.outbox.append([peer, frame0, _pack(header)])

    def _error(self, peer: bytes, re: str | None, code: str, message: str) -> None:
        header = {"id": self.next_id(), "code": code, "message": message}
        if re:
            header["re"] = re
        self.outbox.append([peer, _F_ERROR, _pack(header)])

    def _unknown_peer(self, peer: bytes, env: codec.Envelope) -> None:
        self.counters["unknown_peer"] += 1
        self._error(peer, env.header.get("id"), wire.E_UNKNOWN_PEER,
                    f"{env.name} from a peer that is not a registered worker; send READY first")

    def reject(self, peer: bytes, frames: list[bytes], code: str, message: str, now: float) -> None:
        """Bad input: count it, log it with the peer, answer it; change nothing else."""
        self.counters[f"bad_input.{code}"] += 1
        re = _peek_id(frames)
        first, count = self.warned.get(peer, (now, 0))
        if now - first > 10.0:
            first, count = now, 0
        if count < 5:  # at most five lines per peer per 10 s: bad peers must not flood the log
            self.log.warning("bad input from peer %s: %s: %s", peer.hex(), code, message)
        elif count == 5:
            self.log.warning("bad input from peer %s: suppressing further warnings for 10s", peer.hex())
        self.warned[peer] = (first, count + 1)
        if len(self.warned) > 10_000:
            self.warned.clear()
        self._error(peer, re, code, message)


def _body_of(element: bytes, chan: Channel) -> bytes:
    return element if chan.qconf.raw else envelope.decode(element).body


def _element_of(item: Item, chan: Channel) -> bytes:
    if chan.qconf.raw:
        return item.body
    return envelope.encode(item.id, item.body, item.headers, item.trace, max(item.attempt - 1, 0) if item.worker
                           else item.attempt, item.error)


def _peek_id(frames: list[bytes]) -> str | None:
    """Best effort: the id of a message we could not decode, to put in ERROR.re (SPEC 9).

    Lenient where the strict decoder is not: a trailing byte, a non-str key, bad UTF-8 in
    another field still leave the id readable, and the producer can then match the refusal.
    """
    if len(frames) < 2 or len(frames[1]) > wire.MAX_HEADER_BYTES:
        return None
    try:
        header = codec.msgpack.unpackb(frames[1], raw=True, strict_map_key=False)
    except codec.msgpack.ExtraData as extra:
        header = extra.unpacked
    except Exception:
        return None
    value = header.get(b"id") if isinstance(header, dict) else None
    if not isinstance(value, bytes) or not 0 < len(value) <= wire.MAX_NAME_BYTES:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None
