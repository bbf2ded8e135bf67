# SPDX-License-Identifier: MIT
"""The greenlet that keeps an edge coherent: invalidations and feature switches from pub/sub.

Every few seconds (and whenever pub/sub shows a gap) it also compares the
Redis stream of invalidations with what it applied, and reloads the feature
switches from their hash, so nothing missed on the wire stays missed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import gevent

from zeromesh.errors import AuthenticationError
from zeromesh.nodes import names

from . import defaults
from .invalidation import Invalidator, StreamUnavailable

log = logging.getLogger("zeromesh.edge.listener")

TOPICS = (names.INVALIDATE_PREFIX, names.FEATURE_TOPIC)


class Listener:
    def __init__(
        self,
        subscription: Any,
        invalidator: Invalidator,
        features: Any,
        store: Any,
        catchup_s: float = defaults.CATCHUP_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.subscription = subscription
        self.invalidator = invalidator
        self.features = features
        self.store = store
        self.catchup_s = catchup_s
        self.clock = clock
        self.greenlet: gevent.Greenlet | None = None

    def start(self) -> Listener:
        self.greenlet = gevent.spawn(self.run)
        return self

    def stop(self) -> None:
        if self.greenlet is not None:
            self.greenlet.kill()
        self.subscription.close()

    def run(self) -> None:
        next_check = self.clock() + self.catchup_s
        while not self.subscription.closed:
            try:
                event = self.subscription.next(timeout=max(0.0, next_check - self.clock()))
            except AuthenticationError:
                # A PUB endpoint refused our key (the subscription logged why; it says so once). libzmq
                # keeps trying, and the catch-up below replays from the stream what was missed.
                event = None
            try:
                if event is not None:
                    self.dispatch(event)
                if self.clock() >= next_check:
                    next_check = self.clock() + self.catchup_s
                    self.periodic()
            except Exception:  # one bad event or a Redis hiccup must not end coherence for good
                log.exception("listener: handling %s failed", event.topic if event is not None else "a check")

    def dispatch(self, event: Any) -> None:
        if event.topic.startswith(names.INVALIDATE_PREFIX):
            self.invalidator.on_event(event.topic, event.body, event.seq, event.epoch, event.broker)
        elif event.topic == names.FEATURE_TOPIC:
            if event.gap:
                self.reload_features()  # switches were missed: the hash has them all
            self.features.apply_event(event.body)

    def periodic(self) -> None:
        self.invalidator.catch_up()
        self.reload_features()

    def reload_features(self) -> None:
        if self.store is None:
            return
        try:
            self.store.load_features(self.features)
        except StreamUnavailable as exc:
            log.debug("feature switches not reloaded: %s", exc)
