# SPDX-License-Identifier: MIT
"""The node's control greenlets: invalidations and feature switches from pub/sub, features from Redis.

Pub/sub is at-most-once, so each channel has a safety net: a gap in the
invalidation topics (or a broker restart) clears the whole fragment cache,
a gap in the feature topic reloads the hash, and the hash is reloaded every
`reload_s` anyway (a switch published before our subscription reached the
broker is then picked up within that time).
"""

from __future__ import annotations

import logging
from typing import Any

from . import names
from .features import FeatureSwitches
from .fragments import FragmentCache

log = logging.getLogger("zeromesh.nodes.control")

FEATURE_RELOAD_S = 30.0
"""Seconds between reloads of the feature hash (the safety net for missed events)."""


class ControlListener:
    """Runs two greenlets in the current hub: the subscriber and the feature reloader."""

    def __init__(
        self,
        client: Any,
        fragments: FragmentCache,
        features: FeatureSwitches,
        redis: Any = None,
        reload_s: float = FEATURE_RELOAD_S,
    ) -> None:
        self.client = client
        self.fragments = fragments
        self.features = features
        self.redis = redis
        self.reload_s = reload_s
        self.applied = 0  # events applied, for tests and logs
        self._greenlets: list[Any] = []
        self._sub: Any = None
        self._redis_ok: bool | None = None

    def start(self) -> ControlListener:
        import gevent

        # Subscribe before loading, so a switch made in between is not lost.
        self._sub = self.client.subscribe(names.INVALIDATE_PREFIX, names.FEATURE_TOPIC)
        self.load_features()
        self._greenlets = [gevent.spawn(self._listen), gevent.spawn(self._reload_loop)]
        return self

    def stop(self) -> None:
        for greenlet in self._greenlets:
            greenlet.kill(block=False)
        if self._sub is not None:
            self._sub.close()

    def load_features(self) -> bool:
        if self.redis is None:
            return False
        try:
            self.features.load(self.redis)
        except Exception as exc:  # redis errors, OSError: Redis may come later
            if self._redis_ok is not False:
                log.warning(
                    "cannot read feature switches from Redis (%s); every feature counts as on until it can", exc
                )
            self._redis_ok = False
            return False
        if self._redis_ok is False:
            log.info("feature switches read from Redis again")
        self._redis_ok = True
        return True

    def _reload_loop(self) -> None:
        import gevent

        while True:
            gevent.sleep(self.reload_s)
            self.load_features()

    def _listen(self) -> None:
        from zeromesh.errors import AuthenticationError

        sub = self._sub
        assert sub is not None  # made by start()
        while not sub.closed:
            try:
                event = sub.next()
            except AuthenticationError:
                # A PUB endpoint refused our key (logged by the subscription, which says so once); libzmq
                # keeps trying, and the first event once it is in shows the gap, which apply() makes good.
                continue
            if event is None:
                continue
            try:
                self.apply(event.topic, event.body, gap=event.gap)
            except Exception:
                log.exception("failed to apply %s event", event.topic)

    def apply(self, topic: str, body: bytes, gap: bool = False) -> None:
        if topic == names.FEATURE_TOPIC:
            if gap:
                self.load_features()
            self.features.apply_event(body)
        elif topic.startswith(names.INVALIDATE_PREFIX):
            if gap:
                n = self.fragments.clear()
                log.info("missed invalidations (gap on %s): dropped all %d fragment(s)", topic, n)
            elif topic == names.INVALIDATE_TAG:
                tag = body.decode("utf-8", "replace")
                n = self.fragments.invalidate_tag(tag)
                log.debug("invalidate tag %s: dropped %d fragment(s)", tag, n)
            elif topic == names.INVALIDATE_ALL:
                n = self.fragments.clear()
                log.info("invalidate all: dropped %d fragment(s)", n)
            # zeromesh.invalidate.path: fragments are not URLs (see fragments.py).
        else:
            return
        self.applied += 1
