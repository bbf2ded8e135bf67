# SPDX-License-Identifier: MIT
"""The admin ops as Client methods (SPEC 12): `admin` makes one ADMIN round trip, the rest name the ops."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgpack

from zeromesh.protocol import codec, wire

from . import errors
from .endpoints import BrokerMoved
from .errors import ZeromeshError

if TYPE_CHECKING:
    from collections.abc import Callable

    from .transport import Transport


class AdminCalls:
    if TYPE_CHECKING:  # Client's, which admin() uses
        admin_timeout: float
        _transport: Transport
        _ids: Callable[[], str]

        def _call(
            self, rid: str, frames: list[bytes], wait_s: float, batch: bool = False
        ) -> tuple[dict, bytes] | None: ...

    def admin(self, op: str, **args: Any) -> dict:
        """Run an admin op on the broker; returns the decoded REPLY body (a map)."""
        deadline = time.monotonic() + self.admin_timeout
        while True:
            rid = self._ids()
            header: dict[str, Any] = {"id": rid, "op": op}
            if args:
                header["args"] = args
            try:
                answer = self._call(rid, codec.pack_control(wire.ADMIN, header), deadline - time.monotonic())
                break
            except BrokerMoved as moved:
                if not moved.delivered:  # that broker never had it (refused, never reached): ask the next
                    continue
                raise errors.UnreachableError(
                    f"admin {op!r}: broker {moved.old} lost with the request in flight; not resent"
                ) from None
        if answer is None:
            raise errors.TimeoutError(
                f"admin {op!r}: no answer from {self._transport.endpoint} within {self.admin_timeout}s"
            )
        # An admin body is a msgpack map by contract (not a frame), so it is decoded here.
        result = msgpack.unpackb(answer[1], raw=False) if answer[1] else {}
        if not isinstance(result, dict):
            raise ZeromeshError(f"admin {op!r}: the broker answered a {type(result).__name__}, not a map")
        return result

    def status(self) -> dict:
        return self.admin("status")

    def trace(self, id: str) -> dict:
        """Where a job or request is: queued, scheduled, waiting to retry, in flight, dead, done."""
        return self.admin("trace", id=id)

    def trace_events(self, id: str | None = None, trace: str | None = None, limit: int = 500) -> list[dict]:
        """This broker's trace log for a message or a whole trace (SPEC 12.1); zeromesh.tracing
        merges every broker's."""
        args: dict[str, Any] = {"limit": limit}
        if id is not None:
            args["id"] = id
        if trace is not None:
            args["trace"] = trace
        return list(self.admin("trace_events", **args)["events"])

    def dead_letters(self, queue: str, limit: int | None = None, id: str | None = None) -> list[dict]:
        """The queue's dead letters (or the one named `id`): {id, attempt, error, trace, size, preview}."""
        args: dict[str, Any] = {"queue": queue}
        if limit is not None:
            args["limit"] = limit
        if id is not None:
            args["id"] = id
        return list(self.admin("dead_letters", **args).get("items", []))

    def replay(self, queue: str, ids: list[str] | None = None) -> int:
        """Move dead letters (all, or `ids`) back to the tail of the queue; returns how many."""
        args: dict[str, Any] = {"queue": queue}
        if ids is not None:
            args["ids"] = list(ids)
        return int(self.admin("replay", **args).get("replayed", 0))

    def purge(self, queue: str, ids: list[str] | None = None) -> int:
        """Drop the queue's dead letters (all, or `ids`); returns how many."""
        args: dict[str, Any] = {"queue": queue}
        if ids is not None:
            args["ids"] = list(ids)
        return int(self.admin("purge", **args).get("purged", 0))

    def pause(self, queue: str) -> None:
        """The queue keeps taking pushes and dispatches nothing, on every broker (SPEC 16.8)."""
        self.admin("pause", queue=queue)

    def resume(self, queue: str) -> None:
        self.admin("resume", queue=queue)

    def purge_queue(self, queue: str) -> int:
        """Drop the queue's waiting jobs (memory and Redis; jobs in flight finish); returns how many."""
        return int(self.admin("purge_queue", queue=queue)["purged"])

    def scheduled(self, queue: str, limit: int = 100) -> list[dict]:
        """The queue's jobs scheduled for later, earliest first: {id, due, due_ms, size, trace}."""
        return list(self.admin("scheduled", queue=queue, limit=limit)["items"])

    def cancel(self, id: str, queue: str | None = None) -> None:
        """Cancel a scheduled job before it runs; a RemoteError with code not_found when no schedule holds it."""
        args: dict[str, Any] = {"id": id}
        if queue is not None:
            args["queue"] = queue
        self.admin("cancel", **args)

    def schedules(self) -> list[dict]:
        """The broker's periodic schedules with their last and next runs."""
        return list(self.admin("schedules")["schedules"])
