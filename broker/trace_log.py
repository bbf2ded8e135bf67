# SPDX-License-Identifier: MIT
"""The broker's trace log (SPEC 12.1): what happened to each recent job and request, in order.

Bounded and in memory: the last `keep` messages begun here (accepted or drained), none
older than `keep_s` seconds, the oldest going first.

Recording is on the hot path (every push, delivery and ack), so the log is a deque of
records in time order, one per event *and per batch*: `(t, event, entries, info, per)`,
where `entries` is the very list of the broker's Items the event concerns (the list
the router built anyway: a PUSH_BATCH's items, a worker's lease, an ACK's settled jobs),
`info` what they share and `per` what differs (attempts, delivery times), taken in C
with map(). Nothing is indexed as it is recorded: a lookup (`of_id`, `of_trace`, an
admin op, rare) scans the bounded log. Entries are Items, `Ref`s (a message known here
by id, trace and channel name: a push on its way to Redis, a request) or bare ids (an
event of a message met before, such as a request's reply); the event dicts are built
only when asked. Requests are logged by Ref and id, never by Item, so the log does not
keep their bodies alive; and the request path's records hold only tuples of strings and
numbers, which the garbage collector stops scanning (a log of lists and dicts cost the
request path some 10% of the broker's CPU in collections).
"""

from __future__ import annotations

import time
from collections import deque
from operator import attrgetter
from typing import Any, NamedTuple

from .channels import JOB

JOB_KIND = "job"
REQUEST_KIND = "request"
BEGINS = frozenset({"accepted", "drained"})  # a message's first event on this broker: counted against keep
ENTRIES_PER_MESSAGE = 16  # all records together hold at most keep * this many entries

attempts_of = attrgetter("attempt")
since_of = attrgetter("since")


class Ref(NamedTuple):
    """A message known by id, trace, kind and channel name (no Item of it is kept)."""

    id: str
    trace: str
    kind: int
    where: str  # its queue or service


class TraceLog:
    def __init__(self, broker: str, keep: int, keep_s: float, wall_offset: float | None = None) -> None:
        self.broker = broker
        self.keep = keep
        self.keep_s = keep_s
        self.records: deque[tuple] = deque()  # (t, event, entries, info, per), oldest first
        self.begun = 0  # entries of BEGINS records in the log: messages
        self.entries = 0  # entries of every record in the log
        # The router's clock is monotonic; events carry wall-clock ms so brokers' logs merge.
        self.wall_offset = time.time() - time.monotonic() if wall_offset is None else wall_offset

    # -- recording ----------------------------------------------------------------

    def record(self, t: float, event: str, entries: Any, info: Any = None, per: Any = None) -> None:
        """One event of every entry in `entries` (a list or tuple the log keeps: do not change it)."""
        n = len(entries)
        self.records.append((t, event, entries, info, per))
        self.entries += n
        if event in BEGINS:
            self.begun += n
            if self.begun > self.keep:
                self._evict()
        elif self.entries > self.keep * ENTRIES_PER_MESSAGE:
            self._evict()

    def expire(self, now: float) -> None:
        """Forget records older than keep_s (the router's tick calls this)."""
        cutoff = now - self.keep_s
        records = self.records
        while records and records[0][0] < cutoff:
            self._drop(records.popleft())

    def _evict(self) -> None:
        """The oldest records go until at most `keep` messages are begun here; a batch's record is
        cut, its oldest entries first, when only part of it must go."""
        records = self.records
        cap = self.keep * ENTRIES_PER_MESSAGE
        while records and (self.begun > self.keep or self.entries > cap):
            first = records[0]
            excess = max(self.begun - self.keep, self.entries - cap)
            entries = first[2]
            if excess < len(entries):
                per = first[4][excess:] if first[4] is not None else None
                records[0] = (first[0], first[1], entries[excess:], first[3], per)
                self.entries -= excess
                if first[1] in BEGINS:
                    self.begun -= excess
                return
            self._drop(records.popleft())

    def _drop(self, record: tuple) -> None:
        n = len(record[2])
        self.entries -= n
        if record[1] in BEGINS:
            self.begun -= n

    # -- reading ---------------------------------------------------------------------

    def of_id(self, mid: str, limit: int, now: float) -> list[dict]:
        self.expire(now)
        return self._dicts({mid}, limit)

    def of_trace(self, trace: str, limit: int, now: float) -> list[dict]:
        self.expire(now)
        ids = {e.id for r in self.records for e in r[2] if type(e) is not str and e.trace == trace}
        return self._dicts(ids, limit)

    def _dicts(self, ids: set[str], limit: int) -> list[dict]:
        if not ids:
            return []
        found = []  # (t, event, entry, info, per-entry value)
        meta: dict[str, Any] = {}  # id -> an entry with its trace, kind and channel
        parents: dict[str, str] = {}
        for t, event, entries, info, per in self.records:
            for n, e in enumerate(entries):
                mid = e if type(e) is str else e.id
                if mid not in ids:
                    continue
                if type(e) is not str:
                    meta.setdefault(mid, e)
                if event == "accepted" and info and info[1]:
                    parents.setdefault(mid, info[1])
                found.append((t, event, mid, info, per[n] if per is not None else None))
        out = []
        for t, event, mid, info, value in found[:limit]:
            known = meta.get(mid)
            if known is None:
                continue  # a bare id whose message this log no longer holds
            out.append(self._event(t, event, known, parents.get(mid), info, value))
        return out

    def _event(self, t: float, event: str, e: Any, parent: str | None, info: Any, value: Any) -> dict:
        kind = JOB_KIND if e.kind == JOB else REQUEST_KIND
        out: dict[str, Any] = {
            "t_ms": int((t + self.wall_offset) * 1000),
            "broker": self.broker,
            "id": e.id,
            "trace": e.trace,
            "kind": kind,
            "event": event,
            "queue" if kind == JOB_KIND else "service": e.where if type(e) is Ref else e.channel.name,
        }
        if parent:
            out["parent"] = parent
        if event == "accepted":
            peer = info[0] if info else None
            if peer is not None:
                out["peer"] = peer if isinstance(peer, str) else peer.hex()
        elif event == "delivered":
            out["worker"] = dict(zip(("label", "lang", "host"), info))
            if kind == JOB_KIND and value is not None:
                out["attempt"] = value
        elif event == "acked":
            out["ms"] = round((t - value) * 1000, 3)
        elif event == "replied":
            out["ms"] = round(info, 3)
        elif info:
            out.update(info)
        return out
