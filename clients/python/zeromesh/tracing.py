# SPDX-License-Identifier: MIT
"""Follow a message across the mesh: every broker's trace log, merged (SPEC 12.1).

A job can have events on several brokers (spilled to Redis by one, drained by another), so
`collect` asks the connected broker and every broker of its registry (status `brokers`,
each at its advertised endpoint, with this client's CURVE settings) for `trace_events`,
merges them by time, and adds the current state from the `trace` op. `timeline_text` and
`tree_text` are what `zeromesh trace` prints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import RemoteError, ZeromeshError

Connect = Callable[[str], Any]
"""An advertised endpoint -> a Client for that broker (closed by collect)."""


def collect(client: Any, key: str, by: str = "id", connect: Connect | None = None, limit: int = 500) -> dict:
    """{state, events, brokers, errors} for message id `key` (by="id") or trace id `key` (by="trace").

    `state`: the connected broker's `trace` answer (None when it knows nothing of `key`);
    `events`: every broker's events, oldest first; `brokers`: the names asked;
    `errors`: {broker name: why it could not be asked}.
    """
    if by not in ("id", "trace"):
        raise ValueError(f"by is 'id' or 'trace', got {by!r}")
    status = client.status()
    here = status.get("name", "")
    answers = [client.admin("trace_events", **{by: key, "limit": limit})]
    failed: dict[str, str] = {}
    for broker in status.get("brokers") or []:
        name, endpoint = broker.get("name"), broker.get("endpoint")
        if not name or name == here or not endpoint:
            continue
        try:
            other = (connect or _connector(client))(endpoint)
            try:
                answers.append(other.admin("trace_events", **{by: key, "limit": limit}))
            finally:
                other.close()
        except (ZeromeshError, OSError, ValueError) as exc:
            failed[name] = str(exc)
    events = sorted((e for a in answers for e in a.get("events", [])), key=lambda e: e.get("t_ms", 0))
    try:
        state: dict | None = client.trace(key)
    except RemoteError:
        state = None  # not_found: no broker holds it now
    return {"state": state, "events": events[:limit], "brokers": [a.get("broker") for a in answers], "errors": failed}


def _connector(client: Any) -> Connect:
    """Clients like `client` for another broker: its kind (green or threads), its admin timeout, its
    CURVE key for that endpoint when it has one per endpoint (else the environment's settings)."""
    from .client import Client

    def connect(endpoint: str) -> Any:
        server = None
        curve = client.curve
        if curve is not None and len(curve.server_keys) > 1 and endpoint in client.endpoints:
            server = curve.server_keys[client.endpoints.index(endpoint)].decode()
        return Client(endpoint, green=client.green, admin_timeout=client.admin_timeout, curve_server=server)

    return connect


# -- text ---------------------------------------------------------------------

_DETAILS = ("queue", "service", "peer", "attempt", "error", "code", "ms", "due_ms", "retry_in_ms")


def _details(event: dict) -> str:
    parts = [f"{k}={event[k]}" for k in _DETAILS if event.get(k) not in (None, "")]
    worker = event.get("worker")
    if worker:
        who = worker.get("label") or "worker"
        parts.append(f"worker={who} ({worker.get('lang') or '?'} on {worker.get('host') or '?'})")
    return " ".join(parts)


def timeline_text(found: dict, show_ids: bool = False) -> str:
    """The state, then one line per event: ms since the first, broker, event, details."""
    lines = []
    state = found.get("state")
    if state:
        lines.append(f"state: {state.get('state', '?')}" + (f" ({state['queue']})" if state.get("queue") else ""))
    events = found.get("events") or []
    if not events:
        lines.append("no events (the brokers' trace logs keep the last trace_keep messages, trace_keep_s seconds)")
    start = events[0]["t_ms"] if events else 0
    for e in events:
        who = f" {e['id']}" if show_ids else ""
        lines.append(f"+{e['t_ms'] - start:>7} ms  {e.get('broker', '?'):<12} {e['event']:<14}{who}  {_details(e)}")
    for name, why in sorted((found.get("errors") or {}).items()):
        lines.append(f"(broker {name} not asked: {why})")
    return "\n".join(lines)


def tree_text(events: list[dict]) -> str:
    """The messages of a trace by `parent`, indented under the message that sent them."""
    first: dict[str, dict] = {}
    for e in events:
        first.setdefault(e["id"], e)
        if e.get("parent") and not first[e["id"]].get("parent"):
            first[e["id"]] = {**first[e["id"]], "parent": e["parent"]}
    children: dict[str | None, list[str]] = {}
    for mid, e in first.items():
        parent = e.get("parent")
        children.setdefault(parent if parent in first else None, []).append(mid)
    lines: list[str] = []

    def walk(mid: str, depth: int) -> None:
        e = first[mid]
        where = e.get("queue") or e.get("service") or ""
        last = [x["event"] for x in events if x["id"] == mid][-1]
        lines.append(f"{'  ' * depth}{e.get('kind', '?')} {mid} {where} ({last})")
        for child in children.get(mid, []):
            walk(child, depth + 1)

    for root in children.get(None, []):
        walk(root, 0)
    return "\n".join(lines)
