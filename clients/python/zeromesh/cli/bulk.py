# SPDX-License-Identifier: MIT
"""Long CLI operations done in bounded steps, with progress: pushing a file of jobs, replaying
every dead letter of a queue. Each step is one broker round trip that says what it did, so
an interruption or an error leaves an exact count of what happened before it."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any

from .progress import Progress

PUSH_CHUNK = 5000  # jobs per push_many: the client pipelines within it, the count is exact between them
REPLAY_CHUNK = 1000  # dead letters listed and replayed by id per step


def job_lines(source: IO[bytes]) -> Iterator[bytes]:
    """One job body per line (the line ending dropped); blank lines are skipped."""
    for raw in source:
        line = raw.rstrip(b"\r\n")
        if line.strip():
            yield line


def _chunks(lines: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def push_lines(
    client: Any, queue: str, source: IO[bytes], headers: dict, timeout: float, progress: Progress, out: IO[str]
) -> int:
    """Push every line of source as a job on queue; prints each confirmed id to out, in order.

    Returns how many were confirmed. On an error, says on stderr how many were confirmed and
    from which line on nothing is known to be queued, then raises the error (its exit status)."""
    confirmed = 0
    for chunk in _chunks(job_lines(source), PUSH_CHUNK):
        try:
            ids = client.push_many(queue, chunk, headers or None, timeout=timeout)
        except Exception as exc:
            accepted = list(getattr(exc, "accepted", []) or [])
            for jid in accepted:
                print(jid, file=out)
            confirmed += len(accepted)
            progress.finish()
            print(
                f"zeromesh push: {confirmed} job(s) confirmed on {queue} before the error; the other "
                f"{len(chunk) - len(accepted)} of this step and every later line were not confirmed "
                "(pushing the file again queues the confirmed ones again: their ids are new)",
                file=sys.stderr,
            )
            raise
        for jid in ids:
            print(jid, file=out)
        confirmed += len(ids)
        progress.add(len(ids))
    out.flush()
    progress.finish()
    return confirmed


def replay_all(client: Any, queue: str, progress: Progress) -> int:
    """Replay the queue's dead letters in steps of REPLAY_CHUNK ids; returns how many moved.

    Bounded by the count at the start: a replayed job that fails again and comes back is
    not replayed a second time by the same command."""
    listing = client.admin("dead_letters", queue=queue, limit=REPLAY_CHUNK)
    total = int(listing.get("total", 0))
    progress.total = total
    replayed = 0
    items = listing.get("items", [])
    while items and replayed < total:
        ids = [item["id"] for item in items][: total - replayed]
        moved = client.replay(queue, ids)
        replayed += moved
        progress.add(moved)
        if moved == 0:  # another operator replayed or purged them meanwhile
            break
        items = client.admin("dead_letters", queue=queue, limit=REPLAY_CHUNK).get("items", [])
    progress.finish()
    return replayed
