# SPDX-License-Identifier: MIT
"""The push window: which pushes to send or resend now, and when all are settled.

Pure bookkeeping (no sockets) so the pipelining rules are unit-tested:
at most `window` jobs unconfirmed at once, sent in messages of up to `batch`
jobs, each message with its own message id; an unconfirmed push is resent
with the same job id (under a new message id) every `resend_s` (the broker
confirms a queued duplicate again without enqueueing it twice); after the
first ERROR nothing new is sent, and what is in flight drains.

Confirmations come per job id (CONFIRM `ids`) or per message (CONFIRM
`batches`: every job of that PUSH_PACKED or PUSH_BATCH). `command` is the
form to send in: PUSH_PACKED first. A broker that does not know the form a
message went in answers it with `unknown_command`: then `command` steps down
to the next form (PUSH_BATCH, then PUSH items) and the same jobs go again at
once.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from typing import Any

from zeromesh.protocol import wire

from .waiters import Waiter

FORMS = (wire.PUSH_PACKED, wire.PUSH_BATCH, wire.PUSH)
"""The forms a message of pushes can take, the cheapest first; each broker revision knows a longer prefix."""


class PushWindow(Waiter):
    def __init__(
        self,
        event: Any,
        ids: list[str],
        window: int,
        batch: int,
        resend_s: float,
        new_id: Callable[[], str] | None = None,
    ) -> None:
        super().__init__(event)
        if window < 1 or batch < 1:
            raise ValueError("window and batch must be at least 1")
        self.ids = ids
        self.window = window
        self.batch = min(batch, window, wire.MAX_ITEMS_PER_MESSAGE)
        self.resend_s = resend_s
        self.new_id = new_id or _counter_ids()
        self.next_index = 0
        self.unconfirmed: dict[str, int] = {}  # job id -> index, sent and not settled
        self.messages: dict[str, list[int]] = {}  # message id -> indices it carried
        self.open: dict[str, None] = {}  # message ids with jobs maybe unsettled
        self._closed: list[str] = []  # settled since the last settled() call
        self.confirmed = 0
        self.first_error: dict | None = None
        self.refused: set[str] = set()
        self.duplicates: dict[str, str] = {}  # unique pushes not queued -> the job that holds the key
        self.command = FORMS[0]  # the form to send in (steps down on unknown_command)
        self.sent_as: dict[str, int] = {}  # message id -> the form it went in (the sender notes it)
        self._redo: list[str] = []  # refused as unknown_command: due again at once, in order
        # (sent at, message id) in send order, so the oldest is always first.
        self._sent: deque[tuple[float, str]] = deque()

    def on_confirm(self, job_id: str) -> None:
        if self.unconfirmed.pop(job_id, None) is not None:
            self.confirmed += 1
            self.event.set()

    def on_duplicate(self, job_id: str, holder: str) -> None:
        self.duplicates[job_id] = holder

    def on_confirm_batch(self, message_id: str) -> None:
        indices = self.messages.get(message_id)
        if indices is None:
            return
        if message_id in self.open:
            del self.open[message_id]
            self._closed.append(message_id)
        pop, ids = self.unconfirmed.pop, self.ids
        settled = sum(1 for i in indices if pop(ids[i], None) is not None)
        if settled:
            self.confirmed += settled
            self.event.set()

    def on_error(self, header: dict) -> None:
        re = header.get("re", "")
        if re in self.messages and re not in self.unconfirmed:
            self._message_error(re, header)
            return
        if self.unconfirmed.pop(re, None) is not None:
            self.refused.add(re)
            if self.first_error is None:
                self.first_error = header
            self.event.set()

    def _message_error(self, message_id: str, header: dict) -> None:
        """An ERROR naming a whole message: the broker could not read it as a batch."""
        if header.get("code") == wire.E_UNKNOWN_COMMAND:
            refused = self.sent_as.get(message_id, self.command)
            if refused != wire.PUSH:  # else a broker that knows no push at all: nothing to step down to
                self.command = FORMS[max(FORMS.index(self.command), FORMS.index(refused) + 1)]
                # Due again at once, in the new form, and in the order they were sent (refusals come
                # in that order): the queue is FIFO, so jobs must not change places in a step-down.
                self._redo.append(message_id)
                self.event.set()
                return
        for i in self.messages[message_id]:
            job_id = self.ids[i]
            if self.unconfirmed.pop(job_id, None) is not None:
                self.refused.add(job_id)
        if self.first_error is None:
            self.first_error = header
        self.event.set()

    @property
    def done(self) -> bool:
        """Every sent push is settled and nothing more will be sent."""
        return not self.unconfirmed and (self.next_index >= len(self.ids) or self.first_error is not None)

    def due(self, now: float) -> list[tuple[str, list[int]]]:
        """(message id, indices) to send now, one per message: resends first, then new pushes."""
        out: list[tuple[str, list[int]]] = []
        unconfirmed, ids = self.unconfirmed, self.ids
        if self._redo:
            for old in self._redo:
                still = [i for i in self.messages[old] if ids[i] in unconfirmed]
                if still:
                    self._record(now, still, out)
            self._redo = []
        while self._sent and self._sent[0][0] + self.resend_s <= now:
            _, old = self._sent.popleft()
            still = [i for i in self.messages[old] if ids[i] in unconfirmed]
            if still:
                self._record(now, still, out)
        if self.first_error is None:
            n = len(ids)
            while self.next_index < n:
                room = self.window - len(unconfirmed)
                size = min(self.batch, n - self.next_index)
                # Wait for a whole batch of room rather than dribbling tiny messages.
                if room < size:
                    break
                start = self.next_index
                self.next_index += size
                unconfirmed.update(zip(ids[start : start + size], range(start, start + size)))
                self._record(now, list(range(start, start + size)), out)
        return out

    def _record(self, now: float, indices: list[int], out: list[tuple[str, list[int]]]) -> None:
        message_id = self.new_id()
        self.messages[message_id] = indices
        self.open[message_id] = None
        self._sent.append((now, message_id))
        out.append((message_id, indices))

    def resend_all(self) -> None:
        """The client moved to another broker: every unconfirmed push is due again at once,
        under its same job id (the new broker's dedupe of SPEC 8.1 applies), in send order."""
        self._redo.extend(message_id for _, message_id in self._sent if message_id in self.open)
        self._sent.clear()
        self.event.set()

    def accepted(self) -> list[str]:
        """Ids sent and confirmed (neither pending nor refused), in order."""
        return [i for i in self.ids[: self.next_index] if i not in self.unconfirmed and i not in self.refused]

    def settled(self) -> list[str]:
        """Message ids whose jobs are all settled since the last call (their keys may go)."""
        out, self._closed = self._closed, []
        return out

    def next_resend(self) -> float:
        """When due() next has a resend to offer (inf if nothing is in flight)."""
        open_, unconfirmed, ids = self.open, self.unconfirmed, self.ids
        while self._sent:
            message_id = self._sent[0][1]
            if message_id in open_:
                if any(ids[i] in unconfirmed for i in self.messages[message_id]):
                    break
                del open_[message_id]  # settled job by job
                self._closed.append(message_id)
            self._sent.popleft()
        return self._sent[0][0] + self.resend_s if self._sent else float("inf")


def _counter_ids() -> Callable[[], str]:
    count = itertools.count(1)
    return lambda: f"m{next(count)}"
