# SPDX-License-Identifier: MIT
"""The push window: which pushes to send or resend now, and when all are settled.

Pure bookkeeping (no sockets) so the pipelining rules are unit-tested:
at most `window` jobs unconfirmed at once, sent in messages of up to `batch`
jobs; an unconfirmed push is resent with the same id every `resend_s`
(the broker confirms a queued duplicate again without enqueueing it twice);
after the first ERROR nothing new is sent, and what is in flight drains.
"""
from __future__ import annotations

from collections import deque
from typing import Any

from zeromesh.protocol import wire

from .waiters import Waiter


class PushWindow(Waiter):
    def __init__(self, event: Any, ids: list[str], window: int, batch: int, resend_s: float) -> None:
        super().__init__(event)
        if window < 1 or batch < 1:
            raise ValueError("window and batch must be at least 1")
        self.ids = ids
        self.window = window
        self.batch = min(batch, window, wire.MAX_ITEMS_PER_MESSAGE)
        self.resend_s = resend_s
        self.next_index = 0
        self.unconfirmed: dict[str, int] = {}
        self.confirmed = 0
        self.first_error: dict | None = None
        self.refused: set[str] = set()
        # (sent at, indices) in send order, so the oldest is always first.
        self._sent: deque[tuple[float, list[int]]] = deque()

    def on_confirm(self, job_id: str) -> None:
        if self.unconfirmed.pop(job_id, None) is not None:
            self.confirmed += 1
            self.event.set()

    def on_error(self, header: dict) -> None:
        job_id = header.get("re", "")
        if self.unconfirmed.pop(job_id, None) is not None:
            self.refused.add(job_id)
            if self.first_error is None:
                self.first_error = header
            self.event.set()

    @property
    def done(self) -> bool:
        """Every sent push is settled and nothing more will be sent."""
        return not self.unconfirmed and (self.next_index >= len(self.ids) or self.first_error is not None)

    def due(self, now: float) -> list[list[int]]:
        """Indices to send now, one list per message: resends first, then new pushes."""
        out: list[list[int]] = []
        while self._sent and self._sent[0][0] + self.resend_s <= now:
            _, indices = self._sent.popleft()
            still = [i for i in indices if self.ids[i] in self.unconfirmed]
            if still:
                out.append(still)
                self._sent.append((now, still))
        if self.first_error is None:
            n = len(self.ids)
            while self.next_index < n:
                room = self.window - len(self.unconfirmed)
                size = min(self.batch, n - self.next_index)
                # Wait for a whole batch of room rather than dribbling tiny messages.
                if room < size:
                    break
                indices = list(range(self.next_index, self.next_index + size))
                self.next_index += size
                for i in indices:
                    self.unconfirmed[self.ids[i]] = i
                out.append(indices)
                self._sent.append((now, indices))
        return out

    def accepted(self) -> list[str]:
        """Ids sent and confirmed (neither pending nor refused), in order."""
        return [i for i in self.ids[:self.next_index] if i not in self.unconfirmed and i not in self.refused]

    def next_resend(self) -> float:
        """When due() next has a resend to offer (inf if nothing is in flight)."""
        while self._sent and not any(self.ids[i] in self.unconfirmed for i in self._sent[0][1]):
            self._sent.popleft()
        return self._sent[0][0] + self.resend_s if self._sent else float("inf")
