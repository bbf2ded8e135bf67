# SPDX-License-Identifier: MIT
"""Progress of a long CLI operation on standard error: in place on a terminal, silent otherwise.

Piped or redirected, standard error gets only the final summary the verb prints itself,
so scripts that parse it see no partial lines.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

REDRAW_S = 0.1  # at most ten redraws a second: a terminal is slower than a fast broker


class Progress:
    def __init__(self, label: str, total: int | None, stream: TextIO | None = None, force: bool = False) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = force or self.stream.isatty()
        self.started = time.monotonic()
        self._drawn = 0.0
        self._width = 0

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._drawn >= REDRAW_S:
            self._drawn = now
            self._draw(self.line(now))

    def line(self, now: float | None = None) -> str:
        """`label: 1,200 of 5,000 (24%), 3,100/s`; without a total, the count and the rate."""
        elapsed = max((now if now is not None else time.monotonic()) - self.started, 1e-6)
        rate = f"{self.done / elapsed:,.0f}/s"
        if self.total:
            share = min(100, self.done * 100 // self.total)
            return f"{self.label}: {self.done:,} of {self.total:,} ({share}%), {rate}"
        return f"{self.label}: {self.done:,}, {rate}"

    def finish(self) -> None:
        """Clear the in-place line, so the verb's own summary starts on a clean line."""
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def _draw(self, text: str) -> None:
        pad = max(0, self._width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)
