# SPDX-License-Identifier: MIT
"""How the command line shows things: tables for people, JSON for programs."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from .messages import Event


def body_text(body: bytes) -> tuple[str, bool]:
    """(text, is_base64): UTF-8 bodies as themselves, anything else as base64."""
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def event_line(event: Event) -> str:
    text, b64 = body_text(event.body)
    return f"{event.topic} {event.seq} {'base64:' + text if b64 else text}"


def event_json(event: Event) -> str:
    text, b64 = body_text(event.body)
    out: dict[str, Any] = {
        "topic": event.topic,
        "seq": event.seq,
        "epoch": event.epoch,
        "gap": event.gap,
        "id": event.id,
        "body": text,
        "encoding": "base64" if b64 else "utf-8",
    }
    if event.headers:
        out["headers"] = event.headers
    return json.dumps(out, default=_jsonable)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return body_text(value)[0]
    return str(value)


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=_jsonable)


def table(headings: list[str], rows: list[list[Any]]) -> str:
    cells = [headings] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headings))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


def status_text(status: dict, now: float | None = None) -> str:
    name = f"broker {status['name']}, epoch" if status.get("name") else "broker epoch"
    parts = [
        f"{name} {status.get('epoch', '?')}, up {status.get('uptime_s', 0)}s"
        + (" (draining)" if status.get("draining") else "")
    ]
    redis = status.get("redis") or {}
    if redis.get("enabled"):
        parts.append(f"redis {redis.get('status', '?')}")
    elif redis:
        parts.append("redis off: in-memory queues only")
    brokers = status.get("brokers") or []
    if brokers:  # the registry in Redis: every broker of the mesh (SPEC 12)
        now = time.time() if now is None else now
        parts.append("")
        parts.append(
            table(
                ["BROKER", "EPOCH", "ENDPOINT", "PUB ENDPOINT", "UP S", "SEEN S AGO"],
                [
                    [
                        b.get("name"),
                        b.get("epoch"),
                        b.get("endpoint"),
                        b.get("pub_endpoint"),
                        round(now - b.get("started", now)),
                        round(max(0.0, now - b.get("last_seen", now)), 1),
                    ]
                    for b in brokers
                ],
            )
        )
    queues = status.get("queues") or {}
    parts.append("")
    parts.append(
        table(
            [
                "QUEUE",
                "DEPTH",
                "IN REDIS",
                "IN FLIGHT",
                "DEAD",
                "RETRY",
                "LATER",
                "ENQUEUED",
                "ACKED",
                "IN/S",
                "OUT/S",
                "WORKERS",
                "KIND",
            ],
            [
                [
                    name,
                    q.get("depth"),
                    q.get("in_redis"),
                    q.get("in_flight"),
                    q.get("dead_letters"),
                    q.get("retry_waiting", 0),
                    q.get("scheduled", 0),
                    q.get("enqueued"),
                    q.get("acked"),
                    q.get("rate_in"),
                    q.get("rate_out"),
                    q.get("workers"),
                    ",".join(k for k in ("durable", "raw", "paused") if q.get(k)) or "-",
                ]
                for name, q in sorted(queues.items())
            ],
        )
        if queues
        else "no queues"
    )
    services = status.get("services") or {}
    parts.append("")
    parts.append(
        table(
            ["SERVICE", "PENDING", "IN FLIGHT", "REQUESTED", "ANSWERED", "WORKERS"],
            [
                [name, s.get("pending"), s.get("in_flight"), s.get("requested"), s.get("answered"), s.get("workers")]
                for name, s in sorted(services.items())
            ],
        )
        if services
        else "no services"
    )
    unused = status.get("unused") or {}
    if unused:  # served by workers, but nothing pushed or requested yet: queue or service is not known
        parts.append("")
        parts.append(
            table(["UNUSED NAME", "WORKERS"], [[name, u.get("workers")] for name, u in sorted(unused.items())])
        )
    workers = status.get("workers") or []
    parts.append("")
    parts.append(
        table(
            ["WORKER", "LABEL", "LANG", "NAMES", "CREDIT", "HELD", "IDLE S"],
            [
                [
                    w.get("peer"),
                    w.get("label"),
                    w.get("lang"),
                    ",".join(w.get("names") or []),
                    w.get("credit"),
                    w.get("held"),
                    w.get("idle_s"),
                ]
                for w in workers
            ],
        )
        if workers
        else "no workers"
    )
    counters = status.get("counters") or {}
    parts.append("")
    parts.append(
        table(["COUNTER", "COUNT"], [[name, n] for name, n in sorted(counters.items())])
        if counters
        else "no counters yet"
    )
    return "\n".join(parts)


def mapping_text(value: dict) -> str:
    width = max((len(k) for k in value), default=0)
    return "\n".join(f"{k.ljust(width)}  {'' if v is None else v}" for k, v in value.items())


def dead_letters_text(queue: str, items: list[dict]) -> str:
    if not items:
        return f"no dead letters in {queue}"
    return table(
        ["ID", "ATTEMPT", "DEAD SINCE", "SIZE", "ERROR", "PAYLOAD"],
        [
            [
                i.get("id"),
                i.get("attempt"),
                _local(i.get("dead_ms")),
                i.get("size"),
                i.get("error"),
                _short(i.get("preview")),
            ]
            for i in items
        ],
    )


def _local(ms: int | None) -> str:
    """An instant in ms since the epoch as local time; blank when unknown (a dead letter from before dead_ms)."""
    if not isinstance(ms, int):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def _short(text: str | None, width: int = 40) -> str:
    """A preview on one line of a table."""
    if not text:
        return ""
    one = " ".join(text.split())
    return one if len(one) <= width else one[: width - 3] + "..."
