# SPDX-License-Identifier: MIT
"""Each page: the template it renders and what it adds to the poller's snapshot. Pages that need
more than status (dead letters, scheduled jobs, switches, traces) ask the brokers as they render."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .poller import Poller
from .tracing_view import look_up

NAV = [
    ("/", "Overview"),
    ("/queues", "Queues"),
    ("/services", "Services"),
    ("/workers", "Workers"),
    ("/dead-letters", "Dead letters"),
    ("/scheduled", "Scheduled"),
    ("/features", "Features"),
    ("/trace", "Trace"),
]

Render = Callable[[Poller, Any, str, dict], tuple[str, dict]]


class NotFound(Exception):
    """The page's subject (a queue) is not known to any broker: a 404 page."""


def _errors(fn: Callable[..., Any], *args: Any, **kw: Any) -> tuple[Any, str]:
    """(answer, "") or (None, why) for one admin call made while rendering."""
    from zeromesh.errors import RemoteError, ZeromeshError

    try:
        return fn(*args, **kw), ""
    except RemoteError as exc:
        return None, f"{exc.code}: {exc.message}"
    except ZeromeshError as exc:
        return None, f"no answer: {exc}"


def _simple(template: str) -> Render:
    return lambda poller, settings, arg, query: (template, {})


def _queue_rows(poller: Poller, name: str) -> list[dict]:
    rows = [q for q in poller.snapshot.get("queues", []) if q["name"] == name]
    if not rows:
        raise NotFound(f"no queue named {name!r} on any broker the console knows")
    return rows


def queue_page(poller: Poller, settings: Any, name: str, query: dict) -> tuple[str, dict]:
    confirm = _confirming(query, "purge_queue")
    if confirm:
        poller.poll_once()  # the question names how many jobs it drops: as of now, not a second ago
    return "queue.html", {"queue": name, "rows": _queue_rows(poller, name), "confirm": confirm}


def _confirming(query: dict, action: str) -> str:
    """The broker whose `action` the page asks to confirm ("" when it asks nothing)."""
    return query.get("broker", "") if query.get("confirm") == action else ""


def dead_letters_page(poller: Poller, settings: Any, name: str, query: dict) -> tuple[str, dict]:
    if not name:
        return "dead_index.html", {}
    confirm = _confirming(query, "purge")
    if confirm:
        poller.poll_once()  # as for purge_queue: the count asked about is the current one
    groups = []
    for row in _queue_rows(poller, name):
        items, error = _errors(poller.client_for(row["broker"]).dead_letters, name, limit=200)
        groups.append({"broker": row["broker"], "items": items or [], "error": error, "total": row.get("dead_letters")})
    return "dead.html", {"queue": name, "groups": groups, "confirm": confirm}


def scheduled_page(poller: Poller, settings: Any, arg: str, query: dict) -> tuple[str, dict]:
    """Every queue status lists, and the one asked for by name: status lists the queues this broker
    has seen since it started, so one that only a restarted broker's Redis holds needs its name."""
    asked = (query.get("queue") or "").strip()
    wanted = [(q["broker"], q["name"]) for q in poller.snapshot.get("queues", [])]
    if asked:
        wanted += [(b["name"], asked) for b in poller.snapshot.get("brokers", []) if b["up"]]
    jobs, periodic, seen = [], [], set()
    for broker, queue in wanted:
        if (broker, queue) in seen:
            continue
        seen.add((broker, queue))
        items, error = _errors(poller.client_for(broker).scheduled, queue)
        if items or error or queue == asked:
            jobs.append({"broker": broker, "queue": queue, "items": items or [], "error": error})
    for b in poller.snapshot.get("brokers", []):
        if b["up"]:
            found, error = _errors(poller.client_for(b["name"]).schedules)
            periodic.append({"broker": b["name"], "schedules": found or [], "error": error})
    return "scheduled.html", {"jobs": jobs, "periodic": periodic, "asked": asked}


def features_page(poller: Poller, settings: Any, arg: str, query: dict) -> tuple[str, dict]:
    try:
        return "features.html", {"switches": settings.switches.listing(), "error": ""}
    except Exception as exc:  # no Redis, redis errors, OSError: the page says so
        return "features.html", {"switches": {}, "error": str(exc)}


def trace_page(poller: Poller, settings: Any, arg: str, query: dict) -> tuple[str, dict]:
    key = (query.get("q") or "").strip()
    by = "trace" if query.get("by") == "trace" else "id"
    if not key:
        return "trace.html", {"key": "", "by": by, "found": None}
    if len(key.encode()) > 255:
        return "trace.html", {"key": key[:255], "by": by, "found": None, "error": "ids are at most 255 bytes"}
    return "trace.html", {"key": key, "by": by, "found": look_up(poller, key, by)}


_EXACT: dict[str, Render] = {
    "/": _simple("overview.html"),
    "/queues": _simple("queues.html"),
    "/services": _simple("services.html"),
    "/workers": _simple("workers.html"),
    "/dead-letters": lambda p, s, a, q: dead_letters_page(p, s, "", q),
    "/scheduled": scheduled_page,
    "/features": features_page,
    "/trace": trace_page,
}

_PREFIXED: dict[str, Render] = {"/queues/": queue_page, "/dead-letters/": dead_letters_page}


def find(path: str) -> tuple[Render, str] | None:
    if path in _EXACT:
        return _EXACT[path], ""
    for prefix, render in _PREFIXED.items():
        rest = path[len(prefix) :]
        if path.startswith(prefix) and rest and "/" not in rest:
            # PATH_INFO is decoded as latin-1 (PEP 3333); names are UTF-8.
            return render, rest.encode("latin-1", "replace").decode("utf-8", "replace")
    return None
