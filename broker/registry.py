# SPDX-License-Identifier: MIT
"""The worker registry: READY, CREDIT, HEARTBEAT and DISCONNECT, liveness, and a worker's death.

A worker is known from its READY until it disconnects or misses `liveness` heartbeats;
what it held then goes back to the head of its queues (the ledger's release_worker).
Workers we gave up on are remembered for a while, so that their next heartbeat is
answered with unknown_peer and they register again.
"""

from __future__ import annotations

import logging

from zeromesh.protocol import codec, frames

from .ledger import Ledger
from .services import Services
from .state import RouterState
from .workers import WorkerRecord

_DROPPED_MEMORY = 10_000  # workers we gave up on, remembered; past this the memory starts afresh


class WorkerRegistry:
    def __init__(self, state: RouterState, ledger: Ledger, services: Services) -> None:
        self.state = state
        self.ledger = ledger
        self.services = services  # requests of a lost worker that can go nowhere fail there
        self.workers: dict[bytes, WorkerRecord] = {}
        self.dropped: dict[bytes, float] = {}  # workers we dropped: their heartbeats get unknown_peer

    def in_flight(self) -> int:
        return sum(len(w.held) for w in self.workers.values())

    def on_ready(
        self, peer: bytes, env: codec.Envelope, received: list[bytes], worker: WorkerRecord | None, now: float
    ) -> None:
        state = self.state
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
        worker.host = header.get("host") or ""
        worker.who = (worker.label, worker.lang, worker.host)
        worker.names = tuple(dict.fromkeys(header["names"]))
        worker.batch = header.get("batch") is True
        worker.packed = header.get("packed") is True
        worker.credit = header["credit"]
        worker.channels = [state.channel(name) for name in worker.names]
        for chan in worker.channels:
            chan.workers.append(worker)
            state.dirty.add(chan)
        state.log.info(
            "worker %s %s for %s with credit %d",
            worker.tag,
            "joined" if joined else "re-registered",
            ",".join(worker.names),
            worker.credit,
        )
        self.dropped.pop(peer, None)
        # The answer names the READY, so the worker knows it is registered.
        state.outbox.append(frames.heartbeat(peer, state.next_id(), state.epoch, header["id"]))

    def on_credit(
        self, peer: bytes, env: codec.Envelope, received: list[bytes], worker: WorkerRecord | None, now: float
    ) -> None:
        if worker is None:
            return self.state.unknown_peer(peer, env)
        worker.credit = env.header["credit"]
        self.state.wake(worker)

    def on_heartbeat(
        self, peer: bytes, env: codec.Envelope, received: list[bytes], worker: WorkerRecord | None, now: float
    ) -> None:
        if worker is not None:
            return
        if peer in self.dropped:  # a worker we gave up on still beats: tell it to register again
            return self.state.unknown_peer(peer, env)
        # a client's ping: answer with our epoch
        state = self.state
        state.outbox.append(frames.heartbeat(peer, state.next_id(), state.epoch, env.header["id"]))

    def on_disconnect(
        self, peer: bytes, env: codec.Envelope, received: list[bytes], worker: WorkerRecord | None, now: float
    ) -> None:
        if worker is not None:
            self.drop(worker, now, handback=True, reason=env.header.get("reason") or "disconnected")

    def drop(self, worker: WorkerRecord, now: float, handback: bool, reason: str) -> None:
        """Forget a worker; put what it held back at the head of its queues, in order."""
        self.workers.pop(worker.peer, None)
        if not handback:
            self.dropped[worker.peer] = now
            if len(self.dropped) > _DROPPED_MEMORY:
                self.dropped.clear()
        for chan in worker.channels:
            if worker in chan.workers:
                chan.workers.remove(worker)
        released = self.ledger.release_worker(worker, now, handback, reason)
        self.services.worker_lost(released.failed, reason, now)
        self.state.dirty.update(released.channels)
        level = logging.INFO if handback else logging.WARNING
        self.state.log.log(
            level, "worker %s left (%s); %d item(s) back in their queues", worker.tag, reason, released.held
        )

    def tick(self, now: float) -> None:
        """Drop workers silent for too long, beat to the others, and take back jobs whose lease expired."""
        state = self.state
        limit = state.config.heartbeat_s * state.config.liveness
        alive = []
        for worker in list(self.workers.values()):
            if now - worker.last_seen > limit:
                state.counters["workers_lost"] += 1
                self.drop(
                    worker, now, handback=False, reason=f"worker lost: no heartbeat for {now - worker.last_seen:.1f}s"
                )
            else:
                alive.append(worker)
        state.outbox.extend(frames.heartbeats([w.peer for w in alive], state.next_id(), state.epoch))
        for worker in alive:
            for item in self.ledger.expired_leases(worker, now):
                error = f"lease expired after {item.channel.qconf.lease_s:g}s on {worker.tag}"
                state.counters["lease_expired"] += 1
                state.log.warning("queue %s: job %s %s", item.channel.name, item.id, error)
                self.ledger.expire_lease(worker, item, error, now)
                state.dirty.add(item.channel)
