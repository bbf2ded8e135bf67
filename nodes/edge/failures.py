# SPDX-License-Identifier: MIT
"""The edge's own answers: plain-text errors, 202 Accepted, and what a failed call to the mesh
becomes (503 with Retry-After, 504, 502 with a logged error id, or the route's fallback page)."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from zeromesh import errors

from . import defaults
from .mapping import status_line
from .metrics import EdgeMetrics
from .routes import Route

log = logging.getLogger("zeromesh.edge")

Headers = list[tuple[str, str]]

TEXT = "text/plain; charset=utf-8"


def plain(code: int, text: str, extra: Headers | None = None) -> tuple[str, Headers, list[bytes]]:
    body = text.encode("utf-8")
    headers = [("Content-Type", TEXT), ("Content-Length", str(len(body)))]
    if extra:
        headers += extra
    return status_line(code), headers, [body]


def accepted(message_id: str) -> tuple[str, Headers, list[bytes]]:
    payload = json.dumps({"id": message_id}).encode()
    return status_line(202), [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))], [payload]


def error_id() -> str:
    return os.urandom(6).hex()


def failure(metrics: EdgeMetrics, route: Route, kind: str, exc: Any) -> tuple[str, Headers, list[bytes]]:
    metrics.error(kind)
    retry = [("Retry-After", str(defaults.RETRY_AFTER_S))]
    if kind == "no_workers":
        return fallback_or(route, kind, 503, "503 Service Unavailable: no worker serves this yet\n", retry)
    if kind == "unavailable":
        return fallback_or(route, kind, 503, "503 Service Unavailable\n", retry)
    if kind == "timeout":
        if route.queue is not None:
            # Not confirmed in time is not "not queued": the broker may have the job, or get it later.
            return fallback_or(
                route,
                kind,
                504,
                "504 Gateway Timeout: the job was not confirmed in "
                "time and may still run; retry with the same Idempotency-Key to "
                "have it recognised, not queued twice\n",
            )
        return fallback_or(route, kind, 504, "504 Gateway Timeout\n")
    eid = error_id()
    if isinstance(exc, errors.RemoteError):
        log.warning(
            "error %s: route %s, %s %s: %s",
            eid,
            route.name,
            route.service or route.queue,
            exc.code,
            f"{exc.name}: {exc.message}" if exc.name else exc.message,
        )
        if exc.traceback:
            log.debug("error %s: remote traceback:\n%s", eid, exc.traceback)
    elif kind == "internal":
        log.error("error %s: route %s", eid, route.name, exc_info=exc)
    else:
        log.warning("error %s: route %s: %s", eid, route.name, exc)
    status = 500 if kind == "internal" else 502
    return fallback_or(route, kind, status, f"{status_line(status)}\nerror id: {eid}\n", [("X-Error-Id", eid)])


def fallback_or(
    route: Route, reason: str, code: int, text: str, extra: Headers | None = None
) -> tuple[str, Headers, list[bytes]]:
    fb = route.fallback
    if fb is None:
        return plain(code, text, extra)
    return (
        status_line(fb.status),
        [("Content-Type", fb.content_type), ("Content-Length", str(len(fb.body))), ("X-Fallback", reason)],
        [fb.body],
    )
