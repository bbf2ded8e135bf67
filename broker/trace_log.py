# SPDX-License-Identifier: MIT
"""The broker's trace log (SPEC 12.1): what happened to each recent job and request, in order.

Bounded and in memory: at most `keep` messages, none older than `keep_s` seconds; the
oldest message goes first, with all its events. Indexed by message id and by trace id.

Recording is on the hot path (every push, delivery and ack), so an event is stored as a
tuple `(now, event, info)` in its message's list, and the admin answer's dicts are built
only when asked (`events()`). `info` is what the event needs: a dict for the rare events;
for the frequent ones a bare value (`accepted`: the peer, `delivered`: (worker, attempt),
`acked`/`replied`: the ms). A message whose trace is its own id (the usual job) is not
put in the trace index: a lookup by trace checks the id index too.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from .workers import WorkerRecord

JOB_KIND = "job"
REQUEST_KIND = "request"


class _Message:
    """One message's events, and what every event of it shares."""

    __slots__ = ("id", "trace", "parent", "kind", "where", "first", "events")

    def __init__(self, mid: str, trace: str, parent: str | None, kind: str, where: str, now: float) -> None:
        self.id = mid
        self.trace = trace
        self.parent = parent
        self.kind = kind
        self.where = where  # its queue (jobs) or service (requests)
        self.first = now
        self.events: list[tuple[float, str, Any]] = []


class TraceLog:
    def __init__(self, broker: str, keep: int, keep_s: float, wall_offset: float | None = None) -> None:
        self.broker = broker
        self.keep = keep
        self.keep_s = keep_s
        self.on = keep > 0
        self.messages: dict[str, _Message] = {}
        self.by_trace: dict[str, list[str]] = {}  # trace -> ids, for messages whose trace is not their id
        self._order: deque[tuple[float, str]] = deque()  # (first event, id), oldest first
        # The router's clock is monotonic; events carry wall-clock ms so brokers' logs merge.
        self.wall_offset = time.time() - time.monotonic() if wall_offset is None else wall_offset

    # -- recording ----------------------------------------------------------------

    def begin(
        self, now: float, mid: str, trace: str, parent: str | None, kind: str, where: str, event: str, info: Any = None
    ) -> None:
        """The first event of a message here (accepted, drained, released...): a new entry when unknown."""
        msg = self.messages.get(mid)
        if msg is None:
            msg = _Message(mid, trace, parent, kind, where, now)
            self.messages[mid] = msg
            self._order.append((now, mid))
            if trace != mid:
                self.by_trace.setdefault(trace, []).append(mid)
            if len(self.messages) > self.keep:
                self._evict_oldest()
        elif parent and not msg.parent:
            msg.parent = parent
        msg.events.append((now, event, info))

    def add(self, now: float, mid: str, event: str, info: Any = None) -> None:
        """An event of a message already logged (dropped when it was evicted or never begun here)."""
        msg = self.messages.get(mid)
        if msg is not None:
            msg.events.append((now, event, info))

    def add_item(self, now: float, item: Any, event: str, info: Any = None) -> None:
        """An event of a broker Item, begun here if this broker has not logged it (a drained job's
        delivery after eviction, a job recovered at start)."""
        msg = self.messages.get(item.id)
        if msg is None:
            kind = JOB_KIND if item.kind == 1 else REQUEST_KIND
            self.begin(now, item.id, item.trace, None, kind, item.channel.name, event, info)
        else:
            msg.events.append((now, event, info))

    def expire(self, now: float) -> None:
        """Forget messages whose first event is older than keep_s (the router's tick calls this)."""
        cutoff = now - self.keep_s
        order = self._order
        while order and order[0][0] < cutoff:
            self._forget(*order.popleft())

    def _evict_oldest(self) -> None:
        order = self._order
        while order and len(self.messages) > self.keep:
            self._forget(*order.popleft())

    def _forget(self, first: float, mid: str) -> None:
        msg = self.messages.get(mid)
        if msg is None or msg.first != first:
            return  # forgotten already, and logged again since under the same id
        del self.messages[mid]
        if msg.trace != mid:
            ids = self.by_trace.get(msg.trace)
            if ids is not None:
                ids.remove(mid)
                if not ids:
                    del self.by_trace[msg.trace]

    # -- reading ---------------------------------------------------------------------

    def of_id(self, mid: str, limit: int, now: float) -> list[dict]:
        self.expire(now)
        msg = self.messages.get(mid)
        return self._dicts([msg] if msg is not None else [], limit)

    def of_trace(self, trace: str, limit: int, now: float) -> list[dict]:
        self.expire(now)
        msgs = [self.messages[m] for m in self.by_trace.get(trace, ()) if m in self.messages]
        own = self.messages.get(trace)
        if own is not None and own.trace == trace:
            msgs.append(own)
        return self._dicts(msgs, limit)

    def _dicts(self, msgs: list[_Message], limit: int) -> list[dict]:
        rows = [(t, n, msg, event, info) for msg in msgs for n, (t, event, info) in enumerate(msg.events)]
        rows.sort(key=lambda r: (r[0], r[1]))
        return [self._event(t, msg, event, info) for t, _n, msg, event, info in rows[:limit]]

    def _event(self, t: float, msg: _Message, event: str, info: Any) -> dict:
        out: dict[str, Any] = {
            "t_ms": int((t + self.wall_offset) * 1000),
            "broker": self.broker,
            "id": msg.id,
            "trace": msg.trace,
            "kind": msg.kind,
            "event": event,
            "queue" if msg.kind == JOB_KIND else "service": msg.where,
        }
        if msg.parent:
            out["parent"] = msg.parent
        if info is None:
            return out
        if event == "accepted":
            out["peer"] = info if isinstance(info, str) else info.hex()
        elif event == "delivered":
            worker, attempt = info
            out["worker"] = worker_fields(worker)
            if msg.kind == JOB_KIND:
                out["attempt"] = attempt
        elif event in ("acked", "replied"):
            out["ms"] = round(info, 3)
        else:
            out.update(info)
        return out


def worker_fields(worker: WorkerRecord) -> dict:
    return {"label": worker.label, "lang": worker.lang, "host": worker.host}
