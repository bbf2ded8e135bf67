# SPDX-License-Identifier: MIT
"""Pub/sub: PUBLISH in, one event per item out on the PUB socket, numbered per topic.

Subscribers see a gap in `seq` (or a new `epoch`: a broker restart) when they missed
events, per broker (each event names this broker); events on the invalidation prefix are
also recorded in Redis for them to replay.
"""

from __future__ import annotations

from zeromesh.protocol import codec, frames

from .spill import RedisSpill
from .state import RouterState
from .workers import WorkerRecord

RECORDED_TOPICS = "zeromesh.invalidate."  # published on these prefixes are also appended to a Redis stream


class PubSub:
    def __init__(self, state: RouterState, spill: RedisSpill) -> None:
        self.state = state
        self.spill = spill
        self.topic_seq: dict[str, int] = {}

    def on_publish(
        self, peer: bytes, env: codec.Envelope, received: list[bytes], worker: WorkerRecord | None, now: float
    ) -> None:
        state = self.state
        seqs = self.topic_seq
        record = state.redis_enabled
        name = state.config.name
        for header, body in env.items:
            topic = header["topic"]
            seq = seqs.get(topic, 0) + 1
            seqs[topic] = seq
            state.events.append(frames.event(topic, header["id"], seq, state.epoch, header.get("headers"), body, name))
            if record and topic.startswith(RECORDED_TOPICS):
                # Recorded so a subscriber that missed some (a gap) can replay them from Redis.
                self.spill.record_event(topic, seq, body)
        state.counters["published"] += len(env.items)
