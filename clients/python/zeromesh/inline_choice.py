# SPDX-License-Identifier: MIT
"""Which handlers of a thread worker run on its I/O thread.

Running a handler on the I/O thread spares two thread hand-offs a job (I/O thread -> handler
thread -> I/O thread), the largest single cost of a lone request (docs/PERFORMANCE.md), but a
handler that waits there holds up every other job of the worker. So with
`Worker.handler(name, inline=None)`, the default, the worker decides from what it sees: a
handler starts on the handler threads; after PROMOTE_AFTER runs in a row there that each took
under QUICK_S it runs on the I/O thread; one run there that takes over SLOW_S sends it back to
the handler threads for good, with a log line. `inline=True` keeps a handler on the I/O thread
whatever it does, `inline=False` never puts it there, and with concurrency=1 the worker moves none
(Worker._where: one handler at a time). While any handler runs on the I/O thread,
the worker's heartbeats go on (sent by ThreadWorkerIO._cover_main), so a slow one costs time, not the
worker's registration.
"""

from __future__ import annotations

import logging

log = logging.getLogger("zeromesh.worker")

PROMOTE_AFTER = 50
"""Quick runs in a row on the handler threads before a handler moves to the I/O thread."""

QUICK_S = 0.0002
"""A run this short (wall time) counts as quick: well under a loopback round trip, so a handler
that waits on the network or a disk does not qualify, and a few Python calls do."""

SLOW_S = 0.005
"""A run on the I/O thread longer than this sends its handler back to the handler threads."""


class InlineChoice:
    """The names whose handlers run on the I/O thread (`inline`, read there per job) and the
    evidence that moves them. Written from the handler threads (ran_pooled) and the I/O thread
    (ran_inline); each update is one dict or set operation, whole under the GIL, and a lost
    count only delays a move."""

    def __init__(self) -> None:
        self.inline: set[str] = set()  # names run on the I/O thread now
        self.watched: set[str] = set()  # names the worker may move (inline=None)
        self._quick_runs: dict[str, int] = {}

    def register(self, name: str, inline: bool | None) -> None:
        """A handler (re)registered: True pins it to the I/O thread, False keeps it off, None watches it."""
        self._quick_runs.pop(name, None)
        if inline is None:
            self.watched.add(name)
            self.inline.discard(name)
        else:
            self.watched.discard(name)
            if inline:
                self.inline.add(name)
            else:
                self.inline.discard(name)

    def ran_pooled(self, name: str, seconds: float) -> None:
        """A watched handler ran on a handler thread for `seconds`."""
        if name not in self.watched or name in self.inline:
            return
        if seconds >= QUICK_S:
            self._quick_runs[name] = 0
            return
        runs = self._quick_runs.get(name, 0) + 1
        self._quick_runs[name] = runs
        if runs >= PROMOTE_AFTER:
            self.inline.add(name)
            log.debug(
                "handler %r returned within %.1f ms %d times in a row: it runs on the I/O thread now",
                name,
                QUICK_S * 1000,
                runs,
            )

    def ran_inline(self, name: str, seconds: float) -> None:
        """A handler ran on the I/O thread for `seconds`; a slow run of a watched one moves it off for good."""
        if seconds <= SLOW_S or name not in self.watched:
            return
        self.watched.discard(name)
        self.inline.discard(name)
        log.info(
            "handler %r took %.1f ms on the worker's I/O thread: it runs on the handler threads from now on "
            "(Worker.handler(..., inline=False) keeps it there from the start)",
            name,
            seconds * 1000,
        )
