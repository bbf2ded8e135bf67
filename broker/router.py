# SPDX-License-Identifier: MIT
"""The broker's routing state machine. Pure: no sockets, no clocks of its own.

The server loop calls `handle()` with each message from a peer and the current time,
then `flush()` (dispatch to free workers, send confirms), `expire()` (deadlines, the
periodic tick) and `timeout()` (how long it may poll); `on_redis()` takes each result
of the Redis link and `finish()` ends it all. Every frame to send is appended to
`outbox` ([routing id, frames...]) or `events` (PUB frames), every Redis command to
the commands `take_redis_commands()` returns; only the server loop touches sockets.

The work is done by parts, one concern each, over one ledger that owns every item's life:

    ledger.Ledger               where each job and request is: queued, held, dead, finished, in Redis
    queues.WorkQueues           PUSH, ACK, NACK, EXTEND, sending jobs, CONFIRM
    services.Services           REQUEST, REPLY, ERROR, CANCEL, request deadlines
    registry.WorkerRegistry     READY, CREDIT, HEARTBEAT, DISCONNECT, liveness, a worker's death
    pubsub.PubSub               PUBLISH
    admin.AdminDesk             ADMIN
    spill.RedisSpill            spills, durable writes, fetches, acks and dead letters in Redis
    state.RouterState           what they share: config, channels, counters, outputs
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import msgpack

from zeromesh.protocol import codec, frames, wire
from zeromesh.protocol.errors import ProtocolError

from . import access
from .admin import AdminDesk
from .admin_parts import Parts
from .channels import Channel
from .config import BrokerConfig
from .keyring import Keyring
from .ledger import Ledger
from .pubsub import PubSub
from .queues import WorkQueues
from .redis_records import (
    AdminAnswer,
    Backlog,
    Brokers,
    Depths,
    Fetched,
    InflightUnsure,
    LinkState,
    NameRefused,
    Paused,
    RedisStats,
    Released,
    Result,
    UniqueWritten,
    Written,
)
from .registry import WorkerRegistry
from .services import Services
from .spill import SPILLED_ID_MEMORY_S, RedisSpill
from .state import RouterState
from .workers import WorkerRecord

_WARN_PERIOD_S = 10.0  # bad input: at most _WARN_LINES log lines per peer per period
_WARN_LINES = 5


class Router:
    def __init__(self, config: BrokerConfig, epoch: str, log: logging.Logger, now: float) -> None:
        self.state = state = RouterState(config, epoch, log, now)
        self.ledger = ledger = Ledger(config.trace_history, dead_in_redis=state.redis_enabled, trace=state.trace)
        self.spill = spill = RedisSpill(state, ledger)
        ledger.on_dead = spill.dead_lettered
        self.queues = queues = WorkQueues(state, ledger, spill)
        self.services = services = Services(state, ledger, queues)
        self.registry = registry = WorkerRegistry(state, ledger, services)
        self.pubsub = PubSub(state, spill)
        self.admin = AdminDesk(Parts(state, ledger, registry, spill))
        spill.next_poll = now
        self.next_tick = now + config.heartbeat_s
        self.warned: dict[bytes, tuple[float, int]] = {}  # peer -> (first bad input of the period, count)
        self.keyring: Keyring | None = None  # None: no CURVE, every peer may do everything
        self.wakes: dict[Channel, float] = {}  # rate-limited queues -> when the next job may go
        self.handlers: dict[int, Callable] = {
            wire.PUSH: queues.on_push,
            wire.PUSH_BATCH: queues.on_push_batch,
            wire.PUSH_PACKED: queues.on_push_batch,  # decoded alike: one header, the list of bodies
            wire.ACK: queues.on_ack,
            wire.NACK: queues.on_nack,
            wire.EXTEND: queues.on_extend,
            wire.REQUEST: services.on_request,
            wire.REPLY: services.on_reply,
            wire.ERROR: services.on_error,
            wire.CANCEL: services.on_cancel,
            wire.READY: registry.on_ready,
            wire.CREDIT: registry.on_credit,
            wire.HEARTBEAT: registry.on_heartbeat,
            wire.DISCONNECT: registry.on_disconnect,
            wire.PUBLISH: self.pubsub.on_publish,
            wire.ADMIN: self.admin.on_admin,
        }
        # Each result of the Redis link goes to the part that owns what it answers.
        self.on_result: dict[type, Callable[..., None]] = {
            Written: spill.on_written,
            Fetched: spill.on_fetched,
            LinkState: spill.on_link_state,
            Backlog: spill.on_backlog,
            Depths: spill.on_depths,
            Brokers: spill.on_brokers,
            NameRefused: spill.on_name_refused,
            AdminAnswer: self.admin.on_answer,
            Paused: spill.on_paused,
            UniqueWritten: spill.on_unique_written,
            RedisStats: spill.on_redis_stats,
            Released: spill.on_released,
            InflightUnsure: spill.on_inflight_unsure,
        }
        self._workers = registry.workers
        self._max_message = config.max_message
        # The outputs the server loop sends and clears in place: the very lists the parts append to.
        self.outbox = state.outbox
        self.events = state.events
        self.counters = state.counters

    # -- what the server loop and the tests read -------------------------------

    @property
    def config(self) -> BrokerConfig:
        return self.state.config

    @property
    def channels(self) -> dict[str, Channel]:
        return self.state.channels

    @property
    def workers(self) -> dict[bytes, WorkerRecord]:
        return self.registry.workers

    @property
    def redis_status(self) -> str:
        return self.state.redis_status

    def take_redis_commands(self) -> list:
        commands = self.state.redis_commands
        if commands:
            self.state.redis_commands = []
        return commands

    def writes_pending(self) -> bool:
        """Pushes are being written to Redis: their producers wait for the confirm."""
        return bool(self.spill.pending_writes)

    # -- entry points -------------------------------------------------------

    def handle(self, peer: bytes, received: list[bytes], now: float, key: str | None = None) -> int:
        """Act on one message from a peer. Returns its weight for the server's read budget: its
        frames, with each body of a packed message counted as the frame it has in a batch.
        `key` is the name of the CURVE key the message came with (None: security is off)."""
        try:
            env = codec.unpack(received, self._max_message)
        except ProtocolError as exc:
            self.reject(peer, received, exc.code, exc.message, now, key)
            return len(received)
        if key is not None and self.keyring is not None:
            refused = access.refusal(self.keyring, key, env)
            if refused is not None:
                self.forbid(peer, key, refused, now)
                return len(received)
        worker = self._workers.get(peer)
        if worker is not None:
            worker.last_seen = now
        handler = self.handlers.get(env.command)
        if handler is None:
            self.reject(peer, received, wire.E_UNKNOWN_COMMAND, f"{env.name} is not sent to the broker", now)
            return len(received)
        self.state.pusher = key
        handler(peer, env, received, worker, now)
        if key is not None and env.command == wire.READY:
            registered = self._workers.get(peer)
            if registered is not None:
                registered.key = key  # so a removed key can end its session
        if env.command in wire.PACKED_COMMANDS:
            return len(received) + len(env.items) - 1
        return len(received)

    def flush(self, now: float) -> None:
        """Dispatch to free workers, then send the batched confirms and Redis acks."""
        state = self.state
        if state.dirty:
            dirty, state.dirty = state.dirty, set()
            if not state.draining:
                for chan in dirty:
                    self._dispatch(chan, now)
        if state.confirms or state.confirm_batches:
            self.queues.send_confirms()
        if self.ledger.acked_elements:
            self.spill.send_acks()

    def timeout(self, now: float) -> float:
        """Seconds until the next deadline or tick."""
        due = self.next_tick
        deadline = self.ledger.next_deadline()
        if deadline is not None and deadline < due:
            due = deadline
        spill = self.spill
        if spill.poll_channels and spill.next_poll < due:
            due = spill.next_poll
        if self.wakes:
            due = min(due, min(self.wakes.values()))
        retry_due = self.ledger.waits.next_due()
        if retry_due is not None and retry_due < due:
            due = retry_due
        return max(0.0, due - now)

    def expire(self, now: float) -> None:
        """Answer requests whose deadline passed; run the periodic tick when due."""
        self.services.expire(now)
        self.spill.poll_due(now)
        if self.ledger.waits:
            self.state.dirty.update(self.ledger.waits.release(now))
        if self.wakes:
            for chan in [c for c, at in self.wakes.items() if at <= now]:
                del self.wakes[chan]
                self.state.dirty.add(chan)
        if now >= self.next_tick:
            self.next_tick = now + self.state.config.heartbeat_s
            self._tick(now)

    def on_redis(self, result: Result, now: float) -> None:
        """One result of the Redis link, to the part that owns what it answers."""
        self.on_result[type(result)](result, now)

    def begin_drain(self) -> None:
        self.state.draining = True

    def in_flight(self) -> int:
        return self.registry.in_flight()

    def finish(self) -> int:
        """Fail every unanswered request, hand jobs back to Redis, tell workers we are gone.

        Returns how many jobs are lost with this process: those held only in memory when
        there is no Redis to hand them to (the link reports what it could not write).
        """
        state = self.state
        workers = list(self.registry.workers.values())
        lost = 0
        if state.redis_enabled:
            self.spill.hand_back(workers)
        else:
            for chan in state.channels.values():
                count = len(chan.jobs) + chan.waiting + len(self.ledger.held_jobs(chan, workers))
                if count:
                    lost += count
                    state.log.error(
                        "queue %s: %d job(s) dropped: no Redis is configured to hand them back to", chan.name, count
                    )
        self.services.fail_all(wire.E_SHUTTING_DOWN, "broker is shutting down")
        for worker in workers:
            state.outbox.append(frames.disconnect(worker.peer, state.next_id(), "shutting_down"))
        return lost

    # -- dispatch and the tick ---------------------------------------------------

    def _dispatch(self, chan: Channel, now: float) -> None:
        workers = chan.workers
        n = len(workers)
        if not n:
            return
        start = chan.rr % n
        chan.rr = start + 1
        avail = [w for w in workers[start:] + workers[:start] if w.credit > len(w.held)]
        if chan.requests:
            self.services.dispatch(chan, avail, now)
        gate = chan.gate
        if gate is None:
            if chan.jobs and avail:
                self.queues.dispatch(chan, avail, now)
        elif chan.jobs and avail:
            allowed = gate.allowance(now, chan.in_flight)
            if allowed:
                gate.spend(self.queues.dispatch(chan, avail, now, allowed))
            wake = gate.next_token_at(now) if chan.jobs else None
            if wake is not None:
                self.wakes[chan] = wake
        if self.state.redis_up and not (gate is not None and gate.paused):
            self.spill.after_dispatch(chan, avail, now)

    def _tick(self, now: float) -> None:
        self.registry.tick(now)
        self.ledger.forget_spilled(now - SPILLED_ID_MEMORY_S)
        if self.state.trace is not None:
            self.state.trace.expire(now)
        for chan in self.state.channels.values():
            chan.rate_marks.append((now, chan.enqueued, chan.acked))
            self.ledger.compact_requests(chan)

    # -- keys ------------------------------------------------------------------

    def set_keyring(self, keyring: Keyring, now: float) -> list[str]:
        """Take a reloaded key directory. Workers registered with a key that is gone are dropped
        (their jobs go back without counting an attempt) and told so; returns the names removed."""
        old = self.keyring
        self.keyring = keyring
        removed = sorted(set(old.by_name) - set(keyring.by_name)) if old is not None else []
        if removed:
            state = self.state
            gone = set(removed)
            for worker in [w for w in self._workers.values() if w.key in gone]:
                self.registry.drop(worker, now, handback=True, reason=f"key {worker.key} removed")
                state.outbox.append(frames.disconnect(worker.peer, state.next_id(), "key removed"))
        return removed

    # -- bad input ------------------------------------------------------------

    def forbid(self, peer: bytes, key: str, refused: access.Refusal, now: float) -> None:
        """A command outside the key's roles: count, log with the key's name, answer each id that waits."""
        state = self.state
        state.counters["forbidden"] += 1
        self._warn(peer, now, "forbidden from key %s (peer %s): %s", key, peer.hex(), refused.message)
        for waiting in refused.ids:
            state.error(peer, waiting, wire.E_FORBIDDEN, refused.message)

    def reject(
        self, peer: bytes, received: list[bytes], code: str, message: str, now: float, key: str | None = None
    ) -> None:
        """Bad input: count it, log it with the peer (and its key), answer it; change nothing else."""
        state = self.state
        state.counters[f"bad_input.{code}"] += 1
        who = f"peer {peer.hex()}" if key is None else f"key {key} (peer {peer.hex()})"
        self._warn(peer, now, "bad input from %s: %s: %s", who, code, message)
        state.error(peer, _peek_id(received), code, message)

    def _warn(self, peer: bytes, now: float, fmt: str, *args: object) -> None:
        """Log a peer's bad message, at most _WARN_LINES per period: bad peers must not flood the log."""
        log = self.state.log
        first, count = self.warned.get(peer, (now, 0))
        if now - first > _WARN_PERIOD_S:
            first, count = now, 0
        if count < _WARN_LINES:
            log.warning(fmt, *args)
        elif count == _WARN_LINES:
            log.warning("peer %s: suppressing further warnings for 10s", peer.hex())
        self.warned[peer] = (first, count + 1)
        if len(self.warned) > 10_000:
            self.warned.clear()


def _peek_id(frames: list[bytes]) -> str | None:
    """Best effort: the id of a message we could not decode, to put in ERROR.re (SPEC 9).

    Lenient where the strict decoder is not: a trailing byte, a non-str key, bad UTF-8 in
    another field still leave the id readable, and the producer can then match the refusal.
    """
    if len(frames) < 2 or len(frames[1]) > wire.MAX_HEADER_BYTES:
        return None
    try:
        header = msgpack.unpackb(frames[1], raw=True, strict_map_key=False)
    except msgpack.ExtraData as extra:
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
