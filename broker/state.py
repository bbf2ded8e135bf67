# SPDX-License-Identifier: MIT
"""What every part of the router shares: its settings, its channels, and what it has to say.

The parts (work queues, services, the worker registry, pub/sub, admin, the Redis spill)
each own their own state; this holds the rest: the outputs the server loop sends
(`outbox`, `events`, `redis_commands`) and the confirms it batches, the channels by name,
the channels to dispatch at the next flush (`dirty`), counters, and the Redis link's
status as last reported (written only by the spill).
"""

from __future__ import annotations

import logging
from collections import Counter

from zeromesh.protocol import codec, frames, wire

from .channels import Channel
from .config import BrokerConfig
from .limits import share_count
from .trace_log import TraceLog
from .workers import WorkerRecord


class RouterState:
    def __init__(self, config: BrokerConfig, epoch: str, log: logging.Logger, now: float) -> None:
        self.config = config
        self.epoch = epoch
        self.log = log
        self.started = now
        self.next_id = codec.IdGenerator("broker-" + epoch)
        self.channels: dict[str, Channel] = {}
        self.dirty: set[Channel] = set()  # to dispatch at the next flush
        self.counters: Counter[str] = Counter()
        self.draining = False
        # Outputs, taken by the server loop after each round.
        self.outbox: list[list[bytes]] = []  # [routing id, frames...] on the ROUTER socket
        self.events: list[list[bytes]] = []  # [topic, header, body] on the PUB socket
        self.redis_commands: list = []  # records for the Redis link (redis_records)
        self.confirms: dict[bytes, list[str]] = {}  # producer -> pushed ids accepted since the last flush
        self.confirm_batches: dict[bytes, list[str]] = {}  # producer -> PUSH_BATCH message ids accepted whole
        # The Redis link, as it last reported itself.
        self.redis_enabled = bool(config.redis_url)
        self.redis_up = False
        self.redis_status = "starting" if self.redis_enabled else "not configured"
        self.redis_rtt_ms: float | None = None  # the last PING's round trip (metrics)
        self.brokers: list[dict] = []  # the registry of brokers in Redis, as last listed
        self.refused = ""  # another live broker holds our name: we must stop
        # The trace log (SPEC 12.1); None when trace_keep is 0, so every hook costs one test.
        self.trace: TraceLog | None = (
            TraceLog(config.name, config.trace_keep, config.trace_keep_s) if config.trace_keep > 0 else None
        )
        self.pusher: str | None = None  # the CURVE key name of the message being handled (None: off)

    def channel(self, name: str) -> Channel:
        chan = self.channels.get(name)
        if chan is None:
            chan = Channel(name, self.config.queue(name), self.config.service(name))
            if chan.gate is not None:  # its limits are shared with the brokers registered now
                chan.gate.brokers = share_count(self.brokers)
            self.channels[name] = chan
            self.log.debug("channel %s created", name)
        return chan

    def wake(self, worker: WorkerRecord) -> None:
        """The worker has room again: dispatch to its channels that may have something for it."""
        if worker.free > 0:
            for chan in worker.channels:
                if chan.jobs or chan.requests or chan.backlog or self.redis_up:
                    self.dirty.add(chan)

    def error(self, peer: bytes, re: str | None, code: str, message: str) -> None:
        self.outbox.append(frames.error(peer, self.next_id(), code, message, re))

    def unknown_peer(self, peer: bytes, env: codec.Envelope) -> None:
        self.counters["unknown_peer"] += 1
        self.error(
            peer,
            env.header.get("id"),
            wire.E_UNKNOWN_PEER,
            f"{env.name} from a peer that is not a registered worker; send READY first",
        )
