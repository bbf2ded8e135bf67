# SPDX-License-Identifier: MIT
"""The Trace page's data: the `trace` op's state and the `trace_events` op's events, asked of
every broker the console knows, merged by time; for a trace id, the messages as a tree by `parent`."""

from __future__ import annotations

from typing import Any

from .poller import Poller


def look_up(poller: Poller, key: str, by: str) -> dict:
    """{states: [(broker, state or None, note)], events: [...], notes: [...], tree: [(depth, id, kind, where)]}."""
    from zeromesh.errors import RemoteError, ZeromeshError

    states, events, notes = [], [], []
    for target in list(poller.targets.values()):
        name = target.name or target.endpoint
        if not target.up:
            notes.append(f"{name}: not answering since the poller last asked; nothing from it")
            continue
        client = target.client
        try:
            states.append((name, client.trace(key), ""))
        except RemoteError as exc:
            states.append((name, None, f"{exc.code}: {exc.message}"))
        except ZeromeshError as exc:
            states.append((name, None, f"no answer: {exc}"))
        try:
            answer = client.admin("trace_events", **{by: key})
        except RemoteError as exc:
            if exc.code == "unknown_op":
                notes.append(f"{name}: events are not available from this broker (it has no trace_events op)")
            else:
                notes.append(f"{name}: trace_events: {exc.code}: {exc.message}")
            continue
        except ZeromeshError as exc:
            notes.append(f"{name}: trace_events did not answer: {exc}")
            continue
        for event in answer.get("events") or []:
            events.append({"broker": answer.get("broker", name), **event})
    events.sort(key=lambda e: (e.get("t_ms", 0), e.get("broker", "")))
    start = events[0].get("t_ms", 0) if events else 0
    for e in events:
        e["rel_ms"] = e.get("t_ms", 0) - start
        e["details"] = details(e)
    return {"states": states, "events": events, "notes": notes, "tree": tree(events)}


_SHOWN = ("queue", "service", "peer", "attempt", "error", "code", "ms", "due_ms", "retry_in_ms")


def details(event: dict) -> str:
    parts = [f"{k}={event[k]}" for k in _SHOWN if event.get(k) not in (None, "")]
    worker = event.get("worker")
    if isinstance(worker, dict):
        parts.append("worker=" + "/".join(str(worker.get(k) or "?") for k in ("label", "lang", "host")))
    return " ".join(parts)


def tree(events: list[dict]) -> list[tuple[int, str, str, str]]:
    """Messages by `parent`, depth first, each once: (depth, id, kind, queue or service)."""
    first: dict[str, dict] = {}
    for e in events:
        first.setdefault(e.get("id", ""), e)
    children: dict[Any, list[str]] = {}
    for mid, e in first.items():
        parent = e.get("parent")
        children.setdefault(parent if parent in first else None, []).append(mid)
    out: list[tuple[int, str, str, str]] = []

    def walk(mid: str, depth: int) -> None:
        e = first[mid]
        out.append((depth, mid, e.get("kind", ""), e.get("queue") or e.get("service") or ""))
        for child in children.get(mid, []):
            if depth < 50:  # a parent cycle (bad input) cannot recurse forever
                walk(child, depth + 1)

    for root in children.get(None, []):
        walk(root, 0)
    return out
