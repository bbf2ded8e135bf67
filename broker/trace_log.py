# SPDX-License-Identifier: MIT
"""The broker's trace log (SPEC 12.1): what happened to each recent job and request, in order.

Bounded and in memory: the last `keep` messages begun here (accepted or drained), none
older than `keep_s` seconds, the oldest going first.

Recording is on the hot path (every push, delivery, ack, request and reply), so the log is
one deque of records in time order, one record per event *and per batch*, laid flat as five
slots each: t, event, entries, info, per. `entries` is one message (its id, or the
broker's Item of it) or a list of them: the very list the router built anyway (a
PUSH_BATCH's Items, a worker's lease, an ACK's settled jobs); `info` is what they share
and `per` what differs (attempts, delivery times, taken in C with map()). A message known
here by id only (a request, a push on its way to Redis) is begun by an `accepted` record
whose info names its trace, kind and channel: requests are never kept as Items, so the
log keeps no request body alive. Flat slots of strings and numbers allocate nothing the
garbage collector tracks: records as tuples, lists or objects made the collector run
twice as often on the request path, some 30% of the router's time per request.

Nothing is indexed as it is recorded: a lookup (`of_id`, `of_trace`: an admin op, rare)
scans the bounded log, and the event dicts are built only then.
"""

from __future__ import annotations

import time
from collections import deque
from operator import attrgetter
from typing import Any

from .channels import JOB

JOB_KIND = "job"
REQUEST_KIND = "request"
BEGINS = frozenset({"accepted", "drained"})  # a message's first event on this broker: counted against keep
RECORDS_PER_MESSAGE = 16  # the log holds at most keep * this many records (a batch's is one)
SLOTS = 5  # t, event, entries, info, per

attempts_of = attrgetter("attempt")
since_of = attrgetter("since")


# The info of the `accepted` record of a message logged by its id is a tuple (peer, parent, trace,
# kind, channel name): who sent it, its parent, and what an Item would tell (kind JOB or REQUEST).
# A record of several such messages has None for the trace and each one's trace in `per`.


def _trace_of_accepted(info: tuple, value: Any) -> str:
    """The trace of a message begun by id, from its `accepted` record's info or its own value."""
    return info[2] if info[2] is not None else value


class TraceLog:
    def __init__(self, broker: str, keep: int, keep_s: float, wall_offset: float | None = None) -> None:
        self.broker = broker
        self.keep = keep
        self.keep_s = keep_s
        self.records: deque[Any] = deque()  # SLOTS per record, oldest first
        self.begun = 0  # entries of BEGINS records in the log: messages
        self.cap = keep * RECORDS_PER_MESSAGE * SLOTS  # slots, for len(records)
        # The router's clock is monotonic; events carry wall-clock ms so brokers' logs merge.
        self.wall_offset = time.time() - time.monotonic() if wall_offset is None else wall_offset

    # -- recording ----------------------------------------------------------------

    def record(self, t: float, event: str, entries: Any, info: Any = None, per: Any = None) -> None:
        """One event of `entries`: a message (its id or its Item; `per` its own value), or a list or
        tuple of them (`per` a tuple of values, one each), which the log keeps: do not change it."""
        records = self.records
        records.extend((t, event, entries, info, per))
        if event in BEGINS:
            kind = type(entries)
            self.begun += len(entries) if kind is list or kind is tuple else 1
            if self.begun > self.keep:
                self._evict()
        elif len(records) > self.cap:
            self._evict()

    def expire(self, now: float) -> None:
        """Forget records older than keep_s (the router's tick calls this)."""
        cutoff = now - self.keep_s
        records = self.records
        while records and records[0] < cutoff:
            self._drop_first()

    def _evict(self) -> None:
        """The oldest records go until at most `keep` messages are begun here (and at most `cap`
        slots are used); a batch's record is cut, its oldest entries first, when only part of it
        must go. (Runs for nearly every new message once the log is full: locals, no call per record.)"""
        records = self.records
        popleft = records.popleft
        keep, cap = self.keep, self.cap
        begun = self.begun
        while records and (begun > keep or len(records) > cap):
            entries = records[2]
            n = 1
            if type(entries) is list or type(entries) is tuple:
                n = len(entries)
                excess = begun - keep
                if 0 < excess < n and len(records) <= cap:
                    records[2] = entries[excess:]
                    if records[4] is not None:
                        records[4] = records[4][excess:]
                    if records[1] in BEGINS:
                        begun -= excess
                    break
            if records[1] in BEGINS:
                begun -= n
            popleft()
            popleft()
            popleft()
            popleft()
            popleft()
        self.begun = begun

    def _drop_first(self) -> None:
        records = self.records
        entries = records[2]
        if records[1] in BEGINS:
            self.begun -= len(entries) if type(entries) in (list, tuple) else 1
        for _ in range(SLOTS):
            records.popleft()

    # -- reading ---------------------------------------------------------------------

    def _each(self):
        """(t, event, entry, info, its own value) for every entry of every record, oldest first."""
        it = iter(self.records)
        for t, event, entries, info, per in zip(it, it, it, it, it):
            if type(entries) in (list, tuple):
                for n, e in enumerate(entries):
                    yield t, event, e, info, per[n] if per is not None else None
            else:
                yield t, event, entries, info, per

    def of_id(self, mid: str, limit: int, now: float) -> list[dict]:
        self.expire(now)
        return self._dicts({mid}, limit)

    def of_trace(self, trace: str, limit: int, now: float) -> list[dict]:
        self.expire(now)
        ids = set()
        for _t, event, e, info, value in self._each():
            if type(e) is str:
                if (
                    event == "accepted"
                    and info is not None
                    and len(info) == 5
                    and _trace_of_accepted(info, value) == trace
                ):
                    ids.add(e)
            elif e.trace == trace:
                ids.add(e.id)
        return self._dicts(ids, limit)

    def _dicts(self, ids: set[str], limit: int) -> list[dict]:
        if not ids:
            return []
        found = []  # (t, event, id, info, its own value)
        meta: dict[str, tuple] = {}  # id -> (id, trace, kind, channel name)
        parents: dict[str, str] = {}
        for t, event, e, info, value in self._each():
            by_id = type(e) is str
            mid = e if by_id else e.id
            if mid not in ids:
                continue
            if mid not in meta:
                if not by_id:
                    meta[mid] = (e.id, e.trace, e.kind, e.channel.name)
                elif event == "accepted" and info is not None and len(info) == 5:
                    meta[mid] = (mid, _trace_of_accepted(info, value), info[3], info[4])
            if event == "accepted" and info and info[1]:
                parents.setdefault(mid, info[1])
            found.append((t, event, mid, info, value))
        out = []
        for t, event, mid, info, value in found:
            known = meta.get(mid)
            if known is None:
                continue  # an event of a message whose beginning this log no longer holds
            out.append(self._event(t, event, known, parents.get(mid), info, value))
            if len(out) >= limit:
                break
        return out

    def _event(self, t: float, event: str, e: tuple, parent: str | None, info: Any, value: Any) -> dict:
        mid, trace, code, where = e
        kind = JOB_KIND if code == JOB else REQUEST_KIND
        out: dict[str, Any] = {
            "t_ms": int((t + self.wall_offset) * 1000),
            "broker": self.broker,
            "id": mid,
            "trace": trace,
            "kind": kind,
            "event": event,
            "queue" if kind == JOB_KIND else "service": where,
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
