# SPDX-License-Identifier: MIT
"""Services: REQUEST in, to a worker, REPLY or ERROR back to the caller; deadlines and CANCEL.

A request waits in its channel for a worker with room, and is answered exactly once: by
its worker's REPLY or ERROR, by a timeout, by its caller's CANCEL, or by worker_lost; the
ledger marks it done, and a late answer is counted and dropped.
"""

from __future__ import annotations

from zeromesh.protocol import codec, frames, wire

from .channels import JOB, REQUEST, Channel, Item
from .ledger import Ledger
from .queues import MAX_BATCH, WorkQueues
from .state import RouterState
from .workers import WorkerRecord


class Services:
    def __init__(self, state: RouterState, ledger: Ledger, queues: WorkQueues) -> None:
        self.state = state
        self.ledger = ledger
        self.queues = queues  # an ERROR about a job is a NACK

    # -- callers ---------------------------------------------------------------

    def on_request(
        self, peer: bytes, env: codec.Envelope, received: list[bytes], worker: WorkerRecord | None, now: float
    ) -> None:
        state, ledger = self.state, self.ledger
        tl = state.trace
        for header, body in env.items:
            rid = header["id"]
            name = header["service"]
            if state.draining:
                state.error(peer, rid, wire.E_SHUTTING_DOWN, "broker is shutting down")
                continue
            chan = state.channel(name)
            if tl is not None:
                # Logged by id, with what an Item would tell (trace_log.py); a requester is named by its
                # key, else its routing id (a Client's socket is never a registered worker's).
                who = peer if state.pusher is None else state.pusher
                tl.record(now, "accepted", rid, (who, header.get("parent"), header.get("trace") or rid, REQUEST, name))
            if not chan.workers and not header.get("wait"):
                if tl is not None:
                    tl.record(now, "no_responders", rid)
                state.counters["no_responders"] += 1
                chan.svc.errors[wire.E_NO_RESPONDERS] += 1
                state.error(peer, rid, wire.E_NO_RESPONDERS, f"no worker serves '{name}'")
                continue
            if len(chan.requests) >= chan.sconf.max_pending:
                state.counters["queue_full"] += 1
                chan.svc.errors[wire.E_QUEUE_FULL] += 1
                state.error(
                    peer, rid, wire.E_QUEUE_FULL, f"service '{name}' has {chan.sconf.max_pending} requests waiting"
                )
                continue
            ledger.queue_request(
                chan,
                Item(
                    REQUEST,
                    rid,
                    chan,
                    body,
                    header.get("headers"),
                    header.get("trace") or rid,
                    peer,
                    now,
                    now + header["timeout_ms"] / 1000.0,
                ),
            )
            state.dirty.add(chan)

    def on_cancel(
        self, peer: bytes, env: codec.Envelope, received: list[bytes], worker: WorkerRecord | None, now: float
    ) -> None:
        item = self.ledger.requests_by_id.get(env.header["re"])
        if item is None or item.client != peer or item.done:
            return
        self.ledger.cancel_request(item)
        self.state.counters["cancelled"] += 1
        if self.state.trace is not None:
            self.state.trace.record(now, "cancelled", item.id)
        if item.worker is not None:
            self.state.outbox.append(frames.cancel(item.worker.peer, self.state.next_id(), item.id))

    def expire(self, now: float) -> None:
        """Answer requests whose deadline passed, and tell a worker that holds one to stop."""
        state = self.state
        tl = state.trace
        for item in self.ledger.expire_requests(now):
            state.counters["request_timeouts"] += 1
            if tl is not None:
                tl.record(now, "timeout", item.id, {"ms": round((now - item.enqueued_at) * 1000, 3)})
            item.channel.svc.errors[wire.E_TIMEOUT] += 1
            where = f"in flight on {item.worker.tag}" if item.worker else "waiting for a worker"
            assert item.client is not None  # a request always has its caller
            state.error(item.client, item.id, wire.E_TIMEOUT, f"request to '{item.channel.name}' timed out ({where})")
            if item.worker is not None:
                state.outbox.append(frames.cancel(item.worker.peer, state.next_id(), item.id))

    def fail_all(self, code: str, message: str) -> None:
        for item in self.ledger.fail_all_requests():
            assert item.client is not None  # a request always has its caller
            self.state.error(item.client, item.id, code, message)

    def worker_lost(self, items: list[Item], reason: str, now: float) -> None:
        tl = self.state.trace
        for item in items:
            if tl is not None:
                tl.record(now, "error", item.id, {"code": wire.E_WORKER_LOST, "error": reason})
            assert item.client is not None  # a request always has its caller
            item.channel.svc.errors[wire.E_WORKER_LOST] += 1
            self.state.error(
                item.client, item.id, wire.E_WORKER_LOST, f"worker serving '{item.channel.name}' was lost: {reason}"
            )

    # -- workers' answers ------------------------------------------------------

    def on_reply(
        self, peer: bytes, env: codec.Envelope, received: list[bytes], worker: WorkerRecord | None, now: float
    ) -> None:
        state = self.state
        if worker is None:
            return state.unknown_peer(peer, env)
        # The worker's own frames go on (the broker never re-encodes a reply), and the replies of
        # one message that go to one client leave as one REPLY message: greenlets of one process
        # share a DEALER, so this is one send here and one wake-up there for all of them.
        by_client: dict[bytes, list[bytes]] = {}  # caller -> its REPLY message
        held = worker.held
        settle = self.ledger.settle_request
        tl = state.trace
        late = 0
        for i, (header, _body) in enumerate(env.items):
            item = held.get(header["re"])
            if item is None or item.kind != REQUEST or not settle(worker, item):
                late += 1
                continue
            item.channel.svc.observe(now - item.enqueued_at)
            if tl is not None:
                tl.record(now, "replied", item.id, (now - item.enqueued_at) * 1000)
            message = by_client.get(item.client)
            if message is None:
                by_client[item.client] = frames.forward_reply(item.client, received[1 + 2 * i], received[2 + 2 * i])
            else:
                message += (received[1 + 2 * i], received[2 + 2 * i])
        if late:
            state.counters["late_replies"] += late
        state.outbox.extend(by_client.values())
        state.wake(worker)

    def on_error(
        self, peer: bytes, env: codec.Envelope, received: list[bytes], worker: WorkerRecord | None, now: float
    ) -> None:
        state = self.state
        re = env.header.get("re")
        if worker is None or re is None:
            state.counters["errors_from_peers"] += 1
            state.log.debug("error from %s: %s %s", peer.hex(), env.header["code"], env.header["message"])
            return
        item = worker.held.get(re)
        if item is None:
            state.counters["late_replies"] += 1
            return
        if item.kind == JOB:
            # An ERROR about a job is a nack with retry.
            nack = {**env.header, "re": re, "error": f"{env.header['code']}: {env.header['message']}", "retry": True}
            return self.queues.on_nack(peer, codec.Envelope(wire.NACK, nack, []), received, worker, now)
        if self.ledger.settle_request(worker, item):
            item.channel.svc.errors[env.header["code"]] += 1
            item.channel.svc.observe(now - item.enqueued_at)
            if state.trace is not None:
                ms = round((now - item.enqueued_at) * 1000, 3)
                state.trace.record(now, "error", item.id, {"code": env.header["code"], "ms": ms})
            state.outbox.append(frames.forward_error(item.client, received[1]))
        else:
            state.counters["late_replies"] += 1
        state.wake(worker)

    # -- dispatch ----------------------------------------------------------------

    def dispatch(self, chan: Channel, avail: list[WorkerRecord], now: float) -> None:
        """Round robin one request at a time, but each worker's share leaves in one message:
        one send here and one wake-up there for all the requests it gets this round."""
        reqs = chan.requests
        lease = self.ledger.lease_request
        name = chan.name
        tl = self.state.trace
        batches: dict[WorkerRecord, tuple[list[dict], list[bytes]]] = {}
        while reqs and avail:
            for w in list(avail):
                item = lease(w, chan, now)
                if item is None:
                    break
                if tl is not None:
                    tl.record(now, "delivered", item.id, w.who, item.attempt)
                header = {
                    "id": item.id,
                    "service": name,
                    "timeout_ms": max(int((item.deadline - now) * 1000), 1),
                    "trace": item.trace,
                    "attempt": item.attempt,
                }
                if item.error:
                    header["error"] = item.error
                if item.headers:
                    header["headers"] = item.headers
                batch = batches.get(w)
                if batch is None:
                    batches[w] = ([header], [item.body])
                else:
                    batch[0].append(header)
                    batch[1].append(item.body)
                if w.credit <= len(w.held):
                    avail.remove(w)
        outbox = self.state.outbox
        for w, (headers, bodies) in batches.items():
            if len(headers) <= MAX_BATCH:
                outbox.append(frames.request(w.peer, headers, bodies))
                continue
            for i in range(0, len(headers), MAX_BATCH):
                outbox.append(frames.request(w.peer, headers[i : i + MAX_BATCH], bodies[i : i + MAX_BATCH]))
