# SPDX-License-Identifier: MIT
"""The ledger's operator actions, mixed into Ledger (ledger.py owns the state they change):
dead letters kept in memory (no Redis) replayed or purged, and a queue's waiting jobs purged."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .channels import Channel, Item

if TYPE_CHECKING:
    from .retry_waits import RetryWaits
    from .trace_log import TraceLog


class LedgerUpkeep:
    # The Ledger's state these act on.
    jobs_by_id: dict[str, Item]
    acked_elements: dict[str, list[bytes]]
    done_unique: list[Item]
    waits: RetryWaits
    trace: TraceLog | None

    if TYPE_CHECKING:

        def remember(self, item: Item, outcome: str, now: float) -> None: ...

    def replay_dead(self, chan: Channel, ids: list[str] | None, now: float) -> int:
        """Dead letters (all, or those named) back at the tail of the queue as fresh jobs.

        One whose id a live job has (pushed again since) stays dead: one id, one job (SPEC 2.3).
        """
        keep, moved = [], 0
        for item in chan.dead:
            if (ids is None or item.id in ids) and item.id not in self.jobs_by_id:
                item.attempt = 0
                item.since = now
                chan.jobs.append(item)
                self.jobs_by_id[item.id] = item
                moved += 1
                if self.trace is not None:
                    self.trace.record(now, "replayed", item)
            else:
                keep.append(item)
        chan.dead.clear()
        chan.dead.extend(keep)
        return moved

    def purge_dead(self, chan: Channel, ids: list[str] | None, now: float) -> int:
        """Drop dead letters: all, or those named."""
        gone = [item for item in chan.dead if ids is None or item.id in ids]
        if self.trace is not None:
            for item in gone:
                self.trace.record(now, "purged", item)
        if ids is None:
            chan.dead.clear()
        else:
            keep = [item for item in chan.dead if item.id not in ids]
            chan.dead.clear()
            chan.dead.extend(keep)
        return len(gone)

    def purge_queued(self, chan: Channel, now: float) -> int:
        """Drop the queue's jobs waiting in memory (not those in flight). A durable one also
        leaves our Redis in-flight list, as if acked: it will not run."""
        chan.jobs.extend(self.waits.take(chan))
        count = len(chan.jobs)
        for item in chan.jobs:
            self.jobs_by_id.pop(item.id, None)
            if item.elem is not None:
                self.acked_elements.setdefault(chan.name, []).append(item.elem)
                if item.unique:
                    self.done_unique.append(item)
            self.remember(item, "purged", now)
            if self.trace is not None:
                self.trace.record(now, "purged", item)
        chan.jobs.clear()
        return count
