# SPDX-License-Identifier: MIT
"""/healthz (liveness) and /readyz (readiness): what a process supervisor and a load balancer ask.

/healthz says only that this process answers HTTP: restart it when that fails.
/readyz says whether it should get traffic, and what is degraded:

    503 {"status": "not ready", "broker": "down", "redis": "up", ...}   the broker, or Redis, cannot be reached
    200 {"status": "degraded", "services": {"reco": 0}, ...}          a service of the routes has no worker
    200 {"status": "ready", ...}

Redis down is "not ready": without it an edge cannot load the feature switches or replay missed
invalidations, so it could show what a switch has turned off. A service without a worker is
"degraded" but still 200: every edge sees the same mesh, so taking this one out of rotation would
not help; its routes answer 503 at once, or a stale page or the fallback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

import gevent

from . import defaults

Answer = tuple[int, bytes]


def liveness() -> Answer:
    return 200, json.dumps({"status": "alive", "pid": os.getpid()}).encode()


def readiness(client: Any, store: Any, services: Iterable[str], timeout: float = defaults.HEALTH_TIMEOUT_S) -> Answer:
    """Ask the broker (its status: up, and the workers of each service) and Redis at once, within `timeout`."""
    broker = gevent.spawn(_broker_status, client, timeout)
    redis = gevent.spawn(_redis_ping, store, timeout) if store is not None else None
    gevent.joinall([g for g in (broker, redis) if g is not None], timeout=timeout + 0.5)
    degraded: list[str] = []
    body: dict[str, Any] = {"status": "ready", "pid": os.getpid()}

    status, broker_error = _outcome(broker, f"no answer within {timeout:g}s")
    body["broker"] = "up" if status is not None else "down"
    if status is None:
        degraded.append(f"broker: {broker_error}")

    if redis is None:
        body["redis"] = "not used"
    else:
        pong, redis_error = _outcome(redis, f"no answer within {timeout:g}s")
        body["redis"] = "up" if pong is not None else "down"
        if pong is None:
            degraded.append(f"redis: {redis_error}")

    if status is not None:
        # A served name nobody has called yet is listed under "unused" (its kind is not known yet).
        known = {**(status.get("unused") or {}), **(status.get("services") or {})}
        body["services"] = counts = {
            name: int((known.get(name) or {}).get("workers", 0)) for name in sorted(set(services))
        }
        degraded += [f"service {name}: no worker" for name, n in counts.items() if n == 0]
    ready = body["broker"] == "up" and body["redis"] != "down"
    if not ready:
        body["status"] = "not ready"
    elif degraded:
        body["status"] = "degraded"
    body["degraded"] = degraded
    return (200 if ready else 503), json.dumps(body).encode()


def _broker_status(client: Any, timeout: float) -> dict:
    with gevent.Timeout(timeout, TimeoutError(f"no answer from {client.endpoint} within {timeout:g}s")):
        return client.status()


def _redis_ping(store: Any, timeout: float) -> bool:
    with gevent.Timeout(timeout, TimeoutError(f"no answer within {timeout:g}s")):
        store.ping()
    return True


def _outcome(greenlet: gevent.Greenlet, unanswered: str) -> tuple[Any, str]:
    """(value, "") when the check passed; (None, why) when it failed or did not finish."""
    if not greenlet.ready():
        greenlet.kill(block=False)
        return None, unanswered
    if greenlet.successful():
        return greenlet.value, ""
    exc = greenlet.exception
    return None, str(exc) or type(exc).__name__
