# SPDX-License-Identifier: MIT
"""Pushing: the loop behind Client.push and push_many. Sends through the push window, resends
what is unconfirmed (to a new broker too, after a move), and says on failure which jobs the
broker holds (`accepted`) and which it may not (`unconfirmed`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from zeromesh.protocol import codec, defaults, wire

from . import current, errors
from .errors import ZeromeshError, error_from_header
from .messages import Body, to_bytes
from .pipeline import PushWindow
from .transport import BrokerMoved, Transport


def push_jobs(
    t: Transport,
    new_id: Callable[[], str],
    queue: str,
    bodies: list[Body],
    headers: Mapping[str, Any] | None,
    window: int,
    batch: int,
    timeout: float,
    trace: str | None,
    given_ids: list[str] | None = None,
    extra: Mapping[str, Any] | None = None,
    parent: str | None = None,
) -> list[str]:
    """Push and return the ids: each job's own, or for a unique push whose key another job holds,
    that job's id (nothing was queued). `extra` goes in every job's header (at_ms, unique_key...)."""
    if not bodies:
        return []
    frames_bodies = [b if type(b) is bytes else to_bytes(b) for b in bodies]
    ids = given_ids or [new_id() for _ in frames_bodies]
    base: dict[str, Any] = {"queue": queue}
    if headers:
        base["headers"] = dict(headers)
    base.update(current.trace_fields(trace, parent))
    if extra:
        base.update(extra)
    win = PushWindow(t.new_event(), ids, window, batch, defaults.PUSH_RESEND_S, new_id)
    if extra and "unique_key" in extra:
        win.command = wire.PUSH  # unique keys ride on PUSH alone (SPEC 16.6)
    keys_of: dict[str, list[str]] = {}  # message id -> the keys registered for it
    generation = t.generation  # what was sent under an older one went to a broker the client left
    try:
        deadline = time.monotonic() + timeout
        progress = 0
        while True:
            if t.generation != generation:
                generation = t.generation
                win.resend_all()
            win.event.clear()  # before reading state, so no wake-up is lost
            now = time.monotonic()
            for message_id, indices in win.due(now):
                job_ids = [ids[i] for i in indices]
                keys_of[message_id] = keys = [message_id, *job_ids]
                t.register(keys, win)
                command = win.command
                if command == wire.PUSH:  # a broker without batches
                    frames = codec.pack_items(wire.PUSH, [({**base, "id": ids[i]}, frames_bodies[i]) for i in indices])
                else:
                    header = {**base, "id": message_id, "ids": job_ids}
                    message_bodies = [frames_bodies[i] for i in indices]
                    # One frame for all the bodies (SPEC 3.5) while they fit its 1 MiB; else a frame each.
                    if command == wire.PUSH_PACKED and sum(map(len, message_bodies)) <= wire.MAX_PACKED_BYTES:
                        frames = codec.pack_packed(wire.PUSH_PACKED, header, message_bodies)
                    else:
                        command = wire.PUSH_BATCH
                        frames = codec.pack_batch(wire.PUSH_BATCH, header, message_bodies)
                win.sent_as[message_id] = command
                t.send(frames, deadline)
            if win.done:
                break
            if win.confirmed != progress:
                progress = win.confirmed
                deadline = now + timeout
            elif now >= deadline:
                timeout_exc = errors.TimeoutError(
                    f"{len(win.unconfirmed)} of {len(ids)} pushes to {queue!r} unconfirmed "
                    f"after {timeout}s (is the broker at {t.endpoint} up?)"
                )
                raise _with_outcome(timeout_exc, win, ids, frames_bodies)
            try:
                t.wait(win, min(deadline, win.next_resend()))
            except BrokerMoved:
                continue  # resent to the new broker at the top of the loop
            except errors.UnreachableError as exc:
                raise _with_outcome(
                    errors.UnreachableError(f"{exc} ({len(ids) - len(win.accepted())} job(s) not confirmed)"),
                    win,
                    ids,
                    frames_bodies,
                ) from None
            # Forget what is settled as we go: the waiter table stays the size of the window.
            for message_id in win.settled():
                t.unregister(keys_of.pop(message_id))
    finally:
        for keys in keys_of.values():
            t.unregister(keys)
    if win.first_error is not None:
        raise _with_outcome(error_from_header(win.first_error), win, ids, frames_bodies)
    if win.duplicates:
        return [win.duplicates.get(i, i) for i in ids]
    return ids


def _with_outcome(exc: ZeromeshError, win: PushWindow, ids: list[str], bodies: list[bytes]) -> ZeromeshError:
    """Say which jobs the broker holds and which it may not: `accepted` ids, `unconfirmed` (id, body)."""
    accepted = win.accepted()
    taken = set(accepted)
    exc.accepted = accepted  # type: ignore[attr-defined]
    exc.unconfirmed = [(i, b) for i, b in zip(ids, bodies) if i not in taken]  # type: ignore[attr-defined]
    return exc
